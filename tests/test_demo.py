"""``xadt demo`` end to end with tiny synthetic parcels: the baseline, and a map-making detector."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.test_workflows import Hotspot, registry_with, store
from xadt.artifacts import read_model_info
from xadt.cli.app import app
from xadt.context import NullProgress, RunContext
from xadt.errors import XadtError
from xadt.plugins.baseline import BaselineDetector
from xadt.workflows import demo
from xadt.workflows.demo import DEFAULT_PLUGIN, DemoSize, check_demo_folder, run_demo

__all__ = ["store"]  # the fixture, imported for pytest

TINY = DemoSize(train=12, test_normal=3, threat=3)


def test_demo_with_the_baseline_runs_to_the_end(store: Path, tmp_path: Path) -> None:
    stages: list[str] = []

    class Record(NullProgress):
        def stage(self, name: str, total: int | None = None) -> None:
            stages.append(name)

    result = run_demo(
        tmp_path / "demo",
        plugin="baseline",
        scale=0.08,
        size=TINY,
        workers=1,
        context=RunContext(progress=Record()),
    )
    assert {p.name for p in result.out.iterdir()} == {"data", "model", "scores.csv", "report.json"}
    assert result.overlays is None
    assert any("no localisation" in note for note in result.notes)
    assert result.report.n_normal == 3
    assert result.report.n_anomalous == 3
    assert result.report.flag_rate_normal is not None  # flags come from the model's threshold
    assert read_model_info(result.model).calibration is not None
    assert result.training.n_fitted + result.training.n_holdout == 12
    rows = list(csv.DictReader(result.scores.read_text().splitlines()))
    assert len(rows) == 6
    doc = json.loads(result.report_path.read_text())
    assert doc["detector"] == "baseline"
    assert [s["score"] for s in doc["scans"]] != []
    for stage in ("synthesising parcels", "calibrating", "scoring the test set"):
        assert stage in stages


def test_demo_with_maps_writes_overlays_and_pixel_metrics(store: Path, tmp_path: Path) -> None:
    result = run_demo(
        tmp_path / "demo",
        plugin="hotspot",
        scale=0.08,
        size=TINY,
        workers=1,
        context=RunContext(registry=registry_with(Hotspot)),
    )
    assert result.overlays is not None
    pngs = sorted(p.name for p in result.overlays.glob("*.png"))
    assert len(pngs) == 12  # 6 test parcels, 2 views each
    assert "test-threat-00000_v1.png" in pngs
    assert result.report.pixel_auroc is not None
    assert result.notes == []
    assert result.gallery == result.overlays / "index.html"
    rows = csv.DictReader(result.scores.read_text(encoding="utf-8").splitlines())
    worst = max(rows, key=lambda row: float(row["score"]))
    assert result.most_anomalous == result.overlays / f"{worst['id']}_v0.png"
    assert f"{worst['id']} —" in result.gallery.read_text(encoding="utf-8")


def test_demo_refuses_a_non_empty_folder_and_replaces_with_overwrite(
    store: Path, tmp_path: Path
) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "notes.txt").write_text("mine")
    with pytest.raises(XadtError, match="demo: is not empty; pass --overwrite"):
        run_demo(tmp_path / "demo", plugin="baseline", scale=0.08, size=TINY, workers=1)
    (tmp_path / "file").write_text("x")
    with pytest.raises(XadtError, match="is a file"):
        check_demo_folder(tmp_path / "file", overwrite=True)
    first = run_demo(
        tmp_path / "demo", plugin="hotspot", scale=0.08, size=TINY, workers=1, overwrite=True
    )
    assert first.overlays is not None
    assert first.gallery is not None
    again = run_demo(
        tmp_path / "demo", plugin="hotspot", scale=0.08, size=TINY, workers=1, overwrite=True
    )
    assert again.report.n_normal == 3
    assert (tmp_path / "demo" / "notes.txt").read_text() == "mine"


def test_demo_checks_options_before_making_parcels(store: Path, tmp_path: Path) -> None:
    with pytest.raises(XadtError, match="--set: baseline has no option 'rigde'"):
        run_demo(tmp_path / "demo", plugin="baseline", overrides=["rigde=1"])
    assert not (tmp_path / "demo").exists()
    result = run_demo(
        tmp_path / "demo", plugin="hotspot", scale=0.08, size=TINY, workers=1, overrides=["gain=2"]
    )
    assert read_model_info(result.model).config["gain"] == 2.0


def test_demo_options_come_before_the_users_set(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(demo.DEMO_OPTIONS, "hotspot", ("gain=3",))
    for name, overrides, gain in (("own", [], 3.0), ("set", ["gain=2"], 2.0)):
        result = run_demo(
            tmp_path / name,
            plugin="hotspot",
            scale=0.08,
            size=TINY,
            workers=1,
            overrides=overrides,
            context=RunContext(registry=registry_with(Hotspot)),
        )
        assert read_model_info(result.model).config["gain"] == gain


def test_demo_names_a_missing_plugin(tmp_path: Path) -> None:
    with pytest.raises(XadtError, match=rf"unknown plugin '{DEFAULT_PLUGIN}'.*pass --plugin NAME"):
        run_demo(tmp_path / "demo", context=RunContext(registry=registry_with(BaselineDetector)))
    assert not (tmp_path / "demo").exists()


def test_cli_demo_prints_the_evaluation(store: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "demo"
    args = ["demo", "--plugin", "baseline", "--out", str(out), "--scale", "0.08"]
    result = runner.invoke(app, [*args, "--train", "12", "--test", "3"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for phrase in ("AUROC (scan score)", "95% CI", "trained baseline on", "report:", "done in"):
        assert phrase in result.stdout
    assert (out / "report.json").is_file()
    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert "is not empty; pass --overwrite" in again.stderr
    bad = runner.invoke(app, ["demo", "--scale", "9"])
    assert bad.exit_code == 2
    assert "Traceback" not in result.output + again.output + bad.output
