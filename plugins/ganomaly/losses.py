"""GANomaly's generator objective (methods.md §3.4, Eq. 1–4) and patch score (§3.6, Eq. 5)."""

from __future__ import annotations

from typing import Literal

import torch

from xadt.plugins.gan_common.losses import l1, l2

__all__ = ["generator_loss", "latent_score"]


def generator_loss(
    f_real: torch.Tensor,
    f_fake: torch.Tensor,
    x: torch.Tensor,
    fake: torch.Tensor,
    z: torch.Tensor,
    z_hat: torch.Tensor,
    *,
    w_adv: float,
    w_con: float,
    w_enc: float,
) -> dict[str, torch.Tensor]:
    """The terms and the total ``g`` = w_adv·adv + w_con·con + w_enc·enc.

    adv: feature matching, the mean squared difference of D's features f(x) and f(x̂), paired
    per sample (GA-1); con: mean |x − x̂|; enc: mean squared difference of z and ẑ.
    """
    adv, con, enc = l2(f_real, f_fake), l1(x, fake), l2(z, z_hat)
    return {"g": w_adv * adv + w_con * con + w_enc * enc, "adv": adv, "con": con, "enc": enc}


def latent_score(z: torch.Tensor, z_hat: torch.Tensor, kind: Literal["l2", "l1"]) -> torch.Tensor:
    """(B,) anomaly scores, higher = more anomalous: the mean squared (``l2``, the official
    code) or mean absolute (``l1``, Eq. 5) difference of the codes z and ẑ."""
    diff = z - z_hat
    return (diff.square() if kind == "l2" else diff.abs()).mean(dim=1)
