"""Torch distributed data parallel (DDP) for the training engine, and the launcher behind
``xadt train --engine ddp``.

A process group exists when the environment names one (``torchrun`` and :func:`launch` set
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); :func:`process_group`
joins it (gloo on CPU, nccl on CUDA). The engine then asks :func:`world` for this process's rank
and shares the work through the helpers here: every rank takes an equal slice of each global
batch, gradients are averaged before each optimiser step (an explicit all-reduce, so GANs with
several networks, optimisers and frozen blocks need nothing special), and rank 0 alone writes.
Without a process group every helper is the identity, so single-process training is unchanged.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence

import torch
import torch.distributed as dist

from xadt.errors import XadtError

__all__ = [
    "average_buffers",
    "average_gradients",
    "barrier",
    "broadcast_weights",
    "check_nproc",
    "in_worker",
    "is_main",
    "launch",
    "main_first",
    "mean",
    "process_group",
    "reduce_step",
    "reduce_sums",
    "shard",
    "world",
]

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
_GRACE_S = 5.0
"""Seconds the other ranks get to end on their own after one fails."""


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: ``(0, 1)`` without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process is rank 0 (the one that prints and writes), or the only one.

    Outside a process group the environment's ``RANK`` decides, so a rank still knows after
    the group is gone.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def in_worker() -> bool:
    """Whether the environment makes this process one rank of several (torchrun, :func:`launch`)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[None]:
    """Join the process group the environment names, for the block; nothing without one.

    The backend is nccl for a CUDA ``device`` (each rank on GPU ``LOCAL_RANK``, which plain
    ``cuda`` then means) and gloo otherwise. On normal exit the ranks meet
    at a barrier (so none leaves while rank 0 still needs it); the group is destroyed either way.
    """
    if not in_worker() or dist.is_initialized():
        yield
        return
    backend = "gloo"
    if device.type == "cuda":
        backend = "nccl"
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    try:
        yield
        dist.barrier()
    finally:
        dist.destroy_process_group()


def shard(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s slice of a global batch: every ``world_size``-th item from ``rank``."""
    return batch[rank::world_size] if world_size > 1 else batch


def barrier() -> None:
    """Wait for every rank (nothing in one process)."""
    if world()[1] > 1:
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block before the other ranks do (so they find what it cached)."""
    rank, size = world()
    if size > 1 and rank != 0:
        dist.barrier()
    yield
    if size > 1 and rank == 0:
        dist.barrier()


def broadcast_weights(nets: Mapping[str, torch.nn.Module]) -> None:
    """Copy rank 0's parameters and buffers into every rank's networks."""
    if world()[1] == 1:
        return
    with torch.no_grad():
        for net in nets.values():
            for tensor in net.state_dict().values():
                dist.broadcast(tensor, src=0)


def average_gradients(params: Iterable[torch.Tensor]) -> None:
    """Replace each parameter's gradient by its mean over the ranks (one all-reduce).

    Every rank must pass the same parameters with gradients; a parameter whose gradient is None
    on every rank (frozen, unused) is skipped.
    """
    size = world()[1]
    if size == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def average_buffers(nets: Mapping[str, torch.nn.Module]) -> None:
    """Average the floating-point buffers (BatchNorm running statistics) over the ranks, so
    every rank validates, checkpoints and saves the same networks."""
    size = world()[1]
    if size == 1:
        return
    with torch.no_grad():
        for net in nets.values():
            for buffer in net.buffers():
                if buffer.is_floating_point():
                    dist.all_reduce(buffer)
                    buffer /= size


def reduce_step(
    values: Mapping[str, float], stop: bool, device: torch.device
) -> tuple[dict[str, float], bool]:
    """A step's losses averaged over the ranks, and whether any rank was asked to stop.

    One all-reduce per step, so all ranks log the same losses, fail on the same non-finite
    loss and stop after the same step on Ctrl-C.
    """
    size = world()[1]
    if size == 1:
        return dict(values), stop
    keys = sorted(values)
    packed = torch.tensor([*(values[k] for k in keys), float(stop)], dtype=torch.float64)
    packed = packed.to(device)
    dist.all_reduce(packed)
    reduced = packed.cpu().tolist()
    return {k: v / size for k, v in zip(keys, reduced, strict=False)}, reduced[-1] > 0


def mean(value: float, device: torch.device) -> float:
    """``value`` averaged over the ranks (itself in one process)."""
    return reduce_step({"value": value}, False, device)[0]["value"]


def reduce_sums(sums: Mapping[str, float], count: float, device: torch.device) -> dict[str, float]:
    """Weighted means from per-rank ``sums`` and ``count`` summed over the ranks."""
    keys = sorted(sums)
    packed = torch.tensor([*(sums[k] for k in keys), count], dtype=torch.float64)
    if world()[1] > 1:
        packed = packed.to(device)
        dist.all_reduce(packed)
    total = packed.cpu().tolist()
    return {k: v / max(total[-1], 1) for k, v in zip(keys, total, strict=False)}


def check_nproc(nproc: int, device: torch.device) -> None:
    """Raise ``XadtError`` unless ``nproc`` processes can run on ``device`` (one GPU each)."""
    if nproc < 1:
        msg = f"--nproc must be an integer >= 1; got {nproc}"
        raise XadtError(msg)
    if device.type == "cuda" and nproc > torch.cuda.device_count():
        msg = (
            f"--nproc {nproc} needs one GPU per process, but this machine has "
            f"{torch.cuda.device_count()}; lower --nproc or use --device cpu"
        )
        raise XadtError(msg)


def launch(argv: Sequence[str], nproc: int) -> int:
    """Run ``python -m xadt.cli.app ARGV`` as ``nproc`` ranks on this machine; their exit code.

    The ranks run in their own session, so a terminal's Ctrl-C reaches this process only; it is
    passed on to every rank, which all stop after the same step (exit 130). When a rank fails,
    the others are stopped and its exit code is returned. On CPU each rank gets an equal share
    of the cores (``OMP_NUM_THREADS``) unless the variable is set.
    """
    env = {k: v for k, v in os.environ.items() if k not in _ENV}
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE=str(nproc))
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    command = [sys.executable, "-m", "xadt.cli.app", *argv]
    ranks = [
        subprocess.Popen(
            command, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, start_new_session=True
        )
        for r in range(nproc)
    ]

    def forward(signum: int, _frame: object) -> None:
        for process in ranks:
            if process.poll() is None:
                process.send_signal(signum)

    previous = signal.signal(signal.SIGINT, forward)
    try:
        return _wait(ranks)
    finally:
        signal.signal(signal.SIGINT, previous)
        for process in ranks:
            if process.poll() is None:
                process.kill()
                process.wait()


def _wait(ranks: list[subprocess.Popen[bytes]]) -> int:
    """Wait for every rank; a failed rank's code, stopping the others if they hang.

    Ranks usually fail together (the same bad option or file) and rank 0 says why, so after a
    failure the others get a few seconds to end on their own before they are terminated.
    """
    failed_at: float | None = None
    while True:
        codes = [p.poll() for p in ranks]
        if None not in codes:
            break
        if failed_at is None and any(c not in (None, 0) for c in codes):
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > _GRACE_S:
            for process in ranks:
                if process.poll() is None:
                    process.terminate()
            for process in ranks:
                process.wait()
            break
        time.sleep(0.1)
    codes = [p.returncode for p in ranks]
    if codes[0] in (0, 1, 130) and all(c == codes[0] or c == 0 for c in codes):
        return codes[0]  # rank 0 printed the outcome
    rank, code = next(
        ((r, c) for r, c in enumerate(codes) if c not in (0, -signal.SIGTERM)), (0, codes[0])
    )
    print(f"error: rank {rank} of {len(ranks)} failed with exit code {code}", file=sys.stderr)
    return code if code > 0 else 128 - code


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
