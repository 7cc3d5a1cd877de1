"""The training engine: one loop for every detector that trains a network.

A :class:`TrainableDetector` supplies its networks, optimisers and a ``training_step`` (and
optionally a ``validation_step``); :func:`run` owns the rest — epochs, device placement, seeding
(Python, numpy, torch, the data order), deterministic mode, mixed precision on CUDA, gradient
clipping, progress with running losses, a JSON-lines log of losses per epoch, checkpoints every
epoch (:mod:`xadt.checkpoints`), resuming bit for bit on CPU, Ctrl-C that stops at the end of the
current step, and model selection without test labels (the final epoch, or the lowest validation
loss on held-out normal scans).

The detector never touches a process group. Under torch DDP (:mod:`xadt.ddp`: ``torchrun`` or
``xadt train --engine ddp``) the engine gives each rank an equal slice of every global batch,
averages gradients before each optimiser step, logs losses averaged over the ranks, and lets
rank 0 alone write checkpoints and the log; all ranks resume from rank 0's checkpoint. Closed-form
detectors (``gaussian``) do not use the engine.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
import math
import random
import signal
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, Self

import numpy as np
import torch

from xadt import ddp
from xadt.allocator import keep_freed_memory
from xadt.checkpoints import Checkpoint, load_latest, save_checkpoint
from xadt.config import config_to_json, option, runtime_options
from xadt.context import RunContext
from xadt.detector import Detector, DetectorState, meta_value
from xadt.errors import NotFittedError, TrainingInterrupted, XadtError
from xadt.training_data import TrainingData

__all__ = [
    "LOG_FILE",
    "Batches",
    "Step",
    "TrainableDetector",
    "TrainingInterrupted",
    "TrainingOptions",
    "run",
]

LOG_FILE = "log.jsonl"
"""The JSON-lines file of per-epoch losses in the checkpoint folder."""


@dataclass
class TrainingOptions:
    """Options every trainable detector has; a plugin's ``Config`` subclasses this dataclass."""

    epochs: int = option(
        15, help="passes over the training data", check=(lambda v: v >= 1, "an integer >= 1")
    )
    batch_size: int = option(
        64, help="training images per optimiser step", check=(lambda v: v >= 1, "an integer >= 1")
    )
    select: Literal["final", "validation"] = option(
        "final",
        help="which epoch's weights the model keeps: the final one, or the one with the lowest "
        "validation loss on held-out normal scans (never test labels)",
    )
    grad_clip: float | None = option(
        None,
        help="clip each optimiser's gradient norm to this value; None = no clipping",
        check=(lambda v: v > 0, "a float > 0, or None"),
    )


class Batches(Protocol):
    """Where a trainable detector's training batches come from.

    Attributes:
        info: what the networks need to know about the data (channels, image size), JSON-ready;
            stored with the model so that ``from_state`` can rebuild the networks.
        validation: batches of the validation scans, or None when there are none.
    """

    info: dict[str, Any]
    validation: Batches | None

    def __len__(self) -> int:
        """Batches per epoch."""

    def epoch(self, epoch: int) -> Iterable[torch.Tensor]:
        """The batches of ``epoch`` (1-based), in an order fixed by the seed and the epoch.

        Under DDP every rank gets the same global batches here; the engine gives each rank its
        slice, so a ``Batches`` never shards by rank itself.
        """


@dataclass
class Step:
    """What ``training_step`` and ``validation_step`` get besides the batch.

    Attributes:
        nets: the networks by name, on the device (possibly wrapped by the engine).
        device: the torch device.
        epoch: the current epoch, 1-based.
        index: the step within the epoch, 0-based.
    """

    nets: dict[str, torch.nn.Module]
    device: torch.device
    epoch: int
    index: int
    _engine: _Engine = field(repr=False)

    def optimize(self, name: str, loss: torch.Tensor) -> None:
        """Back-propagate ``loss`` and step optimiser ``name`` (clipping and scaling included).

        The optimiser's gradients are zeroed first, so several optimisers can step in the order
        the method needs (a GAN's discriminator, then its generator).
        """
        self._engine.optimize(name, loss)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Mixed precision for the forward pass when the run asks for it (CUDA only)."""
        return self._engine.autocast()

    def mean(self, value: float) -> float:
        """``value`` averaged over the training processes (itself in one process), for a
        decision every process must take alike, such as re-initialising a network."""
        return ddp.mean(value, self.device)


class TrainableDetector(Detector):
    """A detector that trains networks through the engine.

    Subclasses implement :meth:`batches`, :meth:`build_networks`, :meth:`build_optimizers`,
    :meth:`training_step` and ``score`` (in evaluation mode, see :meth:`inference`); optionally
    :meth:`validation_step` for ``select='validation'``. ``fit``, ``state`` and ``from_state``
    come from here: the networks' weights are the model's tensors, ``batches(...).info`` and the
    loss history its metadata.

    Fitted attributes: ``nets_`` (the networks, in evaluation mode), ``history_`` (one dict of
    mean losses per epoch), ``selected_epoch_``, ``info_``.
    """

    Config: ClassVar[type] = TrainingOptions
    config: TrainingOptions

    def __init__(self, config: Any | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.nets_: dict[str, torch.nn.Module] | None = None
        self.history_: list[dict[str, Any]] = []
        self.selected_epoch_: int | None = None
        self.info_: dict[str, Any] = {}

    # -- what a subclass supplies ----------------------------------------------------------------

    @abc.abstractmethod
    def batches(self, data: TrainingData, context: RunContext) -> Batches:
        """The training batches of ``data`` (and of ``data.validation``)."""

    @abc.abstractmethod
    def build_networks(self, info: Mapping[str, Any]) -> dict[str, torch.nn.Module]:
        """Fresh networks for data described by ``info`` (``Batches.info``)."""

    @abc.abstractmethod
    def build_optimizers(
        self, nets: Mapping[str, torch.nn.Module]
    ) -> dict[str, torch.optim.Optimizer]:
        """The optimisers, by the names ``Step.optimize`` uses."""

    @abc.abstractmethod
    def training_step(self, step: Step, batch: torch.Tensor) -> dict[str, float]:
        """One optimisation step on ``batch``; returns the losses to log (floats)."""

    def validation_step(self, step: Step, batch: torch.Tensor) -> dict[str, float]:
        """Losses of a validation batch (no optimisation), with the selection loss as ``loss``.

        Called under ``torch.no_grad`` with the networks in evaluation mode. The default has no
        validation loss, so ``select='validation'`` is refused.
        """
        msg = f"{self.name}: this detector has no validation loss; set select=final"
        raise XadtError(msg)

    # -- the contract ----------------------------------------------------------------------------

    def default_validation(self) -> float:
        """A tenth of the training scans when the model is selected on validation loss."""
        return 0.1 if self.config.select == "validation" else 0.0

    @property
    def is_fitted(self) -> bool:
        """Whether ``score`` can run (after ``fit`` or ``from_state``)."""
        return self.nets_ is not None

    def fit(self, data: TrainingData, context: RunContext | None = None) -> Self:
        """Train the networks through the engine; see :func:`run`. Returns ``self``."""
        self.validate()
        run(self, data, context or RunContext())
        return self

    def networks(self) -> dict[str, torch.nn.Module]:
        """The fitted networks; ``NotFittedError`` before ``fit``."""
        self.check_fitted()
        assert self.nets_ is not None
        return self.nets_

    @contextlib.contextmanager
    def inference(self, context: RunContext | None = None) -> Iterator[torch.device]:
        """Networks in evaluation mode on the context's device, gradients off; yields the device.

        BatchNorm then uses its running statistics, so a scan's score does not depend on the
        other scans in a batch.
        """
        device = (context or RunContext()).torch_device()
        keep_freed_memory()
        nets = self.networks()
        for net in nets.values():
            net.to(device).eval()
        with torch.inference_mode():
            yield device

    def state(self) -> DetectorState:
        """The networks' weights (``net.<name>.<parameter>``) and, as metadata, the data info,
        the loss history and the selected epoch."""
        tensors = _net_tensors(self.networks())
        meta = {
            "info": self.info_,
            "history": self.history_,
            "selected_epoch": self.selected_epoch_,
        }
        return DetectorState(tensors, meta)

    @classmethod
    def from_state(cls, config: Any, state: DetectorState) -> Self:
        """Rebuild the networks from the stored data info and load their weights strictly."""
        detector = cls(config)
        detector.validate()
        info = meta_value(cls.name, state.meta, "info")
        if not isinstance(info, dict):
            msg = f"{cls.name}: model metadata 'info' is not a mapping"
            raise NotFittedError(msg)
        nets = detector.build_networks(info)
        for name, net in nets.items():
            try:
                net.load_state_dict(_state_dict(state.tensors, name), strict=True)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0]
                msg = f"{cls.name}: the model's weights do not fit network {name!r}: {first}"
                raise XadtError(msg) from None
            net.eval()
        detector.nets_ = nets
        detector.info_ = info
        detector.history_ = list(state.meta.get("history") or [])
        detector.selected_epoch_ = state.meta.get("selected_epoch")
        return detector


def run(detector: TrainableDetector, data: TrainingData, context: RunContext) -> None:
    """Train ``detector`` on ``data``: the engine's loop (see the module docstring).

    Raises:
        TrainingInterrupted: Ctrl-C; the last completed epoch's checkpoint is kept.
        XadtError: a checkpoint that belongs to another run, ``select='validation'`` without
            validation scans, or a non-finite loss.
    """
    _Engine(detector, context).run(data)


class _Engine:
    def __init__(self, detector: TrainableDetector, context: RunContext) -> None:
        self.detector, self.context = detector, context
        self.config: TrainingOptions = detector.config
        self.device = context.torch_device()
        self.rank, self.world_size = ddp.world()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.nets: dict[str, torch.nn.Module] = {}
        self.scaler: torch.amp.GradScaler | None = None
        self.stop = threading.Event()

    # -- the loop --------------------------------------------------------------------------------

    def run(self, data: TrainingData) -> None:
        context, config, detector = self.context, self.config, self.detector
        keep_freed_memory()
        _seed_everything(context.seed, deterministic=context.deterministic)
        self._check_world()
        # With a cache folder the other ranks wait and then reuse what rank 0 cached (a patch
        # store); without one each rank builds its own, all at once.
        first = ddp.main_first() if context.cache_dir is not None else contextlib.nullcontext()
        with first:
            batches = detector.batches(data, context)
        if config.select == "validation" and (
            batches.validation is None or not len(batches.validation)
        ):
            msg = (
                f"{detector.name}: select='validation' needs held-out validation scans, but "
                "there are none; pass --validation 0.1 (a fraction of the training scans)"
            )
            raise XadtError(msg)
        self.nets = {k: v.to(self.device) for k, v in detector.build_networks(batches.info).items()}
        ddp.broadcast_weights(self.nets)
        self.optimizers = detector.build_optimizers(self.nets)
        if context.mixed_precision and self.device.type == "cuda":
            self.scaler = torch.amp.GradScaler("cuda")
        fingerprint = _fingerprint(detector, data, batches.info, context.seed)
        history: list[dict[str, Any]] = []
        best: tuple[float, int, dict[str, np.ndarray]] | None = None
        start = 1
        if context.resume:
            start, history, best = self._resume(fingerprint)
        folder = context.checkpoint_dir
        completed = start - 1
        with self._sigint():
            for epoch in range(start, config.epochs + 1):
                losses = self._train_epoch(batches, epoch, folder, completed)
                ddp.average_buffers(self.nets)
                record: dict[str, Any] = {"epoch": epoch, "train": losses}
                if batches.validation is not None and len(batches.validation):
                    record["validation"] = self._validate(batches.validation, epoch)
                history.append(record)
                if config.select == "validation":
                    loss = record["validation"]["loss"]
                    if best is None or loss < best[0]:
                        best = (loss, epoch, _net_tensors(self.nets))
                if folder is not None and self.rank == 0:
                    self._checkpoint(folder, epoch, history, best, fingerprint)
                ddp.barrier()
                completed = epoch
        if best is not None:
            self._load_weights(best[2])
        for net in self.nets.values():
            net.eval()
        detector.nets_ = self.nets
        detector.history_ = history
        detector.selected_epoch_ = best[1] if best is not None else config.epochs
        detector.info_ = dict(batches.info)

    def _train_epoch(
        self, batches: Batches, epoch: int, folder: Path | None, completed: int
    ) -> dict[str, float]:
        progress = self.context.progress
        progress.epoch(epoch, self.config.epochs, len(batches))
        for net in self.nets.values():
            net.train()
        sums: dict[str, float] = {}
        count = 0
        for index, batch in enumerate(batches.epoch(epoch)):
            batch = self._shard(batch)
            if not len(batch):
                continue
            step = Step(self.nets, self.device, epoch, index, self)
            losses = self.detector.training_step(step, batch.to(self.device, non_blocking=True))
            losses, stop = ddp.reduce_step(losses, self.stop.is_set(), self.device)
            for key, value in losses.items():
                if not math.isfinite(value):
                    msg = (
                        f"{self.detector.name}: training loss {key!r} became {value} in epoch "
                        f"{epoch}, step {index}; lower the learning rate or set grad_clip"
                    )
                    raise XadtError(msg)
                sums[key] = sums.get(key, 0.0) + float(value)
            count += 1
            progress.update(index + 1, **{k: v / count for k, v in sums.items()})
            if stop:
                raise TrainingInterrupted(epoch, folder, completed)
        return {k: v / max(count, 1) for k, v in sums.items()}

    def _check_world(self) -> None:
        if self.config.batch_size % self.world_size:
            msg = (
                f"The 'batch_size' option of {self.detector.name} must be a multiple of the "
                f"{self.world_size} training processes (--nproc), so that each takes an equal "
                f"share of every batch. Got {self.config.batch_size} instead."
            )
            raise XadtError(msg)

    def _shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's equal share of a global batch; a last batch that does not split evenly
        loses its remainder (fewer than ``world_size`` items), so every rank draws alike."""
        if self.world_size == 1:
            return batch
        even = len(batch) - len(batch) % self.world_size
        return ddp.shard(batch[:even], self.rank, self.world_size)

    def _validate(self, batches: Batches, epoch: int) -> dict[str, float]:
        for net in self.nets.values():
            net.eval()
        sums: dict[str, float] = {}
        count = 0
        with torch.no_grad():
            for index, whole in enumerate(batches.epoch(epoch)):
                batch = ddp.shard(whole, self.rank, self.world_size)
                if not len(batch):
                    continue
                step = Step(self.nets, self.device, epoch, index, self)
                losses = self.detector.validation_step(step, batch.to(self.device))
                weight = len(batch)
                for key, value in losses.items():
                    sums[key] = sums.get(key, 0.0) + float(value) * weight
                count += weight
        return ddp.reduce_sums(sums, count, self.device)

    def optimize(self, name: str, loss: torch.Tensor) -> None:
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        params = [p for group in optimizer.param_groups for p in group["params"]]
        ddp.average_gradients(params)  # before unscaling, so every rank sees the same infs
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.scaler is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=torch.float16)

    @contextlib.contextmanager
    def _sigint(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(_signum: int, _frame: Any) -> None:
            if self.stop.is_set():  # a second Ctrl-C: stop now
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            self.stop.set()

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    # -- weights and checkpoints -----------------------------------------------------------------

    def _load_weights(self, tensors: Mapping[str, np.ndarray]) -> None:
        for name, net in self.nets.items():
            net.load_state_dict(_state_dict(tensors, name))

    def _checkpoint(
        self,
        folder: Path,
        epoch: int,
        history: list[dict[str, Any]],
        best: tuple[float, int, dict[str, np.ndarray]] | None,
        fingerprint: str,
    ) -> None:
        tensors = _net_tensors(self.nets)
        state: dict[str, Any] = {"history": history, "fingerprint": fingerprint, "optimizers": {}}
        for name, optimizer in self.optimizers.items():
            arrays, settings = _optimizer_state(optimizer)
            tensors.update({f"optim.{name}.{k}": v for k, v in arrays.items()})
            state["optimizers"][name] = settings
        rng_tensors, rng_state = _rng_state()
        tensors.update(rng_tensors)
        state["rng"] = rng_state
        best_epoch = None
        if best is not None:
            state["best"] = {"loss": best[0], "epoch": best[1]}
            best_epoch = best[1]
        save_checkpoint(folder, Checkpoint(epoch, tensors, state, best_epoch))
        with (folder / LOG_FILE).open("a", encoding="utf-8") as log:
            log.write(json.dumps(history[-1], allow_nan=False) + "\n")

    def _resume(
        self, fingerprint: str
    ) -> tuple[int, list[dict[str, Any]], tuple[float, int, dict[str, np.ndarray]] | None]:
        folder = self.context.checkpoint_dir
        assert folder is not None
        checkpoint = load_latest(folder)
        if checkpoint is None:
            return 1, [], None
        if checkpoint.state.get("fingerprint") != fingerprint:
            msg = (
                f"{folder}: the checkpoint there belongs to another training run (other data, "
                "options or seed); remove the folder, or train without --resume"
            )
            raise XadtError(msg)
        self._load_weights(checkpoint.tensors)
        for name, optimizer in self.optimizers.items():
            prefix = f"optim.{name}."
            arrays = {
                k[len(prefix) :]: v for k, v in checkpoint.tensors.items() if k.startswith(prefix)
            }
            _load_optimizer_state(optimizer, arrays, checkpoint.state["optimizers"][name])
        _set_rng_state(checkpoint.tensors, checkpoint.state["rng"])
        best = None
        if "best" in checkpoint.state:
            loss, epoch = checkpoint.state["best"]["loss"], checkpoint.state["best"]["epoch"]
            weights = checkpoint.tensors
            if epoch != checkpoint.epoch:
                stored = load_latest(folder, best=True)
                assert stored is not None
                weights = stored.tensors
            best = (
                float(loss),
                int(epoch),
                {k: v for k, v in weights.items() if k.startswith("net.")},
            )
        history = list(checkpoint.state["history"])
        # A kill between the checkpoint and its log line leaves the log behind or ahead of the
        # checkpoint: the checkpoint's history is the record, so the log is written from it.
        if self.rank == 0:
            _write_log(folder / LOG_FILE, history)
        return checkpoint.epoch + 1, history, best


def _net_tensors(nets: Mapping[str, torch.nn.Module]) -> dict[str, np.ndarray]:
    """Every network's state as ``net.<name>.<key>`` arrays (copies, safe to keep)."""
    return {
        f"net.{name}.{key}": value.detach().cpu().numpy().copy()
        for name, net in nets.items()
        for key, value in net.state_dict().items()
    }


def _state_dict(tensors: Mapping[str, np.ndarray], name: str) -> dict[str, torch.Tensor]:
    """The state dict of network ``name`` from :func:`_net_tensors`' arrays."""
    prefix = f"net.{name}."
    return {
        k[len(prefix) :]: torch.from_numpy(np.array(v))
        for k, v in tensors.items()
        if k.startswith(prefix)
    }


def _fingerprint(
    detector: TrainableDetector, data: TrainingData, info: Mapping[str, Any], seed: int
) -> str:
    """What a checkpoint must match to be resumed: detector, learned options, data, seed.

    ``epochs`` is left out, so a finished or interrupted run can be resumed to train longer.
    """
    free = runtime_options(type(detector.config)) | {"epochs"}
    config = {k: v for k, v in config_to_json(detector.config).items() if k not in free}
    text = json.dumps(
        {
            "detector": detector.name,
            "config": config,
            "info": dict(info),
            "ids": list(data.ids),
            "validation": list(data.validation.ids),
            "seed": seed,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _seed_everything(seed: int, *, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - plugins may draw from numpy's global RNG
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def _rng_state() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state().numpy()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state.numpy()
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    tensors["rng.numpy"] = np.asarray(keys, dtype=np.uint32)
    version, internal, gauss_next = random.getstate()
    state = {
        "numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached": cached},
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
    }
    return tensors, state


def _set_rng_state(tensors: Mapping[str, np.ndarray], state: Mapping[str, Any]) -> None:
    torch.set_rng_state(torch.from_numpy(np.array(tensors["rng.torch"], dtype=np.uint8)))
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            key = f"rng.cuda.{i}"
            if key in tensors:
                torch.cuda.set_rng_state(torch.from_numpy(np.array(tensors[key])), i)
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (n["kind"], np.array(tensors["rng.numpy"]), n["pos"], n["has_gauss"], n["cached"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


def _optimizer_state(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """An optimiser's state split into arrays (for safetensors) and JSON."""
    state_dict = optimizer.state_dict()
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state_dict["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                arrays[f"{index}.{key}"] = value.detach().cpu().numpy()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return arrays, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _load_optimizer_state(
    optimizer: torch.optim.Optimizer, arrays: Mapping[str, np.ndarray], settings: Mapping[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in arrays.items():
        index, _, name = key.partition(".")
        state.setdefault(int(index), {})[name] = torch.from_numpy(np.array(value))
    for index, values in settings.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": settings["param_groups"]})


def _write_log(log: Path, history: list[dict[str, Any]]) -> None:
    log.write_text("".join(json.dumps(entry) + "\n" for entry in history), encoding="utf-8")
