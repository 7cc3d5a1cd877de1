"""Options of the ``dsagan`` detector (methods.md §2, §7 Z-entries); most are our defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xadt.config import option
from xadt.plugins.gan_common.detector import GanOptions

__all__ = ["DsaganConfig"]


def _power_of_two(v: int) -> bool:
    return v >= 4 and not v & (v - 1)


@dataclass
class DsaganConfig(GanOptions):
    """Options of ``dsagan``: the paper's lr, epochs and loss weights, and our architecture."""

    epochs: int = option(
        20,
        help="passes over the training data (the paper: converges in about 20)",
        check=(lambda v: v >= 1, "an integer >= 1"),
    )
    lr: float = option(
        8e-3,
        help="Adam learning rate of both networks (the paper's 8e-3, unusually high, Z-6; the "
        "GANomaly family uses 2e-4)",
        check=(lambda v: v > 0, "a float > 0"),
    )
    width: int = option(
        32,
        help="channels c_0 of the generator's top level, doubled at each level below (Z-2)",
        check=(lambda v: v >= 1, "an integer >= 1"),
    )
    levels: int = option(
        5,
        help="levels of the UNet++ generator, i.e. levels - 1 max-pools (Z-2)",
        check=(lambda v: 2 <= v <= 8, "an integer from 2 to 8"),
    )
    d_width: int = option(
        64,
        help="channels of the discriminator's first stage, doubled up to 512 (Z-3)",
        check=(lambda v: v >= 1, "an integer >= 1"),
    )
    heads: int = option(
        4,
        help="attention heads N_h of the attention-augmented convolution (the paper: 4)",
        check=(lambda v: v >= 1, "an integer >= 1"),
    )
    attention_size: int = option(
        4,
        help="side of the discriminator map the attention-augmented convolution works on: 4 = "
        "just before the classifier (Z-4), larger = earlier, on a finer map",
        check=(_power_of_two, "a power of two >= 4"),
    )
    w_adv: float = option(
        1.0, help="weight w1 of the adversarial loss", check=(lambda v: v >= 0, "a float >= 0")
    )
    w_con: float = option(
        40.0, help="weight w2 of the L1 contextual loss", check=(lambda v: v >= 0, "a float >= 0")
    )
    w_lat: float = option(
        1.0,
        help="weight w3 of the latent loss on the discriminator's features",
        check=(lambda v: v >= 0, "a float >= 0"),
    )
    latent_loss: Literal["l1", "l2"] = option(
        "l1",
        help="distance of the latent loss: L1 as printed in Eq. 4, or Skip-GANomaly's L2 (Z-5)",
    )
    eta: float = option(
        0.9,
        help="weight η of the image residual in η·A_G + (1 − η)·A_D (not given; Skip-GANomaly's "
        "λ, Z-7)",
        check=(lambda v: 0 <= v <= 1, "a float in [0, 1]"),
    )
    map_sigma: float = option(
        0.0,
        help="standard deviation, in patch pixels, of the Gaussian that smooths each patch's "
        "per-pixel reconstruction error in the maps; 0 = no smoothing",
        check=(lambda v: v >= 0, "a float >= 0"),
    )
