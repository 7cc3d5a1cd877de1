"""The GPU scoring path: pinned staging, asynchronous copies, half precision and the extractor's
overlapped batches on CUDA, against the CPU float32 forward on the same patches.

They run where torch sees a GPU and skip elsewhere; ``benches/gpu_check.sh`` runs them on a GPU
machine.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_backbone_execution import _patches, _rel
from tests.test_extraction import TinyBackbone, parcel_view
from xadt.backbones import efficientnet_lite0
from xadt.backbones.execution import BackboneRunner, Execution
from xadt.extraction import FeatureExtractor
from xadt.scans import Scan

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch")


@gpu
def test_staging_is_pinned_and_alternates_between_two_buffers() -> None:
    runner = BackboneRunner(TinyBackbone().cuda())
    assert runner.cuda
    a, b = _patches(4, 32, seed=1), _patches(3, 32, seed=2)
    first = runner.stage([a, b])
    second = runner.stage([b])
    assert first.is_pinned()
    assert second.is_pinned()
    assert first.data_ptr() != second.data_ptr()
    np.testing.assert_array_equal(first.numpy(), np.concatenate([a, b]))
    np.testing.assert_array_equal(second.numpy(), b)


@gpu
@pytest.mark.parametrize(
    ("execution", "tolerance"),
    [
        (Execution(), 1e-4),
        (Execution(channels_last=True), 1e-4),
        (Execution("bfloat16", channels_last=True), 0.2),
        (Execution("float16", channels_last=True), 2e-2),
    ],
    ids=["float32", "channels_last", "bfloat16", "float16"],
)
def test_lite0_on_cuda_matches_the_cpu_float32_forward(
    execution: Execution, tolerance: float
) -> None:
    x = _patches(8, 224)
    want = efficientnet_lite0()(torch.from_numpy(x))
    pooled, logits = BackboneRunner(efficientnet_lite0().cuda(), execution)(x)
    assert pooled.dtype == logits.dtype == np.float32
    assert _rel(pooled, want.pooled.numpy()) < tolerance
    assert _rel(logits, want.logits.numpy()) < tolerance


@gpu
@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_overlapped_cuda_batches_give_the_cpu_features_in_order(batch_size: int) -> None:
    scans = [
        Scan(f"scan-{k}", [parcel_view(300 + 40 * k, 280, (10, 10, 290, 270), seed=k)])
        for k in range(5)
    ]
    cpu = list(FeatureExtractor(TinyBackbone(), batch_size=batch_size)(scans))
    extractor = FeatureExtractor(TinyBackbone().cuda(), batch_size=batch_size)
    cuda = list(extractor(iter(scans)))
    assert [f.scan_id for f in cuda] == [s.id for s in scans]
    for a, b in zip(cpu, cuda, strict=True):
        np.testing.assert_array_equal(a.views[0].boxes, b.views[0].boxes)
        np.testing.assert_allclose(b.pooled, a.pooled, rtol=2e-3, atol=2e-3)  # float16 steps
        np.testing.assert_allclose(b.logits, a.logits, rtol=2e-3, atol=2e-3)
