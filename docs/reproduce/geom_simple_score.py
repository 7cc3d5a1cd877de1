"""Evaluate a trained ``geom`` model with the simple score instead of its Dirichlet one.

Usage: python docs/reproduce/geom_simple_score.py MODEL DATA OUT.json

The simple score (the mean probability of the right transformation, methods.md §5.4) needs no
refit: the same network is loaded with ``normality=simple`` and evaluated on DATA (a labelled
folder: normal/, anomalous/, masks/) as ``xadt eval`` does, the report written to OUT.json.
"""

from __future__ import annotations

import dataclasses
import sys

from xadt.artifacts import load_model
from xadt.host import load_registry
from xadt.workflows.evaluate import evaluate, write_report


def main(model_dir: str, data: str, out: str) -> None:
    """Load MODEL with the simple score, evaluate it on DATA and write the report to OUT."""
    model = load_model(model_dir, registry=load_registry())
    detector = model.detector
    detector.config = dataclasses.replace(detector.config, normality="simple")  # type: ignore[attr-defined]
    report = evaluate(model, data)
    write_report(report, out, overwrite=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
