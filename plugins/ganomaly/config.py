"""Options of the ``ganomaly`` detector (methods.md §3, §7 GA-entries)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xadt.config import option
from xadt.plugins.gan_common.detector import GanOptions

__all__ = ["GanomalyConfig"]


@dataclass
class GanomalyConfig(GanOptions):
    """Options of ``ganomaly``: the paper's weights, latent size and the score's distance."""

    latent: int = option(
        100,
        help="size d of the bottleneck code z (the paper's best: 100)",
        check=(lambda v: v >= 1, "an integer >= 1"),
    )
    width: int = option(
        64,
        help="channels of the first encoder stage (ngf = ndf), doubled at each stage",
        check=(lambda v: v >= 1, "an integer >= 1"),
    )
    w_adv: float = option(
        1.0,
        help="weight of the feature-matching adversarial loss",
        check=(lambda v: v >= 0, "a float >= 0"),
    )
    w_con: float = option(
        50.0, help="weight of the L1 contextual loss", check=(lambda v: v >= 0, "a float >= 0")
    )
    w_enc: float = option(
        1.0, help="weight of the L2 encoder loss", check=(lambda v: v >= 0, "a float >= 0")
    )
    score: Literal["l2", "l1"] = option(
        "l2",
        help="patch score: mean squared latent difference (the official code) or mean absolute "
        "difference (the paper's Eq. 5)",
    )
