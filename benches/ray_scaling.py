"""Scans/s of ``xadt score`` in one process against ``--engine ray`` with 1 and 2 actors, and the
per-scan costs the scaling model of ``docs/scale.md`` needs (decode, score, bytes per scan).

Run from the repository root with the ``ray`` extra installed (about 10 minutes on 2 cores)::

    OMP_NUM_THREADS=1 python benches/ray_scaling.py --scans 24 --out /tmp/xadt-ray-bench

It synthesises full-size dual-view parcels, fits ``gaussian`` on some in one process, scores the
others with each engine on a local Ray of 2 CPUs and prints one JSON document of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from xadt.artifacts import load_model
from xadt.context import RunContext
from xadt.distributed import ray_session
from xadt.distributed.scoring import RayOptions, score_ray
from xadt.scans import iter_scans
from xadt.synth import write_dataset
from xadt.workflows.score import score_folder
from xadt.workflows.train import train


def main() -> None:
    """Measure and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=24, help="scans to score")
    parser.add_argument("--train", type=int, default=24, help="scans to fit on")
    parser.add_argument("--scale", type=float, default=1.0, help="image size (1 = 764 px high)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/xadt-ray-bench"))
    args = parser.parse_args()
    data = args.out / "data"
    if not data.exists():
        write_dataset(
            data, normal=args.train, test_normal=args.scans, threat=0, scale=args.scale, workers=2
        )
    context = RunContext(device="cpu")
    model_dir = args.out / "model"
    if not model_dir.exists():
        train(
            "gaussian", data / "train" / "normal", context=context, output=model_dir, holdout=0.25
        )
    model = load_model(model_dir, registry=context.plugins())
    scans = data / "test" / "normal"
    figures: dict[str, object] = {
        "load_average_before": os.getloadavg(),
        "scans": args.scans,
        "scale": args.scale,
        "bytes_per_scan": sum(f.stat().st_size for f in scans.iterdir()) / args.scans,
    }
    start = time.process_time()
    for _ in iter_scans(scans):
        pass
    figures["decode_cpu_s_per_scan"] = (time.process_time() - start) / args.scans
    start, cpu = time.perf_counter(), time.process_time()
    local = score_folder(model, scans, context=context)
    wall = time.perf_counter() - start
    figures["single_process"] = {
        "wall_s": wall,
        "scans_per_s": args.scans / wall,
        "cpu_s_per_scan": (time.process_time() - cpu) / args.scans,
    }
    start = time.perf_counter()
    with ray_session(num_cpus=2):
        figures["ray_start_s"] = time.perf_counter() - start
        for workers in (1, 2):
            options = RayOptions(workers=workers, batch_scans=4, partition_scans=args.scans)
            start = time.perf_counter()
            run = score_ray(model, str(scans), context=context, options=options)
            wall = time.perf_counter() - start
            gap = max(
                abs(a.score - b.score) / abs(b.score)
                for a, b in zip(run.rows, local.rows, strict=True)
            )
            figures[f"ray_{workers}_workers"] = {
                "wall_s": wall,
                "scans_per_s": args.scans / wall,
                "max_relative_score_difference": gap,
                "same_ids": [r.id for r in run.rows] == [r.id for r in local.rows],
            }
    figures["load_average_after"] = os.getloadavg()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
