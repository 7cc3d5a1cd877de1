"""The ``dsagan`` detector on the training engine: networks, one D-then-G step, scores and
per-pixel maps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from xadt.engine import Step
from xadt.errors import XadtError
from xadt.plugins.dsagan.config import DsaganConfig
from xadt.plugins.dsagan.losses import dsagan_score
from xadt.plugins.dsagan.networks import AttentionDiscriminator, DenseSkipGenerator
from xadt.plugins.gan_common.detector import GanDetector, frozen, signed
from xadt.plugins.gan_common.losses import discriminator_loss, feature_matching_loss
from xadt.plugins.gan_common.maps import pixel_errors

__all__ = ["DsaganDetector"]


class DsaganDetector(GanDetector):
    """dsagan on patches: a patch's anomaly score is η·|x − x̂| + (1 − η)·|f(x) − f(x̂)| (means),
    higher = more anomalous; maps are per-pixel reconstruction errors.

    Per batch: one discriminator step on BCE(D(x), 1) + BCE(D(x̂), 0), then one generator step
    on w1·BCE(D(x̂), 1) + w2·L1 + w3·latent loss (§2.6). With ``select='validation'`` the epoch
    with the lowest L1 reconstruction loss on held-out normal patches is kept.
    """

    name: ClassVar[str] = "dsagan"
    description: ClassVar[str] = (
        "dense-skip generator, self-attention discriminator GAN (Zawar et al. 2022) on patches"
    )
    Config: ClassVar[type] = DsaganConfig
    config: DsaganConfig
    map_kind = "pixel"

    def validate(self) -> None:
        """Check every option, the patch size against ``levels``, and the attention's shape."""
        super().validate()
        c = self.config
        if c.patch < 2 ** (c.levels - 1) * 2:
            msg = (
                f"The 'levels' option of dsagan must leave the deepest map at least 2x2 "
                f"(levels <= log2(patch)). Got {c.levels!r} instead for patch {c.patch}."
            )
            raise XadtError(msg)
        if c.attention_size > c.patch // 2:
            msg = (
                f"The 'attention_size' option of dsagan must be a discriminator map side, a power "
                f"of two from 4 to patch/2 ({c.patch // 2}). Got {c.attention_size!r} instead."
            )
            raise XadtError(msg)
        channels = min(c.d_width * c.patch // (2 * c.attention_size), 512)
        if channels % (4 * c.heads):
            msg = (
                f"The 'heads' option of dsagan must divide the attention's {channels // 4} "
                f"value channels (a quarter of the map's {channels}). Got {c.heads!r} instead."
            )
            raise XadtError(msg)

    def build_networks(self, info: Mapping[str, Any]) -> dict[str, nn.Module]:
        """The UNet++ generator and the attention discriminator for ``info``'s patches."""
        c, size, channels = self.config, int(info["patch"]), int(info["channels"])
        return {
            "generator": DenseSkipGenerator(channels, c.width, c.levels),
            "discriminator": AttentionDiscriminator(
                size, channels, c.d_width, c.heads, c.attention_size
            ),
        }

    def training_step(self, step: Step, batch: torch.Tensor) -> dict[str, float]:
        """One discriminator step, then one generator step (methods.md §2.6)."""
        g, d, c = step.nets["generator"], step.nets["discriminator"], self.config
        x = signed(batch)
        with step.autocast():
            fake = g(x)
            real_logits, f_real = d(x)
            fake_logits, _ = d(fake.detach())
            d_loss = discriminator_loss(real_logits, fake_logits)
        step.optimize("discriminator", d_loss)
        with frozen(d):  # D's weights need no gradient in the generator's step
            with step.autocast():
                fake_logits, f_fake = d(fake)
                terms = feature_matching_loss(
                    fake_logits, f_real.detach(), f_fake, x, fake,
                    w_adv=c.w_adv, w_con=c.w_con, w_lat=c.w_lat, latent=c.latent_loss,
                )  # fmt: skip
            step.optimize("generator", terms["g"])
        return self.logged(step, terms, d_loss)

    def score_patches(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """η·A_G + (1 − η)·A_D of each patch and its per-pixel |x − x̂| (channel mean, smoothed
        by ``map_sigma``)."""
        c, nets = self.config, self.networks()
        x = signed(patches)
        fake = nets["generator"](x)
        _, f_real = nets["discriminator"](x)
        _, f_fake = nets["discriminator"](fake)
        scores = dsagan_score(x, fake, f_real, f_fake, eta=c.eta)
        return scores, pixel_errors(x, fake, sigma=c.map_sigma)
