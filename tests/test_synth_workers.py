"""A killed ``xadt synth`` leaves no worker processes behind (issue 9's crash-safety finding)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

_SYNTH = """
import sys
from xadt.synth.dataset import write_dataset
write_dataset(sys.argv[1], normal=400, test_normal=0, threat=0, seed=1, scale=0.1, workers=2)
"""


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_kill_9_of_the_writer_ends_its_workers(tmp_path: Path) -> None:
    writer = subprocess.Popen([sys.executable, "-c", _SYNTH, str(tmp_path / "out")])
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while time.monotonic() < deadline and len(workers) < 3:  # forkserver + two workers
        time.sleep(0.2)
        workers = _descendants(writer.pid)
    assert len(workers) >= 3, f"the pool did not start: {workers}"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.2)
    assert not [pid for pid in workers if _alive(pid)]
