"""A picture of the simulator: normal and threat parcels, both views, threat masks outlined.

Run ``python -m xadt.synth.grid docs/synth-grid.png --old-row OLD.png`` to regenerate the picture
in the docs; ``OLD.png`` is an earlier grid (``git show 9d0d595:docs/synth-grid.png``), whose first
row goes on top for comparison.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from xadt.synth.dataset import generate
from xadt.synth.parcel import SynthScan

_OUTLINE = np.array([230, 0, 30], np.uint8)
_GAP = 6


def outlined(scan: SynthScan, k: int) -> np.ndarray:
    """View ``k`` of ``scan`` with its threat mask (if any) outlined in red."""
    view = scan.views[k].copy()
    if scan.masks is not None:
        mask = scan.masks[k]
        edge = ndimage.binary_dilation(mask, iterations=2) & ~mask
        view[edge] = _OUTLINE
    return view


def _pair(scan: SynthScan, height: int) -> np.ndarray:
    views = [outlined(scan, k) for k in range(len(scan.views))]
    gap = np.full((height, _GAP, 3), 255, np.uint8)
    gap[:, _GAP // 2 - 1 : _GAP // 2 + 1] = 160
    parts = [views[0]]
    for v in views[1:]:
        parts += [gap, v]
    return np.concatenate(parts, axis=1)


def grid(*, seed: int = 1, rows: int = 5, scale: float = 0.35) -> np.ndarray:
    """An RGB picture: ``rows`` rows, a normal parcel on the left and a threat parcel on the
    right of each, both views of each parcel side by side."""
    height = round(764 * scale)
    lines = []
    pairs = []
    for r in range(rows):
        normal = generate(seed, "test-normal", r, scale=scale)
        threat = generate(seed, "test-threat", r, scale=scale)
        pairs.append((_pair(normal, height), _pair(threat, height), threat))
    left = max(p[0].shape[1] for p in pairs)
    right = max(p[1].shape[1] for p in pairs)
    for a, b, _ in pairs:
        row = np.full((height, left + 3 * _GAP + right, 3), 255, np.uint8)
        row[:, : a.shape[1]] = a
        row[:, left + 3 * _GAP : left + 3 * _GAP + b.shape[1]] = b
        lines += [row, np.full((_GAP, row.shape[1], 3), 255, np.uint8)]
    picture = np.concatenate(lines[:-1], axis=0)
    image = Image.fromarray(picture)
    draw = ImageDraw.Draw(image)
    for r, (_, _, threat) in enumerate(pairs):
        info = threat.contents["threat"]
        label = f"{info['name']} ({info['difficulty']}, visibility {info['visibility']:.2f})"
        draw.text((left + 3 * _GAP + 4, r * (height + _GAP) + 4), label, fill=(0, 0, 0))
        draw.text((4, r * (height + _GAP) + 4), "normal", fill=(0, 0, 0))
    return np.asarray(image)


def with_old_row(picture: np.ndarray, old: np.ndarray, height: int) -> np.ndarray:
    """``picture`` under the first row (``height`` px) of an earlier grid ``old``, both labelled."""
    row = old[:height, :, :3]
    width = max(row.shape[1], picture.shape[1])
    band = 16
    canvas = np.full((band + height + _GAP + band + picture.shape[0], width, 3), 255, np.uint8)
    canvas[band : band + height, : row.shape[1]] = row
    top = band + height + _GAP + band
    canvas[top:, : picture.shape[1]] = picture
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    draw.text((4, 2), "before: one row of the previous simulator", fill=(0, 0, 0))
    draw.text((4, band + height + _GAP + 2), "now", fill=(0, 0, 0))
    return np.asarray(image)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: write the grid PNG."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, help="PNG file to write")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rows", type=int, default=5)
    parser.add_argument("--scale", type=float, default=0.35)
    parser.add_argument("--old-row", type=Path, help="an earlier grid PNG: its first row on top")
    args = parser.parse_args(argv)
    picture = grid(seed=args.seed, rows=args.rows, scale=args.scale)
    if args.old_row is not None:
        old = np.asarray(Image.open(args.old_row).convert("RGB"))
        picture = with_old_row(picture, old, round(764 * args.scale))
    Image.fromarray(picture).save(args.out, optimize=True)


if __name__ == "__main__":
    main()
