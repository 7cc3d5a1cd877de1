"""Localisation output: per-view anomaly maps as heat-map overlays (PNG) and float32 arrays (.npy).

Every overlay of a model uses the same fixed colour scale, ``calibration.map_low`` (no colour:
the median normal patch) to ``calibration.map_high`` (full colour), so equal colours mean equal
anomaly scores across scans. A map normalised per image would paint the most normal of parcels
bright red, which misleads screeners.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from xadt.context import RunContext
from xadt.detector import ScanResult
from xadt.errors import XadtError
from xadt.model import Model
from xadt.outputs import check_output_file, npy_bytes, write_bytes_atomic
from xadt.scans import Scan, full_scale, iter_scans, to_rgb
from xadt.workflows.score import score_in_chunks

__all__ = [
    "LEGEND_HEIGHT",
    "LocalizeRun",
    "MapScale",
    "check_overlay_folder",
    "colourize",
    "localize_folder",
    "map_scale",
    "output_names",
    "render_overlay",
    "write_overlays",
]

PathLike = str | os.PathLike[str]

LEGEND_HEIGHT = 30
"""Height in pixels of the colour bar and its labels under each overlay."""

MAX_ALPHA = 0.7
"""Opacity of the heat colour at the top of the scale; it falls to 0 at the bottom."""

# An inferno-like perceptual ramp (dark purple → red → yellow), sampled at even steps.
_STOPS = np.array(
    [
        (0, 0, 4),
        (31, 12, 72),
        (85, 15, 109),
        (136, 34, 106),
        (186, 54, 85),
        (227, 89, 51),
        (249, 140, 10),
        (249, 201, 50),
        (252, 255, 164),
    ],
    dtype=np.float32,
)


@dataclass(frozen=True)
class MapScale:
    """The fixed colour scale of a model's anomaly maps (anomaly score; higher = more anomalous).

    Attributes:
        low: a map value at or below it gets no colour.
        high: a map value at or above it gets the full colour.
    """

    low: float
    high: float

    def unit(self, amap: np.ndarray) -> np.ndarray:
        """The map mapped onto [0, 1] by this scale; NaN stays NaN."""
        values = np.asarray(amap, dtype=np.float32)
        unit: np.ndarray = np.clip(
            (values - np.float32(self.low)) / np.float32(self.high - self.low), 0.0, 1.0
        )
        return unit


@dataclass(frozen=True)
class LocalizeRun:
    """What a localisation run wrote.

    Attributes:
        files: every PNG and .npy file written.
        n_scans: scans localised.
        skipped: ``(file, reason)`` of each unreadable scan.
        summary: one line on the scans read and skipped.
    """

    files: list[Path]
    n_scans: int
    skipped: list[tuple[Path, str]]
    summary: str


def map_scale(model: Model) -> MapScale:
    """The model's fixed map scale, from its calibration.

    Raises:
        XadtError: the model has no calibration (it was not trained with ``xadt train``).
    """
    calibration = model.calibration
    if calibration is None:
        msg = (
            f"{model.name}: the model has no calibration, so its maps have no fixed colour "
            f"scale; train it with 'xadt train --plugin {model.name}'"
        )
        raise XadtError(msg)
    return MapScale(calibration.map_low, calibration.map_high)


def colourize(amap: np.ndarray, scale: MapScale) -> tuple[np.ndarray, np.ndarray]:
    """Colours and opacities of an anomaly map on a fixed scale.

    Returns:
        ``(rgb, alpha)``: (H, W, 3) float32 colours in [0, 1] and (H, W) float32 opacities,
        0 where the map is NaN or at or below ``scale.low``.
    """
    t = scale.unit(amap)
    missing = np.isnan(t)
    t = np.where(missing, 0.0, t).astype(np.float32)
    position = t * (len(_STOPS) - 1)
    lower = np.minimum(position.astype(np.int64), len(_STOPS) - 2)
    frac = (position - lower)[..., None]
    rgb = (_STOPS[lower] * (1 - frac) + _STOPS[lower + 1] * frac) / 255.0
    alpha = np.where(missing, 0.0, MAX_ALPHA * np.sqrt(t)).astype(np.float32)
    return rgb.astype(np.float32), alpha


def render_overlay(view: np.ndarray, amap: np.ndarray, scale: MapScale) -> np.ndarray:
    """A view in grey with its anomaly map blended over it, and a colour bar underneath.

    Args:
        view: (H, W, C) RGB or grey view in its native dtype (dual-energy views: make them RGB
            first with :func:`xadt.scans.to_rgb`).
        amap: (H, W) anomaly map, NaN where nothing was scored.
        scale: the model's fixed colour scale.

    Returns:
        (H + LEGEND_HEIGHT, W, 3) uint8 image.
    """
    if amap.shape != view.shape[:2]:
        msg = f"anomaly map of shape {amap.shape} does not match its view's {view.shape[:2]}"
        raise ValueError(msg)
    pixels = view.astype(np.float32) / np.float32(full_scale(view.dtype))
    # Grey, so that the heat colours cannot be mistaken for the scanner's material colours.
    grey = pixels.mean(axis=2, keepdims=True) if pixels.shape[2] != 1 else pixels
    background = np.clip(np.repeat(grey, 3, axis=2), 0.0, 1.0)
    rgb, alpha = colourize(amap, scale)
    blended = background * (1 - alpha[..., None]) + rgb * alpha[..., None]
    image = (np.clip(blended, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    return np.concatenate([image, _legend(view.shape[1], scale)], axis=0)


def _legend(width: int, scale: MapScale) -> np.ndarray:
    margin = 4 if width > 16 else 0
    bar = np.linspace(0.0, 1.0, max(width - 2 * margin, 1), dtype=np.float32)
    rgb, alpha = colourize(scale.low + bar * (scale.high - scale.low), scale)
    strip = np.zeros((LEGEND_HEIGHT, width, 3), dtype=np.uint8)
    colours = (rgb * alpha[..., None] + (1 - alpha[..., None]) * 0.5) * 255 + 0.5
    strip[2:12, margin : margin + len(bar)] = colours.astype(np.uint8)[None]
    image = Image.fromarray(strip)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    low, high = f"{scale.low:.3g}", f"{scale.high:.3g}"
    label = "anomaly score, fixed model scale"
    room = width - draw.textlength(low, font=font) - draw.textlength(high, font=font)
    if room > 8:
        draw.text((margin, 14), low, fill=(255, 255, 255), font=font)
        x = width - margin - draw.textlength(high, font=font)
        draw.text((x, 14), high, fill=(255, 255, 255), font=font)
        if room - draw.textlength(label, font=font) > 24:
            x = (width - draw.textlength(label, font=font)) / 2
            draw.text((x, 14), label, fill=(200, 200, 200), font=font)
    return np.asarray(image)


def _png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def output_names(scan_id: str, n_views: int) -> list[str]:
    """File-name stems of a scan's outputs: ``<scan>_v<k>`` for each view."""
    return [f"{scan_id}_v{k}" for k in range(n_views)]


def write_overlays(
    scan: Scan,
    result: ScanResult,
    out: PathLike,
    scale: MapScale,
    *,
    detector: str,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``<scan>_v<k>.png`` (overlay) and ``<scan>_v<k>.npy`` (float32 map) for each view.

    Raises:
        XadtError: the result carries no maps (the plugin has no localisation), or a file
            exists and ``overwrite`` is false.
        RuntimeError: the maps do not match the scan's views (a detector bug).
    """
    if not result.maps:
        msg = (
            f"plugin {detector!r} has no localisation: its results carry no anomaly maps; "
            "'xadt score' gives its scan scores"
        )
        raise XadtError(msg)
    if len(result.maps) != len(scan.views) or any(
        m.shape != v.shape[:2] for m, v in zip(result.maps, scan.views, strict=False)
    ):
        msg = (
            f"{detector}: maps of scan {scan.id!r} have shapes "
            f"{[m.shape for m in result.maps]}, not its views' {[v.shape[:2] for v in scan.views]}"
        )
        raise RuntimeError(msg)
    folder = Path(out)
    rgb = to_rgb(scan)
    written = []
    for stem, view, amap in zip(
        output_names(scan.id, len(scan.views)), rgb.views, result.maps, strict=True
    ):
        values = np.asarray(amap, dtype=np.float32)
        npy = folder / f"{stem}.npy"
        png = folder / f"{stem}.png"
        written.append(write_bytes_atomic(npy, npy_bytes(values), overwrite=overwrite, what="map"))
        overlay = _png_bytes(render_overlay(view, values, scale))
        written.append(write_bytes_atomic(png, overlay, overwrite=overwrite, what="overlay"))
    return written


def check_overlay_folder(out: PathLike, scan_ids: Sequence[str], *, overwrite: bool) -> Path:
    """Check, before scoring, that overlays for ``scan_ids`` may be written into ``out``.

    Raises:
        XadtError: ``out`` is a file, or (without ``overwrite``) already holds an output of one
            of the scans.
    """
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        msg = f"{folder}: is a file; name a folder for the overlays"
        raise XadtError(msg)
    if folder.is_dir() and not overwrite:
        wanted = set(scan_ids)
        for existing in sorted(folder.iterdir()):
            m = re.fullmatch(r"(?P<id>.+)_v\d+\.(png|npy)", existing.name)
            if m is not None and m["id"] in wanted:
                check_output_file(existing, overwrite=False)
    return folder


def localize_folder(
    model: Model,
    scans_dir: PathLike,
    out: PathLike,
    *,
    context: RunContext | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
) -> LocalizeRun:
    """Score a folder of scans and write an overlay and a map per view into ``out``.

    Args:
        model: a fitted, calibrated model whose results carry per-view maps.
        scans_dir: the folder of scans (read lazily).
        out: the output folder (created if missing).
        context: device, progress and registry for the detector.
        overwrite: replace existing outputs of the same scans.
        progress: called as ``progress(done, total)`` after each chunk.

    Raises:
        XadtError: no calibration, a plugin without maps, an existing output without
            ``overwrite``, a missing or empty folder, or no readable scan.
    """
    scale = map_scale(model)
    folder = iter_scans(scans_dir)
    target = check_overlay_folder(out, folder.ids, overwrite=overwrite)
    files: list[Path] = []
    done = 0

    def write(batch: list[Scan], results: list[ScanResult]) -> None:
        nonlocal done
        for scan, result in zip(batch, results, strict=True):
            files.extend(
                write_overlays(
                    scan, result, target, scale, detector=model.name, overwrite=overwrite
                )
            )
        done += len(batch)
        if progress is not None:
            progress(done + len(folder.skipped), len(folder))

    for _ in score_in_chunks(model, folder, context=context, on_chunk=write):
        pass
    if done == 0:
        msg = f"{folder.folder}: no scan could be read ({folder.summary()})"
        raise XadtError(msg)
    return LocalizeRun(
        files=files, n_scans=done, skipped=list(folder.skipped), summary=folder.summary()
    )
