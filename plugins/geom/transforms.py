"""GeoTrans's 72 geometric transformations (methods.md §5.2) as one gather on a batch.

Transformation ``idx = flip·36 + ix·12 + iy·4 + k`` horizontally flips (``flip``), shifts by
``(0, -s, +s)[ix]`` pixels along x and ``(0, -s, +s)[iy]`` along y with reflect padding, then
rotates by ``k·90°`` counter-clockwise (``torch.rot90``, as ``np.rot90``); index 0 is the
identity. Every transformation only moves pixels, so for a patch size it is a table of source
pixels: :func:`gather_table` builds the tables of a set once, by applying the operations to an
image of pixel indices, and :func:`transform` applies a whole set to a batch with one indexing
operation — no per-image loop and no stored copies.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = [
    "N_TRANSFORMS",
    "TRANSFORM_SETS",
    "Transform",
    "describe",
    "gather_table",
    "parse_transforms",
    "transform",
]

N_TRANSFORMS = 72
"""Size of the full set: 2 flips × 3 x-shifts × 3 y-shifts × 4 rotations."""

_SHIFTS = (0, -1, 1)  # ix, iy -> shift in units of s

TRANSFORM_SETS: dict[str, tuple[int, ...]] = {
    "full72": tuple(range(N_TRANSFORMS)),
    "flip_rot8": (0, 1, 2, 3, 36, 37, 38, 39),
    "rotations": (0, 1, 2, 3),
    "translate_only": (0, 4, 8, 12, 16, 20, 24, 28, 32),
}
"""Named transformation sets (methods.md §5.7): the paper's 72; flips × rotations (the authors'
``SimpleTransformer``); rotations alone; the 9 translations alone."""


class Transform(NamedTuple):
    """One transformation: flip, shifts in units of s along x and y (-1, 0, +1), quarter turns."""

    flip: bool
    x: int
    y: int
    k: int


def describe(idx: int) -> Transform:
    """The parts of transformation ``idx`` (0..71)."""
    flip, rest = divmod(idx, 36)
    ix, rest = divmod(rest, 12)
    iy, k = divmod(rest, 4)
    return Transform(bool(flip), _SHIFTS[ix], _SHIFTS[iy], k)


def parse_transforms(spec: str) -> tuple[int, ...]:
    """The transformation indices named by ``spec``: a key of :data:`TRANSFORM_SETS` or a
    comma-separated list of distinct indices in 0..71 (class ``j`` is the ``j``-th listed).

    Raises:
        ValueError: an unknown name, an index out of range, a repeat, or fewer than two.
    """
    if spec in TRANSFORM_SETS:
        return TRANSFORM_SETS[spec]
    try:
        indices = tuple(int(part) for part in spec.split(","))
    except ValueError:
        msg = f"unknown transformation set {spec!r}"
        raise ValueError(msg) from None
    if len(indices) < 2 or len(set(indices)) != len(indices):
        msg = "a custom set needs at least two distinct indices"
        raise ValueError(msg)
    if not all(0 <= i < N_TRANSFORMS for i in indices):
        msg = f"indices must lie in 0..{N_TRANSFORMS - 1}"
        raise ValueError(msg)
    return indices


def _shift(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``image`` (..., H, W) moved by (dy, dx) pixels, the uncovered side filled by reflection
    about the edge (the edge pixel repeated: scipy's and Keras's ``reflect``)."""
    height, width = image.shape[-2:]
    rows = _reflect(torch.arange(height) - dy, height)
    cols = _reflect(torch.arange(width) - dx, width)
    return image[..., rows[:, None], cols[None, :]]


def _reflect(index: torch.Tensor, n: int) -> torch.Tensor:
    period = torch.remainder(index, 2 * n)
    return torch.where(period < n, period, 2 * n - 1 - period)


def gather_table(patch: int, shift: int, indices: tuple[int, ...]) -> torch.Tensor:
    """int64 (K, patch²): for each transformation, the flat source pixel of every output pixel.

    Built by flipping, shifting (``shift`` pixels) and rotating an image of pixel indices, so the
    table is exactly what those operations do to an image.
    """
    pixels = torch.arange(patch * patch).reshape(patch, patch)
    tables = []
    for idx in indices:
        t = describe(idx)
        image = torch.flip(pixels, dims=(1,)) if t.flip else pixels
        image = _shift(image, t.y * shift, t.x * shift)
        tables.append(torch.rot90(image, t.k, dims=(0, 1)).reshape(-1))
    return torch.stack(tables)


def transform(batch: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Every transformation of ``table`` applied to ``batch`` (B, C, p, p): (B, K, C, p, p)."""
    b, c, h, w = batch.shape
    out = batch.reshape(b, c, h * w)[:, :, table]  # (B, C, K, p²)
    return out.transpose(1, 2).reshape(b, len(table), c, h, w)
