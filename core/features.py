"""Global features of a scan from Griffin et al. §1.8 / Table III: size, attenuation, busyness.

They are the paper's simple baselines: a realistic data set must not be solved by them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FEATURES = ("size", "attenuation", "busyness")

_FULL_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}


def grey(view: np.ndarray) -> np.ndarray:
    """Grey level of an (H, W, C) view in [0, 1]: the channel mean over the dtype's full scale."""
    scale = _FULL_SCALE.get(view.dtype)
    if scale is None:
        msg = f"view dtype must be uint8, uint16 or float32, got {view.dtype}"
        raise ValueError(msg)
    return view.mean(axis=2, dtype=np.float64) / scale


def global_features(views: Sequence[np.ndarray]) -> dict[str, float]:
    """Size, attenuation and busyness summed over the (already cropped) views of one scan.

    size = number of pixels; attenuation = Σ (1 − grey) (the paper's Σ (255 − grey) in units of
    full scale); busyness = Σ (grey − mean grey)², with the mean taken per view.
    """
    size = attenuation = busyness = 0.0
    for view in views:
        g = grey(view)
        size += g.size
        attenuation += float((1.0 - g).sum())
        busyness += float(((g - g.mean()) ** 2).sum())
    return {"size": size, "attenuation": attenuation, "busyness": busyness}
