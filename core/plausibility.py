"""Plain checks that an image looks like an X-ray transmission scan, for a warning beside its score.

A detector trained on parcels scores any image it is given, and a photo, an all-black frame or a
thumbnail can come out "normal". These checks need no model: in a transmission scan air is the
brightest thing (white, or full scale), a conveyor scan has air around the parcel, and a view
is hundreds of pixels across. A scan that fails one gets a warning, never a changed score.
"""

from __future__ import annotations

import functools

import numpy as np

from xadt.scans import Scan, full_scale

__all__ = ["AIR_LEVEL", "MIN_BORDER_AIR", "MIN_SIDE", "implausibility"]

MIN_SIDE = 32
"""A view narrower or lower than this many pixels is too small to be a parcel scan."""

AIR_LEVEL = 0.8
"""Transmission (fraction of the view's white, in every channel) from which a pixel is air."""

MIN_BORDER_AIR = 0.1
"""Fraction of a view's border pixels that must be air: a scan shows air around the parcel."""

_DARK_MEDIAN = 0.1


def implausibility(scan: Scan) -> str:
    """Why ``scan`` looks unlike an X-ray transmission scan, one clause per problem, or "".

    Checked per view: its size (at least :data:`MIN_SIDE` pixels a side), that it is not one
    value throughout, that it is not mostly black, and that at least :data:`MIN_BORDER_AIR` of
    its border is air (a photo, or a scan cropped to the parcel, has none).
    """
    problems: list[str] = []
    for k, view in enumerate(scan.views):
        where = f"view {k}: " if len(scan.views) > 1 else ""
        h, w = view.shape[:2]
        if h < MIN_SIDE or w < MIN_SIDE:
            problems.append(f"{where}tiny ({h}x{w} px) for a parcel scan")
            continue
        # Air is bright in every channel (white in false colour; both energies of a pair).
        # Channel by channel: numpy's min over a last axis of 2 or 3 is ~10x slower.
        raw = functools.reduce(np.minimum, (view[..., c] for c in range(view.shape[2])))
        raw = raw.astype(np.float32)
        level = raw / np.float32(_white(view))
        if float(raw.max()) == float(raw.min()):
            problems.append(f"{where}one value throughout")
        elif float(np.median(level)) < _DARK_MEDIAN:
            problems.append(f"{where}mostly black, but air is white in a transmission scan")
        else:
            border = np.concatenate([level[0], level[-1], level[1:-1, 0], level[1:-1, -1]])
            if float(np.mean(border >= AIR_LEVEL)) < MIN_BORDER_AIR:
                problems.append(
                    f"{where}no air at the image border: a photo, or a scan cropped to the parcel"
                )
    if not problems:
        return ""
    return "not like an X-ray scan: " + "; ".join(problems)


def _white(view: np.ndarray) -> float:
    """Full transmission of a view: full scale, but for uint16 the top of the detector's bit
    depth (12 to 16 bits, from the largest value), since 12- and 14-bit scanners write uint16."""
    if view.dtype != np.uint16:
        return full_scale(view.dtype)
    bits = max(12, int(view.max()).bit_length())
    return float(2**bits - 1)
