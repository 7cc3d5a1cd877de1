"""Losses shared by the GAN family (methods.md §2.5, §3.4, §4.4).

All are means over every element and every sample of the batch, as the authors' code computes
them (``nn.L1Loss``, ``nn.BCELoss``, their ``l2_loss``).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["bce", "discriminator_loss", "l1", "l2"]


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
