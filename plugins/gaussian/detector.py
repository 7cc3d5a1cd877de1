"""The ``gaussian`` detector: Griffin et al. (2019), "Unexpected item in the bagging area".

Appearance: binarised pooled CNN features of 224 px patches under a full-covariance Gaussian
with adjusted variances; semantic: top-n excursions of per-scan maximum logits; combined by
inverse-variance weights (methods.md §1). The maths lives in the modules beside this one
(appearance, binarize, semantic, combine); this module streams scans through the backbone into it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self, TextIO

import numpy as np

from xadt.aggregate import EMPTY_SCAN_SCORE, window_map
from xadt.config import config_to_json
from xadt.context import RunContext, report_within
from xadt.detector import (
    Detector,
    DetectorState,
    PatchScores,
    ScanResult,
    ShardedFit,
    meta_value,
)
from xadt.errors import NotFittedError, XadtError
from xadt.moments import Moments
from xadt.outputs import remove_dead_leftovers
from xadt.plugins.gaussian.appearance import RIDGE_CANDIDATES, AppearanceModel, select_ridge
from xadt.plugins.gaussian.binarize import ThresholdChooser, binarize
from xadt.plugins.gaussian.combine import Combination
from xadt.plugins.gaussian.config import FREE_AFTER_FIT, PRESETS, GaussianConfig
from xadt.plugins.gaussian.semantic import SemanticModel, image_vectors
from xadt.plugins.gaussian.state import nest_states, sub_state
from xadt.scans import Scan, ScanSkippedWarning

if TYPE_CHECKING:  # torch-heavy: imported when a detector fits or scores, not when listed
    from xadt.backbones import Backbone
    from xadt.extraction import FeatureExtractor, ScanFeatures
    from xadt.host import Registry
    from xadt.training_data import TrainingData

__all__ = ["EMPTY_SCAN_SCORE", "GaussianDetector"]

log = logging.getLogger(__name__)

N_FOLDS = 5
"""Folds of the out-of-fold combination weights (methods.md §1.6 option)."""

RIDGE_HOLDOUT = 10
"""One in this many training scans is held out to choose the ridge when ``ridge`` is None."""

_Cell = tuple[bool, int]  # (held out for the ridge choice, out-of-fold fold)


class GaussianDetector(ShardedFit, Detector):
    """Griffin et al. (2019): CNN patch features under Gaussians fitted to normal scans.

    Each view is cropped to its parcel and tiled into ``window`` px patches at stride
    <= ``max_stride``; a frozen ImageNet backbone gives each patch a pooled vector and logits.

    * **Appearance**: pooled vectors binarised at t (chosen on the training patches unless
      ``binarize`` is set), Gaussian with mean p, adjusted variances and the phi-correlation
      matrix plus a ridge; a patch scores its squared Mahalanobis distance, a scan its worst
      patch.
    * **Semantic**: per-scan maximum over patches of the parcel-plausible logits; σ from the
      fitted mean→log-SD line; correlation shrunk towards the identity (Ledoit–Wolf); the score
      z̃ᵀ R⁻¹ z̃ keeps the ``top_n`` largest signed z-excursions.
    * **Combined**: w_A·S_A + w_S·S_S with w = 1 / Var(score) over the training scans.

    ``mode`` picks the scan score; the partial scores ``appearance`` and ``semantic`` are always
    reported, with the appearance patch scores and a window-averaged appearance map per view.
    All are anomaly scores; higher = more anomalous.

    ``fit`` streams: pass 1 runs the backbone once per scan, writing the feature cache
    (``cache``, or a temporary folder removed afterwards) while accumulating the threshold
    chooser and the semantic moments; pass 2 reads the cache to accumulate the binary moments
    (skipped when ``binarize`` is fixed); pass 3 reads it again to score the training scans for
    the combination weights. Memory does not grow with the number of scans.

    A view whose only objects are below ``min_area`` (or thinner than the opening) is cropped to
    all its non-air pixels: small contents are still contents. A view whose every pixel is air
    is left out: it gets no patches and an all-NaN map. A scan with no non-air pixel in any view
    cannot be judged; it scores :data:`EMPTY_SCAN_SCORE` so that a person looks at it. In
    ``fit`` such scans are skipped with a ``ScanSkippedWarning``.

    Fitted attributes: ``appearance_``, ``semantic_``, ``combination_`` (the models),
    ``binarize_threshold_``, ``ridge_``, ``weights_`` (``{"appearance": w_A, "semantic": w_S}``),
    ``weight_ratio_`` (w_S / w_A), ``n_train_scans_``, ``n_train_patches_``,
    ``n_skipped_scans_``, ``backbone_``, and for the last ``fit`` or ``score`` ``timings_``
    (seconds per extraction stage) and ``cache_hits_`` (scans whose features came from the
    cache).
    """

    name: ClassVar[str] = "gaussian"
    description: ClassVar[str] = (
        "Griffin et al. 2019: CNN patch features under Gaussians (appearance, semantic, combined)"
    )
    Config: ClassVar[type] = GaussianConfig
    presets: ClassVar[dict[str, GaussianConfig]] = PRESETS
    config: GaussianConfig

    def __init__(self, config: GaussianConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.appearance_: AppearanceModel | None = None
        self.semantic_: SemanticModel | None = None
        self.combination_: Combination | None = None
        self.binarize_threshold_: float | None = None
        self.ridge_: float | None = None
        self.ridge_log_likelihoods_: dict[float, float] | None = None
        self.weights_: dict[str, float] | None = None
        self.weight_ratio_: float | None = None
        self.n_train_scans_ = 0
        self.n_train_patches_ = 0
        self.n_skipped_scans_ = 0
        self.backbone_: Backbone | None = None
        self.timings_: dict[str, float] = {}
        self.cache_hits_ = 0
        self._info: dict[str, Any] = {}
        self._rounds: _Rounds | None = None

    # -- the contract ----------------------------------------------------------------------------

    @property
    def is_fitted(self) -> bool:
        """Whether ``score`` can run (after ``fit`` or ``from_state``)."""
        return self.appearance_ is not None and self.semantic_ is not None

    def validate(self) -> None:
        """Check every option and that ``max_stride`` <= ``window``; raise ``XadtError``."""
        super().validate()
        c = self.config
        if c.max_stride > c.window:
            msg = (
                f"The 'max_stride' option of {self.name} must be an integer in 1..window "
                f"({c.window}), so that patches leave no gaps. Got {c.max_stride!r} instead."
            )
            raise XadtError(msg)

    @classmethod
    def build_backbone(cls, config: GaussianConfig, registry: Registry) -> Backbone:
        """The frozen backbone ``config`` names, with its weights (a subclass may override)."""
        from xadt.backbones import create_backbone

        return create_backbone(config.backbone, weights=config.weights, registry=registry)

    def fit(self, data: TrainingData, context: RunContext | None = None) -> Self:
        """Fit the appearance and semantic Gaussians and the combination weights; return self.

        ``data`` (normal scans only) is read in one pass and never held in memory; see the class
        docstring for the passes over the feature cache. The backbone runs on
        ``context.device``; features are cached in ``cache`` or ``context.cache_dir`` when set.

        Raises:
            XadtError: an invalid config, fewer than 2 scans with a parcel, a backbone that
                cannot be built, or data that cannot give a model (e.g. ``ridge=None`` with no
                scan in the held-out tenth).
        """
        self.validate()
        context = context or RunContext()
        c = self.config
        backbone = self.build_backbone(c, context.plugins()).to(context.torch_device())
        dims = self._semantic_dims(backbone)
        # The pid in the name lets the next fit remove a cache a killed one left behind.
        remove_dead_leftovers(Path(tempfile.gettempdir()), "xadt-gaussian-")
        with tempfile.TemporaryDirectory(prefix=f"xadt-gaussian-{os.getpid()}-") as tmp:
            cache = self._cache_dir(context) or Path(tmp) / "features"
            extractor = self._extractor(backbone, cache, context)
            manifest = Path(tmp) / "manifest.jsonl"
            context.progress.stage("extracting features", len(data))
            scans = _counted(iter(data), context)
            with manifest.open("w", encoding="utf-8") as out:
                acc = self._accumulate(extractor(scans), backbone.feature_dims[0], dims, out)
            self._check_accumulated(acc)
            rounds = self._start_rounds(acc, dims, backbone)
            if acc.chooser is not None:
                rounds.threshold = acc.chooser.choose()
                self._binary_moments(acc.app, self._replay(manifest, extractor), rounds.threshold)
            self._prepare_scores(rounds)
            totals = self._score_moments(self._replay(manifest, extractor), rounds.scorers)
            self.timings_ = dict(extractor.timings)
            self.cache_hits_ = extractor.cache_hits
        self._finish(rounds, totals)
        self.backbone_ = backbone
        return self

    def fit_shard(self, scans: Iterable[Scan], context: RunContext) -> Any:
        """This round's statistics of one shard (:class:`xadt.detector.ShardedFit`).

        Round 1 gives the threshold chooser's histograms and the semantic moments (with a fixed
        ``binarize``, the appearance moments too), round 2 the appearance moments of the
        binarised features, round 3 the moments of the training scores. Each round reads the
        shard again; features come from ``cache`` or ``context.cache_dir`` when they are there.
        """
        rounds = self._rounds
        backbone = self.build_backbone(self.config, context.plugins()).to(context.torch_device())
        extractor = self._extractor(backbone, self._cache_dir(context), context)
        features = extractor(scans)
        if rounds is None:
            dims = self._semantic_dims(backbone)
            return self._accumulate(features, backbone.feature_dims[0], dims, None)
        parcels = (f for f in features if not f.empty)
        if rounds.totals_next:
            return self._score_moments(parcels, rounds.scorers)
        app: dict[_Cell, Moments] = {}
        self._binary_moments(app, parcels, rounds.threshold)
        return app

    def merge_shards(self, parts: list[Any], context: RunContext) -> bool:
        """Merge one round's shard statistics exactly; True once the fit is complete."""
        rounds = self._rounds
        if rounds is None:
            acc = _Accumulated.merged(parts)
            self._check_accumulated(acc)
            backbone = self.build_backbone(self.config, context.plugins())
            rounds = self._start_rounds(acc, self._semantic_dims(backbone), backbone)
            self._rounds = rounds
            if acc.chooser is not None:
                rounds.threshold = acc.chooser.choose()
                return False
        elif not rounds.totals_next:
            for part in parts:
                _merge_cells(rounds.acc.app, part)
        else:
            totals = Moments(2)
            for part in parts:
                totals.merge(part)
            self._rounds = None
            self._finish(rounds, totals)
            return True
        self._prepare_scores(rounds)
        return False

    def _start_rounds(self, acc: _Accumulated, dims: np.ndarray, backbone: Backbone) -> _Rounds:
        info = {
            "backbone": backbone.name,
            "weights_id": backbone.weights_id,
            "feature_dims": list(backbone.feature_dims),
        }
        return _Rounds(acc, dims, info, threshold=float(self.config.binarize or 0.0))

    def _prepare_scores(self, rounds: _Rounds) -> None:
        """With the appearance moments complete: the ridge, both models and the fold scorers."""
        acc, threshold = rounds.acc, rounds.threshold
        rounds.ridge, rounds.likelihoods = self._ridge(acc.app, threshold)
        rounds.appearance = self._fit_appearance(_merged(acc.app.values()), threshold, rounds.ridge)
        rounds.semantic = self._fit_semantic(_merged(acc.sem.values()), rounds.dims)
        rounds.scorers = self._scorers(
            acc, threshold, rounds.ridge, rounds.dims, rounds.appearance, rounds.semantic
        )
        rounds.totals_next = True

    def _finish(self, rounds: _Rounds, totals: Moments) -> None:
        """Set the fitted attributes from the rounds' results and the training-score moments."""
        acc = rounds.acc
        combination = self._combination(totals)
        self.appearance_, self.semantic_ = rounds.appearance, rounds.semantic
        self.combination_ = combination
        self.binarize_threshold_ = rounds.threshold
        self.ridge_, self.ridge_log_likelihoods_ = rounds.ridge, rounds.likelihoods
        self._set_weights(combination)
        self.n_train_scans_, self.n_train_patches_ = acc.n_scans, acc.n_patches
        self.n_skipped_scans_ = acc.n_skipped
        self._info = {
            **rounds.info,
            "threshold_rule": "chosen" if acc.chooser is not None else "fixed",
        }
        if self.weights_ is not None:
            log.info(
                "%s: combination weights appearance %.6g, semantic %.6g, ratio w_S/w_A %.4g",
                self.name,
                self.weights_["appearance"],
                self.weights_["semantic"],
                self.weight_ratio_,
            )

    def score(self, scans: Iterable[Scan], context: RunContext | None = None) -> list[ScanResult]:
        """Score scans: one ``ScanResult`` per scan, in order; higher = more anomalous.

        ``score`` is the ``mode``'s score; ``partial`` holds ``appearance`` (the squared
        Mahalanobis distance of the worst patch) and ``semantic`` (the top-n excursion score,
        a squared Mahalanobis distance of the kept z-excursions); ``patches`` holds, per view, the
        windows (full-view coordinates, clipped to the cropped parcel) and their appearance
        scores; ``maps`` holds, per view, a float32 (H, W) map of the mean appearance score of the
        windows covering each pixel, NaN outside the cropped parcel. Features are read from and
        written to ``cache`` (or ``context.cache_dir``) when it is set.

        Raises:
            XadtError: the backbone's weights are not the ones the model was fitted with.
        """
        self.check_fitted()
        context = context or RunContext()
        backbone = self._scoring_backbone(context)
        extractor = self._extractor(backbone, self._cache_dir(context), context)
        results = [self._result(features) for features in extractor(scans)]
        self.timings_ = dict(extractor.timings)
        self.cache_hits_ = extractor.cache_hits
        return results

    def state(self) -> DetectorState:
        """The fitted models as arrays plus JSON metadata.

        Meta: ``binarize_threshold`` (t, activation units) and ``threshold_rule``, ``ridge``,
        ``weights`` and ``weight_ratio`` of the combination, ``backbone``, ``weights_id`` and
        ``feature_dims``, ``n_train_scans``, ``n_train_patches``, ``n_skipped_scans`` and the
        ``fit_config``; the models' own parts under ``appearance``, ``semantic`` and
        ``combination``.
        """
        appearance, semantic = self._models()
        parts = {"appearance": appearance.to_state(), "semantic": semantic.to_state()}
        if self.combination_ is not None:
            parts["combination"] = self.combination_.to_state()
        state = nest_states(parts)
        state.meta.update(
            {
                **self._info,
                "binarize_threshold": self.binarize_threshold_,
                "ridge": self.ridge_,
                "ridge_log_likelihoods": (
                    None
                    if self.ridge_log_likelihoods_ is None
                    else {repr(k): v for k, v in self.ridge_log_likelihoods_.items()}
                ),
                "weights": self.weights_,
                "weight_ratio": self.weight_ratio_,
                "n_train_scans": self.n_train_scans_,
                "n_train_patches": self.n_train_patches_,
                "n_skipped_scans": self.n_skipped_scans_,
                "fit_config": config_to_json(self.config),
            }
        )
        return state

    @classmethod
    def from_state(cls, config: GaussianConfig, state: DetectorState) -> Self:
        """Rebuild a fitted detector from ``config`` and a :meth:`state` result.

        Only ``mode`` and the runtime options (``batch_size``, ``precision``, ``channels_last``,
        ``compile``, ``backend``, ``cache`` and ``weights``) may differ from the config the
        model was fitted with. The backbone is built at the first ``score``, which checks that
        its weights are the ones the model was fitted on (same ``weights_id``, a SHA-256 of the
        weights file).

        Raises:
            XadtError: a config that contradicts the model, or a state this plugin did not write
                (``NotFittedError``).
        """
        detector = cls(config)
        detector.validate()
        meta = state.meta
        fitted = meta_value(cls.name, meta, "fit_config")
        if not isinstance(fitted, dict):
            msg = f"{cls.name}: model metadata 'fit_config' is not a mapping"
            raise NotFittedError(msg)
        now = config_to_json(config)
        for key in sorted(set(now) - FREE_AFTER_FIT):
            if key in fitted and fitted[key] != now[key]:
                msg = (
                    f"{cls.name}: the model was fitted with {key}={fitted[key]!r} but the config "
                    f"sets {key}={now[key]!r}; refit, or change only "
                    f"{', '.join(sorted(FREE_AFTER_FIT))} after fitting"
                )
                raise XadtError(msg)
        appearance = AppearanceModel.from_state(sub_state(state, "appearance"))
        semantic = SemanticModel.from_state(sub_state(state, "semantic"))
        detector.appearance_, detector.semantic_ = appearance, semantic
        if isinstance(meta.get("combination"), dict):
            detector.combination_ = Combination.from_state(sub_state(state, "combination"))
        detector._set_weights(detector.combination_)
        detector.binarize_threshold_ = float(meta_value(cls.name, meta, "binarize_threshold"))
        ridge = meta.get("ridge")
        detector.ridge_ = None if ridge is None else float(ridge)
        likelihoods = meta.get("ridge_log_likelihoods")
        if isinstance(likelihoods, dict):
            detector.ridge_log_likelihoods_ = {float(r): float(v) for r, v in likelihoods.items()}
        detector.n_train_scans_ = int(meta_value(cls.name, meta, "n_train_scans"))
        detector.n_train_patches_ = int(meta_value(cls.name, meta, "n_train_patches"))
        detector.n_skipped_scans_ = int(meta.get("n_skipped_scans", 0))
        detector._info = {
            "backbone": meta.get("backbone", config.backbone),
            "weights_id": meta_value(cls.name, meta, "weights_id"),
            "feature_dims": meta.get("feature_dims"),
            "threshold_rule": meta.get("threshold_rule", "fixed"),
        }
        return detector

    def _scoring_backbone(self, context: RunContext) -> Backbone:
        """The backbone to score with, built on first use and checked against the fitted model.

        It must have the weights the model was fitted on (same ``weights_id``, a SHA-256 of the
        weights file) and feature sizes that fit the fitted Gaussians.
        """
        if self.backbone_ is not None:
            return self.backbone_.to(context.torch_device())
        backbone = self.build_backbone(self.config, context.plugins())
        wanted = self._info["weights_id"]
        if backbone.weights_id != wanted:
            msg = (
                f"{self.name}: the model was fitted with {self._info['backbone']} weights "
                f"{wanted} but backbone {backbone.name!r} now has weights {backbone.weights_id}; "
                "install the weights it was trained with (--set weights=FILE) or refit"
            )
            raise XadtError(msg)
        appearance, semantic = self._models()
        d, k = backbone.feature_dims
        if appearance.dim != d or int(semantic.dims.max()) >= k:
            msg = (
                f"{self.name}: the model's {appearance.dim}-D appearance / {semantic.dim}-D "
                f"semantic parts do not fit backbone {backbone.name!r} ({d}-D pool, {k} logits)"
            )
            raise XadtError(msg)
        self.backbone_ = backbone.to(context.torch_device())
        return self.backbone_

    def _cache_dir(self, context: RunContext) -> Path | None:
        if self.config.cache is not None:
            return Path(self.config.cache)
        return None if context.cache_dir is None else context.cache_dir / "features"

    # -- fitting ---------------------------------------------------------------------------------

    def _extractor(
        self, backbone: Backbone, cache: Path | None, context: RunContext
    ) -> FeatureExtractor:
        from xadt.backbones.execution import Execution
        from xadt.extraction import FeatureExtractor, Tiling

        c = self.config
        tiling = Tiling(
            window=c.window,
            max_stride=c.max_stride,
            air_level=c.air_level,
            opening=c.opening,
            min_area=c.min_area,
        )
        return FeatureExtractor(
            backbone,
            tiling=tiling,
            batch_size=c.batch_size,
            cache_dir=cache,
            empty_views="keep",
            on_windows=functools.partial(report_within, context.progress),
            execution=Execution(c.precision, c.channels_last, c.compile, c.backend),
        )

    def _semantic_dims(self, backbone: Backbone) -> np.ndarray:
        classes = backbone.feature_dims[1]
        if self.config.semantic_dims == "all":
            return np.arange(classes)
        from xadt.backbones import plausible_indices

        dims = np.array(plausible_indices(), dtype=np.int64)
        if classes != 1000:
            msg = (
                f"{self.name}: semantic_dims='plausible' is a list of ImageNet-1k classes, but "
                f"backbone {backbone.name!r} has {classes} logits; set semantic_dims='all'"
            )
            raise XadtError(msg)
        return dims

    def _cell(self, scan_id: str) -> _Cell:
        """Which hold-out and fold a training scan falls in: a hash of its id and the seed."""
        c = self.config
        text = f"xadt-gaussian:{c.seed}:{scan_id}".encode()
        h = int.from_bytes(hashlib.sha256(text).digest()[:8], "big")
        held = c.ridge is None and c.covariance == "full" and h % RIDGE_HOLDOUT == 0
        fold = (h // RIDGE_HOLDOUT) % N_FOLDS if c.weighting == "out-of-fold" else 0
        return held, fold

    def _replay(self, manifest: Path, extractor: FeatureExtractor) -> Iterator[ScanFeatures]:
        """The features of pass 1 again, in the same order, read from the cache."""
        with manifest.open(encoding="utf-8") as lines:
            for line in lines:
                file = Path(json.loads(line))
                features = extractor.load(file)
                if features is None:
                    msg = (
                        f"{self.name}: the cached features {file} vanished or changed during fit "
                        "(is another process clearing the cache?); fit again"
                    )
                    raise XadtError(msg)
                yield features

    def _accumulate(
        self,
        stream: Iterator[ScanFeatures],
        app_dim: int,
        dims: np.ndarray,
        manifest: TextIO | None,
    ) -> _Accumulated:
        """Pass 1: features of every scan into the chooser and moments; with ``manifest``, the
        cache file of each scan with a parcel is listed there for the passes that follow."""
        c = self.config
        fourth = c.shrinkage is None and c.semantic_covariance == "full"
        acc = _Accumulated(ThresholdChooser(app_dim) if c.binarize is None else None)
        for features in stream:
            if features.empty:
                acc.n_skipped += 1
                if len(acc.skipped) < 5:
                    acc.skipped.append(features.scan_id)
                continue
            cell = self._cell(features.scan_id)
            pooled = features.pooled
            if acc.chooser is not None:
                acc.chooser.update(pooled)
            else:
                binary = binarize(pooled, float(c.binarize or 0.0))
                _moments(acc.app, cell, app_dim).update(binary)
            vector = image_vectors(features.logits, [len(pooled)], dims)
            _moments(acc.sem, cell, len(dims), fourth=fourth).update(vector)
            if manifest is not None:
                manifest.write(json.dumps(str(features.cache_file)) + "\n")
            acc.n_scans += 1
            acc.n_patches += len(pooled)
        return acc

    def _check_accumulated(self, acc: _Accumulated) -> None:
        """Warn about the all-air scans left out; raise unless 2 scans with a parcel remain."""
        if acc.n_skipped:
            more = ", ..." if acc.n_skipped > len(acc.skipped) else ""
            warnings.warn(
                f"{self.name}: skipped {acc.n_skipped} training scan(s) that are all air in "
                f"every view: {', '.join(acc.skipped)}{more}",
                ScanSkippedWarning,
                stacklevel=3,
            )
        if acc.n_scans < 2:
            skipped = f" ({acc.n_skipped} all-air scans skipped)" if acc.n_skipped else ""
            msg = (
                f"{self.name}: fit needs at least 2 normal scans with a parcel; "
                f"got {acc.n_scans}{skipped}"
            )
            raise XadtError(msg)

    def _binary_moments(
        self, app: dict[_Cell, Moments], parcels: Iterable[ScanFeatures], threshold: float
    ) -> None:
        """Pass 2: the pooled vectors of scans with a parcel, binarised at t, into ``app``."""
        for features in parcels:
            cell = self._cell(features.scan_id)
            pooled = features.pooled
            _moments(app, cell, pooled.shape[1]).update(binarize(pooled, threshold))

    def _score_moments(
        self,
        parcels: Iterable[ScanFeatures],
        scorers: dict[int, tuple[AppearanceModel, SemanticModel]],
    ) -> Moments:
        """Pass 3: the moments of the training scans' (appearance, semantic) scores."""
        totals = Moments(2)
        for features in parcels:
            appearance, semantic = scorers[self._cell(features.scan_id)[1]]
            pooled = features.pooled
            a = appearance.patch_scores(pooled).max()
            s = semantic.scan_scores(features.logits, [len(pooled)])[0]
            totals.update(np.array([[a, s]]))
        return totals

    def _ridge(
        self, app: dict[_Cell, Moments], threshold: float
    ) -> tuple[float, dict[float, float] | None]:
        c = self.config
        if c.covariance == "diagonal":
            return 0.0, None  # a diagonal covariance takes no ridge
        if c.ridge is not None:
            return float(c.ridge), None
        held = [m for (out, _), m in app.items() if out]
        kept = [m for (out, _), m in app.items() if not out]
        if not held or not kept:
            msg = (
                f"{self.name}: ridge=None holds out one in {RIDGE_HOLDOUT} training scans (by a "
                "hash of their ids) to choose the ridge, and that left "
                f"{'none' if not held else 'all'} of them out; train on more scans or set ridge"
            )
            raise XadtError(msg)
        best, scores = select_ridge(
            _merged(kept), _merged(held), threshold, RIDGE_CANDIDATES, variance=c.variance
        )
        return best, scores

    def _fit_appearance(self, moments: Moments, threshold: float, ridge: float) -> AppearanceModel:
        c = self.config
        return AppearanceModel.fit(
            moments, threshold, variance=c.variance, covariance=c.covariance, ridge=ridge
        )

    def _fit_semantic(self, moments: Moments, dims: np.ndarray) -> SemanticModel:
        c = self.config
        return SemanticModel.fit(
            moments,
            dims,
            n_excursions=c.top_n,
            variance=c.semantic_variance,
            covariance=c.semantic_covariance,
            shrinkage="ledoit-wolf" if c.shrinkage is None else float(c.shrinkage),
        )

    def _scorers(
        self,
        acc: _Accumulated,
        threshold: float,
        ridge: float,
        dims: np.ndarray,
        appearance: AppearanceModel,
        semantic: SemanticModel,
    ) -> dict[int, tuple[AppearanceModel, SemanticModel]]:
        """The models that score each fold's training scans for the combination weights."""
        if self.config.weighting == "in-sample":
            return {0: (appearance, semantic)}
        out = {}
        for fold in range(N_FOLDS):
            a_rest = [m for (_, f), m in acc.app.items() if f != fold]
            s_rest = [m for (_, f), m in acc.sem.items() if f != fold]
            if not any(f == fold for _, f in acc.sem):
                continue  # no training scan in this fold: nothing to score with it
            if not a_rest or not s_rest:
                msg = (
                    f"{self.name}: weighting='out-of-fold' needs training scans in at least two "
                    f"of its {N_FOLDS} folds; train on more scans or use weighting='in-sample'"
                )
                raise XadtError(msg)
            out[fold] = (
                self._fit_appearance(_merged(a_rest), threshold, ridge),
                self._fit_semantic(_merged(s_rest), dims),
            )
        return out

    def _combination(self, totals: Moments) -> Combination | None:
        """Inverse-variance weights from the streamed moments of the training scores.

        Without a usable spread (e.g. identical training scans) there are no weights: an error in
        ``combined`` mode, else the combined score is simply not available.
        """
        variances = totals.variance(ddof=1)
        va, vs = float(variances[0]), float(variances[1])
        if va > 0 and vs > 0 and np.isfinite([va, vs]).all():
            return Combination(
                weight_appearance=1.0 / va, weight_semantic=1.0 / vs, n_scans=totals.count
            )
        if self.config.mode == "combined":
            msg = (
                f"{self.name}: the combination weights need training scores that vary, but over "
                f"{totals.count} scans the appearance variance is {va:.3g} and the semantic "
                f"{vs:.3g}; train on more varied scans or set mode to appearance or semantic"
            )
            raise XadtError(msg)
        return None

    def _set_weights(self, combination: Combination | None) -> None:
        if combination is None:
            self.weights_, self.weight_ratio_ = None, None
            return
        self.weights_ = {
            "appearance": combination.weight_appearance,
            "semantic": combination.weight_semantic,
        }
        self.weight_ratio_ = combination.ratio

    # -- scoring ---------------------------------------------------------------------------------

    def _models(self) -> tuple[AppearanceModel, SemanticModel]:
        self.check_fitted()
        assert self.appearance_ is not None
        assert self.semantic_ is not None
        return self.appearance_, self.semantic_

    def _result(self, features: ScanFeatures) -> ScanResult:
        appearance, semantic = self._models()
        mode = self.config.mode
        maps = [np.full(v.shape, np.nan, dtype=np.float32) for v in features.views]
        if features.empty:
            empty = [
                PatchScores(view=k, boxes=np.zeros((0, 4), np.int64), scores=np.zeros(0))
                for k in range(len(features.views))
            ]
            partial = {"appearance": EMPTY_SCAN_SCORE, "semantic": EMPTY_SCAN_SCORE}
            return ScanResult(features.scan_id, EMPTY_SCAN_SCORE, partial, empty, maps)
        pooled = features.pooled
        patch = appearance.patch_scores(pooled)
        a = float(patch.max())
        s = float(semantic.scan_scores(features.logits, [len(pooled)])[0])
        if mode == "appearance":
            total = a
        elif mode == "semantic":
            total = s
        elif self.combination_ is None:
            msg = f"{self.name}: this model has no combination weights; set mode to appearance"
            raise XadtError(msg)
        else:
            total = float(self.combination_.combine(np.array([a]), np.array([s]))[0])
        patches, offset = [], 0
        for k, view in enumerate(features.views):
            n = len(view.boxes)
            scores = patch[offset : offset + n]
            offset += n
            if view.crop is None:
                patches.append(PatchScores(view=k, boxes=view.boxes.copy(), scores=scores))
                continue
            crop = view.crop
            low = np.array([crop.y0, crop.x0, crop.y0, crop.x0], dtype=np.int64)
            high = np.array([crop.y1, crop.x1, crop.y1, crop.x1], dtype=np.int64)
            patches.append(PatchScores(view=k, boxes=np.clip(view.boxes, low, high), scores=scores))
            maps[k] = window_map(view.boxes, scores, crop, view.shape)
        return ScanResult(features.scan_id, total, {"appearance": a, "semantic": s}, patches, maps)


def _counted(scans: Iterator[Scan], context: RunContext) -> Iterator[Scan]:
    """``scans``, reporting each one read to ``context.progress``."""
    for done, scan in enumerate(scans, start=1):
        yield scan
        context.progress.update(done)


@dataclass
class _Accumulated:
    """What passes 1 and 2 of ``fit`` accumulate, per hold-out/fold cell."""

    chooser: ThresholdChooser | None
    app: dict[_Cell, Moments] = field(default_factory=dict)
    sem: dict[_Cell, Moments] = field(default_factory=dict)
    n_scans: int = 0
    n_patches: int = 0
    n_skipped: int = 0
    skipped: list[str] = field(default_factory=list)

    @classmethod
    def merged(cls, parts: list[_Accumulated]) -> _Accumulated:
        """The sums of all ``parts`` in a new accumulator (parts may be read-only, as Ray's
        zero-copy arrays are)."""
        first = parts[0].chooser
        acc = cls(
            None
            if first is None
            else ThresholdChooser(
                first.dim,
                grid=first.grid,
                n_candidates=first.n_candidates,
                quantiles=first.quantiles,
            )
        )
        for part in parts:
            acc.merge(part)
        return acc

    def merge(self, other: _Accumulated) -> None:
        """Add the counts and moments of another shard's scans (exact up to reassociation)."""
        if self.chooser is not None and other.chooser is not None:
            self.chooser.merge(other.chooser)
        _merge_cells(self.app, other.app)
        _merge_cells(self.sem, other.sem)
        self.n_scans += other.n_scans
        self.n_patches += other.n_patches
        self.n_skipped += other.n_skipped
        self.skipped = (self.skipped + other.skipped)[:5]


@dataclass
class _Rounds:
    """What a fit has decided so far: pass 1's sums, then t, the models and the fold scorers.

    ``fit`` fills it in one process; a sharded fit carries it from round to round.
    """

    acc: _Accumulated
    dims: np.ndarray
    info: dict[str, Any]
    threshold: float = 0.0
    ridge: float = 0.0
    likelihoods: dict[float, float] | None = None
    appearance: AppearanceModel | None = None
    semantic: SemanticModel | None = None
    scorers: dict[int, tuple[AppearanceModel, SemanticModel]] = field(default_factory=dict)
    totals_next: bool = False


def _merge_cells(table: dict[_Cell, Moments], other: dict[_Cell, Moments]) -> None:
    for cell, moments in other.items():
        if cell not in table:
            table[cell] = Moments(moments.dim, fourth=moments.fourth)
        table[cell].merge(moments)


def _moments(
    table: dict[_Cell, Moments], cell: _Cell, dim: int, *, fourth: bool = False
) -> Moments:
    if cell not in table:
        table[cell] = Moments(dim, fourth=fourth)
    return table[cell]


def _merged(parts: Iterable[Moments]) -> Moments:
    """One accumulator of the union of ``parts`` (the parts are left unchanged)."""
    items = list(parts)
    out = Moments.from_arrays(items[0].to_arrays())
    for part in items[1:]:
        out.merge(part)
    return out
