"""Score a large batch with 1% corrupt files through ``xadt score`` and measure its peak memory
(issue 9).

    python tools/score_batch.py --out /tmp/batch [--scans 2000 10000] [--distinct 50]

Builds a folder of N small synthetic PNG scans (``xadt.testing.normal_scans``, about 96 × 80
pixels; ``--distinct`` different images, copied round-robin) in which every hundredth file is
corrupt, in turn truncated at a random offset, random bytes after the PNG magic, or empty (kinds
of the hostile-file corpus, ``tools/hostile_corpus.py``). A ``baseline`` model is fitted on other
synthetic scans. For each N, ``xadt score -m MODEL FOLDER -o results.csv`` and then ``-o
results.json`` run as child processes; the tool checks that every good scan has a score, every bad
file is named (CSV rows with ``skipped:`` notes, the JSON ``skipped`` section), the exit status is
1 with the one-line ``error: ... scans skipped ...`` summary, and reports the peak RSS of each
``xadt score`` process (``wait4``) and its wall time. Run it from the repository root.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from xadt.api import fit, save_model
from xadt.testing import normal_scans

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CORRUPT_EVERY = 100


def _batch(folder: Path, n: int, distinct: int, rng: np.random.Generator) -> set[str]:
    """Write ``n`` scans into ``folder``; return the names of the corrupt ones."""
    folder.mkdir(parents=True)
    good = []
    for scan in normal_scans(distinct, seed=7):
        path = folder / f"{scan.id}.png"
        Image.fromarray(scan.views[0]).save(path)
        good.append(path.read_bytes())
        path.unlink()
    bad = set()
    for k in range(n):
        name = f"scan{k:05d}.png"
        data = good[k % distinct]
        if k % CORRUPT_EVERY == CORRUPT_EVERY - 1:
            kind = k // CORRUPT_EVERY % 3
            if kind == 0:
                data = data[: int(rng.integers(1, len(data)))]
            elif kind == 1:
                data = (
                    PNG_MAGIC + rng.integers(0, 256, int(rng.integers(1, 4000)), np.uint8).tobytes()
                )
            else:
                data = b""
            bad.add(name)
        (folder / name).write_bytes(data)
    return bad


def _score(model: Path, folder: Path, results: Path) -> tuple[int, str, float, float]:
    """Run ``xadt score``; return its exit status, stderr, peak RSS in MB and wall seconds."""
    xadt = Path(sys.executable).with_name("xadt")
    start = time.perf_counter()
    with (
        (results.parent / f"{results.name}.stdout").open("w") as out,
        (results.parent / f"{results.name}.stderr").open("w+") as err,
    ):
        proc = subprocess.Popen(
            [str(xadt), "score", "-m", str(model), str(folder), "-o", str(results)],
            stdout=out,
            stderr=err,
            env={**os.environ, "COLUMNS": "120"},
        )
        _, status, usage = os.wait4(proc.pid, 0)
        err.seek(0)
        stderr = err.read()
    seconds = time.perf_counter() - start
    return os.waitstatus_to_exitcode(status), stderr, usage.ru_maxrss / 1024, seconds


def _check_csv(path: Path, good: set[str], bad: set[str]) -> str:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    scored = {r["id"] for r in rows if r["score"]}
    named = {r["id"] for r in rows if r["note"].startswith("skipped: ")}
    return (
        f"{len(scored)} scored (every good one: {scored == good}), {len(named)} rows 'skipped: ' "
        f"(every bad one: {named == bad})"
    )


def _check_json(path: Path, good: set[str], bad: set[str]) -> str:
    document = json.loads(path.read_text())
    scored = {s["id"] for s in document["scans"]}
    named = {Path(s["file"]).name for s in document["skipped"]}
    return (
        f"{len(scored)} scored (every good one: {scored == good}), {len(named)} in 'skipped' "
        f"(every bad one: {named == bad})"
    )


def main() -> None:
    """Build each batch, score it to CSV and JSON, check the results and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="working folder (new)")
    parser.add_argument("--scans", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--distinct", type=int, default=50, help="different images in a batch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ["XADT_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    rng = np.random.default_rng(args.seed)
    model = save_model(args.out / "model", fit("baseline", normal_scans(60, seed=1), holdout=0.4))
    head = [
        "scans",
        "corrupt",
        "results",
        "exit",
        "summary line",
        "checks",
        "peak RSS MB",
        "wall s",
    ]
    print("| " + " | ".join([*head, "load before"]) + " |\n|" + "---|" * (len(head) + 1))
    for n in args.scans:
        folder = args.out / f"scans-{n}"
        bad = _batch(folder, n, args.distinct, rng)
        good = {f"scan{k:05d}" for k in range(n)} - {name.removesuffix(".png") for name in bad}
        for suffix, check in ((".csv", _check_csv), (".json", _check_json)):
            results = args.out / f"results-{n}{suffix}"
            load = os.getloadavg()[0]
            code, stderr, rss, seconds = _score(model, folder, results)
            errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
            expected = f"error: {len(bad)} of {n} scans skipped"
            summary = "one line" if len(errors) == 1 and errors[0].startswith(expected) else ""
            if not summary or "Traceback" in stderr:
                summary = repr(stderr[-300:])
            verdict = check(results, good, bad) if results.exists() else "no results file"
            cells = [f"{n:,}", len(bad), suffix[1:], code, summary, verdict, f"{rss:.0f}"]
            print("| " + " | ".join(map(str, [*cells, f"{seconds:.0f}", f"{load:.1f}"])) + " |")


if __name__ == "__main__":
    main()
