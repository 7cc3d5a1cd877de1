"""Training under torch DDP on 2 CPU processes (gloo): the same loss curve and weights as one
process on the same global batch (a linear detector exactly, the example autoencoder within
BatchNorm's tolerance), checkpoints from rank 0 only, resume, a GAN, and the
``xadt train --engine ddp`` launcher with the pip-installed example plugin."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from typer.testing import CliRunner

from tests.test_contract import SMALL_CONFIGS
from tests.test_engine import Line, _data
from tests.test_trainable_plugin import EXAMPLE, _train, _wait_for_epoch, _write, installed
from xadt import ddp, engine
from xadt.cli.app import app
from xadt.context import RunContext
from xadt.engine import TrainableDetector
from xadt.plugins.ganomaly.detector import GanomalyDetector
from xadt.testing import normal_scans
from xadt.training_data import TrainingData

__all__ = ["installed"]  # the fixture, imported for pytest

WORLD = 2
AUTOENCODER = {"patch": 16, "stride": 16, "downscale": 1.0, "width": 4, "latent": 8}


def _autoencoder(epochs: int) -> TrainableDetector:
    """The example plugin's detector, batch 32, imported from its file (not from sys.path)."""
    module = sys.modules.get("xadt_autoencoder")
    if module is None:
        spec = importlib.util.spec_from_file_location(
            "xadt_autoencoder", EXAMPLE / "xadt_autoencoder.py"
        )
        assert spec is not None
        assert spec.loader is not None
        module = sys.modules["xadt_autoencoder"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module.AutoencoderDetector(**AUTOENCODER, batch_size=32, epochs=epochs)


def _scans() -> TrainingData:
    return TrainingData.from_scans(normal_scans(10, seed=1))


def _ranks(rank: int, port: int, out: Path) -> None:
    """One rank of the in-process tests: every scenario in one process group (one start-up)."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        writes: list[int] = []
        save = engine.save_checkpoint

        def spy(folder: Path, checkpoint: Any) -> Path:
            writes.append(rank)
            return save(folder, checkpoint)

        engine.save_checkpoint = spy  # type: ignore[assignment]
        whole = Line(epochs=4).fit(_data(), RunContext(checkpoint_dir=out / "whole"))
        Line(epochs=2).fit(_data(), RunContext(checkpoint_dir=out / "part"))
        resumed = Line(epochs=4).fit(_data(), RunContext(checkpoint_dir=out / "part", resume=True))
        autoencoder = _autoencoder(3).fit(_scans(), RunContext())
        small = {**SMALL_CONFIGS["ganomaly"], "epochs": 1}
        gan = GanomalyDetector(dataclasses.replace(GanomalyDetector.Config(), **small))
        gan.fit(
            TrainingData.from_scans(normal_scans(4, seed=3)), RunContext(cache_dir=out / "cache")
        )
        result = {
            "history": whole.history_,
            "writes": writes,
            "gan_history": gan.history_,
            "autoencoder_history": autoencoder.history_,
        }
        (out / f"rank{rank}.json").write_text(json.dumps(result))
        arrays = {f"whole.{k}": v for k, v in whole.state().tensors.items()}
        arrays |= {f"resumed.{k}": v for k, v in resumed.state().tensors.items()}
        arrays |= {f"gan.{k}": v for k, v in gan.state().tensors.items()}
        arrays |= {f"autoencoder.{k}": v for k, v in autoencoder.state().tensors.items()}
        np.savez(out / f"rank{rank}.npz", **arrays)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of one 2-rank run of :func:`_ranks`."""
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_ranks, args=(ddp._free_port(), out), nprocs=WORLD, join=True)
    return out


def _load(out: Path, rank: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    result = json.loads((out / f"rank{rank}.json").read_text())
    return result, dict(np.load(out / f"rank{rank}.npz"))


def _epochs(folder: Path) -> list[int]:
    lines = (folder / engine.LOG_FILE).read_text().splitlines()
    return [json.loads(line)["epoch"] for line in lines]


def test_two_ranks_give_the_loss_curve_and_weights_of_one_process(ranks: Path) -> None:
    result, arrays = _load(ranks, 0)
    single = Line(epochs=4).fit(_data(), RunContext())
    # Each rank averages half of every batch and the gradients are averaged: the same maths in
    # another summation order, so the curves agree to float32 rounding.
    np.testing.assert_allclose(
        [h["train"]["loss"] for h in result["history"]],
        [h["train"]["loss"] for h in single.history_],
        rtol=1e-5,
    )
    for key, value in single.state().tensors.items():
        np.testing.assert_allclose(arrays[f"whole.{key}"], value, rtol=1e-5, atol=1e-6)


def test_both_ranks_end_with_the_same_weights(ranks: Path) -> None:
    a, b = _load(ranks, 0)[1], _load(ranks, 1)[1]
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_only_rank_0_writes_checkpoints_and_the_log(ranks: Path) -> None:
    assert _load(ranks, 0)[0]["writes"] == [0] * 8  # 4 + 2 + 2 epochs
    assert _load(ranks, 1)[0]["writes"] == []
    assert _epochs(ranks / "whole") == [1, 2, 3, 4]


def test_a_resumed_ddp_run_ends_where_the_uninterrupted_one_does(ranks: Path) -> None:
    arrays = _load(ranks, 0)[1]
    for key in (k for k in arrays if k.startswith("whole.")):
        resumed = arrays["resumed." + key.removeprefix("whole.")]
        np.testing.assert_array_equal(arrays[key], resumed, err_msg=key)
    assert _epochs(ranks / "part") == [1, 2, 3, 4]


def test_a_gan_trains_an_epoch_under_ddp(ranks: Path) -> None:
    (epoch,) = _load(ranks, 0)[0]["gan_history"]
    assert epoch["epoch"] == 1
    assert {"d", "g", "con"} <= epoch["train"].keys()
    assert all(np.isfinite(v) for v in epoch["train"].values())


def test_the_example_autoencoder_follows_the_one_process_curve(ranks: Path) -> None:
    result, arrays = _load(ranks, 0)
    single = _autoencoder(3).fit(_scans(), RunContext())
    # BatchNorm normalises each rank's half batch by its own statistics, so the runs differ
    # slightly; the tolerances are stated in docs/scale.md.
    np.testing.assert_allclose(
        [h["train"]["loss"] for h in result["autoencoder_history"]],
        [h["train"]["loss"] for h in single.history_],
        rtol=0.01,
    )
    for key, value in single.state().tensors.items():
        if key.endswith(".weight"):
            change = np.linalg.norm(arrays[f"autoencoder.{key}"] - value) / np.linalg.norm(value)
            assert change < 0.1, key


def test_xadt_train_engine_ddp_trains_the_installed_plugin(
    installed: dict[str, str], tmp_path: Path
) -> None:
    data = _write(tmp_path / "normal", 14, seed=1)
    model, folder = tmp_path / "model", tmp_path / "ckpt"
    command = _train(data, model, 2, "--engine", "ddp", "--nproc", 2, "--checkpoints", folder)
    run = subprocess.run(command, env=installed, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("trained autoencoder on") == 1  # rank 0 alone reports
    assert len(json.loads((model / "model.json").read_text())["meta"]["history"]) == 2
    assert _epochs(folder) == [1, 2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("ganomaly --engine ddp --nproc 0", "--nproc must be an integer >= 1; got 0"),
        ("ganomaly --nproc 2", "--nproc needs --engine ddp"),
        ("ganomaly --engine ddp", "--engine ddp on CPU needs --nproc N, the number of training "
         "processes"),
        ("gaussian --engine ddp --nproc 2", "--engine ddp trains detectors that train networks; "
         "gaussian does not"),
    ],
)  # fmt: skip
def test_bad_ddp_options_are_one_line(
    args: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XADT_DISABLE_PLUGIN_AUTOLOAD", "1")
    command = ["train", str(tmp_path), "--device", "cpu", "-p", *args.split()]
    result = CliRunner().invoke(app, command)
    assert (result.exit_code, result.output) == (1, f"error: {message}\n")


@pytest.mark.slow
def test_ctrl_c_stops_every_rank_and_the_run_resumes(
    installed: dict[str, str], tmp_path: Path
) -> None:
    data = _write(tmp_path / "normal", 48, seed=1)  # epochs long enough for the signal to land
    model, folder = tmp_path / "model", tmp_path / "ckpt"
    command = [*_train(data, model, 8, "--engine", "ddp", "--nproc", 2), "--checkpoints", folder]
    process = subprocess.Popen(
        command, env=installed, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for_epoch(folder, 2, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.count("interrupted: training interrupted in epoch") == 1  # rank 0 alone
    assert "resume with: xadt train" in stderr
    assert stderr.rstrip().endswith("--resume")
    assert not model.exists()
    resumed = subprocess.run([*command, "--resume"], env=installed, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert _epochs(folder) == list(range(1, 9))
