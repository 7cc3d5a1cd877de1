"""The ``skipganomaly`` detector on the training engine: networks, one G-then-D step, scores and
per-pixel maps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from xadt.engine import Step
from xadt.plugins.gan_common.detector import GanDetector, frozen, signed
from xadt.plugins.gan_common.losses import discriminator_loss, feature_matching_loss
from xadt.plugins.gan_common.maps import pixel_errors
from xadt.plugins.gan_common.networks import DcganDiscriminator
from xadt.plugins.skipganomaly.config import SkipGanomalyConfig
from xadt.plugins.skipganomaly.losses import skip_score
from xadt.plugins.skipganomaly.networks import UnetGenerator

__all__ = ["SkipGanomalyDetector"]


class SkipGanomalyDetector(GanDetector):
    """Skip-GANomaly on patches: a patch's anomaly score is λ·R + (1 − λ)·L (reconstruction and
    discriminator-feature errors), higher = more anomalous; maps are per-pixel reconstruction
    errors.

    Per batch, as the authors' code: one generator step on w_adv·BCE(D(x̂), 1) + w_con·L1 +
    w_lat·L2 of D's features, then one discriminator step on BCE(D(x), 1) + BCE(D(x̂), 0).
    With ``select='validation'`` the epoch with the lowest L1 reconstruction loss on held-out
    normal patches is kept.
    """

    name: ClassVar[str] = "skipganomaly"
    description: ClassVar[str] = (
        "Skip-GANomaly (Akcay et al. 2019): UNet GAN on patches, reconstruction + feature error"
    )
    Config: ClassVar[type] = SkipGanomalyConfig
    config: SkipGanomalyConfig
    map_kind = "pixel"

    def build_networks(self, info: Mapping[str, Any]) -> dict[str, nn.Module]:
        """The UNet generator and the DCGAN discriminator for ``info``'s patches."""
        c, size, channels = self.config, int(info["patch"]), int(info["channels"])
        return {
            "generator": UnetGenerator(size, channels, c.width),
            "discriminator": DcganDiscriminator(size, channels, c.width),
        }

    def training_step(self, step: Step, batch: torch.Tensor) -> dict[str, float]:
        """One generator step, then one discriminator step (the authors' order)."""
        g, d, c = step.nets["generator"], step.nets["discriminator"], self.config
        x = signed(batch)
        with step.autocast():
            fake = g(x)
            real_logits, f_real = d(x)
        with frozen(d):  # D's weights need no gradient in the generator's step
            with step.autocast():
                fake_logits, f_fake = d(fake)
                terms = feature_matching_loss(
                    fake_logits, f_real.detach(), f_fake, x, fake,
                    w_adv=c.w_adv, w_con=c.w_con, w_lat=c.w_lat,
                )  # fmt: skip
            step.optimize("generator", terms["g"])
        with step.autocast():
            fake_logits, _ = d(fake.detach())
            d_loss = discriminator_loss(real_logits, fake_logits)
        step.optimize("discriminator", d_loss)
        return self.logged(step, terms, d_loss)

    def score_patches(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """λ·R + (1 − λ)·L of each patch and its per-pixel reconstruction error (R's distance,
        averaged over channels, smoothed by ``map_sigma``)."""
        c, nets = self.config, self.networks()
        x = signed(patches)
        fake = nets["generator"](x)
        _, f_real = nets["discriminator"](x)
        _, f_fake = nets["discriminator"](fake)
        scores = skip_score(x, fake, f_real, f_fake, lam=c.lam, kind=c.score)
        errors = pixel_errors(x, fake, squared=c.score == "code", sigma=c.map_sigma)
        return scores, errors
