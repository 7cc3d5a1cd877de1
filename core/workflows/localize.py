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
from scipy import ndimage

from xadt.context import RunContext
from xadt.detector import ScanResult
from xadt.errors import XadtError
from xadt.model import Model
from xadt.outputs import check_output_file, npy_bytes, write_bytes_atomic
from xadt.scans import Scan, ScanFolder, as_scan_folder, full_scale, to_rgb
from xadt.workflows.gallery import GALLERY_NAME, write_gallery
from xadt.workflows.score import ScoreRow, ranked, score_in_chunks

__all__ = [
    "LocalizeRun",
    "MapScale",
    "check_overlay_folder",
    "colourize",
    "legend_height",
    "localize_folder",
    "map_scale",
    "output_names",
    "render_overlay",
    "write_overlays",
]

PathLike = str | os.PathLike[str]

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
        ticks: ``(label, map value)`` marks on the colour bar, e.g. ``("90%", 0.41)``: the
            calibrated reading of a colour.
        unit: what the tick labels measure.
        threshold: a map value marked on the colour bar as the patch-level threshold, or None.
        threshold_label: what the mark means.
    """

    low: float
    high: float
    ticks: tuple[tuple[str, float], ...] = ()
    unit: str = "anomaly score"
    threshold: float | None = None
    threshold_label: str = ""

    def unit_of(self, amap: np.ndarray | float) -> np.ndarray:
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
        rows: the localised scans' scores, most anomalous first.
        gallery: the HTML gallery written, or None.
    """

    files: list[Path]
    n_scans: int
    skipped: list[tuple[Path, str]]
    summary: str
    rows: list[ScoreRow]
    gallery: Path | None = None


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
    low, high = calibration.map_low, calibration.map_high
    if not calibration.map_ticks:  # a model written before maps had calibrated units
        return MapScale(low, high, ticks=((f"{low:.3g}", low), (f"{high:.3g}", high)))
    return MapScale(
        low,
        high,
        ticks=tuple((f"{p:g}%", v) for p, v in calibration.map_ticks),
        unit="percentile among normal patches",
        threshold=calibration.map_threshold,
        threshold_label=f"| {100 * calibration.target_fpr:g}% of normal patches lie above",
    )


def colourize(amap: np.ndarray, scale: MapScale) -> tuple[np.ndarray, np.ndarray]:
    """Colours and opacities of an anomaly map on a fixed scale.

    Returns:
        ``(rgb, alpha)``: (H, W, 3) float32 colours in [0, 1] and (H, W) float32 opacities,
        0 where the map is NaN or at or below ``scale.low``.
    """
    t = scale.unit_of(amap)
    missing = np.isnan(t)
    t = np.where(missing, 0.0, t).astype(np.float32)
    position = t * (len(_STOPS) - 1)
    lower = np.minimum(position.astype(np.int64), len(_STOPS) - 2)
    frac = (position - lower)[..., None]
    rgb = (_STOPS[lower] * (1 - frac) + _STOPS[lower + 1] * frac) / 255.0
    alpha = np.where(missing, 0.0, MAX_ALPHA * np.sqrt(t)).astype(np.float32)
    return rgb.astype(np.float32), alpha


def legend_height(width: int) -> int:
    """Height in pixels of the legend under an overlay ``width`` pixels wide (it grows with the
    image, so that its text stays readable on a 4,000-pixel scan and a 64-pixel one alike)."""
    return 4 * (_font_size(width) + 4)


def smoothed(amap: np.ndarray, sigma: float) -> np.ndarray:
    """``amap`` smoothed by a Gaussian of ``sigma`` pixels (SD); unscored (NaN) pixels take no
    part in their neighbours' averages and stay NaN. ``sigma`` 0 returns ``amap`` itself."""
    if sigma <= 0:
        return amap
    scored = ~np.isnan(amap)
    total = ndimage.gaussian_filter(np.where(scored, amap, 0.0).astype(np.float32), sigma)
    weight = ndimage.gaussian_filter(scored.astype(np.float32), sigma)
    out = total / np.maximum(weight, np.float32(1e-6))
    out[~scored] = np.nan
    return out


def render_overlay(
    view: np.ndarray,
    amap: np.ndarray,
    scale: MapScale,
    caption: str | Sequence[str] = (),
) -> np.ndarray:
    """A view in grey with its anomaly map blended over it, and a legend underneath.

    Args:
        view: (H, W, C) RGB or grey view in its native dtype (dual-energy views: make them RGB
            first with :func:`xadt.scans.to_rgb`).
        amap: (H, W) anomaly map, NaN where nothing was scored.
        scale: the model's fixed colour scale.
        caption: a line above the colour bar, e.g. the scan's score and flag; or several,
            longest first, of which the first that fits the width is drawn.

    Returns:
        (H + legend_height(W), W, 3) uint8 image.
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
    return np.concatenate([image, _legend(view.shape[1], scale, caption)], axis=0)


def _font_size(width: int) -> int:
    return int(np.clip(width // 45, 10, 40))


def _legend(width: int, scale: MapScale, caption: str | Sequence[str]) -> np.ndarray:
    """Four rows: the caption, the colour bar with its ticks and threshold mark, the tick labels,
    and what the labels measure. Text that does not fit the width is left out, never cut."""
    size = _font_size(width)
    row = size + 4
    font = ImageFont.load_default(size=size)
    image = Image.new("RGB", (width, legend_height(width)))
    draw = ImageDraw.Draw(image)
    margin = min(4, width // 8)
    bar = np.linspace(0.0, 1.0, max(width - 2 * margin, 1), dtype=np.float32)
    rgb, alpha = colourize(scale.low + bar * (scale.high - scale.low), scale)
    # Transparency shows as mid-grey behind the colours, as it would over a grey scan.
    colours = (rgb * alpha[..., None] + (1 - alpha[..., None]) * 0.5) * 255 + 0.5
    strip = np.repeat(colours.astype(np.uint8)[None], row - 4, axis=0)
    image.paste(Image.fromarray(strip), (margin, row))

    def x_of(value: float) -> float:
        return margin + float(scale.unit_of(value)) * (len(bar) - 1)

    taken: list[tuple[float, float]] = []
    for text, value in scale.ticks:
        x = x_of(value)
        draw.line([(x, 2 * row - 8), (x, 2 * row - 4)], fill=(255, 255, 255))
        w = draw.textlength(text, font=font)
        left = min(max(x - w / 2, 0.0), width - w)
        if left >= 0 and all(left > b + 4 or left + w + 4 < a for a, b in taken):
            draw.text((left, 2 * row), text, fill=(255, 255, 255), font=font)
            taken.append((left, left + w))
    if scale.threshold is not None:
        x = x_of(scale.threshold)
        draw.line([(x, row - 3), (x, 2 * row - 2)], fill=(0, 230, 255), width=max(2, size // 6))
    below = [(scale.unit, (190, 190, 190)), (scale.threshold_label, (0, 230, 255))]
    x = float(margin)
    for text, fill in below:
        w = draw.textlength(text, font=font)
        if text and x + w <= width:
            draw.text((x, 3 * row), text, fill=fill, font=font)
            x += w + size
    captions = [caption] if isinstance(caption, str) else caption
    for text in captions:
        if draw.textlength(text, font=font) <= width - margin:
            draw.text((margin, 1), text, fill=(255, 255, 255), font=font)
            break
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
    row: ScoreRow | None = None,
    smooth: float = 0.0,
) -> list[Path]:
    """Write ``<scan>_v<k>.png`` (overlay) and ``<scan>_v<k>.npy`` (float32 map) for each view.

    Each overlay's legend opens with the scan's id, view, score, calibrated score and flag, from
    ``row`` (the scan's results row, made from ``result`` when not given). With ``smooth`` > 0
    the overlay shows the map smoothed by a Gaussian of that many pixels (:func:`smoothed`); the
    ``.npy`` keeps the detector's map as it is.

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
    row = row or ScoreRow.from_result(result, scan)
    short = row.caption.rpartition(" · ")[2]  # the flag, or the score
    written = []
    for k, (stem, view, amap) in enumerate(
        zip(output_names(scan.id, len(scan.views)), rgb.views, result.maps, strict=True)
    ):
        values = np.asarray(amap, dtype=np.float32)
        npy = folder / f"{stem}.npy"
        png = folder / f"{stem}.png"
        written.append(write_bytes_atomic(npy, npy_bytes(values), overwrite=overwrite, what="map"))
        captions = (f"{scan.id} view {k}: {row.caption}", row.caption, short)
        overlay = _png_bytes(render_overlay(view, smoothed(values, smooth), scale, captions))
        written.append(write_bytes_atomic(png, overlay, overwrite=overwrite, what="overlay"))
    return written


def check_overlay_folder(
    out: PathLike, scan_ids: Sequence[str], *, overwrite: bool, gallery: bool = False
) -> Path:
    """Check, before scoring, that overlays for ``scan_ids`` (and the gallery, with ``gallery``)
    may be written into ``out``.

    Raises:
        XadtError: ``out`` is a file, or (without ``overwrite``) already holds an output of one
            of the scans or a gallery.
    """
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        msg = f"{folder}: is a file; name a folder for the overlays"
        raise XadtError(msg)
    if gallery:
        check_output_file(folder / GALLERY_NAME, overwrite=overwrite, what="gallery")
    if folder.is_dir() and not overwrite:
        wanted = set(scan_ids)
        nested = any("/" in scan_id for scan_id in wanted)  # ids of subfolders (--recursive)
        for existing in sorted(folder.rglob("*") if nested else folder.iterdir()):
            name = existing.relative_to(folder).as_posix()
            m = re.fullmatch(r"(?P<id>.+)_v\d+\.(png|npy)", name)
            if m is not None and m["id"] in wanted:
                check_output_file(existing, overwrite=False)
    return folder


def localize_folder(
    model: Model,
    scans_dir: PathLike | Sequence[PathLike] | ScanFolder,
    out: PathLike,
    *,
    context: RunContext | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
    gallery: int | None = None,
    smooth: float = 0.0,
) -> LocalizeRun:
    """Score a folder of scans and write an overlay and a map per view into ``out``.

    Args:
        model: a fitted, calibrated model whose results carry per-view maps.
        scans_dir: the folder of scans (read lazily), a list of scan files, folders and glob
            patterns, or a :class:`xadt.scans.ScanFolder` of them; a scan ``day1/bag`` of a
            subfolder writes ``out/day1/bag_v0.png``.
        out: the output folder (created if missing).
        context: device, progress and registry for the detector.
        overwrite: replace existing outputs of the same scans.
        progress: called as ``progress(done, total)`` after each chunk.
        gallery: also write ``out/index.html``, a ranked gallery of this many of the most
            anomalous scans (None: no gallery).
        smooth: Gaussian SD, in pixels, of the smoothing of the maps in the overlays (0: none).

    Raises:
        XadtError: no calibration, a plugin without maps, an existing output without
            ``overwrite``, a missing or empty folder, or no readable scan.
    """
    scale = map_scale(model)
    folder = as_scan_folder(scans_dir)
    target = check_overlay_folder(out, folder.ids, overwrite=overwrite, gallery=gallery is not None)
    files: list[Path] = []
    rows: list[ScoreRow] = []
    images: dict[str, list[str]] = {}
    done = 0

    def write(batch: list[Scan], results: list[ScanResult]) -> None:
        nonlocal done
        for scan, result in zip(batch, results, strict=True):
            row = ScoreRow.from_result(result, scan)
            written = write_overlays(
                scan,
                result,
                target,
                scale,
                detector=model.name,
                overwrite=overwrite,
                row=row,
                smooth=smooth,
            )
            files.extend(written)
            rows.append(row)
            images[scan.id] = [
                p.relative_to(target).as_posix() for p in written if p.suffix == ".png"
            ]
        done += len(batch)
        if progress is not None:
            progress(done + len(folder.skipped), len(folder))

    for _ in score_in_chunks(model, folder, context=context, on_chunk=write):
        pass
    if done == 0:
        msg = f"{folder.folder}: no scan could be read ({folder.summary()})"
        raise XadtError(msg)
    page = None
    if gallery is not None:
        page = write_gallery(
            target,
            rows,
            images,
            model_name=model.name,
            calibration=model.calibration,
            top=gallery,
            overwrite=overwrite,
        )
    return LocalizeRun(
        files=files,
        n_scans=done,
        skipped=list(folder.skipped),
        summary=folder.summary(),
        rows=ranked(rows, None),
        gallery=page,
    )
