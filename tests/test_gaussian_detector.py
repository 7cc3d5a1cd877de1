"""The ``gaussian`` detector (methods.md §1): contract, streaming fit, cache, ablation switches,
maps, all-air scans, model state and config errors, on a tiny seeded backbone
(``tests.test_extraction.TinyBackbone``). ``tests/test_contract.py`` runs the contract checks on
the installed detector with the real EfficientNet-Lite0."""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import safetensors.numpy

from tests.test_extraction import TinyBackbone, parcel_view
from xadt.artifacts import load_model, read_model_info, save_model
from xadt.backbones import plausible_indices
from xadt.backbones.base import Backbone
from xadt.config import config_from_json, parse_overrides
from xadt.context import RunContext
from xadt.detector import DetectorState
from xadt.errors import NotFittedError, XadtError
from xadt.host import load_registry
from xadt.model import Model
from xadt.plugins.gaussian import (
    EMPTY_SCAN_SCORE,
    PRESETS,
    GaussianConfig,
    GaussianDetector,
    griffin2019,
)
from xadt.plugins.gaussian.appearance import adjusted_variance, naive_variance
from xadt.scans import Scan, ScanSkippedWarning
from xadt.testing import anomalous_scan, check_detector, normal_scans
from xadt.training_data import TrainingData


class TinyGaussian(GaussianDetector):
    """The gaussian detector on :class:`TinyBackbone` (seed 0, or ``backbone_seed``)."""

    backbone_seed: ClassVar[int] = 0
    classes: ClassVar[int] = 1000

    @classmethod
    def build_backbone(cls, config: GaussianConfig, registry: object = None) -> Backbone:
        return TinyBackbone(seed=cls.backbone_seed, classes=cls.classes)


def _config(**overrides: object) -> GaussianConfig:
    return dataclasses.replace(GaussianConfig(backbone="tiny"), **overrides)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One feature cache shared by the module's fits: the tiny backbone runs once per scan."""
    return str(tmp_path_factory.mktemp("features"))


@pytest.fixture(scope="module")
def train() -> list[Scan]:
    return normal_scans(16, seed=1, prefix="train")


@pytest.fixture(scope="module")
def fitted(train: list[Scan], cache: str) -> TinyGaussian:
    return TinyGaussian(_config(cache=cache)).fit(TrainingData.from_scans(train))


def _scores(detector: GaussianDetector, scans: list[Scan]) -> np.ndarray:
    return np.array([r.score for r in detector.score(scans)])


def _stream(scans: list[Scan]) -> Iterator[Scan]:
    yield from scans


# --- the contract ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["combined", "appearance", "semantic"])
def test_every_mode_honours_the_contract(mode: str) -> None:
    # The real EfficientNet-Lite0 with the default config is checked by tests/test_contract.py,
    # which runs check_detector over every installed detector.
    check_detector(TinyGaussian, config=_config(mode=mode))


def test_presets_are_configs_with_the_papers_settings() -> None:
    assert PRESETS["griffin2019"] is griffin2019
    assert GaussianDetector.presets is PRESETS
    assert (griffin2019.window, griffin2019.max_stride, griffin2019.top_n) == (224, 112, 12)
    assert (griffin2019.variance, griffin2019.covariance) == ("adjusted", "full")
    assert PRESETS["griffin2019_resnet152"].backbone == "resnet152"


def test_score_before_fit_says_what_to_do() -> None:
    with pytest.raises(NotFittedError, match="run 'xadt train --plugin gaussian' first"):
        TinyGaussian(_config()).score(normal_scans(1))


# --- what fit learns ---------------------------------------------------------------------------


def test_fit_reports_counts_threshold_and_combination_weights(fitted: TinyGaussian) -> None:
    assert fitted.n_train_scans_ == 16
    assert fitted.n_train_patches_ == 16  # one window per small scan
    assert fitted.binarize_threshold_ is not None
    assert fitted.binarize_threshold_ > 0
    assert fitted.appearance_ is not None
    assert fitted.appearance_.threshold == fitted.binarize_threshold_
    assert fitted.semantic_ is not None
    assert fitted.semantic_.dim == len(plausible_indices())
    assert fitted.semantic_.n_excursions == 12
    assert 0 <= fitted.semantic_.shrinkage <= 1
    assert fitted.semantic_.shrinkage_rule == "ledoit-wolf"
    assert fitted.weights_ is not None
    assert fitted.weight_ratio_ == pytest.approx(
        fitted.weights_["semantic"] / fitted.weights_["appearance"]
    )
    assert fitted.ridge_ == 1e-3
    assert fitted.timings_["backbone"] >= 0


def test_combination_weights_are_inverse_variances_of_the_training_scores(
    fitted: TinyGaussian, train: list[Scan]
) -> None:
    results = fitted.score(train)
    a = np.array([r.partial["appearance"] for r in results])
    s = np.array([r.partial["semantic"] for r in results])
    assert fitted.weights_ is not None
    assert fitted.weights_["appearance"] == pytest.approx(1 / a.var(ddof=1), rel=1e-9)
    assert fitted.weights_["semantic"] == pytest.approx(1 / s.var(ddof=1), rel=1e-9)


def test_the_modes_pick_the_scan_score(fitted: TinyGaussian, cache: str) -> None:
    probe = [*normal_scans(2, seed=7), anomalous_scan()]
    combined = fitted.score(probe)
    state = fitted.state()
    assert fitted.weights_ is not None
    w = fitted.weights_
    for r in combined:
        expected = w["appearance"] * r.partial["appearance"] + w["semantic"] * r.partial["semantic"]
        assert r.score == pytest.approx(expected, rel=1e-12)
    for mode in ("appearance", "semantic"):
        detector = TinyGaussian.from_state(_config(cache=cache, mode=mode), state)
        for a, b in zip(combined, detector.score(probe), strict=True):
            assert b.partial == a.partial
            assert b.score == a.partial[mode]


# --- streaming ---------------------------------------------------------------------------------


def test_fit_streams_a_one_shot_generator_and_removes_its_temporary_cache(
    train: list[Scan], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    detector = TinyGaussian(_config()).fit(TrainingData.from_scans(_stream(train)))
    assert detector.n_train_scans_ == len(train)
    assert list(tmp_path.iterdir()) == []  # features went to disk and were removed afterwards


def test_the_model_does_not_depend_on_scan_order_or_batch_split(
    fitted: TinyGaussian, train: list[Scan], cache: str
) -> None:
    other = TinyGaussian(_config(cache=cache, batch_size=5)).fit(
        TrainingData.from_scans(_stream(train[::-1]))
    )
    a, b = fitted.appearance_, other.appearance_
    assert a is not None
    assert b is not None
    assert other.binarize_threshold_ == fitted.binarize_threshold_
    np.testing.assert_allclose(b.mean, a.mean, rtol=1e-12)
    np.testing.assert_allclose(b.precision, a.precision, rtol=1e-6, atol=1e-6)
    s, t = fitted.semantic_, other.semantic_
    assert s is not None
    assert t is not None
    np.testing.assert_allclose(t.mean, s.mean, rtol=1e-12)
    np.testing.assert_allclose(t.inv_corr, s.inv_corr, rtol=1e-6, atol=1e-6)
    assert other.weights_ is not None
    assert fitted.weights_ is not None
    assert other.weights_["semantic"] == pytest.approx(fitted.weights_["semantic"], rel=1e-6)


def test_out_of_fold_weights_come_from_models_fitted_without_each_fold(
    train: list[Scan], cache: str
) -> None:
    # A diagonal semantic correlation keeps the six fits cheap; the fold logic is the same.
    config = _config(cache=cache, semantic_covariance="diagonal")
    in_sample = TinyGaussian(config).fit(TrainingData.from_scans(train))
    oof = TinyGaussian(dataclasses.replace(config, weighting="out-of-fold")).fit(
        TrainingData.from_scans(train)
    )
    assert oof.weights_ is not None
    assert in_sample.weights_ is not None
    # Scores of scans a model never saw spread wider: smaller inverse-variance weights.
    assert oof.weights_["appearance"] < in_sample.weights_["appearance"]
    # The models themselves are fitted on every scan either way.
    assert oof.appearance_ is not None
    assert in_sample.appearance_ is not None
    np.testing.assert_array_equal(oof.appearance_.precision, in_sample.appearance_.precision)
    assert oof.state().meta["fit_config"]["weighting"] == "out-of-fold"


def test_a_chosen_ridge_comes_from_held_out_normal_scans(cache: str) -> None:
    scans = normal_scans(30, seed=11)
    detector = TinyGaussian(_config(cache=cache, ridge=None)).fit(TrainingData.from_scans(scans))
    assert detector.ridge_log_likelihoods_ is not None
    assert set(detector.ridge_log_likelihoods_) == {1e-4, 1e-3, 1e-2, 1e-1}
    best = max(detector.ridge_log_likelihoods_, key=detector.ridge_log_likelihoods_.__getitem__)
    assert detector.ridge_ == best
    assert detector.appearance_ is not None
    assert detector.appearance_.ridge == best
    meta = json.loads(json.dumps(detector.state().meta))
    assert meta["ridge"] == best


def test_a_ridge_choice_without_held_out_scans_is_a_clear_error(cache: str) -> None:
    with pytest.raises(XadtError, match="ridge=None holds out one in 10 training scans"):
        TinyGaussian(_config(cache=cache, ridge=None)).fit(
            TrainingData.from_scans(normal_scans(2, seed=12))
        )


# --- the cache ---------------------------------------------------------------------------------


def test_a_second_fit_and_score_with_the_same_cache_hit_it(
    train: list[Scan], tmp_path: Path
) -> None:
    config = _config(cache=str(tmp_path))
    first = TinyGaussian(config).fit(TrainingData.from_scans(train[:6]))
    probe = normal_scans(2, seed=8)
    scores = _scores(first, probe)
    assert first.cache_hits_ == 0
    second = TinyGaussian(config).fit(TrainingData.from_scans(train[:6]))
    assert second.cache_hits_ == 6
    np.testing.assert_array_equal(_scores(second, probe), scores)
    assert second.cache_hits_ == 2  # the probe's features were cached by the first score
    for file in tmp_path.rglob("*.safetensors"):
        file.write_bytes(b"damaged")
    np.testing.assert_array_equal(_scores(second, probe), scores)  # recomputed, not a crash
    assert second.cache_hits_ == 0


# --- ablation switches -------------------------------------------------------------------------


def test_diagonal_covariance_gives_a_diagonal_precision(train: list[Scan], cache: str) -> None:
    model = (
        TinyGaussian(_config(cache=cache, covariance="diagonal"))
        .fit(TrainingData.from_scans(train))
        .appearance_
    )
    assert model is not None
    off = model.precision - np.diag(np.diag(model.precision))
    assert not off.any()
    np.testing.assert_allclose(np.diag(model.precision), 1 / adjusted_variance(model.mean))


def test_naive_variance_is_p_times_one_minus_p(train: list[Scan], cache: str) -> None:
    model = (
        TinyGaussian(_config(cache=cache, variance="naive"))
        .fit(TrainingData.from_scans(train))
        .appearance_
    )
    assert model is not None
    assert model.variance_kind == "naive"
    np.testing.assert_allclose(model.variance, naive_variance(model.mean))


def test_a_fixed_binarisation_threshold_is_used_as_given(train: list[Scan], cache: str) -> None:
    detector = TinyGaussian(_config(cache=cache, binarize=0.5)).fit(TrainingData.from_scans(train))
    assert detector.binarize_threshold_ == 0.5
    assert detector.state().meta["threshold_rule"] == "fixed"


def test_all_dimensions_give_a_1000_d_semantic_model(train: list[Scan], cache: str) -> None:
    model = (
        TinyGaussian(_config(cache=cache, semantic_dims="all"))
        .fit(TrainingData.from_scans(train))
        .semantic_
    )
    assert model is not None
    assert model.dim == 1000
    np.testing.assert_array_equal(model.dims, np.arange(1000))


def test_semantic_switches(train: list[Scan], cache: str) -> None:
    config = _config(
        cache=cache,
        semantic_variance="sample",
        semantic_covariance="diagonal",
        top_n=None,
    )
    model = TinyGaussian(config).fit(TrainingData.from_scans(train)).semantic_
    assert model is not None
    live = model.sample_std > 0
    assert live.any()
    np.testing.assert_array_equal(model.std[live], model.sample_std[live])
    np.testing.assert_array_equal(model.inv_corr, np.eye(model.dim))
    assert model.n_excursions is None
    fixed = (
        TinyGaussian(_config(cache=cache, shrinkage=0.3))
        .fit(TrainingData.from_scans(train))
        .semantic_
    )
    assert fixed is not None
    assert fixed.shrinkage == 0.3
    assert fixed.shrinkage_rule == "fixed"


def test_plausible_dimensions_need_imagenet_logits(train: list[Scan]) -> None:
    class TenClasses(TinyGaussian):
        classes = 10

    with pytest.raises(XadtError, match="backbone 'tiny' has 10 logits; set semantic_dims='all'"):
        TenClasses(_config()).fit(TrainingData.from_scans(train[:3]))
    model = (
        TenClasses(_config(semantic_dims="all")).fit(TrainingData.from_scans(train[:6])).semantic_
    )
    assert model is not None
    assert model.dim == 10


# --- patches and maps --------------------------------------------------------------------------


def test_maps_average_the_windows_covering_each_pixel_nan_outside_the_crop(
    fitted: TinyGaussian,
) -> None:
    box = (20, 30, 290, 280)  # 2 x 2 windows over the crop
    scan = Scan("big", [parcel_view(320, 300, box, seed=3), parcel_view(90, 80, (5, 5, 85, 75))])
    (result,) = fitted.score([scan])
    assert [m.shape for m in result.maps] == [(320, 300), (90, 80)]
    big = result.maps[0]
    assert big.dtype == np.float32
    inside = np.zeros(big.shape, dtype=bool)
    inside[20:290, 30:280] = True
    assert np.isnan(big[~inside]).all()
    assert not np.isnan(big[inside]).any()
    patches = result.patches[0]
    assert patches.view == 0
    assert len(patches.boxes) == 4
    # A corner of the crop is covered by one window only: the map there is its score.
    for corner, k in (((20, 30), 0), ((289, 279), 3)):
        assert big[corner] == np.float32(patches.scores[k])
    assert result.partial["appearance"] == pytest.approx(
        max(p.scores.max() for p in result.patches)
    )


def test_patch_boxes_are_clipped_to_the_crop_in_full_view_coordinates(
    fitted: TinyGaussian,
) -> None:
    scan = Scan("small", [parcel_view(300, 400, (100, 150, 180, 250))])
    (result,) = fitted.score([scan])
    np.testing.assert_array_equal(result.patches[0].boxes, [[100, 150, 180, 250]])
    amap = result.maps[0]
    assert (amap[100:180, 150:250] == np.float32(result.patches[0].scores[0])).all()
    assert np.isnan(amap[:100]).all()


# --- all-air scans and views -------------------------------------------------------------------


def _air(h: int = 90, w: int = 80) -> np.ndarray:
    return np.full((h, w, 3), 255, dtype=np.uint8)


def test_an_all_air_scan_is_flagged_not_a_crash(fitted: TinyGaussian) -> None:
    empty = Scan("tray", [_air(), _air(60, 70)])
    (result,) = fitted.score([empty])
    assert result.score == EMPTY_SCAN_SCORE
    assert result.partial == {"appearance": EMPTY_SCAN_SCORE, "semantic": EMPTY_SCAN_SCORE}
    assert [m.shape for m in result.maps] == [(90, 80), (60, 70)]
    assert all(np.isnan(m).all() for m in result.maps)
    assert [len(p.boxes) for p in result.patches] == [0, 0]


def test_an_all_air_view_is_left_out_and_the_other_views_scored(fitted: TinyGaussian) -> None:
    parcel = normal_scans(1, seed=9)[0].views[0]
    (alone,) = fitted.score([Scan("s", [parcel])])
    (half,) = fitted.score([Scan("s", [parcel, _air()])])
    assert half.score == alone.score
    assert np.isnan(half.maps[1]).all()
    assert len(half.patches[1].boxes) == 0


def test_a_view_with_only_small_objects_is_scored_not_flagged(fitted: TinyGaussian) -> None:
    view = _air(200, 200)
    view[50:60, 70:80] = 30  # under min_area: no parcel for the cropper, but real contents
    (result,) = fitted.score([Scan("envelope", [view])])
    assert result.score < EMPTY_SCAN_SCORE
    np.testing.assert_array_equal(result.patches[0].boxes, [[50, 70, 60, 80]])
    assert not np.isnan(result.maps[0][50:60, 70:80]).any()
    assert np.isnan(result.maps[0][:50]).all()


def test_fit_skips_all_air_scans_with_a_warning(train: list[Scan], cache: str) -> None:
    scans = [*train[:5], Scan("empty-tray", [_air()])]
    with pytest.warns(ScanSkippedWarning, match="skipped 1 training scan.*all air.*empty-tray"):
        detector = TinyGaussian(_config(cache=cache)).fit(TrainingData.from_scans(scans))
    assert detector.n_train_scans_ == 5
    assert detector.n_skipped_scans_ == 1
    with (
        pytest.warns(ScanSkippedWarning),
        pytest.raises(XadtError, match="at least 2 normal scans with a parcel; got 1"),
    ):
        TinyGaussian(_config()).fit(
            TrainingData.from_scans([train[0], Scan("empty-tray", [_air()])])
        )


# --- model state -------------------------------------------------------------------------------


def _saved(state: DetectorState) -> DetectorState:
    """The state as a model file gives it back: JSON meta, copied arrays."""
    meta = json.loads(json.dumps(state.meta, allow_nan=False))
    return DetectorState({k: np.array(v) for k, v in state.tensors.items()}, meta)


def test_state_records_what_the_model_is_and_round_trips(fitted: TinyGaussian, cache: str) -> None:
    state = fitted.state()
    meta = state.meta
    assert meta["backbone"] == "tiny"
    assert meta["weights_id"] == "tiny-seed0"
    assert meta["feature_dims"] == [48, 1000]
    assert meta["binarize_threshold"] == fitted.binarize_threshold_
    assert meta["threshold_rule"] == "chosen"
    assert meta["weights"] == fitted.weights_
    assert meta["weight_ratio"] == fitted.weight_ratio_
    assert (meta["n_train_scans"], meta["n_train_patches"]) == (16, 16)
    assert meta["combination"]["ratio_semantic_to_appearance"] == fitted.weight_ratio_
    assert all(v.dtype.kind == "f" or v.dtype.kind == "i" for v in state.tensors.values())
    again = TinyGaussian.from_state(fitted.config, _saved(state))
    assert again.weights_ == fitted.weights_
    assert again.n_train_patches_ == 16
    probe = [*normal_scans(2, seed=10), anomalous_scan()]
    for a, b in zip(fitted.score(probe), again.score(probe), strict=True):
        assert (a.score, a.partial) == (b.score, b.partial)
        for ma, mb in zip(a.maps, b.maps, strict=True):
            np.testing.assert_array_equal(ma, mb)


def test_scoring_with_other_backbone_weights_says_so(fitted: TinyGaussian) -> None:
    class OtherWeights(TinyGaussian):
        backbone_seed = 1

    loaded = OtherWeights.from_state(fitted.config, _saved(fitted.state()))
    with pytest.raises(
        XadtError,
        match=re.escape("fitted with tiny weights tiny-seed0 but backbone 'tiny' now has weights "),
    ):
        loaded.score(normal_scans(1, seed=13))


def test_loading_with_a_config_that_contradicts_the_model_says_so(fitted: TinyGaussian) -> None:
    config = dataclasses.replace(fitted.config, variance="naive")
    with pytest.raises(
        XadtError, match="fitted with variance='adjusted' but the config sets variance='naive'"
    ):
        TinyGaussian.from_state(config, _saved(fitted.state()))
    assert TinyGaussian.from_state(
        dataclasses.replace(fitted.config, mode="semantic", batch_size=3, cache=None),
        _saved(fitted.state()),
    ).is_fitted


def test_a_state_from_another_plugin_is_refused() -> None:
    with pytest.raises(NotFittedError, match="lacks 'fit_config'"):
        TinyGaussian.from_state(_config(), DetectorState({"mean": np.zeros(3)}, {}))


# --- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "sentence"),
    [
        (
            {"ridge": -1.0},
            "The 'ridge' option of gaussian must be a float >= 0, or None to "
            "choose it. Got -1.0 instead.",
        ),
        (
            {"mode": "both"},
            "The 'mode' option of gaussian must be one of 'appearance', "
            "'semantic', 'combined'. Got 'both' instead.",
        ),
        (
            {"top_n": 0},
            "The 'top_n' option of gaussian must be an integer >= 1, or None for "
            "all. Got 0 instead.",
        ),
        (
            {"shrinkage": 1.5},
            "The 'shrinkage' option of gaussian must be a float in [0, 1], or "
            "None for Ledoit-Wolf. Got 1.5 instead.",
        ),
        (
            {"binarize": 0.0},
            "The 'binarize' option of gaussian must be a float > 0, or None to "
            "choose it. Got 0.0 instead.",
        ),
        ({"window": 8}, "The 'window' option of gaussian must be an integer >= 16. Got 8 instead."),
        (
            {"max_stride": 300},
            "The 'max_stride' option of gaussian must be an integer in "
            "1..window (224), so that patches leave no gaps. Got 300 instead.",
        ),
        (
            {"air_level": 0.0},
            "The 'air_level' option of gaussian must be a float in (0, 1]. Got 0.0 instead.",
        ),
        (
            {"batch_size": 0},
            "The 'batch_size' option of gaussian must be an integer >= 1. Got 0 instead.",
        ),
        (
            {"variance": "exact"},
            "The 'variance' option of gaussian must be one of 'adjusted', "
            "'naive'. Got 'exact' instead.",
        ),
        (
            {"weighting": "oof"},
            "The 'weighting' option of gaussian must be one of 'in-sample', "
            "'out-of-fold'. Got 'oof' instead.",
        ),
        (
            {"cache": " "},
            "The 'cache' option of gaussian must be a folder path, or None. Got ' ' instead.",
        ),
    ],
)
def test_bad_options_are_rejected_with_the_generated_sentence(
    overrides: dict[str, object], sentence: str
) -> None:
    detector = TinyGaussian(_config(**overrides))
    with pytest.raises(XadtError, match=re.escape(sentence)):
        detector.fit(TrainingData.from_scans(normal_scans(2)))


def test_every_option_has_help_and_set_overrides_parse() -> None:
    for field in dataclasses.fields(GaussianConfig):
        assert field.metadata.get("help"), field.name
    values = parse_overrides(
        "gaussian",
        GaussianConfig,
        ["shrinkage=none", "binarize=0.065", "top_n=none", "mode=appearance", "ridge=0.01"],
    )
    assert values == {
        "shrinkage": None,
        "binarize": 0.065,
        "top_n": None,
        "mode": "appearance",
        "ridge": 0.01,
    }
    GaussianDetector(GaussianConfig(**values)).validate()


def test_a_model_directory_round_trips_and_names_its_backbone_weights(
    train: list[Scan], cache: str, tmp_path: Path
) -> None:
    # Fitted on the tiny backbone under the default backbone's name, so that the installed
    # plugin loads it with the real EfficientNet-Lite0 weights: a mismatch it must refuse.
    fitted = TinyGaussian(GaussianConfig(cache=cache)).fit(TrainingData.from_scans(train[:6]))
    path = save_model(tmp_path / "model", Model(fitted))
    info = read_model_info(path)
    assert info.plugin == "gaussian"
    assert info.meta["weights"] == fitted.weights_
    assert info.meta["n_train_scans"] == 6
    document = json.loads((path / "model.json").read_text())
    tensors = safetensors.numpy.load_file(path / "tensors.safetensors")
    config = config_from_json("gaussian", GaussianConfig, document["config"])
    again = TinyGaussian.from_state(config, DetectorState(tensors, document["meta"]))
    probe = normal_scans(2, seed=13)
    np.testing.assert_array_equal(_scores(again, probe), _scores(fitted, probe))
    loaded = load_model(path, registry=load_registry())
    with pytest.raises(
        XadtError, match="fitted with tiny weights tiny-seed0 but backbone 'efficientnet_lite0'"
    ):
        loaded.score(probe)


def test_a_fit_removes_the_feature_cache_a_killed_fit_left_behind(
    train: list[Scan], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / "xadt-gaussian-999999999-abc"
    (dead / "features").mkdir(parents=True)
    TinyGaussian(_config()).fit(TrainingData.from_scans(train[:4]))
    assert not dead.exists()
    assert list(tmp_path.iterdir()) == []  # and its own temporary cache is gone too


# --- sharded fit ---------------------------------------------------------------------------------


def sharded_fit(detector: GaussianDetector, shards: list[list[Scan]]) -> int:
    """Fit ``detector`` round by round as ``xadt train --engine ray`` does, each shard's
    statistics passed through pickle as Ray would; returns the number of rounds."""
    context = RunContext()
    rounds, done = 0, False
    while not done:
        wire = pickle.dumps(detector)
        parts = [pickle.loads(wire).fit_shard(iter(shard), context) for shard in shards]
        done = detector.merge_shards(pickle.loads(pickle.dumps(parts)), context)
        rounds += 1
    return rounds


@pytest.mark.parametrize(
    ("options", "rounds"),
    [({}, 3), ({"binarize": 0.5, "ridge": 0.01, "weighting": "in-sample"}, 2)],
)
def test_a_sharded_fit_equals_the_single_pass_fit(
    train: list[Scan], cache: str, options: dict[str, object], rounds: int
) -> None:
    whole = TinyGaussian(_config(cache=cache, **options)).fit(TrainingData.from_scans(train))
    sharded = TinyGaussian(_config(cache=cache, **options))
    shards = [train[:5], train[5:6], train[6:]]
    assert sharded_fit(sharded, shards) == rounds
    one, other = whole.state(), sharded.state()
    numbers, others = _flat(one.meta), _flat(other.meta)
    assert numbers.keys() == others.keys()
    for key, value in numbers.items():
        assert others[key] == (pytest.approx(value, rel=1e-9) if _real(value) else value), key
    assert one.tensors.keys() == other.tensors.keys()
    for name, tensor in one.tensors.items():
        np.testing.assert_allclose(other.tensors[name], tensor, rtol=1e-9, atol=1e-12, err_msg=name)
    scans = normal_scans(3, seed=7, prefix="new")
    np.testing.assert_allclose(_scores(sharded, scans), _scores(whole, scans), rtol=1e-9)


def _flat(meta: object, prefix: str = "") -> dict[str, object]:
    """Nested JSON metadata as one flat dict, so that pytest.approx can compare the numbers."""
    if isinstance(meta, dict):
        return {
            k: v for key, value in meta.items() for k, v in _flat(value, f"{prefix}{key}.").items()
        }
    if isinstance(meta, list):
        return {
            k: v for i, value in enumerate(meta) for k, v in _flat(value, f"{prefix}{i}.").items()
        }
    return {prefix: meta}


def _real(value: object) -> bool:
    return isinstance(value, float | int) and not isinstance(value, bool)
