"""What a scanner's console does to a false-colour image before anyone sees or stores it.

Screening consoles sharpen the false-colour image for display (an unsharp mask, a few
millimetres wide), and the images that leave a site — archives, exports, every public X-ray data
set (SIXray, OPIXray, PIDray) — are JPEG files. Both change what a network sees: without them,
simulated parcels carry crisp per-pixel photon noise and soft edges that no stored real scan has
(docs/synth.md gives the Fréchet distances with and without each step).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

__all__ = ["JPEG_QUALITY", "SHARPEN_AMOUNT", "SHARPEN_MM", "console"]

SHARPEN_MM = 4.0
"""Radius of the console's unsharp mask, mm."""
SHARPEN_AMOUNT = 50
"""Strength of the unsharp mask, percent of the detail added back."""
JPEG_QUALITY = 85
"""JPEG quality of the stored image (libjpeg scale)."""


def console(rgb: np.ndarray, pitch: float, *, lossless: bool = False) -> np.ndarray:
    """The (H, W, 3) uint8 image as the console shows and stores it.

    Args:
        rgb: the false-colour image straight from the detector.
        pitch: mm per pixel, so the mask has the same width in mm at every scale.
        lossless: keep the detector's image as it is (no sharpening, no JPEG).
    """
    if lossless:
        return rgb
    image = Image.fromarray(rgb).filter(
        ImageFilter.UnsharpMask(radius=SHARPEN_MM / pitch, percent=SHARPEN_AMOUNT, threshold=0)
    )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    buffer.seek(0)
    with Image.open(buffer) as stored:  # decoded as RGB: converting would only copy it
        return np.asarray(stored if stored.mode == "RGB" else stored.convert("RGB"))
