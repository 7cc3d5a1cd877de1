"""Detector results on a synthetic test set, broken down by threat kind and difficulty.

``python -m xadt.synth.breakdown REPORT.json OUT/manifest.json`` joins the per-scan scores of an
``xadt eval`` report with the ``xadt synth`` manifest and prints, for each threat kind and each
difficulty, the AUROC of those threat scans against all normal test scans and the false-alarm
rate at 90% detection.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score


def far_at_detection(normal: np.ndarray, threat: np.ndarray, detection: float = 0.9) -> float:
    """Share of normal scans scoring at or above the threshold that flags ``detection`` of the
    threat scans (anomaly scores; higher = more anomalous)."""
    threshold = np.quantile(threat, 1 - detection, method="inverted_cdf")
    return float((normal >= threshold).mean())


def breakdown(report: dict[str, Any], manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{"group", "n", "auroc", "far_at_90"}``: all threats, then each kind and difficulty.

    Scans are matched by id (the eval report's ids are the manifest's file stems).
    """
    scores = {s["id"]: s["score"] for s in report["scans"]}
    normal = np.array([scores[e["id"]] for e in manifest["scans"] if e["split"] == "test-normal"])
    threats = [e for e in manifest["scans"] if e["split"] == "test-threat" and e["id"] in scores]
    groups: dict[str, list[float]] = {"all threats": []}
    for e in threats:
        score = scores[e["id"]]
        groups["all threats"].append(score)
        groups.setdefault(f"kind: {e['threat']['kind']}", []).append(score)
        groups.setdefault(f"difficulty: {e['threat']['difficulty']}", []).append(score)
    rows = []
    for group, values in groups.items():
        pos = np.array(values)
        y = np.r_[np.zeros(len(normal)), np.ones(len(pos))]
        rows.append(
            {
                "group": group,
                "n": len(pos),
                "auroc": float(roc_auc_score(y, np.r_[normal, pos])),
                "far_at_90": far_at_detection(normal, pos),
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: print the breakdown as a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report", type=Path, help="JSON report of xadt eval -o")
    parser.add_argument("manifest", type=Path, help="manifest.json of the xadt synth data set")
    args = parser.parse_args(argv)
    rows = breakdown(json.loads(args.report.read_text()), json.loads(args.manifest.read_text()))
    print("| threats | n | AUROC | false alarms at 90% detection |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['group']} | {r['n']} | {r['auroc']:.3f} | {r['far_at_90']:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
