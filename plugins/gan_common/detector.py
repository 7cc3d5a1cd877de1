"""The options and the patch-detector base of every GAN plugin.

A :class:`GanDetector` trains a ``generator`` and a ``discriminator`` with one Adam optimiser
each (methods.md §2.6, §3.5, §4.5), sees patches scaled to [-1, 1] to match the generator's tanh
(§0.1), and can re-initialise its discriminator when the discriminator's loss collapses, the
official code's stability trick (GA-2), off by default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from xadt.config import option
from xadt.engine import Step
from xadt.errors import XadtError
from xadt.patch_detector import PatchDetector, PatchOptions
from xadt.plugins.gan_common.losses import l1

__all__ = ["REINIT_BELOW", "GanDetector", "GanOptions", "frozen", "signed"]

REINIT_BELOW = 1e-5
"""The discriminator loss below which ``reinit_d`` draws fresh discriminator weights."""


@dataclass
class GanOptions(PatchOptions):
    """Options of every GAN plugin, besides the patch and training ones."""

    lr: float = option(
        2e-4,
        help="Adam learning rate of both networks (the authors' code; their papers print 2e-3)",
        check=(lambda v: v > 0, "a float > 0"),
    )
    beta1: float = option(
        0.5, help="Adam beta1 of both networks", check=(lambda v: 0 <= v < 1, "a float in [0, 1)")
    )
    beta2: float = option(
        0.999,
        help="Adam beta2 of both networks",
        check=(lambda v: 0 <= v < 1, "a float in [0, 1)"),
    )
    reinit_d: bool = option(
        False,
        help=f"re-initialise the discriminator whenever its loss falls below {REINIT_BELOW:g} "
        "(the official code's stability trick)",
    )


@contextlib.contextmanager
def frozen(net: nn.Module) -> Iterator[None]:
    """``net``'s weights take no gradient inside the block (a discriminator during the
    generator's step: its gradients would be thrown away), whatever the block raises."""
    net.requires_grad_(False)
    try:
        yield
    finally:
        net.requires_grad_(True)


def signed(patches: torch.Tensor) -> torch.Tensor:
    """[0, 1] patches as [-1, 1], the range of the generator's tanh output."""
    return patches * 2 - 1


class GanDetector(PatchDetector):
    """A patch detector with a ``generator`` and a ``discriminator`` trained by Adam.

    Subclasses build the two networks (the discriminator has ``reset_parameters()``), the
    training step in their method's order and ``score_patches``. ``monitor`` is the contextual
    (L1 reconstruction) loss ``con``: the adversarial losses of a GAN need not fall.
    """

    Config: ClassVar[type] = GanOptions
    config: GanOptions
    monitor: ClassVar[str] = "con"

    def validate(self) -> None:
        """Check every option and that ``patch`` is a power of two from 32."""
        super().validate()
        p = self.config.patch
        if p < 32 or p & (p - 1):
            msg = (
                f"The 'patch' option of {self.name} must be a power of two >= 32 (the networks "
                f"end in a 1x1 code and a 4x4 discriminator map). Got {p!r} instead."
            )
            raise XadtError(msg)

    def build_optimizers(self, nets: Mapping[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        """Adam(lr, (beta1, beta2)) for the generator and for the discriminator."""
        c = self.config
        return {
            name: torch.optim.Adam(nets[name].parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
            for name in ("generator", "discriminator")
        }

    def logged(
        self, step: Step, terms: Mapping[str, torch.Tensor], d_loss: torch.Tensor
    ) -> dict[str, float]:
        """The step's losses as floats: the generator's ``terms``, ``d`` and ``reinit_d`` (1
        when the discriminator was re-initialised after this step)."""
        losses = {k: float(v.detach()) for k, v in terms.items()}
        losses["d"] = float(d_loss.detach())
        losses["reinit_d"] = float(self.reinit_if_collapsed(step, losses["d"]))
        return losses

    def validation_step(self, step: Step, batch: torch.Tensor) -> dict[str, float]:
        """L1 reconstruction loss of held-out normal patches (``loss``, the selection loss), for
        a generator that returns the reconstruction."""
        x = signed(batch)
        return {"loss": float(l1(x, step.nets["generator"](x)))}

    def reinit_if_collapsed(self, step: Step, d_loss: float) -> bool:
        """With ``reinit_d``, fresh discriminator weights when ``d_loss`` (averaged over the
        training processes) < 1e-5; True if so."""
        if not self.config.reinit_d or step.mean(d_loss) >= REINIT_BELOW:
            return False
        net = step.nets["discriminator"]
        getattr(net, "module", net).reset_parameters()
        return True
