"""Air cropping: cut each view down to the bounding box of its parcel (Griffin et al. §II).

Air is near-white in X-ray scans; thresholds are fractions of white, so they mean the same on
uint8, uint16 and float32 views.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from xadt.config import is_int, is_real, require
from xadt.errors import XadtError
from xadt.scans import Scan, full_scale


class EmptyScanError(XadtError):
    """A view holds no parcel: every pixel is air, or every object is smaller than ``min_area``."""


@dataclass(frozen=True)
class CropBox:
    """A crop window ``[y0, y1) x [x0, x1)`` in a view's pixel coordinates.

    Attributes:
        y0: first row kept.
        x0: first column kept.
        y1: one past the last row kept.
        x1: one past the last column kept.
    """

    y0: int
    x0: int
    y1: int
    x1: int

    @property
    def height(self) -> int:
        """Rows in the window."""
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        """Columns in the window."""
        return self.x1 - self.x0

    def apply(self, array: np.ndarray) -> np.ndarray:
        """The window of an (H, W, ...) array (a view or a mask), as a numpy view, not a copy."""
        return array[self.y0 : self.y1, self.x0 : self.x1]

    def shift(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes ``(y0, x0, y1, x1)`` in cropped coordinates moved to full-view coordinates."""
        offset = np.array([self.y0, self.x0, self.y0, self.x0], dtype=np.int64)
        return np.asarray(boxes, dtype=np.int64) + offset

    def paste(
        self, cropped: np.ndarray, shape: tuple[int, int], fill: float = np.nan
    ) -> np.ndarray:
        """Place a (h, w) map of the cropped view into a full (H, W) map filled with ``fill``.

        The result has the map's dtype, widened if ``fill`` needs it (NaN makes integers float64).

        Raises:
            ValueError: if ``cropped`` is not this window's size or the window leaves ``shape``.
        """
        if cropped.shape[:2] != (self.height, self.width):
            msg = f"map is {cropped.shape[:2]}, but the crop box is {self.height}x{self.width}"
            raise ValueError(msg)
        if self.y1 > shape[0] or self.x1 > shape[1]:
            msg = f"crop box {self} does not fit in a {shape[0]}x{shape[1]} view"
            raise ValueError(msg)
        dtype = np.result_type(cropped.dtype, fill)  # float32 maps stay float32 with NaN
        full = np.full((*shape, *cropped.shape[2:]), fill, dtype=dtype)
        full[self.y0 : self.y1, self.x0 : self.x1] = cropped
        return full


def crop_air(
    view: np.ndarray,
    *,
    air_level: float = 240 / 255,
    opening: int = 5,
    min_area: float = 0.01,
    channel: int | None = None,
) -> CropBox:
    """The bounding box of the parcel in one (H, W, C) view.

    Grey is the mean over channels, or ``channel`` alone (two-channel dual-energy views use the
    high-energy channel 0 unless told otherwise), divided by white (255 for uint8, 65535 for
    uint16, 1.0 for float). A pixel is parcel where grey < ``air_level``. The parcel mask is
    opened with a square ``opening`` x ``opening`` element (removing speckle and thin lines), and
    connected components (8-connected) covering at least ``min_area`` of the view are kept.

    Args:
        view: an (H, W, C) uint8, uint16 or float array.
        air_level: fraction of white at and above which a pixel is air, in (0, 1].
        opening: side of the square structuring element in pixels; 1 turns the opening off.
        min_area: smallest component kept, as a fraction of the view's area, in [0, 1).
        channel: channel to threshold instead of the channel mean.

    Returns:
        The bounding box of the union of the kept components.

    Raises:
        XadtError: an option is out of range.
        EmptyScanError: nothing is left (all air, or only components below ``min_area``).
        ValueError: ``view`` is not an (H, W, C) uint8, uint16 or float array.
    """
    _check_options(air_level, opening, min_area)
    if view.ndim != 3 or view.shape[0] == 0 or view.shape[1] == 0:
        msg = f"crop_air: expected a non-empty (H, W, C) view, got shape {view.shape}"
        raise ValueError(msg)
    white = full_scale(view.dtype)
    if channel is None and view.shape[2] == 2:
        channel = 0
    if channel is not None:
        ok = is_int(channel) and 0 <= channel < view.shape[2]
        require(ok, "crop_air", "channel", f"None or an integer in 0..{view.shape[2] - 1}", channel)
        grey = view[:, :, channel]
    else:
        grey = view.mean(axis=2, dtype=np.float32)
    # Compare in float64 so that 240 (uint8) and 61680 (uint16) fall on the same side of 240/255.
    parcel = grey < np.float64(air_level) * white
    if opening > 1:
        parcel = ndimage.binary_opening(parcel, structure=np.ones((opening, opening), dtype=bool))
    labels, n = ndimage.label(parcel, structure=np.ones((3, 3), dtype=bool))
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    areas[0] = 0  # background
    keep = np.flatnonzero(areas >= max(1.0, min_area * parcel.size))
    if keep.size == 0:
        what = "every pixel is air" if n == 0 else f"all {n} objects are under min_area"
        msg = f"no parcel found: {what} (air_level={air_level:.3g}, min_area={min_area:.3g})"
        raise EmptyScanError(msg)
    objects = ndimage.find_objects(labels)
    chosen = [objects[label - 1] for label in keep]
    return CropBox(
        y0=min(s[0].start for s in chosen),
        x0=min(s[1].start for s in chosen),
        y1=max(s[0].stop for s in chosen),
        x1=max(s[1].stop for s in chosen),
    )


def crop_scan(
    scan: Scan,
    *,
    air_level: float = 240 / 255,
    opening: int = 5,
    min_area: float = 0.01,
) -> tuple[Scan, list[CropBox]]:
    """Crop the air off every view of a scan, and its masks with it.

    Options are those of :func:`crop_air`; dual-energy views are thresholded on the high-energy
    channel. The cropped views are numpy views into the original arrays, not copies.

    Returns:
        The cropped scan and one :class:`CropBox` per view, to place results back in full-view
        coordinates (:meth:`CropBox.shift`, :meth:`CropBox.paste`).

    Raises:
        EmptyScanError: a view holds no parcel; the message names the scan, view and file.
        XadtError: an option is out of range.
    """
    channel = 0 if scan.encoding == "dual-energy" else None
    boxes = []
    for k, view in enumerate(scan.views):
        try:
            boxes.append(
                crop_air(
                    view, air_level=air_level, opening=opening, min_area=min_area, channel=channel
                )
            )
        except EmptyScanError as exc:
            where = f" ({scan.sources[min(k, len(scan.sources) - 1)]})" if scan.sources else ""
            msg = f"scan {scan.id!r} view {k}{where}: {exc}"
            raise EmptyScanError(msg) from None
    views = [box.apply(view) for box, view in zip(boxes, scan.views, strict=True)]
    masks = None
    if scan.masks is not None:
        masks = [
            None if mask is None else box.apply(mask)
            for box, mask in zip(boxes, scan.masks, strict=True)
        ]
    return dataclasses.replace(scan, views=views, masks=masks), boxes


def _check_options(air_level: object, opening: object, min_area: object) -> None:
    ok = is_real(air_level) and 0 < air_level <= 1  # type: ignore[operator]
    require(ok, "crop_air", "air_level", "a float in (0, 1] (a fraction of white)", air_level)
    ok = is_int(opening) and opening >= 1  # type: ignore[operator]
    require(ok, "crop_air", "opening", "an integer >= 1 (1 turns the opening off)", opening)
    ok = is_real(min_area) and 0 <= min_area < 1  # type: ignore[operator]
    require(
        ok, "crop_air", "min_area", "a float in [0, 1) (a fraction of the view's area)", min_area
    )
