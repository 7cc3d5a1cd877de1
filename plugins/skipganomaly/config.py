"""Options of the ``skipganomaly`` detector (methods.md §4, §7 S-entries)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xadt.config import option
from xadt.plugins.gan_common.detector import GanOptions

__all__ = ["SkipGanomalyConfig"]


@dataclass
class SkipGanomalyConfig(GanOptions):
    """Options of ``skipganomaly``: the paper's loss weights, λ and the score's distances."""

    width: int = option(
        64,
        help="channels of the first UNet and discriminator stage (ngf = ndf), doubled at each "
        "stage up to 512 in the UNet",
        check=(lambda v: v >= 1, "an integer >= 1"),
    )
    w_adv: float = option(
        1.0, help="weight of the adversarial (BCE) loss", check=(lambda v: v >= 0, "a float >= 0")
    )
    w_con: float = option(
        40.0, help="weight of the L1 contextual loss", check=(lambda v: v >= 0, "a float >= 0")
    )
    w_lat: float = option(
        1.0,
        help="weight of the L2 latent loss on the discriminator's features",
        check=(lambda v: v >= 0, "a float >= 0"),
    )
    lam: float = option(
        0.9,
        help="weight λ of the reconstruction score R in λ·R + (1 − λ)·L",
        check=(lambda v: 0 <= v <= 1, "a float in [0, 1]"),
    )
    score: Literal["paper", "code"] = option(
        "paper",
        help="distances of the score: R = mean |x - x̂| and L = mean squared feature difference "
        "(the paper), or mean squared differences for both (the official code)",
    )
    map_sigma: float = option(
        0.0,
        help="standard deviation, in patch pixels, of the Gaussian that smooths each patch's "
        "per-pixel reconstruction error in the maps; 0 = no smoothing",
        check=(lambda v: v >= 0, "a float >= 0"),
    )
