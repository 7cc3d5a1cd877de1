"""Skip-GANomaly's generator objective (methods.md §4.4, Eq. 1–4) and patch score (§4.6, Eq. 5)."""

from __future__ import annotations

from typing import Literal

import torch

from xadt.plugins.gan_common.losses import bce, l1, l2

__all__ = ["generator_loss", "skip_score"]


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
) -> dict[str, torch.Tensor]:
    """The terms and the total ``g`` = w_adv·adv + w_con·con + w_lat·lat.

    adv: BCE(D(x̂), 1), the non-saturating form of Eq. 1; con: mean |x − x̂|; lat: mean squared
    difference of D's features f(x) and f(x̂).
    """
    adv, con, lat = bce(fake_logits, True), l1(x, fake), l2(f_real, f_fake)
    return {"g": w_adv * adv + w_con * con + w_lat * lat, "adv": adv, "con": con, "lat": lat}


def skip_score(
    x: torch.Tensor,
    fake: torch.Tensor,
    f_real: torch.Tensor,
    f_fake: torch.Tensor,
    *,
    lam: float,
    kind: Literal["paper", "code"],
) -> torch.Tensor:
    """(B,) anomaly scores λ·R + (1 − λ)·L, higher = more anomalous.

    R is the mean |x − x̂| over a patch (``paper``) or the mean (x − x̂)² (``code``); L is the
    mean squared difference of f(x) and f(x̂) in both.
    """
    diff = x - fake
    r = (diff.abs() if kind == "paper" else diff.square()).flatten(1).mean(dim=1)
    lat = (f_real - f_fake).square().flatten(1).mean(dim=1)
    return lam * r + (1 - lam) * lat
