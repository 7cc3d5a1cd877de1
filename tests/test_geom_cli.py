"""``geom`` through the command line: train with ``--set`` on the CPU, resume, score, localize and
evaluate, on tiny PNG folders."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from tests.test_workflows import write_scans
from xadt.cli.app import app

runner = CliRunner()

SMALL = {
    "patch": 16,
    "stride": 16,
    "downscale": 1.0,
    "transforms": "rotations",
    "widen": 1,
    "epochs": 2,
    "batch_size": 8,
    "images_per_step": 32,
}


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XADT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XADT_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("COLUMNS", "200")


def xadt(*args: object) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def test_train_resume_score_localize_and_eval(tmp_path: Path) -> None:
    data = write_scans(tmp_path / "normal", 10)
    model, checkpoints = tmp_path / "model", tmp_path / "ckpt"
    sets = [a for k, v in SMALL.items() for a in ("--set", f"{k}={v}")]
    train = ["train", "-p", "geom", data, "-o", model, "--device", "cpu", "--holdout", "0.3"]
    trained = xadt(*train, "--checkpoints", checkpoints, *sets)
    assert trained.exit_code == 0, trained.output
    assert "trained geom on" in trained.stdout
    info = json.loads((model / "model.json").read_text())
    assert info["config"]["epochs"] == 2
    assert info["meta"]["info"]["transforms"] == [0, 1, 2, 3]
    assert len(info["meta"]["history"]) == 2

    resumed = xadt(*train, "--checkpoints", checkpoints, *sets, "--resume", "--overwrite")
    assert resumed.exit_code == 0, resumed.output
    again = json.loads((model / "model.json").read_text())
    assert again["meta"]["history"] == info["meta"]["history"]

    scans = write_scans(tmp_path / "new", 3, seed=4)
    scored = xadt("score", "-m", model, scans, "-o", tmp_path / "r.csv", "--set", "score_batch=3")
    assert scored.exit_code == 0, scored.output
    with (tmp_path / "r.csv").open() as table:
        assert len(list(csv.DictReader(table))) == 3
    refused = xadt("score", "-m", model, scans, "--set", "transforms=full72")
    assert refused.exit_code == 1
    assert "only its runtime options can be set" in refused.stderr

    localized = xadt("localize", "-m", model, scans, "-o", tmp_path / "maps", "--device", "cpu")
    assert localized.exit_code == 0, localized.output
    amap = np.load(tmp_path / "maps" / "s00_v0.npy")
    assert amap.dtype == np.float32
    assert np.isfinite(amap).any()

    labelled = tmp_path / "labelled"
    write_scans(labelled / "normal", 4, seed=7)
    write_scans(labelled / "anomalous", 4, seed=8, dark=0.9)
    report = tmp_path / "eval.json"
    evaluated = xadt("eval", labelled, "-m", model, "-o", report, "--device", "cpu")
    assert evaluated.exit_code == 0, evaluated.output
    assert "auroc" in report.read_text().lower()
