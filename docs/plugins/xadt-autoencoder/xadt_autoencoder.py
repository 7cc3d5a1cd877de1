"""A tutorial trainable xadt plugin: the ``autoencoder`` detector reconstructs patches of normal
scans with a small convolutional autoencoder and flags patches it reconstructs badly.

It is written only against xadt's public contract and training engine: the engine runs the
epochs, checkpoints, resumes and selects the model; the patch detector base cuts scans into
patches for training (through a patch store) and scoring (on the fly), and turns patch scores and
per-pixel errors into scan scores and maps. What is left here is the network and its loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

import xadt
from xadt.config import option
from xadt.engine import Step
from xadt.patch_detector import PatchDetector, PatchOptions


@dataclass
class AutoencoderConfig(PatchOptions):
    """Options of the ``autoencoder`` detector (besides the patch and training ones)."""

    width: int = option(
        16,
        help="channels of the first convolution (doubled at each level)",
        check=(lambda v: v >= 1, "an integer >= 1"),
    )
    latent: int = option(
        32, help="channels of the bottleneck", check=(lambda v: v >= 1, "an integer >= 1")
    )
    lr: float = option(1e-3, help="Adam learning rate", check=(lambda v: v > 0, "a float > 0"))


def autoencoder(channels: int, width: int, latent: int) -> nn.Module:
    """Three stride-2 convolutions down to ``latent`` channels and three transposed ones back.

    Patch sides must be multiples of 8. The output is in [0, 1] like the patches.
    """

    def down(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]

    def up(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(
        *down(channels, width),
        *down(width, 2 * width),
        *down(2 * width, latent),
        *up(latent, 2 * width),
        *up(2 * width, width),
        nn.ConvTranspose2d(width, channels, 4, 2, 1),
        nn.Sigmoid(),
    )


class AutoencoderDetector(PatchDetector):
    """Mean squared reconstruction error of each patch; per-pixel squared errors as the map.

    Higher = more anomalous. With ``select='validation'`` the epoch with the lowest
    reconstruction loss on held-out normal patches is kept.
    """

    name: ClassVar[str] = "autoencoder"
    description: ClassVar[str] = "convolutional autoencoder on patches (tutorial plugin)"
    Config: ClassVar[type] = AutoencoderConfig
    config: AutoencoderConfig
    map_kind = "pixel"
    monitor: ClassVar[str] = "loss"

    def validate(self) -> None:
        """Check every option and that patches are a multiple of 8 pixels."""
        super().validate()
        if self.config.patch % 8:
            msg = (
                f"The 'patch' option of {self.name} must be a multiple of 8. "
                f"Got {self.config.patch!r} instead."
            )
            raise xadt.XadtError(msg)

    def build_networks(self, info: Mapping[str, Any]) -> dict[str, nn.Module]:
        """One autoencoder for ``info['channels']``-channel patches."""
        c = self.config
        return {"autoencoder": autoencoder(int(info["channels"]), c.width, c.latent)}

    def build_optimizers(self, nets: Mapping[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        """Adam on the autoencoder."""
        return {
            "autoencoder": torch.optim.Adam(nets["autoencoder"].parameters(), lr=self.config.lr)
        }

    def training_step(self, step: Step, batch: torch.Tensor) -> dict[str, float]:
        """One Adam step on the mean squared reconstruction error of ``batch``."""
        with step.autocast():
            loss = nn.functional.mse_loss(step.nets["autoencoder"](batch), batch)
        step.optimize("autoencoder", loss)
        return {"loss": float(loss.detach())}

    def validation_step(self, step: Step, batch: torch.Tensor) -> dict[str, float]:
        """The reconstruction error of held-out normal patches."""
        return {"loss": float(nn.functional.mse_loss(step.nets["autoencoder"](batch), batch))}

    def score_patches(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-patch mean and per-pixel squared reconstruction errors (summed over channels)."""
        error = (self.networks()["autoencoder"](patches) - patches).square().sum(dim=1)
        return error.mean(dim=(1, 2)), error


@xadt.hookimpl
def xadt_detectors() -> list[type[xadt.Detector]]:
    """The detectors this plugin provides."""
    return [AutoencoderDetector]
