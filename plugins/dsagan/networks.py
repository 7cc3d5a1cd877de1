"""dsagan's networks (methods.md §2.3–§2.4): a UNet++ generator and a discriminator with an
attention-augmented convolution, every convolution spectrally normalised, no BatchNorm.

The paper's figures are missing, so the layer choices are ours (Z-2 to Z-4).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["AttentionDiscriminator", "AugmentedConv", "DenseSkipGenerator", "dsagan_init"]


def _sn_conv(c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Module:
    return spectral_norm(nn.Conv2d(c_in, c_out, kernel, stride, padding))


def _node(c_in: int, c_out: int) -> nn.Sequential:
    """H: SN(Conv 3×3) → ReLU → SN(Conv 3×3) → ReLU."""
    return nn.Sequential(
        _sn_conv(c_in, c_out, 3, padding=1),
        nn.ReLU(True),
        _sn_conv(c_out, c_out, 3, padding=1),
        nn.ReLU(True),
    )


class DenseSkipGenerator(nn.Module):
    """UNet++ (Eq. 1): nodes x^{i,j}, level i = 0…L−1 with c_i = width·2^i channels.

    x^{i,0} = H(MaxPool(x^{i−1,0})) is the encoder; x^{i,j} = H([x^{i,0}, …, x^{i,j−1},
    Up(x^{i+1,j−1})]) for j ≥ 1, i + j ≤ L − 1, with bilinear ×2 upsampling; the output is
    tanh(SN(Conv 1×1)(x^{0,L−1})). No deep supervision.
    """

    def __init__(self, channels: int, width: int = 32, levels: int = 5) -> None:
        super().__init__()
        c = [width * 2**i for i in range(levels)]
        self.levels = levels
        self.nodes = nn.ModuleDict()
        for i in range(levels):
            self.nodes[f"{i}_0"] = _node(channels if i == 0 else c[i - 1], c[i])
        for j in range(1, levels):
            for i in range(levels - j):
                self.nodes[f"{i}_{j}"] = _node(c[i] * j + c[i + 1], c[i])
        self.head = _sn_conv(c[0], channels, 1)
        self.apply(dsagan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction x̂ of ``x`` (side divisible by 2^(levels−1)), in [-1, 1]."""
        grid: dict[tuple[int, int], torch.Tensor] = {}
        for i in range(self.levels):
            grid[i, 0] = self.nodes[f"{i}_0"](x if i == 0 else F.max_pool2d(grid[i - 1, 0], 2))
        for j in range(1, self.levels):
            for i in range(self.levels - j):
                up = F.interpolate(
                    grid[i + 1, j - 1], scale_factor=2, mode="bilinear", align_corners=False
                )
                grid[i, j] = self.nodes[f"{i}_{j}"](
                    torch.cat([*(grid[i, k] for k in range(j)), up], dim=1)
                )
        return torch.tanh(self.head(grid[0, self.levels - 1]))


class AugmentedConv(nn.Module):
    """Attention-augmented convolution (Bello et al.), F_out channels (Z-4).

    d_k = d_v = F_out/4 split over ``heads`` heads; Q, K, V from one 1×1 convolution; per head
    softmax(Q_h K_hᵀ / √(d_k/N_h)) V_h over all positions, no relative positions; heads
    concatenated and projected by a 1×1 convolution; concatenated after a 3×3 convolution with
    F_out − d_v channels.
    """

    def __init__(self, c_in: int, c_out: int, heads: int) -> None:
        super().__init__()
        self.heads, self.dk, self.dv = heads, c_out // 4, c_out // 4
        self.conv = _sn_conv(c_in, c_out - self.dv, 3, padding=1)
        self.qkv = _sn_conv(c_in, 2 * self.dk + self.dv, 1)
        self.project = _sn_conv(self.dv, self.dv, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c_in, H, W) → (B, c_out, H, W)."""
        b, _, h, w = x.shape
        q, k, v = self.qkv(x).split([self.dk, self.dk, self.dv], dim=1)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, self.heads, -1, h * w).transpose(-2, -1)

        attended = F.scaled_dot_product_attention(heads(q), heads(k), heads(v))
        attended = attended.transpose(-2, -1).reshape(b, self.dv, h, w)
        return torch.cat([self.conv(x), self.project(attended)], dim=1)


class AttentionDiscriminator(nn.Module):
    """SN(Conv 4×4, s2) → LReLU(0.2) stages down to 4×4 (channels ``width``·2^k up to 512), an
    AA-conv → LReLU after the stage whose map is ``attention_size``, and SN(Conv 4×4, p0) to one
    logit. ``forward`` returns (logits (B,), features f(·)): the last 4×4 map (Z-3)."""

    def __init__(
        self, size: int, channels: int, width: int = 64, heads: int = 4, attention_size: int = 4
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_prev, side = channels, size
        for k in range(int(math.log2(size)) - 2):
            c, side = min(width * 2**k, 512), side // 2
            layers += [_sn_conv(c_prev, c, 4, 2, 1), nn.LeakyReLU(0.2, True)]
            if side == attention_size:
                layers += [AugmentedConv(c, c, heads), nn.LeakyReLU(0.2, True)]
            c_prev = c
        self.features = nn.Sequential(*layers)
        self.classifier = _sn_conv(c_prev, 1, 4)
        self.reset_parameters()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits that ``x`` is real, and the last 4×4 feature map."""
        features = self.features(x)
        return self.classifier(features).flatten(), features

    def reset_parameters(self) -> None:
        """Draw fresh weights (also used by the re-initialisation rule)."""
        self.apply(dsagan_init)


def dsagan_init(module: nn.Module) -> None:
    """Conv weights ~ N(0, 0.02) (the family's initialisation, under spectral norm); biases 0."""
    if isinstance(module, nn.Conv2d):
        weight = (
            module.parametrizations.weight.original
            if hasattr(module, "parametrizations")
            else module.weight
        )
        nn.init.normal_(weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
