"""dsagan's generator objective (methods.md §2.5, Eq. 2–5) and patch score (§2.7, Eq. 6)."""

from __future__ import annotations

from typing import Literal

import torch

from xadt.plugins.gan_common.losses import bce, l1, l2

__all__ = ["dsagan_score", "generator_loss"]


def generator_loss(
    fake_logits: torch.Tensor,
    f_real: torch.Tensor,
    f_fake: torch.Tensor,
    x: torch.Tensor,
    fake: torch.Tensor,
    *,
    w_adv: float,
    w_con: float,
    w_lat: float,
    latent: Literal["l1", "l2"],
) -> dict[str, torch.Tensor]:
    """The terms and the total ``g`` = w1·adv + w2·con + w3·lat.

    adv: BCE(D(x̂), 1), the non-saturating form of Eq. 2; con: mean |x − x̂| (Eq. 3); lat: mean
    |f(x) − f(x̂)| as printed in Eq. 4 (``l1``), or the mean squared difference (``l2``).
    """
    adv, con = bce(fake_logits, True), l1(x, fake)
    lat = l1(f_real, f_fake) if latent == "l1" else l2(f_real, f_fake)
    return {"g": w_adv * adv + w_con * con + w_lat * lat, "adv": adv, "con": con, "lat": lat}


def dsagan_score(
    x: torch.Tensor,
    fake: torch.Tensor,
    f_real: torch.Tensor,
    f_fake: torch.Tensor,
    *,
    eta: float,
) -> torch.Tensor:
    """(B,) anomaly scores η·A_G + (1 − η)·A_D, higher = more anomalous: A_G the mean |x − x̂|
    over a patch, A_D the mean |f(x) − f(x̂)| over D's features."""
    a_g = (x - fake).abs().flatten(1).mean(dim=1)
    a_d = (f_real - f_fake).abs().flatten(1).mean(dim=1)
    return eta * a_g + (1 - eta) * a_d
