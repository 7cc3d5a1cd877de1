"""How a backbone runs for inference: precision, memory layout and compilation, in one place.

:class:`Execution` is the typed setting; :class:`BackboneRunner` applies it to a backbone on a
device and runs batches of normalised patches through it: host batches are staged in pinned
memory and copied asynchronously on CUDA, the forward runs under ``torch.inference_mode`` (and
autocast for half precision), and only the pooled features and logits come back, as float32. The
default setting (float32, contiguous, eager) computes exactly what ``backbone(x)`` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F

from xadt.backbones.base import Backbone, BackboneOutput
from xadt.backbones.onnx import onnx_forward
from xadt.config import require
from xadt.errors import XadtError

__all__ = ["BACKENDS", "PRECISIONS", "BackboneRunner", "Backend", "Execution", "Precision"]

Precision = Literal["float32", "bfloat16", "float16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
"""Precisions a backbone can run in; ``float16`` needs CUDA."""

Backend = Literal["torch", "onnxruntime"]
BACKENDS: tuple[str, ...] = get_args(Backend)
"""What runs the forward: torch, or ONNX Runtime (CPU, float32; the ``xadt[onnx]`` extra)."""

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Execution:
    """How to run a backbone's forward; changes speed, and in half precision the features a
    little (see ``benches/README.md`` for the measured score differences).

    Attributes:
        precision: ``"float32"`` (the default, exact), ``"bfloat16"`` (autocast on CPU or CUDA)
            or ``"float16"`` (autocast, CUDA only).
        channels_last: run the convolutions on NHWC tensors (weights and input).
        compile: compile the forward with ``torch.compile`` (inductor, with freezing: the
            weights become constants) on first use; the first batch then takes tens of seconds,
            and a partial batch is padded to the full batch size so that one compiled graph
            serves every batch.
        backend: ``"torch"``, or ``"onnxruntime"``: the backbone exported to ONNX once per
            process and run by ONNX Runtime on the CPU, float32 only (the other options keep
            their defaults).
    """

    precision: Precision = "float32"
    channels_last: bool = False
    compile: bool = False
    backend: Backend = "torch"

    def __post_init__(self) -> None:
        owner = "the backbone execution"
        wanted = "one of " + ", ".join(map(repr, PRECISIONS))
        require(self.precision in PRECISIONS, owner, "precision", wanted, self.precision)
        for name in ("channels_last", "compile"):
            value = getattr(self, name)
            require(isinstance(value, bool), owner, name, "a boolean", value)
        wanted = "one of " + ", ".join(map(repr, BACKENDS))
        require(self.backend in BACKENDS, owner, "backend", wanted, self.backend)
        if self.backend == "onnxruntime" and (
            self.precision != "float32" or self.channels_last or self.compile
        ):
            msg = (
                "The 'backend' option onnxruntime runs the float32 forward as ONNX Runtime "
                "optimises it; leave precision, channels_last and compile at their defaults"
            )
            raise XadtError(msg)

    def check_device(self, device: torch.device) -> None:
        """Raise ``XadtError`` when this setting cannot run on ``device`` (float16 on a CPU)."""
        if self.precision == "float16" and device.type != "cuda":
            msg = (
                f"The 'precision' option float16 needs a CUDA device; the backbone runs on "
                f"{device.type}: use bfloat16 there"
            )
            raise XadtError(msg)
        if self.backend == "onnxruntime" and device.type != "cpu":
            msg = (
                f"The 'backend' option onnxruntime runs on the CPU; the backbone is on "
                f"{device.type}: use the torch backend there"
            )
            raise XadtError(msg)


class BackboneRunner:
    """A backbone prepared for inference under an :class:`Execution`, on the device of its
    parameters: it takes (N, 3, h, w) float32 normalised patches on the host and returns
    float32 pooled features and logits on the host.

    Preparing moves the weights to channels-last (or back to contiguous) in place, so one
    backbone serves one setting at a time; the default setting leaves them as they are.
    Batches are split in two steps so that a caller can overlap them: :meth:`launch` stages a
    batch and queues its forward (on CUDA it returns before the GPU is done) and
    :meth:`collect` waits for its outputs.
    """

    def __init__(
        self, backbone: Backbone, execution: Execution | None = None, *, rows: int | None = None
    ) -> None:
        """Prepare ``backbone`` (see the class docstring); ``rows`` is the batch size a
        compiled forward is made for (smaller batches are padded to it), None for the first
        batch's size.

        Raises:
            XadtError: the setting cannot run on the backbone's device (float16 on a CPU).
        """
        self.backbone = backbone
        self.execution = execution or Execution()
        self.device = next(backbone.parameters()).device
        self.execution.check_device(self.device)
        fmt = torch.channels_last if self.execution.channels_last else torch.contiguous_format
        backbone.to(memory_format=fmt)
        self._forward: Callable[[torch.Tensor], BackboneOutput] = backbone
        self._onnx = onnx_forward(backbone) if self.execution.backend == "onnxruntime" else None
        if self.execution.compile:
            # Static shapes: every batch is padded to one size, so one graph serves them all.
            self._forward = torch.compile(backbone, dynamic=False)  # type: ignore[assignment]
        self._pinned: list[torch.Tensor | None] = [None, None]  # staging buffers, used in turn
        self._turn = 0
        self._rows = rows  # the batch size the compiled graph is made for

    @property
    def cuda(self) -> bool:
        """Whether the backbone runs on a CUDA device (then host batches go through pinned
        memory and asynchronous copies)."""
        return self.device.type == "cuda"

    def stage(self, parts: Sequence[np.ndarray]) -> torch.Tensor:
        """One host batch of the row-wise concatenation of ``parts``: a tensor sharing the
        array's memory on a CPU, a pinned staging buffer on CUDA (two buffers are used in turn,
        so a batch can be staged while the previous one is still being copied)."""
        if not self.cuda:
            batch = parts[0] if len(parts) == 1 else np.concatenate(parts)
            return torch.from_numpy(np.ascontiguousarray(batch))
        shape = (sum(len(p) for p in parts), *parts[0].shape[1:])
        size = int(np.prod(shape))
        buffer = self._pinned[self._turn]
        if buffer is None or buffer.numel() < size:
            buffer = torch.empty(size, dtype=torch.float32, pin_memory=True)
            self._pinned[self._turn] = buffer
        self._turn = 1 - self._turn
        staged = buffer[:size].view(shape)
        np.concatenate(parts, out=staged.numpy())
        return staged

    def launch(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Queue the forward of a host batch: (pooled, logits) on the device, float32, maybe
        not computed yet on CUDA (read them through :meth:`collect`)."""
        x = batch.to(self.device, non_blocking=self.cuda)
        size = self.backbone.input_size
        if x.shape[-1] != size:
            x = F.interpolate(
                x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
            )
        if self.execution.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self._onnx is not None:
            pooled, logits = self._onnx(x.numpy())
            return torch.from_numpy(pooled), torch.from_numpy(logits)
        rows = x.shape[0]
        if self.execution.compile:
            x = self._padded(x)
        with torch.inference_mode(), self._autocast(), self._freezing():
            out = self._forward(x)
        return out.pooled[:rows].float(), out.logits[:rows].float()

    @staticmethod
    def collect(outputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        """The host arrays of :meth:`launch`'s outputs (waits for the device)."""
        pooled, logits = outputs
        return pooled.cpu().numpy(), logits.cpu().numpy()

    def __call__(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pooled features and logits of one host batch: stage, launch and collect."""
        return self.collect(self.launch(self.stage([patches])))

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.execution.precision == "float32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.execution.precision])

    def _freezing(self) -> contextlib.AbstractContextManager[object]:
        """Inductor's freezing while a compiled forward runs (it compiles at its first call):
        the frozen weights become constants, so the batch-norm folding of every call is done
        once and oneDNN gets pre-packed weights (2-2.5x over the compiled forward without it
        on this project's 2-core CPU). ``torch.compile(options={"freezing": True})`` does not
        reach it in torch 2.13, hence the config patch."""
        if not self.execution.compile:
            return contextlib.nullcontext()
        import torch._inductor.config

        return torch._inductor.config.patch(freezing=True)

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` padded with zero rows to ``rows`` (or the first batch's size), so the compiled
        graph's shapes never change (a recompile costs more than the padded rows)."""
        if self._rows is None or x.shape[0] > self._rows:
            self._rows = x.shape[0]
        if x.shape[0] == self._rows:
            return x
        pad = x.new_zeros((self._rows - x.shape[0], *x.shape[1:]))
        padded = torch.cat([x, pad])
        if self.execution.channels_last:
            padded = padded.contiguous(memory_format=torch.channels_last)
        return padded
