"""The throughput suite behind ``xadt bench``: each kernel against its reference, and each
detector end to end on synthetic parcels, timed honestly (warm-up excluded, median of repeats,
wall and CPU time).

The input builders and the reference implementations live here so that the pytest-benchmark
suites in ``benches/`` time exactly the same things.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import xadt
from xadt.errors import XadtError

__all__ = [
    "DETECTOR_OPTIONS",
    "MEAN",
    "PAD",
    "QUICK_SIZES",
    "STD",
    "BenchReport",
    "BenchRow",
    "KernelSizes",
    "PrecisionCheck",
    "Timing",
    "bench_detector",
    "bench_kernels",
    "check_device",
    "check_precision",
    "extract_numpy",
    "mahalanobis_inputs",
    "mahalanobis_torch",
    "pad_for",
    "patch_inputs",
    "run_bench",
    "spd",
    "synthetic_scans",
    "time_call",
    "topn_excursion_numpy",
    "topn_inputs",
    "versions",
    "window_map_add_at",
]

MEAN = np.array([0.485, 0.456, 0.406])  # ImageNet statistics
STD = np.array([0.229, 0.224, 0.225])
PAD = 255  # white air in a uint8 view
_SCALES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}

# Options that make each detector quick to fit for a benchmark; what is timed is scoring. The
# network detectors train small networks (geom: WRN-10-1 over 8 transforms) for one epoch on
# non-overlapping patches: untrained weights score as fast as trained ones, and scoring then
# tiles without overlap too. gaussian keeps its default backbone and windows and fits in one
# backbone pass (fixed binarisation threshold and shrinkage). Other options keep their defaults.
DETECTOR_OPTIONS: dict[str, dict[str, Any]] = {
    "gaussian": {"binarize": 0.03, "shrinkage": 0.5},
    **{
        name: {"patch": 32, "stride": 32, "downscale": 0.5, "epochs": 1, "batch_size": 64, **small}
        for name, small in {
            "ganomaly": {"width": 8, "latent": 16},
            "skipganomaly": {"width": 8},
            "dsagan": {"width": 4, "levels": 3, "d_width": 8},
        }.items()
    },
    "geom": {
        "patch": 16,
        "stride": 16,
        "downscale": 0.5,
        "transforms": "flip_rot8",
        "widen": 1,
        "epochs": 1,
        "batch_size": 64,
    },
}


@dataclass(frozen=True)
class KernelSizes:
    """Input sizes of the kernel benchmarks.

    The defaults are the sizes of ``benches/``: one 764 × 700 view (a full-size scan's height,
    about the median width) tiled into 36 windows of 224 px; 4096 patches × 1280 features for
    ``mahalanobis``; 1024 images × 1000 logits, n = 12, for ``topn_excursion``.
    """

    height: int = 764
    width: int = 700
    window: int = 224
    stride: int = 112
    maha_rows: int = 4096
    maha_dim: int = 1280
    topn_rows: int = 1024
    topn_dim: int = 1000
    topn_keep: int = 12


QUICK_SIZES = KernelSizes(96, 80, 32, 16, 64, 32, 64, 50, 4)
"""Tiny sizes for a smoke run of the suite (``xadt bench --quick``); not a measurement."""


# ---------------------------------------------------------------------------------------------
# inputs


def patch_inputs(sizes: KernelSizes, seed: int = 0) -> dict[str, Any]:
    """A random uint8 (H, W, 3) view, its tiling into windows and one score per window."""
    from xadt.kernels import tile_boxes

    rng = np.random.default_rng(seed)
    view = rng.integers(0, 256, (sizes.height, sizes.width, 3), dtype=np.uint8)
    boxes = tile_boxes(sizes.height, sizes.width, sizes.window, sizes.stride)
    return {"view": view, "boxes": boxes, "scores": rng.normal(size=len(boxes))}


def spd(rng: np.random.Generator, d: int) -> np.ndarray:
    """Dense symmetric positive definite, eigenvalues log-uniform in [1, 1e3] (condition <= 1e3).

    Three Householder reflections rotate a diagonal matrix: exact spectrum, O(D²) set-up (a QR of
    a random D×D matrix takes seconds on a busy machine).
    """
    p = np.diag(10.0 ** rng.uniform(0, 3, size=d))
    for _ in range(3):
        v = rng.normal(size=d)
        v /= np.linalg.norm(v)
        p = p - 2 * np.outer(v, v @ p)  # H p with H = I - 2 v vᵀ
        p = p - 2 * np.outer(p @ v, v)  # (H p) H
    return p


def mahalanobis_inputs(n: int, d: int, seed: int = 1) -> dict[str, np.ndarray]:
    """float32 rows ``x`` (n, d), ``mean`` and a well-conditioned ``precision``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    mean = rng.normal(size=d).astype(np.float32)
    return {"x": x, "mean": mean, "precision": spd(rng, d).astype(np.float32)}


def topn_inputs(n: int, d: int, seed: int = 2) -> dict[str, np.ndarray]:
    """float32 rows ``x`` (n, d), ``mean``, ``std`` and an inverse correlation ``inv_corr``."""
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, d)) * 2).astype(np.float32)
    mean = rng.normal(size=d).astype(np.float32)
    std = rng.uniform(0.5, 2.0, size=d).astype(np.float32)
    p = spd(rng, d)
    s = 1 / np.sqrt(np.diag(p))
    inv_corr = (p * s[:, None] * s[None, :]).astype(np.float32)
    return {"x": x, "mean": mean, "std": std, "inv_corr": inv_corr}


# ---------------------------------------------------------------------------------------------
# references: the best vectorised numpy or torch known for each kernel


def pad_for(view: np.ndarray, boxes: np.ndarray, pad_value: float) -> tuple[np.ndarray, int, int]:
    """The view padded (np.pad) just enough for every box, and the offsets of its origin."""
    height, width = view.shape[:2]
    top = max(0, -int(boxes[:, 0].min(initial=0)))
    left = max(0, -int(boxes[:, 1].min(initial=0)))
    bottom = max(0, int(boxes[:, 2].max(initial=0)) - height)
    right = max(0, int(boxes[:, 3].max(initial=0)) - width)
    if top or left or bottom or right:
        view = np.pad(view, ((top, bottom), (left, right), (0, 0)), constant_values=pad_value)
    return view, top, left


def extract_numpy(
    view: np.ndarray, boxes: np.ndarray, size: int, mean: Any, std: Any, pad_value: float
) -> np.ndarray:
    """sliding_window_view + fancy indexing of the window origins + one normalising ufunc pass."""
    scale = _SCALES[view.dtype]
    padded, top, left = pad_for(view, boxes, pad_value)
    windows = sliding_window_view(padded, (size, size), axis=(0, 1))  # (H', W', C, size, size)
    patches = windows[boxes[:, 0] + top, boxes[:, 1] + left]  # (N, C, size, size), raw dtype
    mul = (1.0 / (scale * np.asarray(std))).astype(np.float32)[:, None, None]
    add = (-np.asarray(mean) / np.asarray(std)).astype(np.float32)[:, None, None]
    out = np.multiply(patches, mul, dtype=np.float32)
    out += add
    return out


def window_map_add_at(boxes: np.ndarray, scores: np.ndarray, height: int, width: int) -> np.ndarray:
    """np.add.at of each window's score and of 1 onto every pixel it covers."""
    total = np.zeros(height * width)
    count = np.zeros(height * width, dtype=np.int64)
    clipped = np.clip(boxes, 0, [height, width, height, width])
    pixels = [
        (np.arange(y0, y1)[:, None] * width + np.arange(x0, x1)).ravel()
        for y0, x0, y1, x1 in clipped.tolist()
    ]
    if pixels:
        index = np.concatenate(pixels)
        np.add.at(total, index, np.repeat(scores, [p.size for p in pixels]))
        np.add.at(count, index, 1)
    mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return mean.reshape(height, width).astype(np.float32)


def mahalanobis_torch(x: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """The plain torch expression ``((x - m) @ P * (x - m)).sum(1)``."""
    import torch

    xt, mt, pt = (torch.from_numpy(a) for a in (x, mean, precision))
    return ((xt - mt) @ pt * (xt - mt)).sum(1).numpy()


def topn_excursion_numpy(
    x: np.ndarray, mean: np.ndarray, std: np.ndarray, inv_corr: np.ndarray, n: int
) -> np.ndarray:
    """Top-n excursion scores in float64 numpy: one stable argsort over all rows, then
    ``(z̃ @ R * z̃).sum(1)``."""
    z = (np.asarray(x, dtype=np.float64) - np.asarray(mean, dtype=np.float64)) / np.asarray(
        std, dtype=np.float64
    )
    kept = np.argsort(-z, axis=1, kind="stable")[:, :n]
    zt = np.zeros_like(z)
    np.put_along_axis(zt, kept, np.take_along_axis(z, kept, axis=1), axis=1)
    return ((zt @ np.asarray(inv_corr, dtype=np.float64)) * zt).sum(axis=1)


# ---------------------------------------------------------------------------------------------
# timing


@dataclass(frozen=True)
class Timing:
    """Medians over the timed repeats of one call, in seconds per call."""

    wall: float
    cpu: float
    repeats: int
    calls: int  # calls per repeat (short calls are looped so a repeat lasts long enough)


def time_call(
    func: Callable[[], Any], *, repeats: int, min_seconds: float = 0.05, sync: Callable[[], Any]
) -> tuple[Timing, Any]:
    """Time ``func``: one warm-up call and one probe call that sizes the loop (neither counted),
    then ``repeats`` repeats of enough calls to last ``min_seconds``; wall (``perf_counter``) and
    process CPU time (``process_time``, all threads) per call, median over the repeats. ``sync``
    runs after each repeat (a CUDA synchronise) and is timed with it. Returns the timing and the
    last result."""
    func()
    sync()
    start = time.perf_counter()
    result = func()
    sync()
    probe = time.perf_counter() - start
    calls = max(1, min(1000, int(min_seconds / max(probe, 1e-9))))
    walls, cpus = [], []
    for _ in range(repeats):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(calls):
            result = func()
        sync()
        walls.append((time.perf_counter() - wall0) / calls)
        cpus.append((time.process_time() - cpu0) / calls)
    return Timing(statistics.median(walls), statistics.median(cpus), repeats, calls), result


# ---------------------------------------------------------------------------------------------
# the suite


@dataclass
class BenchRow:
    """One line of the table: a kernel (fast path against its reference) or a detector."""

    what: str
    kind: str  # "kernel" or "detector"
    size: str
    device: str
    timing: Timing
    reference: str = ""
    reference_timing: Timing | None = None
    patches: int | None = None  # patches (rows, windows) per call
    scans: int | None = None  # scans per call
    max_rel_diff: float | None = None
    agrees: bool | None = None
    note: str = ""

    @property
    def speedup(self) -> float | None:
        """Reference wall time over fast-path wall time."""
        if self.reference_timing is None:
            return None
        return self.reference_timing.wall / self.timing.wall

    @property
    def patches_per_s(self) -> float | None:
        """Patches (rows, windows) per second of wall time."""
        return None if self.patches is None else self.patches / self.timing.wall

    @property
    def scans_per_s(self) -> float | None:
        """Scans per second of wall time."""
        return None if self.scans is None else self.scans / self.timing.wall

    def to_json(self) -> dict[str, Any]:
        """The row as JSON-ready values, derived figures included."""
        data = dataclasses.asdict(self)
        data.update(
            speedup=self.speedup, patches_per_s=self.patches_per_s, scans_per_s=self.scans_per_s
        )
        return data


@dataclass
class BenchReport:
    """The rows of one run and the machine and versions they came from."""

    device: str
    versions: dict[str, Any]
    rows: list[BenchRow] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return {
            "device": self.device,
            "versions": self.versions,
            "rows": [r.to_json() for r in self.rows],
        }


def versions(device: str) -> dict[str, Any]:
    """xadt, torch and Python versions, the CPU model, threads, load and the GPU if used."""
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info: dict[str, Any] = {
        "xadt": xadt.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    return info


def _agreement(fast: Any, reference: Any, *, rtol: float, atol: float) -> tuple[float, bool]:
    """Largest relative difference |fast − ref| / max(|ref|, atol) and whether they agree."""
    got = fast.cpu().numpy() if hasattr(fast, "cpu") else np.asarray(fast)
    want = np.asarray(reference)
    got, want = got.astype(np.float64), want.astype(np.float64)
    both = np.isfinite(got) & np.isfinite(want)
    same_holes = bool(np.array_equal(np.isnan(got), np.isnan(want)))
    diff = np.abs(got[both] - want[both]) / np.maximum(np.abs(want[both]), atol)
    worst = float(diff.max(initial=0.0))
    return worst, same_holes and bool(np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True))


def _kernel_cases(sizes: KernelSizes) -> list[dict[str, Any]]:
    """What each kernel row runs: its arguments, reference, tolerance and patches per call."""
    from xadt.kernels import extract_patches, mahalanobis, topn_excursion, window_map

    p = patch_inputs(sizes)
    m = mahalanobis_inputs(sizes.maha_rows, sizes.maha_dim)
    t = topn_inputs(sizes.topn_rows, sizes.topn_dim)
    h, w, size, n = sizes.height, sizes.width, sizes.window, len(p["boxes"])
    return [
        {
            "what": "extract_patches",
            "size": f"{h}×{w}×3 uint8, {n} windows of {size}",
            "fast": extract_patches,
            "args": (p["view"], p["boxes"], size, MEAN, STD, PAD),
            "reference": ("vectorised numpy", extract_numpy),
            "device_args": (0,),
            "tol": 1e-5,
            "patches": n,
        },
        {
            "what": "mahalanobis",
            "size": f"N {sizes.maha_rows}, D {sizes.maha_dim}, float32",
            "fast": mahalanobis,
            "args": (m["x"], m["mean"], m["precision"]),
            "reference": ("torch ((x-m)@P*(x-m)).sum(1)", mahalanobis_torch),
            "device_args": (0, 1, 2),
            "tol": 1e-3,
            "patches": sizes.maha_rows,
        },
        {
            "what": "topn_excursion",
            "size": f"N {sizes.topn_rows}, D {sizes.topn_dim}, n {sizes.topn_keep}, float32",
            "fast": topn_excursion,
            "args": (t["x"], t["mean"], t["std"], t["inv_corr"], sizes.topn_keep),
            "reference": ("dense numpy", topn_excursion_numpy),
            "device_args": (0, 1, 2, 3),
            "tol": 1e-4,
            "patches": sizes.topn_rows,
        },
        {
            "what": "window_map",
            "size": f"{n} windows on {h}×{w}",
            "fast": window_map,
            "args": (p["boxes"], p["scores"], h, w),
            "reference": ("numpy np.add.at", window_map_add_at),
            "device_args": (1,),
            "tol": 1e-5,
            "patches": n,
        },
    ]


def _on_device(args: Sequence[Any], which: Sequence[int], device: str) -> tuple[Any, ...]:
    """``args`` with the arrays at the positions ``which`` as torch tensors on ``device``."""
    import torch

    return tuple(
        torch.from_numpy(np.ascontiguousarray(a)).to(device) if k in which else a
        for k, a in enumerate(args)
    )


def bench_kernels(sizes: KernelSizes, device: str, repeats: int) -> list[BenchRow]:
    """Each kernel's fast path against its reference on the same inputs.

    On ``cuda`` the fast path is the CUDA kernel on device tensors and the reference is xadt's
    CPU kernel on the same inputs, so the speed-up is over the CPU figures.
    """
    sync = _synchroniser(device)
    rows = []
    for case in _kernel_cases(sizes):
        ref_name, ref_func = case["reference"]
        if device == "cuda":
            ref_name, ref_func = "xadt CPU kernel", case["fast"]
            fast_args = _on_device(case["args"], case["device_args"], device)
        else:
            fast_args = case["args"]
        timing, fast = time_call(
            functools.partial(case["fast"], *fast_args), repeats=repeats, sync=sync
        )
        ref_timing, want = time_call(
            functools.partial(ref_func, *case["args"]), repeats=repeats, sync=lambda: None
        )
        worst, agrees = _agreement(fast, want, rtol=case["tol"], atol=case["tol"])
        rows.append(
            BenchRow(
                what=case["what"],
                kind="kernel",
                size=case["size"],
                device=device,
                timing=timing,
                reference=ref_name,
                reference_timing=ref_timing,
                patches=case["patches"],
                max_rel_diff=worst,
                agrees=agrees,
            )
        )
    return rows


def synthetic_scans(n: int, *, seed: int, scale: float) -> list[Any]:
    """``n`` normal dual-view parcels from the simulator (``xadt.synth.make_parcel``)."""
    from xadt.synth import make_parcel

    rng = np.random.default_rng(seed)
    return [make_parcel(rng, scale=scale).to_scan(f"bench-{seed}-{k:03d}") for k in range(n)]


def bench_detector(
    name: str,
    *,
    device: str,
    scans: int,
    fit_scans: int,
    scale: float,
    repeats: int,
    overrides: Sequence[str] = (),
) -> BenchRow:
    """Fit detector ``name`` on ``fit_scans`` parcels (with :data:`DETECTOR_OPTIONS`, then the
    ``--set`` pairs ``overrides``), then time its scoring of ``scans`` other parcels: one
    warm-up scan, then ``repeats`` rounds."""
    from xadt.context import RunContext
    from xadt.training_data import TrainingData
    from xadt.workflows.train import build_detector

    context = RunContext(device=device, seed=0)
    cls = context.plugins().get_detector(name)
    options = DETECTOR_OPTIONS.get(name, {})
    detector = build_detector(cls, overrides, options=options)
    detector.fit(TrainingData.from_scans(synthetic_scans(fit_scans, seed=1, scale=scale)), context)
    scored = synthetic_scans(scans, seed=2, scale=scale)
    detector.score(scored[:1], context)  # warm-up: lazy loads, allocator, kernels' first calls
    sync = _synchroniser(device)
    walls, cpus = [], []
    for _ in range(repeats):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        results = detector.score(scored, context)
        sync()
        walls.append(time.perf_counter() - wall0)
        cpus.append(time.process_time() - cpu0)
    if len(results) != scans or not all(np.isfinite(r.score) for r in results):
        msg = f"bench: {name} did not return one finite score per scan"
        raise XadtError(msg)
    height = scored[0].views[0].shape[0]
    views = len(scored[0].views)
    what = ", ".join([*(f"{k}={v}" for k, v in options.items()), *overrides]) or "default options"
    return BenchRow(
        what=name,
        kind="detector",
        size=f"{scans} parcel{'s' if scans > 1 else ''}, {views} views {height} px high",
        device=device,
        timing=Timing(statistics.median(walls), statistics.median(cpus), repeats, 1),
        scans=scans,
        note=f"fitted on {fit_scans} parcels; {what}; time of detector.score",
    )


@dataclass(frozen=True)
class PrecisionCheck:
    """gaussian's scores with the backbone in half precision against float32 on the same scans.

    Attributes:
        precision: the half precision (``bfloat16`` or ``float16``).
        device: where the backbone ran.
        normal: normal test parcels scored.
        threats: parcels with a threat scored.
        max_rel_diff: per score (``score`` and each partial score), the largest
            ``|half - float32| / |float32|`` over the parcels.
        auroc_float32: AUROC of the scan scores (threat against normal) under float32.
        auroc_half: the same under ``precision``.
        timing_float32: wall and CPU seconds of scoring every parcel under float32.
        timing_half: the same under ``precision``.
    """

    precision: str
    device: str
    normal: int
    threats: int
    max_rel_diff: dict[str, float]
    auroc_float32: float
    auroc_half: float
    timing_float32: Timing
    timing_half: Timing

    def to_json(self) -> dict[str, Any]:
        """The check as JSON-ready values."""
        return dataclasses.asdict(self)


def check_precision(
    precision: str = "bfloat16",
    *,
    device: str = "cpu",
    fit_scans: int = 8,
    normal: int = 8,
    threats: int = 8,
    scale: float = 0.5,
    seed: int = 0,
    overrides: Sequence[str] = (),
) -> PrecisionCheck:
    """Fit ``gaussian`` (float32, :data:`DETECTOR_OPTIONS`) on synthetic normal parcels, then
    score ``normal`` normal parcels and ``threats`` parcels with a threat (``xadt.synth``, data
    set ``seed``) with the backbone in float32 and in ``precision``, and compare.

    Only scoring changes precision: the fitted model is the same, as when a user scores a
    float32 model with ``--set precision=...``. ``overrides`` are further ``--set`` pairs
    (e.g. ``channels_last=true``) applied to both runs.

    Raises:
        XadtError: a precision other than bfloat16 or float16, or one the device cannot run.
    """
    if precision not in ("bfloat16", "float16"):
        msg = f"--precision: expected bfloat16 or float16, got {precision!r}"
        raise XadtError(msg)
    from xadt.context import RunContext
    from xadt.metrics import auroc
    from xadt.synth.dataset import iter_split
    from xadt.training_data import TrainingData
    from xadt.workflows.train import build_detector

    context = RunContext(device=device, seed=0)
    cls = context.plugins().get_detector("gaussian")
    detector = build_detector(cls, overrides, options=DETECTOR_OPTIONS["gaussian"])
    train = [s.to_scan(i) for i, s in iter_split(seed, "train-normal", fit_scans, scale=scale)]
    detector.fit(TrainingData.from_scans(train), context)
    scans = [
        s.to_scan(i)
        for split, n in (("test-normal", normal), ("test-threat", threats))
        for i, s in iter_split(seed, split, n, scale=scale)
    ]
    labels = [0] * normal + [1] * threats
    fitted_config = detector.config
    runs = {}
    for name in ("float32", precision):
        detector.config = dataclasses.replace(fitted_config, precision=name)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        results = detector.score(scans, context)
        _synchroniser(device)()
        timing = Timing(time.perf_counter() - wall0, time.process_time() - cpu0, 1, 1)
        runs[name] = (results, timing)
    detector.config = fitted_config
    (full, full_time), (half, half_time) = runs["float32"], runs[precision]
    names = ["score", *full[0].partial]
    diffs = {
        key: _agreement(
            [_value(r, key) for r in half], [_value(r, key) for r in full], rtol=0, atol=1e-12
        )[0]
        for key in names
    }
    return PrecisionCheck(
        precision=precision,
        device=device,
        normal=normal,
        threats=threats,
        max_rel_diff=diffs,
        auroc_float32=auroc(labels, [r.score for r in full]),
        auroc_half=auroc(labels, [r.score for r in half]),
        timing_float32=full_time,
        timing_half=half_time,
    )


def _value(result: Any, key: str) -> float:
    return float(result.score if key == "score" else result.partial[key])


def _synchroniser(device: str) -> Callable[[], Any]:
    """What waits for queued GPU work before a clock is read: nothing on the CPU."""
    import torch

    return torch.cuda.synchronize if device == "cuda" else lambda: None


def check_device(device: str) -> None:
    """Raise ``XadtError`` unless ``device`` is cpu, or cuda with a GPU and CUDA kernels."""
    if device == "cpu":
        return
    if device != "cuda":
        msg = f"--device: expected cpu or cuda, got {device!r}"
        raise XadtError(msg)
    import torch

    from xadt import _kernels

    if not torch.cuda.is_available():
        msg = "--device cuda: torch sees no CUDA GPU on this machine; use --device cpu"
        raise XadtError(msg)
    if not _kernels.cuda_compiled:
        msg = "--device cuda: xadt was built without its CUDA kernels (no nvcc, or XADT_CUDA=OFF)"
        raise XadtError(msg)


def run_bench(
    *,
    device: str = "cpu",
    plugins: Iterable[str] | None = None,
    scans: int = 2,
    fit_scans: int = 2,
    scale: float = 1.0,
    sizes: KernelSizes | None = None,
    repeats: int = 3,
    overrides: Sequence[str] = (),
    progress: Callable[[str], None] = lambda _: None,
) -> BenchReport:
    """Run the suite: the four kernels, then each detector in ``plugins`` (None: every installed
    one), with the ``--set`` pairs ``overrides`` on top of its quick options. ``progress`` is
    told what runs next.

    Raises:
        XadtError: an unusable device, an unknown detector, or a detector that fails.
    """
    check_device(device)
    if scans < 1 or fit_scans < 1 or repeats < 1:
        msg = "--scans: scans, fit scans and repeats must each be at least 1"
        raise XadtError(msg)
    from xadt.context import RunContext

    names = list(plugins) if plugins is not None else RunContext().plugins().detector_names()
    report = BenchReport(device=device, versions=versions(device))
    progress("kernels")
    report.rows.extend(bench_kernels(sizes or KernelSizes(), device, repeats))
    for name in names:
        progress(name)
        report.rows.append(
            bench_detector(
                name,
                device=device,
                scans=scans,
                fit_scans=fit_scans,
                scale=scale,
                repeats=repeats,
                overrides=overrides,
            )
        )
    return report
