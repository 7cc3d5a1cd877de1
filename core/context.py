"""The run context: what a command hands a detector besides its data and options.

Device, seed, determinism, worker count, progress, the checkpoint and cache folders and the plugin
registry travel together in one :class:`RunContext`, built once by the caller (the CLI, a test, a
Python user) and passed down, so that no detector guesses them from the environment.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from xadt.errors import XadtError

if TYPE_CHECKING:
    import torch

    from xadt.host import Registry

__all__ = ["DEVICES", "NullProgress", "ProgressReporter", "RunContext", "resolve_device"]

DEVICES = ("auto", "cpu", "cuda")
"""Device names a user may give; ``cuda:N`` names one GPU. ``auto`` is CUDA when present."""


class ProgressReporter(Protocol):
    """Where long work reports how far it is: stages, epochs and steps.

    A stage is a named piece of work with an optional total (``"fitting"``, 120 scans); an epoch
    is one pass of a training loop; ``update`` moves the current stage or epoch on and may carry
    running values (losses) to show beside it.
    """

    def stage(self, name: str, total: int | None = None) -> None:
        """Start a stage called ``name`` of ``total`` units (None when unknown)."""

    def epoch(self, index: int, total: int, steps: int | None = None) -> None:
        """Start epoch ``index`` (1-based) of ``total``, of ``steps`` steps."""

    def update(self, done: int, **values: float) -> None:
        """``done`` units of the current stage or epoch are finished; ``values`` to show."""

    def within(self, item: str, done: int, total: int) -> None:
        """Progress inside one unit of the stage: ``done`` of ``total`` windows of a large scan
        ``item`` are scored (optional: see :func:`report_within`)."""


def report_within(progress: ProgressReporter, item: str, done: int, total: int) -> None:
    """Call ``progress.within``; reporters written before that method existed show nothing."""
    within = getattr(progress, "within", None)
    if within is not None:
        within(item, done, total)


class NullProgress:
    """A :class:`ProgressReporter` that shows nothing (the default outside the CLI)."""

    def stage(self, name: str, total: int | None = None) -> None:
        """Ignore the stage."""

    def epoch(self, index: int, total: int, steps: int | None = None) -> None:
        """Ignore the epoch."""

    def update(self, done: int, **values: float) -> None:
        """Ignore the update."""

    def within(self, item: str, done: int, total: int) -> None:
        """Ignore the progress inside a unit."""


@dataclass(frozen=True)
class RunContext:
    """How to run a fit or a scoring job; everything a detector may not guess for itself.

    Attributes:
        device: ``"auto"`` (CUDA when torch sees a GPU, else CPU), ``"cpu"``, ``"cuda"`` or
            ``"cuda:N"``; :meth:`torch_device` resolves it.
        seed: seeds Python, numpy and torch and the order of training data.
        deterministic: ask torch for deterministic algorithms (slower on GPUs; CPU training
            resumes bit for bit either way).
        workers: worker processes for data loading; 0 loads in the calling process.
        mixed_precision: train networks in bfloat16/float16 autocast on CUDA (ignored on CPU).
        progress: where long work reports progress.
        checkpoint_dir: folder for training checkpoints; None keeps none (no resume).
        resume: continue from the latest checkpoint in ``checkpoint_dir``.
        cache_dir: folder for caches that outlive a run (features, patch stores); None means a
            temporary folder removed at the end of the run.
        registry: the plugin registry, built once by the caller; None builds it on first use.
    """

    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    workers: int = 0
    mixed_precision: bool = False
    progress: ProgressReporter = field(default_factory=NullProgress)
    checkpoint_dir: Path | None = None
    resume: bool = False
    cache_dir: Path | None = None
    registry: Registry | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_device(self.device)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            msg = f"--seed must be an integer >= 0; got {self.seed!r}"
            raise XadtError(msg)
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            msg = f"--workers must be an integer >= 0; got {self.workers!r}"
            raise XadtError(msg)
        if self.resume and self.checkpoint_dir is None:
            msg = "--resume needs a checkpoint folder to resume from"
            raise XadtError(msg)
        for name in ("checkpoint_dir", "cache_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))

    def plugins(self) -> Registry:
        """The plugin registry: the one the caller passed, or one loaded now and kept."""
        if self.registry is None:
            from xadt.host import load_registry

            object.__setattr__(self, "registry", load_registry())
        assert self.registry is not None
        return self.registry

    def torch_device(self) -> torch.device:
        """The torch device to run on; ``XadtError`` when CUDA is asked for but absent."""
        return resolve_device(self.device)

    def replace(self, **changes: Any) -> RunContext:
        """A copy with ``changes`` applied (the registry is shared, not rebuilt)."""
        return dataclasses.replace(self, **changes)


def check_device(device: str) -> None:
    """Raise ``XadtError`` unless ``device`` is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    if isinstance(device, str):
        kind, _, index = device.partition(":")
        if device in DEVICES or (kind == "cuda" and index.isdigit()):
            return
    msg = f"--device must be auto, cpu, cuda or cuda:N; got {device!r}"
    raise XadtError(msg)


def resolve_device(device: str) -> torch.device:
    """The torch device that ``device`` names on this machine.

    Raises:
        XadtError: CUDA named on a machine where torch sees no GPU (or not that many GPUs).
    """
    import torch

    check_device(device)
    if device == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if device == "auto":
        return torch.device("cuda" if available else "cpu")
    if not available:
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        msg = (
            f"--device {device}: CUDA is not available here (torch {torch.__version__}, "
            f"{build}, no GPU visible); use --device cpu or auto"
        )
        raise XadtError(msg)
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        msg = (
            f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s); "
            f"name one of cuda:0..cuda:{torch.cuda.device_count() - 1}"
        )
        raise XadtError(msg)
    return torch.device(device)
