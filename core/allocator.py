"""Keep freed memory in the process, so network forwards stop paying the kernel for every batch.

glibc returns large freed blocks (every activation tensor of a batch) to the kernel at once, and
the next batch faults them in and zeroes them again: on two cores half of the CPU time of a
backbone forward went to the kernel. :func:`keep_freed_memory` tells glibc to serve large blocks
from the heap and to keep up to 2 GiB of freed memory before trimming, which is what setting
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...`` would do, for every user and without an
environment variable. Elsewhere than glibc it does nothing; ``XADT_MALLOC_TUNING=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: the largest it accepts
_TOP_PAD = 256 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Tune glibc's allocator once per process (see the module docstring); True if it did."""
    if os.environ.get("XADT_MALLOC_TUNING", "1").strip() == "0":
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - present only in glibc
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return all(
        mallopt(option, value) == 1
        for option, value in (
            (_M_MMAP_MAX, 0),
            (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD),
            (_M_TOP_PAD, _TOP_PAD),
        )
    )
