"""AUROC of each threat kind against every normal test scan, from an ``xadt eval -o`` report and
the ``manifest.json`` of ``xadt synth``.

Usage: ``python docs/reproduce/per_threat_auroc.py EVAL.json MANIFEST.json``.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from sklearn.metrics import roc_auc_score


def per_threat(report: dict, manifest: dict) -> dict[str, tuple[int, float]]:
    """{threat kind: (number of threat scans, AUROC against all normal scans)}."""
    kinds = {s["id"]: s["threat"]["kind"] for s in manifest["scans"] if s.get("threat")}
    normal = [r["score"] for r in report["scans"] if r["label"] == "normal"]
    threats: dict[str, list[float]] = defaultdict(list)
    for record in report["scans"]:
        if record["label"] == "anomalous":
            threats[kinds[record["id"]]].append(record["score"])
    return {
        kind: (len(s), roc_auc_score([0] * len(normal) + [1] * len(s), normal + s))
        for kind, s in sorted(threats.items())
    }


if __name__ == "__main__":
    report, manifest = (json.loads(Path(p).read_text()) for p in sys.argv[1:3])
    for kind, (n, auroc) in per_threat(report, manifest).items():
        print(f"{kind}: {auroc:.3f} ({n} scans)")
