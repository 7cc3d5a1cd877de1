"""Skip-GANomaly's patch score (methods.md §4.6, Eq. 5); its generator loss is gan_common's
feature_matching_loss (§4.4)."""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["skip_score"]


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
