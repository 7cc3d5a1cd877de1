"""Reproduce the gaussian detector's figures and the ablations of Griffin et al. Figs. 9-10.

Usage: python docs/reproduce/gaussian_ablation.py DATA CACHE [OUT.json]

DATA is a folder written by ``xadt synth`` (train/normal, test/normal, test/anomalous); CACHE is
the feature cache (``--cache``) of a previous ``xadt train``/``xadt eval`` run, so every variant
is refitted from cached backbone features in seconds. Each variant is fitted on the same 90% of
the training scans that ``xadt train`` fits on (the hash split of ``xadt.calibration``) and
evaluated on the whole test set: AUROC with a 95% bootstrap CI for the appearance, semantic and
combined scores. No variant is chosen by its test result; the table reports them all.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from xadt.calibration import split_holdout
from xadt.metrics import auroc, bootstrap_ci
from xadt.plugins.gaussian import GaussianDetector
from xadt.scans import iter_scans
from xadt.training_data import TrainingData

VARIANTS: dict[str, dict[str, object]] = {
    "main (adjusted variance, full covariance, plausible dims, fitted SD, top-12)": {},
    "appearance: naive variance, full covariance": {"variance": "naive"},
    "appearance: adjusted variance, diagonal covariance": {"covariance": "diagonal"},
    "appearance: naive variance, diagonal covariance": {
        "variance": "naive",
        "covariance": "diagonal",
    },
    "semantic: all 1000 dimensions": {"semantic_dims": "all"},
    "semantic: sample SD instead of fitted": {"semantic_variance": "sample"},
    "semantic: all excursions instead of top 12": {"top_n": None},
    "semantic: diagonal correlation": {"semantic_covariance": "diagonal"},
    "combined: out-of-fold weights": {"weighting": "out-of-fold"},
}


def main(data: Path, cache: Path, out: Path | None) -> None:
    """Fit every variant, score the test set, print and optionally write the table."""
    held: list = []
    train = list(split_holdout(iter_scans(data / "train" / "normal"), 0.1, 0, held))
    normal = list(iter_scans(data / "test" / "normal"))
    anomalous = list(iter_scans(data / "test" / "anomalous"))
    labels = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
    print(f"fit on {len(train)} normal scans; test {len(normal)} normal + {len(anomalous)} threat")
    rows = {}
    for name, overrides in VARIANTS.items():
        start = time.perf_counter()
        detector = GaussianDetector(cache=str(cache), **overrides).fit(
            TrainingData.from_scans(iter(train))
        )
        results = detector.score(normal + anomalous)
        row: dict[str, object] = {"overrides": overrides, "weights": detector.weights_}
        for part in ("appearance", "semantic", "combined"):
            scores = np.array([r.score if part == "combined" else r.partial[part] for r in results])
            estimate, low, high = bootstrap_ci(labels, scores, auroc, seed=0)
            row[part] = [estimate, low, high]
        rows[name] = row
        print(
            f"{name}: "
            + ", ".join(
                f"{p} {row[p][0]:.3f} [{row[p][1]:.3f}, {row[p][2]:.3f}]"
                for p in ("appearance", "semantic", "combined")
            )
            + f"  ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    if out is not None:
        config = dataclasses.asdict(GaussianDetector().config)
        out.write_text(json.dumps({"default_config": config, "variants": rows}, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None)
