"""dsagan's patch score (methods.md §2.7, Eq. 6); its generator loss (§2.5, Eq. 2–5) is
gan_common's feature_matching_loss with ``latent="l1"`` as printed."""

from __future__ import annotations

import torch

__all__ = ["dsagan_score"]


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
