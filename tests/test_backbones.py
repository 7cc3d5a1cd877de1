"""Backbones: real ImageNet weights, output contract, weight-file errors, registry, class lists."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import xadt.plugins.backbones as builtin_plugin
from xadt.backbones import (
    Backbone,
    EfficientNetLite0,
    ResNet,
    create_backbone,
    efficientnet_lite0,
    gun_indices,
    imagenet_classes,
    imagenet_wnids,
    plausible_indices,
    resnet,
)
from xadt.backbones.base import conv_bn
from xadt.backbones.curation import EXCLUDED, render_curated
from xadt.backbones.efficientnet_lite import _same_padding
from xadt.backbones.weights import lite0_weights_file
from xadt.errors import XadtError
from xadt.host import load_registry


@pytest.fixture(scope="module")
def lite0() -> EfficientNetLite0:
    return efficientnet_lite0()


def _photo(backbone: Backbone, image: np.ndarray) -> torch.Tensor:
    """An HxWx3 uint8 photo as one normalised patch: shorter side to 224, centre crop."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    h, w = x.shape[-2:]
    scale = backbone.input_size / min(h, w)
    size = (round(h * scale), round(w * scale))
    x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    top, left = (size[0] - 224) // 2, (size[1] - 224) // 2
    return backbone.normalize(x[..., top : top + 224, left : left + 224].clamp(0, 1))


def _randomize_bn(module: nn.Module, seed: int = 0) -> None:
    """Give every batch norm non-trivial statistics, so a loaded file is told from a fresh init."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert m.running_mean is not None
                assert m.running_var is not None
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))


# --- EfficientNet-Lite0 with its ImageNet weights --------------------------------------------


@pytest.mark.parametrize(
    ("photo", "expected"),
    [
        ("chelsea", {"tabby", "tiger cat", "Egyptian cat"}),
        ("coffee", {"espresso", "cup", "coffee mug"}),
    ],
)
def test_lite0_recognises_photos(lite0: EfficientNetLite0, photo: str, expected: set[str]) -> None:
    skimage_data = pytest.importorskip("skimage.data")
    logits = lite0(_photo(lite0, getattr(skimage_data, photo)())).logits[0]
    names = imagenet_classes()
    top5 = [names[i] for i in logits.topk(5).indices.tolist()]
    assert top5[0] in expected, top5  # also proves the class file's index order
    assert len(expected.intersection(top5)) >= 2, top5


def test_lite0_output_contract(lite0: EfficientNetLite0) -> None:
    x = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    out = lite0(x)
    assert out.pooled.shape == (3, 1280)
    assert out.logits.shape == (3, 1000)
    assert out.pooled.dtype == out.logits.dtype == torch.float32
    assert (out.pooled >= 0).all()
    assert torch.isfinite(out.logits).all()
    assert out.maps == {}
    assert lite0.feature_dims == (1280, 1000)
    assert not out.pooled.requires_grad


def test_lite0_is_batch_invariant(lite0: EfficientNetLite0) -> None:
    x = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    batch = lite0(x)
    for i in range(len(x)):
        alone = lite0(x[i : i + 1])
        torch.testing.assert_close(alone.pooled[0], batch.pooled[i], rtol=0, atol=1e-5)
        torch.testing.assert_close(alone.logits[0], batch.logits[i], rtol=0, atol=1e-5)


def test_lite0_preprocessing_constants(lite0: EfficientNetLite0) -> None:
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(lite0.normalize(x), (x * 255 - 127) / 128)
    assert lite0.mean == (127 / 255,) * 3
    assert lite0.std == (128 / 255,) * 3
    assert lite0.input_size == 224


def test_lite0_intermediate_maps(lite0: EfficientNetLite0) -> None:
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    out = lite0(x, layers=["stem", "blocks.15", "head"])
    assert out.maps["stem"].shape == (1, 32, 112, 112)
    assert out.maps["blocks.15"].shape == (1, 320, 7, 7)
    assert out.maps["head"].shape == (1, 1280, 7, 7)
    torch.testing.assert_close(out.maps["head"].mean(dim=(2, 3)), out.pooled)
    small = x[..., :64, :64]
    assert set(lite0.features(small, ["blocks.3"])) == {"blocks.3"}
    assert set(lite0(small, layers="blocks.3").maps) == {"blocks.3"}
    assert lite0.layer_names[0] == "stem"
    assert lite0.layer_names[-1] == "head"


def test_lite0_rejects_bad_input(lite0: EfficientNetLite0) -> None:
    with pytest.raises(ValueError, match="float32"):
        lite0(torch.zeros(1, 3, 224, 224, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        lite0(torch.zeros(3, 224, 224))
    with pytest.raises(ValueError, match="no layer"):
        lite0(torch.zeros(1, 3, 224, 224), layers=["blocks.99"])


def test_lite0_stays_frozen(lite0: EfficientNetLite0) -> None:
    lite0.train()
    assert not lite0.training
    assert not any(p.requires_grad for p in lite0.parameters())


def test_lite0_weights_id_is_the_file_hash(lite0: EfficientNetLite0) -> None:
    with lite0_weights_file() as path:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert lite0.weights_id == f"sha256:{digest}"


def test_same_padding_puts_the_extra_pixel_last() -> None:
    assert _same_padding(224, 3, 2) == (0, 1)
    assert _same_padding(112, 5, 2) == (1, 2)
    assert _same_padding(7, 3, 2) == (1, 1)
    assert _same_padding(56, 3, 1) == (1, 1)


def test_lite0_own_state_dict_round_trip(lite0: EfficientNetLite0, tmp_path: Path) -> None:
    path = tmp_path / "lite0.pt"
    torch.save(lite0.state_dict(), path)
    again = efficientnet_lite0(weights=path)
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(again(x).logits, lite0(x).logits, rtol=0, atol=0)


def test_lite0_file_with_a_missing_key_is_refused(tmp_path: Path) -> None:
    with lite0_weights_file() as source:
        state = torch.load(source, map_location="cpu", weights_only=True)
    del state["_blocks.7._bn1.running_var"]
    state["_blocks.16._project_conv.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(XadtError, match=r"broken\.pth") as err:
        efficientnet_lite0(weights=path)
    assert "missing keys blocks.7.depthwise.bn.running_var" in str(err.value)
    assert "unexpected keys _blocks.16._project_conv.weight" in str(err.value)


# --- ResNet in the torchvision format --------------------------------------------------------


@pytest.mark.parametrize(
    ("depth", "n_params"),
    [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032), (101, 44_549_160), (152, 60_192_808)],
)
def test_resnet_matches_torchvision_size(depth: int, n_params: int) -> None:
    # torchvision's published parameter counts: same layers, same shapes.
    model = ResNet(depth)
    assert sum(p.numel() for p in model.parameters()) == n_params
    assert model.name == f"resnet{depth}"


@pytest.mark.parametrize(("depth", "dim"), [(18, 512), (50, 2048)])
def test_resnet_state_dict_round_trip(depth: int, dim: int, tmp_path: Path) -> None:
    torch.manual_seed(depth)
    source = ResNet(depth)
    _randomize_bn(source)
    path = tmp_path / f"resnet{depth}.pth"
    torch.save(source.state_dict(), path)

    loaded = resnet(depth, weights=path)
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert loaded.weights_id == f"sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}"

    x = torch.randn(2, 3, 64, 64)  # any size pools to the same dims; small keeps it fast
    out = loaded(x, layers=["layer4"])
    assert out.pooled.shape == (2, dim)
    assert out.logits.shape == (2, 1000)
    assert (out.pooled >= 0).all()
    torch.testing.assert_close(out.maps["layer4"].mean(dim=(2, 3)), out.pooled)
    torch.testing.assert_close(out.logits, source(x).logits, rtol=0, atol=0)
    assert loaded.mean == (0.485, 0.456, 0.406)
    assert loaded.std == (0.229, 0.224, 0.225)


def test_resnet_refuses_another_depths_file(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(ResNet(18).state_dict(), path)
    with pytest.raises(XadtError, match=r"resnet18\.pth.*backbone 'resnet50'.*missing keys"):
        resnet(50, weights=path)


def test_resnet_refuses_wrong_shapes(tmp_path: Path) -> None:
    state = ResNet(18).state_dict()
    state["fc.weight"] = torch.zeros(10, 512)
    path = tmp_path / "ten_classes.pth"
    torch.save(state, path)
    with pytest.raises(XadtError, match=r"wrong shapes fc\.weight \(10, 512\)"):
        resnet(18, weights=path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ([1, 2, 3], "holds a list, not a state dict"),
        ({"state_dict": {"fc.weight": torch.zeros(1)}}, "not a flat state dict"),
        (nn.Linear(2, 2), "could not be read as a tensor-only"),  # pickled code: refused
    ],
)
def test_weights_that_are_not_a_state_dict(tmp_path: Path, content: object, match: str) -> None:
    path = tmp_path / "weights.pth"
    torch.save(content, path)
    with pytest.raises(XadtError, match=match) as err:
        resnet(18, weights=path)
    assert str(path) in str(err.value)


def test_weights_file_missing_or_garbage(tmp_path: Path) -> None:
    with pytest.raises(XadtError, match=r"nowhere\.pth.*not found"):
        resnet(152, weights=tmp_path / "nowhere.pth")
    # Arbitrary bytes make the restricted unpickler fail in many ways (b"junk\n": KeyError).
    for k, junk in enumerate([b"not a torch file at all", b"junk\n", b"\x80\x02}q\x00", b"\x00"]):
        garbage = tmp_path / f"garbage{k}.pth"
        garbage.write_bytes(junk)
        with pytest.raises(XadtError, match=rf"garbage{k}\.pth"):
            resnet(18, weights=garbage)
    truncated = tmp_path / "truncated.pth"
    torch.save(ResNet(18).state_dict(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:100_000])
    with pytest.raises(XadtError, match=r"truncated\.pth"):
        resnet(18, weights=truncated)


def test_resnet_loads_files_without_batch_norm_counters(tmp_path: Path) -> None:
    # torchvision's first ImageNet files predate num_batches_tracked.
    state = ResNet(18).state_dict()
    path = tmp_path / "old.pth"
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, path)
    loaded = resnet(18, weights=path)
    assert torch.equal(loaded.state_dict()["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])


def test_resnet_needs_a_weights_file() -> None:
    with pytest.raises(XadtError, match=r"resnet152.*weights=FILE"):
        resnet(152)


@pytest.mark.parametrize("with_bias", [False, True])
def test_conv_bn_folds_batch_norm_exactly(with_bias: bool) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, 2, 1, bias=with_bias)
    bn = nn.BatchNorm2d(6)
    _randomize_bn(bn)
    bn.eval()
    x = torch.randn(2, 4, 9, 9)
    torch.testing.assert_close(conv_bn(x, conv, bn), bn(conv(x)), rtol=1e-5, atol=1e-5)


# --- registry --------------------------------------------------------------------------------


def test_builtin_hook_lists_the_backbones() -> None:
    names = set(builtin_plugin.xadt_backbones())
    assert {"efficientnet_lite0", "resnet18", "resnet50", "resnet152"} <= names


def test_create_backbone_through_the_host(lite0: EfficientNetLite0) -> None:
    host = pytest.importorskip("xadt.host")
    pm = host.plugin_manager(autoload=False)
    pm.register(builtin_plugin, name="backbones")
    registry = host.load_registry(pm)
    backbone = create_backbone("efficientnet_lite0", registry=registry)
    assert isinstance(backbone, EfficientNetLite0)
    assert backbone.weights_id == lite0.weights_id
    with pytest.raises(XadtError, match="unknown backbone 'resnet15'; did you mean"):
        create_backbone("resnet15", registry=registry)
    with pytest.raises(XadtError, match=r"resnet50.*weights=FILE"):
        create_backbone("resnet50", registry=registry)


def test_create_backbone_from_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "r18.pth"
    torch.save(ResNet(18).state_dict(), path)
    factories = builtin_plugin.xadt_backbones()
    assert isinstance(create_backbone("resnet18", weights=path, registry=factories), ResNet)
    with pytest.raises(XadtError, match="unknown backbone 'vgg19'; installed: efficientnet"):
        create_backbone("vgg19", registry=factories)


@pytest.mark.skipif(
    "backbones" not in {ep.name for ep in entry_points(group="xadt")},
    reason="entry point backbones = xadt.plugins.backbones not installed yet",
)
def test_default_backbone_from_installed_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XADT_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert isinstance(create_backbone(registry=load_registry()), EfficientNetLite0)


def test_plugin_module_imports_without_torch() -> None:
    code = "import sys, xadt.plugins.backbones; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# --- class names and curated lists -----------------------------------------------------------


def test_imagenet_classes() -> None:
    names = imagenet_classes()
    assert len(names) == 1000
    assert (names[0], names[281], names[413], names[967]) == (
        "tench",
        "tabby",
        "assault rifle",
        "espresso",
    )
    wnids = imagenet_wnids()
    assert len(set(wnids)) == 1000
    assert wnids == sorted(wnids)  # ImageNet's logit order is WordNet-id order


def test_curated_lists() -> None:
    plausible, guns = plausible_indices(), gun_indices()
    for indices in (plausible, guns):
        assert indices.dtype == np.int64
        assert ((indices >= 0) & (indices < 1000)).all()
        assert len(np.unique(indices)) == len(indices)
        assert (np.diff(indices) > 0).all()
        assert not indices.flags.writeable
    assert set(guns.tolist()) <= set(plausible.tolist())
    names = imagenet_classes()
    assert sorted(names[i] for i in guns) == ["assault rifle", "revolver", "rifle"]
    assert plausible.min() >= 398  # 0-397 are animals
    kept = {names[i] for i in plausible}
    assert {"envelope", "revolver", "padlock", "laptop", "bubble"} <= kept
    assert not {"cheeseburger", "snowmobile", "volcano", "scuba diver", "daisy"} & kept


def test_curated_files_match_the_rules() -> None:
    # The packaged files are the builder's output, not hand edits.
    from importlib import resources

    for file_name, text in render_curated(imagenet_classes()).items():
        packaged = resources.files("xadt").joinpath("data", file_name).read_text(encoding="utf-8")
        assert packaged == text, f"{file_name} differs; run python -m xadt.backbones.curation"


def test_exclusion_rules_name_real_classes() -> None:
    names = imagenet_classes()
    assert all(names[index] == name for index, name, _ in EXCLUDED)
