"""How a backbone runs (``xadt.backbones.execution``) on a CPU: the default is the plain forward
bit for bit, the float32 levers (channels-last, torch.compile) keep features within 1e-4
relative on EfficientNet-Lite0, CPU bfloat16 runs, and the gaussian options reach the runner.
CUDA-only parts are in ``tests/test_backbone_execution_cuda.py``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tests.test_extraction import TinyBackbone, parcel_view, small_scans
from tests.test_gaussian_detector import TinyGaussian, _config
from xadt.backbones import efficientnet_lite0
from xadt.backbones.execution import BackboneRunner, Execution
from xadt.config import parse_overrides
from xadt.errors import XadtError
from xadt.extraction import FeatureExtractor
from xadt.plugins.gaussian import GaussianConfig
from xadt.scans import Scan
from xadt.testing import normal_scans
from xadt.training_data import TrainingData


def _patches(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3, size, size)).astype(np.float32)


def _rel(got: np.ndarray, want: np.ndarray) -> float:
    """Largest difference relative to the largest magnitude of the reference."""
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.fixture(scope="module")
def lite0_batch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four 224 px patches and EfficientNet-Lite0's plain float32 pooled features and logits."""
    x = _patches(4, 224)
    out = efficientnet_lite0()(torch.from_numpy(x))
    return x, out.pooled.numpy(), out.logits.numpy()


def test_the_default_setting_is_the_plain_forward_bit_for_bit() -> None:
    backbone = TinyBackbone()
    x = _patches(5, 48)  # not the input size: resized as the extractor always did
    want = backbone(
        torch.nn.functional.interpolate(
            torch.from_numpy(x), size=(32, 32), mode="bilinear", antialias=True
        )
    )
    pooled, logits = BackboneRunner(backbone)(x)
    np.testing.assert_array_equal(pooled, want.pooled.numpy())
    np.testing.assert_array_equal(logits, want.logits.numpy())
    assert pooled.dtype == logits.dtype == np.float32


@pytest.mark.parametrize("layout", [False, True], ids=["contiguous", "channels_last"])
def test_channels_last_keeps_lite0_features_within_1e_4(
    lite0_batch: tuple[np.ndarray, np.ndarray, np.ndarray], layout: bool
) -> None:
    x, pooled, logits = lite0_batch
    backbone = efficientnet_lite0()
    got_pooled, got_logits = BackboneRunner(backbone, Execution(channels_last=layout))(x)
    assert _rel(got_pooled, pooled) < 1e-4
    assert _rel(got_logits, logits) < 1e-4
    # Preparing for the default again puts the weights back: the plain forward, bit for bit.
    again_pooled, _ = BackboneRunner(backbone)(x)
    np.testing.assert_array_equal(again_pooled, pooled)


# torch's own modules that torch.compile imports use torch.jit APIs that it deprecates.
@pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:DeprecationWarning")
def test_compiled_forward_matches_and_pads_partial_batches() -> None:
    # Lite0 takes about a minute to compile on two cores; benches/test_bench_backbone.py checks
    # it there. The tiny backbone compiles in seconds.
    backbone = TinyBackbone()
    x = _patches(5, 32)
    want = backbone(torch.from_numpy(x)).pooled.numpy()
    runner = BackboneRunner(backbone, Execution(compile=True, channels_last=True))
    full, _ = runner(x)
    part, _ = runner(x[:3])  # padded to the first batch's 5 rows, then cut back
    assert part.shape == (3, want.shape[1])
    assert _rel(full, want) < 1e-4
    assert _rel(part, want[:3]) < 1e-4
    scans = small_scans(5)
    compiled = FeatureExtractor(
        TinyBackbone(), batch_size=3, execution=Execution(compile=True)
    )  # batches of 3 and 2, the 2 padded to the extractor's batch size
    for a, b in zip(FeatureExtractor(TinyBackbone())(scans), compiled(scans), strict=True):
        np.testing.assert_allclose(b.pooled, a.pooled, rtol=1e-3, atol=1e-3)  # float16 steps


def test_cpu_bfloat16_runs_and_stays_close(
    lite0_batch: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    x, pooled, logits = lite0_batch
    got_pooled, got_logits = BackboneRunner(efficientnet_lite0(), Execution("bfloat16"))(x)
    assert got_pooled.dtype == got_logits.dtype == np.float32
    assert 0 < _rel(got_pooled, pooled) < 0.2  # bfloat16 keeps 8 bits of mantissa
    assert 0 < _rel(got_logits, logits) < 0.2


def test_bad_settings_are_one_line_errors_naming_the_option() -> None:
    with pytest.raises(XadtError, match=r"^The 'precision' option of .* must be one of 'float32'"):
        Execution("half")  # type: ignore[arg-type]
    with pytest.raises(XadtError, match=r"^The 'compile' option of .* must be a boolean"):
        Execution(compile="yes")  # type: ignore[arg-type]
    with pytest.raises(XadtError, match=r"float16 needs a CUDA device; .* use bfloat16"):
        BackboneRunner(TinyBackbone(), Execution("float16"))


def test_cpu_staging_shares_memory_and_concatenates() -> None:
    runner = BackboneRunner(TinyBackbone())
    assert not runner.cuda
    a, b = _patches(2, 32, seed=1), _patches(3, 32, seed=2)
    assert np.shares_memory(runner.stage([a]).numpy(), a)
    np.testing.assert_array_equal(runner.stage([a, b]).numpy(), np.concatenate([a, b]))


def test_extractor_features_and_cache_key_under_each_setting() -> None:
    scans = small_scans(5)
    plain = FeatureExtractor(TinyBackbone(), batch_size=2)
    levers = FeatureExtractor(TinyBackbone(), batch_size=2, execution=Execution(channels_last=True))
    half = FeatureExtractor(TinyBackbone(), batch_size=2, execution=Execution("bfloat16"))
    for a, b in zip(plain(scans), levers(scans), strict=True):
        np.testing.assert_allclose(b.pooled, a.pooled, rtol=1e-3, atol=1e-3)  # float16 steps
    assert levers.key == plain.key  # float32 levers share the cache
    assert half.key != plain.key  # half-precision features never mix with float32 ones
    assert [f.scan_id for f in half(scans)] == [s.id for s in scans]


def test_gaussian_takes_the_settings_as_runtime_options() -> None:
    values = parse_overrides(
        "gaussian",
        GaussianConfig,
        ["precision=bfloat16", "channels_last=true", "compile=false", "batch_size=8"],
    )
    assert values == {
        "precision": "bfloat16",
        "channels_last": True,
        "compile": False,
        "batch_size": 8,
    }
    with pytest.raises(XadtError, match="The 'precision' option of gaussian must be one of"):
        parse_overrides("gaussian", GaussianConfig, ["precision=fp8"])
    train, test = normal_scans(8, seed=1, prefix="train"), normal_scans(3, seed=2)
    fitted = TinyGaussian(_config()).fit(TrainingData.from_scans(train))
    plain = [r.score for r in fitted.score(test)]
    fitted.config = dataclasses.replace(fitted.config, channels_last=True)
    fast = [r.score for r in fitted.score(test)]
    np.testing.assert_allclose(fast, plain, rtol=1e-4)
    fitted.config = dataclasses.replace(fitted.config, channels_last=False)
    assert [r.score for r in fitted.score(test)] == plain


def test_onnxruntime_backend_is_float32_only_on_the_cpu() -> None:
    with pytest.raises(XadtError, match=r"^The 'backend' option onnxruntime runs the float32"):
        Execution("bfloat16", backend="onnxruntime")
    with pytest.raises(XadtError, match=r"^The 'backend' option of .* must be one of 'torch'"):
        Execution(backend="tensorrt")  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
def test_onnxruntime_features_match_torch_on_lite0(
    lite0_batch: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    x, pooled, logits = lite0_batch
    runner = BackboneRunner(efficientnet_lite0(), Execution(backend="onnxruntime"))
    got_pooled, got_logits = runner(x)
    assert _rel(got_pooled, pooled) < 1e-4
    assert _rel(got_logits, logits) < 1e-4
    part, _ = runner(x[:1])  # the batch size is dynamic
    assert _rel(part, pooled[:1]) < 1e-4


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_the_gpu_order_of_work_gives_the_same_features_in_order(
    monkeypatch: pytest.MonkeyPatch, batch_size: int
) -> None:
    # The CUDA path collects batch k only after launching batch k+1; run that order on the CPU
    # (no pinned memory here: staging stays a plain concatenation) so it is tested everywhere.
    scans = [
        Scan(f"scan-{k}", [parcel_view(250 + 60 * k, 260, (10, 10, 240 + 60 * k, 250), seed=k)])
        for k in range(4)
    ]
    plain = list(FeatureExtractor(TinyBackbone(), batch_size=batch_size)(scans))
    monkeypatch.setattr(BackboneRunner, "cuda", property(lambda self: True))
    monkeypatch.setattr(
        BackboneRunner, "stage", lambda self, parts: torch.from_numpy(np.concatenate(parts))
    )
    deferred = list(FeatureExtractor(TinyBackbone(), batch_size=batch_size)(iter(scans)))
    assert [f.scan_id for f in deferred] == [s.id for s in scans]
    for a, b in zip(plain, deferred, strict=True):
        assert a.counts == b.counts
        np.testing.assert_array_equal(b.pooled, a.pooled)
        np.testing.assert_array_equal(b.logits, a.logits)
