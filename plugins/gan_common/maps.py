"""Per-pixel reconstruction errors of patches, the maps of ``skipganomaly`` and ``dsagan``."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

__all__ = ["pixel_errors"]


def pixel_errors(
    x: torch.Tensor, x_hat: torch.Tensor, *, squared: bool = False, sigma: float = 0.0
) -> torch.Tensor:
    """(B, p, p) reconstruction error per pixel: |x − x̂| (or its square), averaged over channels.

    With ``sigma`` > 0 each map is smoothed by a Gaussian of that standard deviation in patch
    pixels (reflected at the patch border), which trades sharpness for fewer speckles.
    """
    diff = x - x_hat
    error = (diff.square() if squared else diff.abs()).mean(dim=1)
    if sigma <= 0:
        return error
    radius = max(1, math.ceil(3 * sigma))
    radius = min(radius, error.shape[-1] - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=error.dtype, device=error.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    maps = F.pad(error[:, None], (radius, radius, radius, radius), mode="reflect")
    maps = F.conv2d(maps, kernel.view(1, 1, 1, -1))
    maps = F.conv2d(maps, kernel.view(1, 1, -1, 1))
    return maps[:, 0]
