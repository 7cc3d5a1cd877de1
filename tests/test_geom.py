"""The ``geom`` detector's maths (methods.md §6.4): the 72 transformations, the paper's epoch rule,
the Dirichlet fit and scores, the Wide ResNet's shapes, and a short fit that learns to tell
transformations apart on held-out normal patches."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy.special import digamma
from scipy.stats import dirichlet

from xadt.errors import XadtError
from xadt.patchstore import scan_patches, unit_patches
from xadt.plugins.geom.config import GeomConfig
from xadt.plugins.geom.detector import GeomDetector
from xadt.plugins.geom.dirichlet import (
    fit_dirichlet,
    inverse_digamma,
    normality,
    simple_normality,
)
from xadt.plugins.geom.network import TransformClassifier, WideResNet
from xadt.plugins.geom.transforms import (
    N_TRANSFORMS,
    TRANSFORM_SETS,
    describe,
    gather_table,
    parse_transforms,
    transform,
)
from xadt.scans import Scan
from xadt.testing import normal_scans
from xadt.training_data import TrainingData

# --- transformations ------------------------------------------------------------------------


def test_72_distinct_transformations_with_the_identity_first() -> None:
    x = torch.rand(2, 3, 32, 32)
    out = transform(x, gather_table(32, 8, TRANSFORM_SETS["full72"]))
    assert out.shape == (2, N_TRANSFORMS, 3, 32, 32)
    assert torch.equal(out[:, 0], x)
    flat = out[0].reshape(N_TRANSFORMS, -1)
    assert len({tuple(row.tolist()) for row in flat}) == N_TRANSFORMS


def _reference(image: np.ndarray, idx: int, s: int) -> np.ndarray:
    """Flip, translate with symmetric ('reflect' in scipy/Keras) padding, rotate, in numpy."""
    t = describe(idx)
    out = image[:, ::-1] if t.flip else image
    dy, dx = t.y * s, t.x * s
    padded = np.pad(out, s, mode="symmetric")
    h, w = out.shape
    out = padded[s - dy : s - dy + h, s - dx : s - dx + w]
    return np.rot90(out, t.k)


def test_each_transformation_is_flip_then_reflect_shift_then_rotation() -> None:
    image = np.arange(16 * 16, dtype=np.float32).reshape(16, 16)
    out = transform(torch.from_numpy(image)[None, None], gather_table(16, 4, tuple(range(72))))
    for idx in range(N_TRANSFORMS):
        np.testing.assert_array_equal(out[0, idx, 0].numpy(), _reference(image, idx, 4), str(idx))
    assert describe(36 + 12 + 8 + 3) == (True, -1, 1, 3)  # flip, x -s, y +s, 270°


def test_named_and_custom_sets() -> None:
    assert [len(v) for v in TRANSFORM_SETS.values()] == [72, 8, 4, 9]
    assert parse_transforms("0,5,40") == (0, 5, 40)
    for bad in ("0,0", "3", "0,72", "rotate"):
        with pytest.raises(ValueError):  # noqa: PT011 - the config check words it for users
            parse_transforms(bad)
    with pytest.raises(XadtError, match=r"^The 'transforms' option of geom must be one of full72"):
        GeomDetector(transforms="0,99").validate()


def test_the_paper_epoch_rule_and_batch() -> None:
    assert GeomConfig().resolved().epochs == 3
    assert GeomConfig(transforms="flip_rot8").resolved().epochs == 25
    assert GeomConfig(epochs=7).resolved().epochs == 7
    assert GeomConfig().images_per_step == 128


# --- Dirichlet ------------------------------------------------------------------------------


def test_inverse_digamma_inverts_digamma() -> None:
    y = np.linspace(-10, 5, 3001)
    np.testing.assert_allclose(digamma(inverse_digamma(y)), y, rtol=0, atol=1e-6)


def test_the_dirichlet_fit_recovers_the_parameters() -> None:
    sample = np.random.default_rng(0).dirichlet([2.0, 3.0, 5.0], size=100_000)
    alpha = fit_dirichlet(sample.mean(axis=0), np.log(sample).mean(axis=0))
    np.testing.assert_allclose(alpha, [2.0, 3.0, 5.0], rtol=0.02)
    stacked = fit_dirichlet(np.stack([sample.mean(0)] * 2), np.stack([np.log(sample).mean(0)] * 2))
    np.testing.assert_array_equal(stacked[0], stacked[1])


def test_the_simplified_score_ranks_as_the_full_log_likelihood() -> None:
    rng = np.random.default_rng(1)
    alpha = rng.uniform(0.5, 6.0, (3, 3))
    probs = rng.dirichlet(np.ones(3), size=(40, 3))
    full = sum(dirichlet.logpdf(probs[:, i].T, alpha[i]) for i in range(3))
    simplified = normality(np.log(probs), alpha)
    np.testing.assert_array_equal(np.argsort(full), np.argsort(simplified))
    expected = np.mean([probs[:, i, i] for i in range(3)], axis=0)
    np.testing.assert_allclose(simple_normality(np.log(probs)), expected)


# --- network --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("depth", "widen", "patch", "features"),
    [(10, 4, 32, 256), (10, 4, 64, 1024), (16, 8, 64, 2048)],
)
def test_wide_resnet_shapes(depth: int, widen: int, patch: int, features: int) -> None:
    net = WideResNet(3, 72, depth=depth, widen=widen, patch=patch)
    assert net.head.in_features == features
    blocks = (depth - 4) // 6
    assert len(net.features) == 1 + 3 * blocks
    assert net(torch.zeros(2, 3, patch, patch)).shape == (2, 72)


def test_the_classifier_scores_every_transformed_copy() -> None:
    net = TransformClassifier(1, 16, (0, 1, 36), shift=4, depth=10, widen=1).eval()
    patches = torch.rand(3, 1, 16, 16)
    logits = net(patches)
    assert logits.shape == (3, 3, 3)
    with torch.no_grad():
        rotated = net.wrn(torch.rot90(patches * 2 - 1, 1, dims=(2, 3)))
    torch.testing.assert_close(logits[:, 1], rotated)
    assert "table" not in net.state_dict()


# --- learning -------------------------------------------------------------------------------

TINY = GeomConfig(
    patch=16, stride=16, downscale=0.5, widen=1, epochs=3, batch_size=16, score_batch=16
)


def _oriented_scans(n: int, seed: int) -> list[Scan]:
    """64 × 64 parcels lit by a ramp (darker down and to the right) with soft blobs and noise:
    normal images with an orientation, as the method assumes of its normal class."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64] / 64
    scans = []
    for k in range(n):
        grey = 0.15 + 0.5 * yy + 0.2 * xx + rng.normal(0, 0.02, yy.shape)
        for _ in range(3):
            cy, cx = rng.uniform(0, 1, 2)
            grey -= 0.1 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.01)
        rgb = np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=2)
        scans.append(Scan(f"o{seed}-{k}", [np.round(rgb * 255).astype(np.uint8)]))
    return scans


def test_a_short_fit_tells_72_transformations_apart_on_held_out_patches() -> None:
    config = dataclasses.replace(TINY, downscale=1.0, images_per_step=32)
    detector = GeomDetector(config).fit(TrainingData.from_scans(_oriented_scans(3, seed=1)))
    assert detector.alpha_ is not None
    assert detector.alpha_.shape == (72, 72)
    assert np.all(detector.alpha_ > 0)
    settings = detector.settings()
    held_out = np.concatenate([scan_patches(s, settings).patches for s in _oriented_scans(2, 9)])
    with detector.inference():
        logits = detector.networks()["classifier"](torch.from_numpy(unit_patches(held_out)))
    accuracy = (logits.argmax(dim=-1) == torch.arange(72)).float().mean().item()
    assert accuracy > 0.2, accuracy  # chance: 1/72 = 0.014


def test_the_model_records_the_resolved_rules_and_refuses_another_set() -> None:
    config = dataclasses.replace(TINY, downscale=0.25, epochs=None, transforms="rotations")
    detector = GeomDetector(config)
    detector.fit(TrainingData.from_scans(normal_scans(4, seed=1)))
    assert detector.config.epochs == 50
    assert detector.info_["transforms"] == [0, 1, 2, 3]
    state = detector.state()
    assert state.tensors["dirichlet.alpha"].shape == (4, 4)
    with pytest.raises(XadtError, match=r"must be the set the model was trained with \(0,1,2,3\)"):
        GeomDetector.from_state(dataclasses.replace(config, transforms="flip_rot8"), state)


def test_select_validation_keeps_the_epoch_with_the_lowest_held_out_loss() -> None:
    config = dataclasses.replace(TINY, transforms="rotations", epochs=2, select="validation")
    data = TrainingData.from_scans(
        normal_scans(4, seed=1), validation=normal_scans(2, seed=5, prefix="v")
    )
    detector = GeomDetector(config).fit(data)
    losses = [h["validation"]["loss"] for h in detector.history_]
    assert detector.selected_epoch_ == 1 + int(np.argmin(losses))
    assert all(0 <= h["validation"]["accuracy"] <= 1 for h in detector.history_)
