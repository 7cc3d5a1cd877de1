"""``kill -9`` a running ``xadt train --overwrite`` at random and at targeted moments, and check
that the model path always holds the old model or the new one (issue 9).

    python tools/kill_train.py --out /tmp/kills [--random 30] [--targeted 10] [--scans 36]

Two models are told apart by their ``content_sha256``: the *old* one is trained with ``--seed 0``
before each kill, and each killed run trains the *new* one with ``--seed 1`` (another held-out
split, so other fitted values). After each ``SIGKILL`` the model path is loaded with
``xadt.artifacts.load_model``: *old*, *new*, *missing* (no model at the path) or *corrupt*
(anything else, e.g. a mix of the two). Then the next normal run (``--seed 0``) must succeed and
leave no leftovers: hidden ``.MODEL.tmp-*``/``.MODEL.old-*`` folders, ``*.part`` or ``*.tmp``
files, ``MODEL.checkpoints``, or ``xadt-*`` folders in the runs' private ``$TMPDIR``.

Random kills land uniformly in the measured duration of a whole run. Targeted kills poll the
model's parent folder from this process while the run is niced to 19, and kill the instant a
staging folder appears, the instant it holds ``model.json`` (just before the swap), or the
instant the model path changes inode (just after the swap, before the old model is removed).
Run it from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from xadt.artifacts import MODEL_JSON, load_model
from xadt.errors import XadtError
from xadt.host import load_registry
from xadt.testing import normal_scans

Trigger = Callable[[Path, Path], bool]
"""``trigger(parent, model)``: whether the targeted moment has come."""


def _write_data(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    for scan in normal_scans(n, seed=2):
        Image.fromarray(scan.views[0]).save(folder / f"{scan.id}.png")


def _command(data: Path, model: Path, seed: int) -> list[str]:
    xadt = Path(sys.executable).with_name("xadt")
    return [
        str(xadt), "train", "-p", "baseline", str(data), "-o", str(model),
        "--overwrite", "--holdout", "0.5", "--seed", str(seed),
    ]  # fmt: skip


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmp), "XADT_DISABLE_PLUGIN_AUTOLOAD": "1"}


def _train(data: Path, model: Path, seed: int, tmp: Path) -> float:
    """Run a whole training; return its wall time. Raises if it fails."""
    start = time.perf_counter()
    subprocess.run(_command(data, model, seed), env=_env(tmp), check=True, capture_output=True)
    return time.perf_counter() - start


def _digest(model: Path) -> str | None:
    """The model's ``content_sha256`` when it loads; None when there is none; "corrupt" else."""
    if not model.exists() and not model.is_symlink():
        return None
    try:
        load_model(model, registry=load_registry())
    except XadtError as exc:
        return f"corrupt: {exc}"
    return str(json.loads((model / MODEL_JSON).read_text())["content_sha256"])


def _leftovers(parent: Path, model: Path, tmp: Path) -> list[str]:
    names = []
    for entry in parent.iterdir():
        hidden = entry.name.startswith(f".{model.name}.")
        if hidden or entry.suffix in (".part", ".tmp") or entry.name == f"{model.name}.checkpoints":
            names.append(entry.name)
    names += [f"$TMPDIR/{p.name}" for p in tmp.iterdir()]
    return names


def _staging(parent: Path, model: Path) -> list[Path]:
    return [p for p in parent.iterdir() if p.name.startswith(f".{model.name}.tmp-")]


def _staging_appears(parent: Path, model: Path) -> bool:
    return bool(_staging(parent, model))


def _staging_complete(parent: Path, model: Path) -> bool:
    return any((p / MODEL_JSON).exists() for p in _staging(parent, model))


def _swapped(inode: int) -> Trigger:
    def trigger(parent: Path, model: Path) -> bool:
        try:
            return model.stat().st_ino != inode
        except FileNotFoundError:
            return True

    return trigger


def _killed_run(
    data: Path, model: Path, tmp: Path, *, delay: float | None, trigger: Trigger | None
) -> str:
    """Start the new-model run and SIGKILL it after ``delay`` s or when ``trigger`` fires."""
    proc = subprocess.Popen(
        ["nice", "-n", "19", *_command(data, model, 1)] if trigger else _command(data, model, 1),
        env=_env(tmp),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    start = time.perf_counter()
    how = "finished before the kill"
    while proc.poll() is None:
        due = (
            time.perf_counter() - start >= delay
            if delay is not None
            else trigger(model.parent, model)
        )  # type: ignore[misc]
        if due:
            proc.send_signal(signal.SIGKILL)
            how = f"killed at {time.perf_counter() - start:.3f} s"
            break
        if delay is not None:
            time.sleep(0.002)
    proc.wait()
    return how


def main() -> None:
    """Run the kills, print each outcome and the table of counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="working folder (new)")
    parser.add_argument("--random", type=int, default=30, help="kills at random moments")
    parser.add_argument("--targeted", type=int, default=10, help="kills at targeted moments")
    parser.add_argument("--scans", type=int, default=36, help="synthetic training scans")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ["XADT_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    data, parent, tmp = args.out / "data", args.out / "models", args.out / "tmp"
    _write_data(data, args.scans)
    parent.mkdir()
    tmp.mkdir()
    model = parent / "model"
    _train(data, model, 1, tmp)
    new = _digest(model)
    duration = _train(data, model, 0, tmp)
    old = _digest(model)
    assert old != new, "the two seeds gave the same model"
    print(f"a whole run takes {duration:.1f} s; old {old[:12]}, new {new[:12]}", flush=True)
    rng = random.Random(args.seed)
    targets: list[tuple[str, Callable[[], Trigger]]] = [
        ("staging folder appears", lambda: _staging_appears),
        ("staging holds model.json", lambda: _staging_complete),
        ("model path swapped", lambda: _swapped(model.stat().st_ino)),
    ]
    plan: list[tuple[str, float | None, Callable[[], Trigger] | None]] = [
        ("random", rng.uniform(0, duration), None) for _ in range(args.random)
    ]
    plan += [(targets[k % 3][0], None, targets[k % 3][1]) for k in range(args.targeted)]
    rows: list[tuple[str, str, str, int]] = []
    for kind, delay, target in plan:
        how = _killed_run(data, model, tmp, delay=delay, trigger=target() if target else None)
        found = _digest(model)
        state = (
            "old"
            if found == old
            else "new"
            if found == new
            else "missing"
            if found is None
            else "corrupt"
        )
        before = _leftovers(parent, model, tmp)
        _train(data, model, 0, tmp)
        after = _leftovers(parent, model, tmp)
        rows.append((kind, state, how, len(after)))
        print(
            f"{kind}: {how}: {state}{'' if state in ('old', 'new') else f' ({found})'}; leftovers "
            f"after the kill {before}, after the next run {after}",
            flush=True,
        )
        for leftover in after:  # keep later rounds independent of an earlier failure
            path = (
                tmp / leftover.split("/", 1)[1]
                if leftover.startswith("$TMPDIR/")
                else parent / leftover
            )
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(
                missing_ok=True
            )
    head = [
        "kills",
        "n",
        "old",
        "new",
        "missing",
        "corrupt",
        "finished first",
        "runs with leftovers after the next run",
    ]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for kind in dict.fromkeys(k for k, *_ in rows):
        group = [r for r in rows if r[0] == kind]
        counts = Counter(r[1] for r in group)
        first = sum(r[2].startswith("finished") for r in group)
        cells = [
            kind,
            len(group),
            counts["old"],
            counts["new"],
            counts["missing"],
            counts["corrupt"],
            first,
        ]
        print("| " + " | ".join(str(c) for c in [*cells, sum(r[3] > 0 for r in group)]) + " |")


if __name__ == "__main__":
    main()
