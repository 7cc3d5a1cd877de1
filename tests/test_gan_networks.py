"""Shapes of the GAN family's networks against the layer tables of methods.md §2.3-§2.4 (dsagan),
§3.3 (ganomaly) and §4.3 (skipganomaly), at 32² and 64², for 1, 2 and 3 channels."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xadt.plugins.dsagan.networks import AttentionDiscriminator, AugmentedConv, DenseSkipGenerator
from xadt.plugins.gan_common.networks import DcganDiscriminator, dcgan_decoder, dcgan_encoder
from xadt.plugins.ganomaly.networks import GanomalyGenerator
from xadt.plugins.skipganomaly.networks import UnetGenerator, unet_widths

# Every channel count at 32², the three-channel networks of the X-ray default at 64² as well.
CASES = [(32, 1), (32, 2), (32, 3), (64, 3)]


def _outputs(net: nn.Module, kinds: tuple[type, ...], *args: torch.Tensor) -> list[tuple[int, ...]]:
    """(C, H, W) of the output of every module of ``kinds`` inside ``net``, in call order."""
    shapes: list[tuple[int, ...]] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape[1:])))
        for m in net.modules()
        if isinstance(m, kinds)
    ]
    with torch.no_grad():
        net.eval()(*args)
    for hook in hooks:
        hook.remove()
    return shapes


def _no_bias(net: nn.Module) -> bool:
    return all(m.bias is None for m in net.modules() if isinstance(m, nn.Conv2d))


# --- ganomaly: §3.3 ------------------------------------------------------------------------------

ENCODER = {
    32: [(64, 16, 16), (128, 8, 8), (256, 4, 4), (100, 1, 1)],
    64: [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (100, 1, 1)],
}


@pytest.mark.parametrize(("size", "channels"), CASES)
def test_ganomaly_encoders_follow_the_layer_table(size: int, channels: int) -> None:
    encoder = dcgan_encoder(size, channels, 64, 100)
    x = torch.randn(2, channels, size, size)
    assert _outputs(encoder, (nn.Conv2d,), x) == ENCODER[size]
    norms = _outputs(encoder, (nn.BatchNorm2d,), x)
    assert norms == ENCODER[size][1:-1]  # no BN after the first and the last convolution
    assert _no_bias(encoder)
    slopes = {m.negative_slope for m in encoder.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.2}


@pytest.mark.parametrize(("size", "channels"), CASES)
def test_ganomaly_decoder_mirrors_the_encoder_and_ends_in_tanh(size: int, channels: int) -> None:
    decoder = dcgan_decoder(size, channels, 64, 100)
    z = torch.randn(2, 100, 1, 1)
    expected = ENCODER[size][-2::-1]  # the encoder stages in reverse, without the code
    assert _outputs(decoder, (nn.ConvTranspose2d,), z) == [*expected, (channels, size, size)]
    assert isinstance(decoder[-1], nn.Tanh)
    out = decoder.eval()(z)
    assert out.abs().max() <= 1


@pytest.mark.parametrize(("size", "channels"), CASES)
def test_ganomaly_generator_returns_the_image_and_both_codes(size: int, channels: int) -> None:
    g = GanomalyGenerator(size, channels, 64, 100).eval()
    fake, z, z_hat = g(torch.randn(3, channels, size, size))
    assert fake.shape == (3, channels, size, size)
    assert z.shape == z_hat.shape == (3, 100)
    # E has G_E's architecture but its own weights.
    assert [p.shape for p in g.encoder.parameters()] == [p.shape for p in g.encoder2.parameters()]
    assert not torch.equal(g.encoder[0].weight, g.encoder2[0].weight)


@pytest.mark.parametrize(("size", "channels"), CASES)
def test_dcgan_discriminator_features_are_the_last_4x4_map(size: int, channels: int) -> None:
    d = DcganDiscriminator(size, channels, 64).eval()
    logits, features = d(torch.randn(5, channels, size, size))
    assert logits.shape == (5,)
    assert features.shape == (5, 256 if size == 32 else 512, 4, 4)
    assert _outputs(d, (nn.Conv2d,), torch.randn(1, channels, size, size))[-1] == (1, 1, 1)


def test_dcgan_initialisation_is_the_authors() -> None:
    torch.manual_seed(0)
    g = GanomalyGenerator(64, 3, 64, 100).requires_grad_(False)
    weights = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.Conv2d)])
    assert abs(float(weights.mean())) < 1e-3
    assert float(weights.std()) == pytest.approx(0.02, rel=0.02)
    gammas = torch.cat([m.weight for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert float(gammas.mean()) == pytest.approx(1.0, abs=0.01)
    assert all(float(m.bias.abs().max()) == 0 for m in g.modules() if isinstance(m, nn.BatchNorm2d))


# --- skipganomaly: §4.3 --------------------------------------------------------------------------

DOWN = {
    32: [(64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2), (512, 1, 1)],
    64: [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2), (512, 1, 1)],
}


@pytest.mark.parametrize(("size", "channels"), CASES)
def test_skipganomaly_unet_follows_the_layer_table(size: int, channels: int) -> None:
    g = UnetGenerator(size, channels, 64)
    x = torch.randn(2, channels, size, size)
    assert [w for w, _, _ in DOWN[size]] == unet_widths(size, 64)
    assert _outputs(g, (nn.Conv2d,), x) == DOWN[size]
    # Decoder: ConvT outputs, then each is concatenated with the matching encoder level.
    ups = _outputs(g, (nn.ConvTranspose2d,), x)
    mirrored = [(w, h, h) for w, h, _ in DOWN[size][-2::-1]]
    assert ups == [*mirrored, (channels, size, size)]
    concatenated = [(2 * w, h, h) for w, h, _ in mirrored]
    if size == 32:
        assert concatenated == [(1024, 2, 2), (512, 4, 4), (256, 8, 8), (128, 16, 16)]
    norms = _outputs(g, (nn.BatchNorm2d,), x)
    assert norms == DOWN[size][1:-1] + mirrored  # no norm on d1, the bottleneck and u1
    assert isinstance(g.up[0][-1], nn.Tanh)
    out = g.eval()(x)
    assert out.shape == x.shape
    assert out.abs().max() <= 1


def test_skipganomaly_skips_carry_the_input_detail() -> None:
    torch.manual_seed(0)
    g = UnetGenerator(32, 1, 8).eval()
    x = torch.randn(1, 1, 32, 32)
    y = x.clone()
    y[..., 0, 0] += 5.0
    # A one-pixel change reaches the output through the top skip at full resolution.
    diff = (g(y) - g(x)).abs()[0, 0]
    assert diff[:2, :2].max() > 0


# --- dsagan: §2.3-§2.4 ---------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "channels"), CASES)
def test_dsagan_generator_is_a_five_level_unet_plus_plus(size: int, channels: int) -> None:
    g = DenseSkipGenerator(channels, 32, 5).eval()
    assert sorted(g.nodes) == sorted(f"{i}_{j}" for j in range(5) for i in range(5 - j))
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [
        node.register_forward_hook(
            lambda _m, _i, out, key=key: shapes.__setitem__(key, tuple(out.shape[1:]))
        )
        for key, node in g.nodes.items()
    ]
    out = g(torch.randn(2, channels, size, size))
    for hook in hooks:
        hook.remove()
    for key, shape in shapes.items():
        i = int(key.split("_")[0])
        assert shape == (32 * 2**i, size >> i, size >> i), key
    assert shapes["4_0"] == ((512, 2, 2) if size == 32 else (512, 4, 4))
    # x^{0,4} concatenates x^{0,0..3} and Up(x^{1,3}): 4·32 + 64 channels in.
    assert g.nodes["0_4"][0].in_channels == 4 * 32 + 64
    assert out.shape == (2, channels, size, size)
    assert out.abs().max() <= 1
    assert not any(isinstance(m, nn.BatchNorm2d) for m in g.modules())
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d)]
    assert all(hasattr(m, "parametrizations") for m in convs)  # spectral norm everywhere


D_STAGES = {
    32: [(64, 16, 16), (128, 8, 8), (256, 4, 4)],
    64: [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)],
}


@pytest.mark.parametrize(("size", "channels"), CASES)
def test_dsagan_discriminator_follows_the_default_table(size: int, channels: int) -> None:
    d = AttentionDiscriminator(size, channels, 64, 4, 4).eval()
    x = torch.randn(2, channels, size, size)
    stages = D_STAGES[size]
    augmented = _outputs(d, (AugmentedConv,), x)
    assert augmented == [stages[-1]]
    logits, features = d(x)
    assert logits.shape == (2,)
    assert features.shape == (2, *stages[-1])
    assert all(hasattr(m, "parametrizations") for m in d.modules() if isinstance(m, nn.Conv2d))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())


def test_dsagan_discriminator_at_256_caps_channels_at_512() -> None:
    d = AttentionDiscriminator(256, 3, 64, 4, 4).eval()
    convs = [m for m in d.features.modules() if isinstance(m, nn.Conv2d)]
    strided = [m.out_channels for m in convs if m.stride == (2, 2)]
    assert strided == [64, 128, 256, 512, 512, 512]
    assert d(torch.randn(1, 3, 256, 256))[1].shape == (1, 512, 4, 4)


def test_augmented_conv_splits_channels_and_attends_over_all_positions() -> None:
    torch.manual_seed(0)
    aa = AugmentedConv(256, 256, heads=4).eval()
    assert aa.dk == aa.dv == 64
    assert aa.conv.out_channels == 192
    x = torch.randn(1, 256, 4, 4)
    out = aa(x)
    assert out.shape == (1, 256, 4, 4)
    # Attention reaches every position: changing one corner moves the far corner's attention part
    # but (3x3 kernel) not its convolution part.
    y = x.clone()
    y[..., 0, 0] += 3.0
    moved = (aa(y) - out).abs()[0, :, 3, 3]
    assert moved[:192].max() == 0
    assert moved[192:].max() > 0


def test_attention_can_sit_on_a_finer_map() -> None:
    d = AttentionDiscriminator(64, 3, 64, 4, 16).eval()
    assert _outputs(d, (AugmentedConv,), torch.randn(1, 3, 64, 64)) == [(128, 16, 16)]
    assert d(torch.randn(1, 3, 64, 64))[1].shape == (1, 512, 4, 4)
