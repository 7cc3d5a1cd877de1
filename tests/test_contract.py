"""The detector contract: every installed detector passes ``check_detector``; the checks catch
detectors that break it; and the built-in ``baseline`` behaves as its README says."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable
from typing import Any, ClassVar, Self

import numpy as np
import pytest

from xadt.context import RunContext
from xadt.detector import DetectorState, ScanResult
from xadt.errors import NotFittedError, XadtError
from xadt.features import global_features
from xadt.host import RegistryEntry, XadtPluginWarning, load_registry
from xadt.plugins.baseline import BaselineConfig, BaselineDetector
from xadt.scans import Scan
from xadt.testing import anomalous_scan, check_detector, normal_scans
from xadt.training_data import TrainingData


def _installed() -> list[RegistryEntry]:
    with warnings.catch_warnings():
        # A broken plugin is reported by the host's own tests and `xadt plugins`; it must not
        # stop the contract from being checked on the ones that load.
        warnings.simplefilter("ignore", XadtPluginWarning)
        return list(load_registry().detectors.values())


# Detectors whose default config trains full-size networks for many epochs are checked here with
# small networks and few epochs, so that the suite stays fast; their own tests check the default
# architectures. Any other option keeps its default.
SMALL_CONFIGS: dict[str, dict[str, Any]] = {
    **{
        name: {"patch": 32, "stride": 16, "downscale": 0.5, "epochs": 2, "batch_size": 16, **small}
        for name, small in {
            "ganomaly": {"width": 8, "latent": 16},
            "skipganomaly": {"width": 8},
            "dsagan": {"width": 4, "levels": 3, "d_width": 8, "lr": 2e-4},
        }.items()
    },
    "geom": {
        "patch": 16,
        "stride": 16,
        "downscale": 0.5,
        "transforms": "flip_rot8",
        "widen": 1,
        "epochs": 3,
        "batch_size": 16,
        "images_per_step": 32,
    },
}


@pytest.mark.parametrize("entry", _installed(), ids=lambda e: f"{e.name}[{e.plugin.source}]")
def test_every_installed_detector_honours_the_contract(entry: RegistryEntry) -> None:
    small = SMALL_CONFIGS.get(entry.name) if entry.plugin.builtin else None
    config = dataclasses.replace(entry.obj.Config(), **small) if small else None
    check_detector(entry.obj, config=config)


@pytest.mark.parametrize("feature", ["size", "attenuation", "busyness", "all"])
def test_baseline_honours_the_contract_with_each_feature(feature: str) -> None:
    check_detector(BaselineDetector, config=BaselineConfig(feature=feature))  # type: ignore[arg-type]


# --- check_detector catches broken detectors ------------------------------------------------


class _Mean(BaselineDetector):
    """A correct detector to break in small ways below."""

    name: ClassVar[str] = "mean"


class _Hoarder(_Mean):
    def fit(self, data: TrainingData, context: RunContext | None = None) -> Self:
        return super().fit(TrainingData.from_scans(list(data)), context)


class _BatchDependent(_Mean):
    def score(self, scans: Iterable[Scan], context: RunContext | None = None) -> list[ScanResult]:
        results = super().score(scans)
        mean = float(np.mean([r.score for r in results]))
        return [ScanResult(r.scan_id, r.score - 0.5 * mean) for r in results]


class _Lazy(_Mean):
    def score(self, scans: Iterable[Scan], context: RunContext | None = None) -> list[ScanResult]:
        if not self.is_fitted:
            return [ScanResult(s.id, 0.0) for s in scans]
        return super().score(scans)


class _Reversed(_Mean):
    def score(self, scans: Iterable[Scan], context: RunContext | None = None) -> list[ScanResult]:
        return super().score(scans)[::-1]


class _NaN(_Mean):
    def score(self, scans: Iterable[Scan], context: RunContext | None = None) -> list[ScanResult]:
        return [ScanResult(r.scan_id, float("nan")) for r in super().score(scans)]


class _Forgetful(_Mean):
    @classmethod
    def from_state(cls, config: Any, state: DetectorState) -> Self:
        detector = super().from_state(config, state)
        detector.covariance_ = detector.covariance_ * 2  # type: ignore[operator]
        return detector


class _Inverted(_Mean):
    def score(self, scans: Iterable[Scan], context: RunContext | None = None) -> list[ScanResult]:
        return [ScanResult(r.scan_id, -r.score) for r in super().score(scans)]


class _BadMap(_Mean):
    def score(self, scans: Iterable[Scan], context: RunContext | None = None) -> list[ScanResult]:
        results = super().score(scans)
        for r in results:
            r.maps = [np.zeros((3, 3), np.float32)]
        return results


class _PickledState(_Mean):
    def state(self) -> DetectorState:
        state = super().state()
        state.meta["features"] = {"not": {1, 2}}
        return state


@pytest.mark.parametrize(
    ("cls", "match"),
    [
        (_Hoarder, r"check_detector\(mean\): fit: fit held all 12 training scans at once"),
        (_BatchDependent, r"check_detector\(mean\): eval mode: scan 'held-out-03' scored .* alone"),
        (_Lazy, r"check_detector\(mean\): not fitted: score before fit returned instead"),
        (_Reversed, r"check_detector\(mean\): score: result for scan 'held-out-00' has scan_id"),
        (_NaN, r"check_detector\(mean\): score: .* has score nan, not a finite number"),
        (_Forgetful, r"check_detector\(mean\): round trip: from_state\(config, state\(\)\) scored"),
        (_Inverted, r"check_detector\(mean\): anomaly: an obviously anomalous scan scored -"),
        (_BadMap, r"check_detector\(mean\): score: .* map 0 has shape \(3, 3\), not \(\d+, \d+\)"),
        (_PickledState, r"check_detector\(mean\): state: state\(\)\.meta does not survive JSON"),
        (dict, r"check_detector\(dict\): class: .* is not a subclass of xadt\.Detector"),
    ],
)
def test_check_detector_names_the_detector_and_the_broken_check(cls: type, match: str) -> None:
    with pytest.raises(AssertionError, match=match):
        check_detector(cls)


def test_check_detector_reports_an_exception_as_the_failing_check() -> None:
    class Crashing(_Mean):
        def fit(self, data: TrainingData, context: RunContext | None = None) -> Self:
            msg = "no GPU"
            raise RuntimeError(msg)

    with pytest.raises(AssertionError, match=r"check_detector\(mean\): fit: raised RuntimeError"):
        check_detector(Crashing)


def test_synthetic_scans_are_reproducible_uint8_rgb() -> None:
    first, again = normal_scans(3, seed=5), normal_scans(3, seed=5)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.views[0], b.views[0])
        assert a.views[0].dtype == np.uint8
        assert a.views[0].shape[2] == 3
    assert anomalous_scan().views[0].shape[0] > max(s.views[0].shape[0] for s in first)


# --- the built-in baseline -------------------------------------------------------------------


def test_baseline_scores_the_squared_mahalanobis_distance_of_log_features() -> None:
    train, probe = normal_scans(12, seed=1), normal_scans(3, seed=2)
    detector = BaselineDetector().fit(TrainingData.from_scans(iter(train)))
    x = np.log1p([list(global_features(s.views).values()) for s in train])
    mean, covariance = x.mean(axis=0), np.cov(x, rowvar=False) + 1e-6 * np.eye(3)
    np.testing.assert_allclose(detector.mean_, mean, rtol=1e-12)  # type: ignore[arg-type]
    np.testing.assert_allclose(detector.covariance_, covariance, rtol=1e-9)  # type: ignore[arg-type]
    for scan, result in zip(probe, detector.score(probe), strict=True):
        d = np.log1p(list(global_features(scan.views).values())) - mean
        assert result.score == pytest.approx(d @ np.linalg.solve(covariance, d), rel=1e-9)
        z = np.abs(d) / np.sqrt(np.diag(covariance))
        assert list(result.partial) == ["size", "attenuation", "busyness"]
        np.testing.assert_allclose(list(result.partial.values()), z, rtol=1e-9)
        assert (result.patches, result.maps, result.flag) == ([], [], None)


def test_baseline_features_do_not_depend_on_the_dtype() -> None:
    rng = np.random.default_rng(0)
    grey8 = rng.integers(0, 256, (2, 20, 16, 3)).astype(np.uint8)
    as16 = [Scan(f"s{k}", [(v.astype(np.uint16) * 257)]) for k, v in enumerate(grey8)]
    as32 = [Scan(f"s{k}", [(v / np.float32(255)).astype(np.float32)]) for k, v in enumerate(grey8)]
    as8 = [Scan(f"s{k}", [v]) for k, v in enumerate(grey8)]
    detector = BaselineDetector().fit(TrainingData.from_scans(normal_scans(6, seed=3)))
    scores = [[r.score for r in detector.score(scans)] for scans in (as8, as16, as32)]
    np.testing.assert_allclose(scores[1], scores[0], rtol=1e-9)
    np.testing.assert_allclose(scores[2], scores[0], rtol=1e-6)


def test_baseline_rejects_bad_options_with_the_standard_sentence() -> None:
    with pytest.raises(
        XadtError,
        match=r"^The 'ridge' option of baseline must be a float > 0\. Got -1\.0 instead\.$",
    ):
        BaselineDetector(ridge=-1.0).fit(TrainingData.from_scans(normal_scans(3)))
    with pytest.raises(XadtError, match=r"The 'feature' option of baseline must be one of 'size'"):
        BaselineDetector(feature="colour").fit(TrainingData.from_scans(normal_scans(3)))


def test_baseline_needs_two_scans() -> None:
    with pytest.raises(XadtError, match=r"^baseline: fit needs at least 2 normal scans; got 1$"):
        BaselineDetector().fit(TrainingData.from_scans(normal_scans(1)))


def test_baseline_before_fit_says_what_to_do() -> None:
    with pytest.raises(NotFittedError, match=r"run 'xadt train --plugin baseline' first"):
        BaselineDetector().score(normal_scans(1))


def test_baseline_state_must_match_the_config() -> None:
    state = BaselineDetector(feature="size").fit(TrainingData.from_scans(normal_scans(4))).state()
    assert state.meta == {"features": ["size"], "n_train_scans": 4}
    assert state.tensors["covariance"].shape == (1, 1)
    with pytest.raises(XadtError, match=r"fitted on features \['size'\] but the config asks"):
        BaselineDetector.from_state(BaselineConfig(), state)
    with pytest.raises(NotFittedError, match=r"lacks tensors \['mean'\]"):
        BaselineDetector.from_state(
            BaselineConfig(feature="size"), DetectorState({"covariance": np.eye(1)}, state.meta)
        )


def test_baseline_ridge_keeps_identical_sizes_fittable() -> None:
    view = np.full((10, 10, 3), 128, np.uint8)
    same = [Scan(f"s{k}", [view]) for k in range(3)]
    detector = BaselineDetector(feature="size").fit(TrainingData.from_scans(same))
    bigger = Scan("big", [np.full((20, 10, 3), 128, np.uint8)])
    assert detector.score(same)[0].score == 0.0
    assert np.isfinite(detector.score([bigger])[0].score)
