"""``xadt train / score / localize / eval`` for the GAN family through typer's CliRunner, with
``--device``, ``--set`` and ``--resume`` after Ctrl-C, on tiny PNG folders."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.numpy
from typer.testing import CliRunner, Result

from tests.test_evaluate import write_folder
from tests.test_workflows import write_scans
from xadt.cli.app import app
from xadt.engine import Step
from xadt.plugins.ganomaly.detector import GanomalyDetector

runner = CliRunner()

TINY = {
    "ganomaly": ["width=8", "latent=16"],
    "skipganomaly": ["width=8"],
    "dsagan": ["width=4", "levels=3", "d_width=16", "lr=2e-4"],
}
PATCHES = ["patch=32", "stride=16", "downscale=1.0", "batch_size=8"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("XADT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XADT_DISABLE_PLUGIN_AUTOLOAD", "1")


def xadt(*args: object) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def _sets(name: str, epochs: int) -> list[str]:
    return [a for s in [*PATCHES, *TINY[name], f"epochs={epochs}"] for a in ("--set", s)]


def _train(name: str, data: Path, model: Path, epochs: int, *extra: object) -> Result:
    return xadt(
        "train", "-p", name, data, "-o", model, "--device", "cpu", *_sets(name, epochs), *extra
    )


@pytest.mark.parametrize("name", list(TINY))
def test_train_score_localize_eval(name: str, tmp_path: Path) -> None:
    data = write_scans(tmp_path / "normal", 12)
    model = tmp_path / "model"
    trained = _train(name, data, model, 2)
    assert trained.exit_code == 0, trained.output
    assert f"trained {name} on" in trained.stdout
    info = json.loads((model / "model.json").read_text())
    assert info["config"]["epochs"] == 2
    assert len(info["meta"]["history"]) == 2

    scans = write_scans(tmp_path / "new", 3, seed=4)
    scored = xadt(
        "score", "-m", model, scans, "--device", "cpu", "-o", tmp_path / "r.csv",
        "--set", "score_batch=2",
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 4
    refused = xadt("score", "-m", model, scans, "--set", "lr=1")
    assert refused.exit_code == 1
    assert "only its runtime options can be set (score_batch)" in refused.stderr

    maps = tmp_path / "maps"
    localized = xadt("localize", "-m", model, scans, "-o", maps, "--device", "cpu")
    assert localized.exit_code == 0, localized.output
    amap = np.load(maps / "s00_v0.npy")
    assert amap.dtype == np.float32
    assert np.isfinite(amap).any()

    test = write_folder(tmp_path / "test", n_normal=4, n_anomalous=4)
    report = tmp_path / "eval.json"
    evaluated = xadt("eval", test, "-m", model, "--device", "cpu", "-o", report)
    assert evaluated.exit_code == 0, evaluated.output
    assert "AUROC" in evaluated.stdout
    assert len(json.loads(report.read_text())["scans"]) == 8


def _weights(model: Path) -> dict[str, np.ndarray]:
    return safetensors.numpy.load_file(model / "tensors.safetensors")


def test_ctrl_c_then_resume_gives_the_uninterrupted_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_scans(tmp_path / "normal", 12)
    assert _train("ganomaly", data, tmp_path / "whole", 3).exit_code == 0

    step_once = GanomalyDetector.training_step

    def interrupt_in_epoch_2(self: Any, step: Step, batch: Any) -> dict[str, float]:
        if (step.epoch, step.index) == (2, 0):
            os.kill(os.getpid(), signal.SIGINT)
        return step_once(self, step, batch)

    model, folder = tmp_path / "model", tmp_path / "ckpt"
    with monkeypatch.context() as patch:
        patch.setattr(GanomalyDetector, "training_step", interrupt_in_epoch_2)
        stopped = _train("ganomaly", data, model, 3, "--checkpoints", folder)
    assert stopped.exit_code == 130, stopped.output
    assert "interrupted: training interrupted in epoch 2" in stopped.stderr
    assert not model.exists()
    resumed = _train("ganomaly", data, model, 3, "--checkpoints", folder, "--resume")
    assert resumed.exit_code == 0, resumed.output
    whole, again = _weights(tmp_path / "whole"), _weights(model)
    assert whole.keys() == again.keys()
    for key in whole:
        np.testing.assert_array_equal(whole[key], again[key], err_msg=key)
