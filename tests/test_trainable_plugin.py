"""The trainable example plugin (docs/plugins/xadt-autoencoder) on the training engine: the
contract checks, ``xadt train / score / localize`` after a pip install, and resuming after Ctrl-C
and after ``kill -9`` to the same weights as an uninterrupted run."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from PIL import Image

from tests.test_third_party_plugin import Site, site, write_dist_info
from xadt.checkpoints import LATEST, load_latest
from xadt.host import load_registry
from xadt.testing import check_detector, normal_scans

__all__ = ["site"]  # the fixture, imported for pytest

EXAMPLE = Path(__file__).parents[1] / "docs" / "plugins" / "xadt-autoencoder"
TINY = ["patch=16", "stride=16", "downscale=1.0", "width=4", "latent=8", "batch_size=32"]


def test_the_autoencoder_passes_the_contract_with_its_training_checks(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    write_dist_info(site.root, project["name"], project["version"], project["entry-points"]["xadt"])
    monkeypatch.syspath_prepend(EXAMPLE)
    site.modules.append("xadt_autoencoder")
    cls = load_registry().get_detector("autoencoder")
    config = cls.Config(
        patch=32, stride=16, downscale=1.0, width=8, latent=16, epochs=3, batch_size=16
    )
    check_detector(cls, config=config)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The example pip-installed into a folder; the environment that puts it on the path."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("needs setuptools to build the example")
    root = tmp_path_factory.mktemp("autoencoder")
    source, target = root / "src", root / "target"
    shutil.copytree(EXAMPLE, source)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "--target", str(target), str(source)], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("XADT_")}
    env.update(PYTHONPATH=str(target), XADT_HOME=str(root / "home"), PYTHONUNBUFFERED="1")
    return env


def _xadt(*args: object) -> list[str]:
    return [sys.executable, "-c", "from xadt.cli.app import main; main()", *map(str, args)]


def _write(folder: Path, n: int, seed: int) -> Path:
    folder.mkdir(parents=True)
    for scan in normal_scans(n, seed=seed, prefix="n"):
        Image.fromarray(scan.views[0]).save(folder / f"{scan.id}.png")
    return folder


def _train(data: Path, model: Path, epochs: int, *extra: object) -> list[str]:
    sets = [a for s in [*TINY, f"epochs={epochs}"] for a in ("--set", s)]
    return _xadt("train", "-p", "autoencoder", data, "-o", model, "--device", "cpu", *sets, *extra)


def _weights(model: Path) -> dict[str, np.ndarray]:
    return safetensors.numpy.load_file(model / "tensors.safetensors")


def _wait_for_epoch(folder: Path, epoch: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pointer = folder / LATEST
        if pointer.is_file() and json.loads(pointer.read_text())["epoch"] >= epoch:
            return
        if process.poll() is not None:
            pytest.fail(f"training ended before epoch {epoch}: {process.communicate()}")
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"no checkpoint of epoch {epoch} within 120 s")


def test_train_score_localize_through_the_cli(installed: dict[str, str], tmp_path: Path) -> None:
    data = _write(tmp_path / "normal", 14, seed=1)
    model = tmp_path / "model"
    trained = subprocess.run(_train(data, model, 3), env=installed, capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr
    assert "trained autoencoder on" in trained.stdout
    assert not (tmp_path / "model.checkpoints").exists()  # removed once the model is saved
    info = json.loads((model / "model.json").read_text())
    assert info["plugin"]["distribution"] == "xadt-autoencoder"
    assert len(info["meta"]["history"]) == 3
    scans = _write(tmp_path / "scans", 3, seed=9)
    scored = subprocess.run(
        _xadt(
            "score",
            "-m",
            model,
            scans,
            "-o",
            tmp_path / "r.csv",
            "--set",
            "score_batch=7",
        ),
        env=installed,
        capture_output=True,
        text=True,
    )
    assert scored.returncode == 0, scored.stderr
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 4
    refused = subprocess.run(
        _xadt("score", "-m", model, scans, "--set", "epochs=9"),
        env=installed,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1
    assert "only its runtime options can be set (score_batch)" in refused.stderr
    localized = subprocess.run(
        _xadt("localize", "-m", model, scans, "-o", tmp_path / "maps"),
        env=installed,
        capture_output=True,
        text=True,
    )
    assert localized.returncode == 0, localized.stderr
    amap = np.load(tmp_path / "maps" / "n-00_v0.npy")
    assert amap.dtype == np.float32
    assert np.isfinite(amap).mean() > 0.5  # per-pixel errors over the parcel


@pytest.mark.parametrize("stop", ["sigint", "kill"])
def test_an_interrupted_run_resumes_to_the_uninterrupted_weights(
    installed: dict[str, str], tmp_path: Path, stop: str
) -> None:
    # Enough patches that an epoch takes a while: the signal must land before the last one.
    data = _write(tmp_path / "normal", 48, seed=1)
    epochs = 8
    whole = subprocess.run(
        _train(data, tmp_path / "whole", epochs), env=installed, capture_output=True
    )
    assert whole.returncode == 0, whole.stderr

    model, folder = tmp_path / "model", tmp_path / "ckpt"
    command = _train(data, model, epochs, "--checkpoints", folder)
    process = subprocess.Popen(
        command, env=installed, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for_epoch(folder, 2, process)
    process.send_signal(signal.SIGINT if stop == "sigint" else signal.SIGKILL)
    _, stderr = process.communicate(timeout=120)
    if stop == "sigint":
        assert process.returncode == 130, stderr
        assert "interrupted: training interrupted in epoch" in stderr
        assert "resume with: xadt train" in stderr
        assert "--resume" in stderr
    else:
        assert process.returncode == -signal.SIGKILL
    assert not model.exists()
    checkpoint = load_latest(folder)
    assert checkpoint is not None
    assert 1 <= checkpoint.epoch < epochs

    resumed = subprocess.run([*command, "--resume"], env=installed, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    a, b = _weights(tmp_path / "whole"), _weights(model)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    log = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in log] == list(range(1, epochs + 1))
