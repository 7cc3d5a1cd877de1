"""Losses shared by the GAN family (methods.md §2.5, §3.4, §4.4).

All are means over every element and every sample of the batch, as the authors' code computes
them (``nn.L1Loss``, ``nn.BCELoss``, their ``l2_loss``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch.nn import functional as F

__all__ = ["bce", "discriminator_loss", "feature_matching_loss", "l1", "l2"]


def bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Binary cross-entropy of sigmoid(``logits``) against all-ones (``real``) or all-zeros."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss BCE(D(x), 1) + BCE(D(x̂), 0); pass x̂ detached from G."""
    return bce(real_logits, True) + bce(fake_logits, False)


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference over all elements."""
    return (a - b).abs().mean()


def l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared difference over all elements (the authors' ``l2_loss``)."""
    return (a - b).square().mean()


def feature_matching_loss(
    fake_logits: torch.Tensor,
    f_real: torch.Tensor,
    f_fake: torch.Tensor,
    x: torch.Tensor,
    fake: torch.Tensor,
    *,
    w_adv: float,
    w_con: float,
    w_lat: float,
    latent: Literal["l1", "l2"] = "l2",
) -> dict[str, torch.Tensor]:
    """The generator loss of Skip-GANomaly (§4.4), which dsagan shares (§2.5): the terms and the
    total ``g`` = w_adv·adv + w_con·con + w_lat·lat.

    adv: BCE(D(x̂), 1), the non-saturating form; con: mean |x − x̂|; lat: the mean squared
    difference of D's features f(x) and f(x̂) (``l2``, Skip-GANomaly), or their mean absolute
    difference (``l1``, as dsagan's Eq. 4 prints it).
    """
    adv, con = bce(fake_logits, True), l1(x, fake)
    lat = l1(f_real, f_fake) if latent == "l1" else l2(f_real, f_fake)
    return {"g": w_adv * adv + w_con * con + w_lat * lat, "adv": adv, "con": con, "lat": lat}
