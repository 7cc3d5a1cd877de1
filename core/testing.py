"""Contract checks for detector authors: ``check_detector(MyDetector)`` in a test.

The checks make their own small synthetic scans with numpy and take seconds, so a plugin's test
suite can run them on every commit, as xadt's own suite does for every installed detector.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import signal
import tempfile
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from xadt.context import NullProgress, RunContext
from xadt.detector import Detector, DetectorState, ScanResult
from xadt.errors import NotFittedError, TrainingInterrupted
from xadt.host import detector_class_problem
from xadt.scans import Scan
from xadt.training_data import TrainingData

__all__ = ["anomalous_scan", "check_detector", "normal_scans"]

N_TRAIN = 12
N_HELD_OUT = 4


def normal_scans(n: int, *, seed: int = 0, prefix: str = "normal") -> list[Scan]:
    """``n`` synthetic single-view uint8 RGB scans of a light, smooth parcel with soft dark blobs.

    Views are about 96 × 80 pixels, their size, tint, blobs and noise drawn from ``seed``.
    """
    rng = np.random.default_rng(seed)
    return [_scan(rng, f"{prefix}-{k:02d}") for k in range(n)]


def anomalous_scan(*, seed: int = 0) -> Scan:
    """A scan unlike any of :func:`normal_scans`: larger, with a dark dense block and saturated
    high-contrast stripes (a crude stand-in for a metal object)."""
    rng = np.random.default_rng(seed + 10_000)
    h, w = 150, 128
    grey = _parcel(rng, h, w)
    grey[20:95, 15:85] = 0.04
    stripes = np.where((np.arange(40) // 2) % 2 == 0, 0.0, 1.0)
    grey[100:140, 40:120] = stripes[:, None]
    return Scan("anomalous", [_to_rgb(rng, grey)])


def check_detector(cls: type[Detector], *, config: Any | None = None) -> None:
    """Check that ``cls`` honours the detector contract, on synthetic scans; takes seconds.

    The checks, in order: the class is well formed (a ``Detector`` subclass with a lower-case
    ``name`` and a ``Config`` dataclass with defaults); ``score`` before ``fit`` raises
    ``NotFittedError``; ``fit`` on a :class:`xadt.training_data.TrainingData` whose scans are made
    afresh at each pass never holds every scan at once, and returns ``self``; ``score`` returns
    one finite ``ScanResult`` per scan, in order, with consistent patches and maps; a scan scores
    the same alone as among others (networks score in evaluation mode); ``state()`` is arrays
    plus JSON and ``from_state`` gives identical results; and an obviously anomalous scan scores
    higher than every normal held-out scan. A detector trained by the engine
    (:class:`xadt.engine.TrainableDetector`) must also lower its training loss (its ``monitor``
    loss, ``loss`` by default) over a short fit, and a fit interrupted by Ctrl-C and resumed from
    its checkpoint must end with exactly the weights of an uninterrupted one.

    Args:
        cls: the detector class.
        config: the config to check it with; default ``cls.Config()``. Keep it small: a
            trainable detector is fitted three times.

    Raises:
        AssertionError: naming the detector and the check that failed.
    """
    problem = detector_class_problem(cls)
    if problem is not None:
        _fail(getattr(cls, "name", cls.__qualname__), "class", problem)
    name = cls.name
    config = cls.Config() if config is None else config
    held_out = normal_scans(N_HELD_OUT, seed=2, prefix="held-out")
    probe = [*held_out, anomalous_scan(seed=3)]

    detector = _call(name, "construct", lambda: cls(config))
    _check_not_fitted(name, detector, held_out[:1])
    with tempfile.TemporaryDirectory(prefix="xadt-check-") as tmp:
        source = _Fresh(name, N_TRAIN, seed=1)
        context = RunContext(checkpoint_dir=Path(tmp) / "checkpoints")
        fitted = _call(name, "fit", lambda: detector.fit(source.data(), context))
        source.verify()
        if fitted is not detector:
            _fail(name, "fit", f"fit returned {fitted!r}, not self")
        if not detector.is_fitted:
            _fail(name, "fit", "is_fitted is False after fit")

        results = _call(name, "score", lambda: detector.score(iter(probe)))
        _check_results(name, probe, results)
        _check_alone(name, detector, probe, results)

        state = _call(name, "state", detector.state)
        reloaded = _call(name, "from_state", lambda: cls.from_state(config, _as_saved(name, state)))
        again = _call(name, "from_state", lambda: reloaded.score(iter(probe)))
        _check_same(name, results, again)

        normal = [r.score for r in results[:-1]]
        if not results[-1].score > max(normal):
            _fail(
                name,
                "anomaly",
                f"an obviously anomalous scan scored {results[-1].score:.6g}, not above the "
                f"normal held-out scans' {', '.join(f'{s:.6g}' for s in normal)}",
            )
        if hasattr(detector, "history_") and hasattr(detector, "build_optimizers"):
            _check_training(name, cls, config, detector, Path(tmp))


def _check_alone(
    name: str, detector: Detector, probe: list[Scan], results: list[ScanResult]
) -> None:
    """A scan scores the same alone as among others: no batch statistics leak into scores."""
    for scan, together in zip(probe[-2:], results[-2:], strict=True):
        (alone,) = _call(name, "score", lambda scan=scan: detector.score([scan]))
        if not math.isclose(alone.score, together.score, rel_tol=1e-5, abs_tol=1e-9):
            _fail(
                name,
                "eval mode",
                f"scan {scan.id!r} scored {alone.score:.8g} alone but {together.score:.8g} "
                "among others; score with networks in evaluation mode (BatchNorm running "
                "statistics), e.g. inside TrainableDetector.inference()",
            )


def _check_training(name: str, cls: type[Detector], config: Any, detector: Any, tmp: Path) -> None:
    """The engine checks: the monitored loss falls; an interrupted fit resumes identically."""
    monitor = getattr(cls, "monitor", "loss")
    history = detector.history_
    first, last = history[0]["train"].get(monitor), history[-1]["train"].get(monitor)
    if first is None:
        _fail(name, "training", f"training_step logged no {monitor!r} loss (cls.monitor)")
    if len(history) < 2 or not last < first:
        losses = [round(h["train"][monitor], 6) for h in history]
        _fail(
            name,
            "training",
            f"a short fit did not lower the training loss {monitor!r}: {losses} over "
            f"{len(history)} epochs; check the optimiser, or give check_detector more epochs",
        )
    epochs = max(getattr(config, "epochs", 2), 2)
    config = dataclasses.replace(config, epochs=epochs)
    whole = cls(config).fit(_Fresh(name, N_TRAIN, seed=1).data(), RunContext())
    folder = tmp / "resume"
    try:
        cls(config).fit(
            _Fresh(name, N_TRAIN, seed=1).data(),
            RunContext(checkpoint_dir=folder, progress=_InterruptIn(epochs)),
        )
    except TrainingInterrupted:
        pass
    else:
        _fail(name, "resume", "Ctrl-C during the last epoch did not stop the fit")
    resumed = _call(
        name,
        "resume",
        lambda: cls(config).fit(
            _Fresh(name, N_TRAIN, seed=1).data(), RunContext(checkpoint_dir=folder, resume=True)
        ),
    )
    a, b = whole.state().tensors, resumed.state().tensors
    differing = sorted(k for k in a if k not in b or not np.array_equal(a[k], b[k]))
    if differing:
        _fail(
            name,
            "resume",
            f"a fit interrupted in epoch {epochs} and resumed ended with other weights than an "
            f"uninterrupted one: {', '.join(differing[:5])}; draw all randomness from torch, "
            "numpy or random (the engine restores their states), never from the clock",
        )


class _InterruptIn(NullProgress):
    """A progress reporter that sends this process Ctrl-C in the first step of an epoch."""

    def __init__(self, epoch: int) -> None:
        self.target, self.current = epoch, 0

    def epoch(self, index: int, total: int, steps: int | None = None) -> None:
        self.current = index

    def update(self, done: int, **values: float) -> None:
        if self.current == self.target and done == 1:
            os.kill(os.getpid(), signal.SIGINT)


class _Fresh:
    """Training scans made afresh at every pass, noting how many are alive at a time."""

    def __init__(self, name: str, n: int, *, seed: int) -> None:
        self.name, self.n, self.seed = name, n, seed
        self.ids = [f"train-{k:02d}" for k in range(n)]
        self.yielded, self.peak_alive = 0, 0
        self._alive: set[int] = set()

    def data(self) -> TrainingData:
        return TrainingData(self.ids, self._load, description="check_detector")

    def _load(self, ids: Sequence[str]) -> Iterator[Scan]:
        for scan_id in ids:
            rng = np.random.default_rng([self.seed, self.ids.index(scan_id)])
            scan = _scan(rng, scan_id)
            token = self.yielded
            self._alive.add(token)
            weakref.finalize(scan, self._alive.discard, token)
            self.yielded += 1
            self.peak_alive = max(self.peak_alive, len(self._alive))
            yield scan
            del scan

    def verify(self) -> None:
        if self.yielded == 0:
            _fail(self.name, "fit", "fit never iterated its scans")
        if self.peak_alive >= self.n:
            _fail(
                self.name,
                "fit",
                f"fit held all {self.n} training scans at once; iterate the data (it may be far "
                "larger than memory) instead of materialising it",
            )


def _check_not_fitted(name: str, detector: Detector, scans: Sequence[Scan]) -> None:
    if detector.is_fitted:
        _fail(name, "not fitted", "is_fitted is True before fit")
    try:
        detector.score(list(scans))
    except NotFittedError:
        return
    except Exception as exc:
        _fail(name, "not fitted", f"score before fit raised {exc!r}, not xadt.NotFittedError")
    _fail(name, "not fitted", "score before fit returned instead of raising NotFittedError")


def _check_results(name: str, scans: Sequence[Scan], results: Any) -> None:
    if not isinstance(results, list) or not all(isinstance(r, ScanResult) for r in results):
        _fail(name, "score", f"score must return a list of ScanResult, got {results!r:.200}")
    if len(results) != len(scans):
        _fail(name, "score", f"score returned {len(results)} results for {len(scans)} scans")
    for scan, result in zip(scans, results, strict=True):
        where = f"result for scan {scan.id!r}"
        if result.scan_id != scan.id:
            _fail(name, "score", f"{where} has scan_id {result.scan_id!r}; order must be kept")
        if not _finite(result.score):
            _fail(name, "score", f"{where} has score {result.score!r}, not a finite number")
        for key, value in result.partial.items():
            if not isinstance(key, str) or not _finite(value):
                _fail(name, "score", f"{where} has partial score {key!r}: {value!r}")
        for patches in result.patches:
            _check_patches(name, where, scan, patches)
        if result.maps and len(result.maps) != len(scan.views):
            _fail(name, "score", f"{where} has {len(result.maps)} maps for {len(scan.views)} views")
        for k, (view, amap) in enumerate(zip(scan.views, result.maps, strict=False)):
            if not isinstance(amap, np.ndarray) or amap.shape != view.shape[:2]:
                shape = getattr(amap, "shape", type(amap).__name__)
                _fail(name, "score", f"{where}: map {k} has shape {shape}, not {view.shape[:2]}")
            if amap.dtype.kind != "f":
                _fail(name, "score", f"{where}: map {k} has dtype {amap.dtype}, not float")


def _check_patches(name: str, where: str, scan: Scan, patches: Any) -> None:
    view, boxes, scores = (getattr(patches, a, None) for a in ("view", "boxes", "scores"))
    if not isinstance(view, int | np.integer) or not 0 <= view < len(scan.views):
        _fail(name, "score", f"{where}: patch view index {view!r} is out of range")
    if not isinstance(boxes, np.ndarray) or boxes.ndim != 2 or boxes.shape[1] != 4:
        _fail(name, "score", f"{where}: patch boxes must be an (N, 4) array")
    if not isinstance(scores, np.ndarray) or scores.shape != (len(boxes),):
        _fail(name, "score", f"{where}: patch scores must be an (N,) array, one per box")
    if boxes.dtype.kind not in "iu" or not np.isfinite(scores).all():
        _fail(name, "score", f"{where}: patch boxes must be integers and patch scores finite")
    h, w = scan.views[view].shape[:2]
    y0, x0, y1, x1 = boxes.T if len(boxes) else (np.zeros(0),) * 4
    if not ((y0 >= 0) & (x0 >= 0) & (y1 <= h) & (x1 <= w) & (y0 < y1) & (x0 < x1)).all():
        _fail(name, "score", f"{where}: a patch box lies outside its {h}x{w} view or is empty")


def _as_saved(name: str, state: Any) -> DetectorState:
    """The state as it comes back from a model file: JSON-parsed meta and copied numeric arrays."""
    if not isinstance(state, DetectorState):
        _fail(name, "state", f"state() must return a DetectorState, got {type(state).__name__}")
    tensors = {}
    for key, array in state.tensors.items():
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
            _fail(name, "state", f"tensor {key!r} is not a numeric numpy array: {array!r:.100}")
        tensors[key] = np.array(array, copy=True)
    try:
        meta = json.loads(json.dumps(state.meta, allow_nan=False))
    except (TypeError, ValueError) as exc:
        _fail(name, "state", f"state().meta does not survive JSON: {exc}")
    return DetectorState(tensors=tensors, meta=meta)


def _check_same(name: str, first: list[ScanResult], second: Any) -> None:
    if not isinstance(second, list) or len(second) != len(first):
        _fail(name, "round trip", "the reloaded detector returned a different number of results")
    for a, b in zip(first, second, strict=True):
        difference = _difference(a, b)
        if difference:
            _fail(
                name,
                "round trip",
                f"from_state(config, state()) scored scan {a.scan_id!r} differently: {difference}",
            )


def _difference(a: ScanResult, b: ScanResult) -> str:
    """How two results differ, or an empty string when they are exactly equal."""
    if a.partial.keys() != b.partial.keys():
        return f"partial score names {sorted(a.partial)} against {sorted(b.partial)}"
    if len(a.patches) != len(b.patches) or len(a.maps) != len(b.maps):
        return "different numbers of patch sets or maps"
    pairs = [("score", a.score, b.score)]
    pairs += [(f"partial {k!r}", a.partial[k], b.partial[k]) for k in a.partial]
    for pa, pb in zip(a.patches, b.patches, strict=True):
        pairs += [("patch boxes", pa.boxes, pb.boxes), ("patch scores", pa.scores, pb.scores)]
    pairs += [("map", ma, mb) for ma, mb in zip(a.maps, b.maps, strict=True)]
    for what, x, y in pairs:
        try:
            np.testing.assert_array_equal(x, y)
        except AssertionError as exc:
            return f"{what}: {exc}"
    return ""


def _call(name: str, check: str, func: Callable[[], Any]) -> Any:
    try:
        return func()
    except AssertionError:
        raise
    except Exception as exc:
        _fail(name, check, f"raised {type(exc).__name__}: {exc}", cause=exc)


def _fail(name: str, check: str, detail: str, cause: BaseException | None = None) -> NoReturn:
    msg = f"check_detector({name}): {check}: {detail}"
    raise AssertionError(msg) from cause


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _scan(rng: np.random.Generator, scan_id: str) -> Scan:
    h, w = int(rng.integers(88, 105)), int(rng.integers(72, 89))
    return Scan(scan_id, [_to_rgb(rng, _parcel(rng, h, w))])


def _parcel(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    grey = 0.78 + 0.06 * (yy / h) - 0.04 * (xx / w)
    for _ in range(int(rng.integers(3, 7))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        sigma, depth = rng.uniform(4, 10), rng.uniform(0.1, 0.3)
        grey -= depth * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    return grey + rng.normal(0, 0.02, (h, w))


def _to_rgb(rng: np.random.Generator, grey: np.ndarray) -> np.ndarray:
    tint = np.array([1.0, 0.95, 0.85]) * rng.uniform(0.97, 1.03, 3)
    rgb = np.clip(grey[..., None] * tint, 0.0, 1.0)
    return np.round(rgb * 255).astype(np.uint8)
