"""The allocator tuning: freed large blocks are reused instead of faulted in again each time."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from xadt.allocator import keep_freed_memory

_PROBE = """
import resource, sys
import numpy as np
from xadt.allocator import keep_freed_memory
print(keep_freed_memory())
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    block = np.ones(8 << 20)  # 64 MB, freed at once, like a batch's activations
    del block
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def _faults(tuning: str) -> tuple[str, int]:
    env = {**os.environ, "XADT_MALLOC_TUNING": tuning}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc tuning is Linux-only")
def test_freed_blocks_are_kept_so_the_next_batch_does_not_fault_them_in() -> None:
    tuned, tuned_faults = _faults("1")
    if tuned != "True":
        pytest.skip("this C library is not glibc")
    off, plain_faults = _faults("0")
    assert off == "False"
    assert tuned_faults * 5 < plain_faults  # about 1 block's pages against 20 blocks'


def test_it_is_idempotent() -> None:
    assert keep_freed_memory() == keep_freed_memory()
