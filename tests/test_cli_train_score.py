"""``xadt train`` and ``xadt score`` through typer's CliRunner, on tiny PNG folders."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.test_workflows import store, write_scans
from xadt.artifacts import read_model_info, store_path
from xadt.cli.app import app

__all__ = ["store"]  # the fixture, imported for pytest

runner = CliRunner()


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def xadt(*args: object) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_train_then_score_through_the_store(store: Path, tmp_path: Path) -> None:
    data = write_scans(tmp_path / "normal", 12)
    trained = xadt("train", "--plugin", "baseline", data, "--holdout", "0.3")
    assert trained.exit_code == 0, trained.output
    assert "trained baseline on" in trained.stdout
    assert "held-out" in trained.stdout
    assert str(store_path("baseline")) in trained.stdout.replace("\n", "")
    assert read_model_info(store_path("baseline")).calibration is not None

    scored = xadt("score", "--plugin", "baseline", write_scans(tmp_path / "new", 3, seed=4))
    assert scored.exit_code == 0, scored.output
    for phrase in ("s00", "s02", "score", "size", "attenuation", "busyness", "flag", "patches"):
        assert phrase in scored.stdout
    assert "threshold" in scored.stdout


def test_train_refuses_an_existing_model_and_overwrite_replaces_it(
    store: Path, tmp_path: Path
) -> None:
    data = write_scans(tmp_path / "normal", 12)
    model = tmp_path / "model"
    assert xadt("train", "-p", "baseline", data, "-o", model, "--holdout", "0.3").exit_code == 0
    again = xadt("train", "-p", "baseline", data, "-o", model, "--holdout", "0.3")
    assert again.exit_code == 1
    assert (
        again.stderr
        == f"error: {model}: a model already exists there; pass --overwrite to replace it\n"
    )
    replaced = xadt(
        "train",
        "-p",
        "baseline",
        data,
        "-o",
        model,
        "--holdout",
        "0.3",
        "--set",
        "ridge=0.5",
        "--overwrite",
    )
    assert replaced.exit_code == 0, replaced.output
    assert read_model_info(model).config["ridge"] == 0.5


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--set", "rigde=1"], "--set: baseline has no option 'rigde'; did you mean 'ridge'?"),
        (["--set", "ridge"], "--set: expected key=value, got 'ridge'"),
        (["--device", "cuda"], "--device cuda: CUDA is not available here"),
        (["--device", "tpu"], "--device must be auto, cpu, cuda or cuda:N; got 'tpu'"),
        (["--holdout", "2"], "--holdout must be a fraction between 0 and 1"),
        (["--target-fpr", "0"], "--target-fpr must be a fraction between 0 and 1"),
    ],
)
def test_train_bad_options_are_one_error_line(
    store: Path, tmp_path: Path, args: list[str], phrase: str
) -> None:
    data = write_scans(tmp_path / "normal", 4)
    result = xadt("train", "-p", "baseline", data, *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert phrase in result.stderr
    assert not store_path("baseline").exists()


def test_train_unknown_plugin_and_missing_data(store: Path, tmp_path: Path) -> None:
    data = write_scans(tmp_path / "normal", 4)
    unknown = xadt("train", "-p", "basline", data)
    assert unknown.exit_code == 1
    assert "unknown plugin 'basline'; did you mean 'baseline'?" in unknown.stderr
    missing = xadt("train", "-p", "baseline", tmp_path / "nowhere")
    assert missing.exit_code == 1
    assert "nowhere" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = xadt("train", "-p", "baseline", tmp_path / "empty")
    assert empty.exit_code == 1
    assert "empty: no image files" in empty.stderr


def test_train_usage_errors_are_typers(store: Path, tmp_path: Path) -> None:
    result = xadt("train", write_scans(tmp_path / "normal", 4))
    assert result.exit_code == 2
    assert "--plugin" in result.output


def test_train_with_unreadable_scans_saves_then_exits_1(store: Path, tmp_path: Path) -> None:
    data = write_scans(tmp_path / "normal", 12)
    (data / "torn.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    result = xadt("train", "-p", "baseline", data, "--holdout", "0.3")
    assert result.exit_code == 1
    assert "trained baseline" in result.stdout
    assert result.stderr.splitlines()[-1].startswith(
        "error: 1 of 13 scans skipped: torn.png: damaged"
    )
    assert "warning: the threshold was set on only" in result.stderr
    assert "the model was trained on the rest and saved" in result.stderr
    assert store_path("baseline").is_dir()


def test_score_with_a_model_path_writes_csv_and_json(store: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    xadt(
        "train",
        "-p",
        "hotspot",
        write_scans(tmp_path / "normal", 12),
        "-o",
        model,
        "--holdout",
        "0.3",
    )
    scans = write_scans(tmp_path / "new", 3, seed=4, dark=0.9)

    as_csv = xadt("score", "--model", model, scans, "-o", tmp_path / "r.csv")
    assert as_csv.exit_code == 0, as_csv.output
    assert "FLAG" in as_csv.stdout
    rows = list(csv.DictReader((tmp_path / "r.csv").read_text().splitlines()))
    assert [r["id"] for r in rows] == ["s00", "s01", "s02"]
    assert rows[0].keys() == {
        "id",
        "score",
        "normal_quantile",
        "peak",
        "mean",
        "flag",
        "patches",
        "note",
        "warning",
    }
    assert {r["flag"] for r in rows} == {"true"}
    assert {r["patches"] for r in rows} == {"4"}

    as_json = xadt("score", "-m", model, "-p", "hotspot", scans, "-o", tmp_path / "r.json")
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["plugin"] == "hotspot"
    assert doc["threshold"] == read_model_info(model).calibration.threshold  # type: ignore[union-attr]
    assert [s["score"] for s in doc["scans"]] == [float(r["score"]) for r in rows]

    again = xadt("score", "-m", model, scans, "-o", tmp_path / "r.json")
    assert again.exit_code == 1
    assert "r.json: already exists; pass --overwrite" in again.stderr
    assert (
        xadt("score", "-m", model, scans, "-o", tmp_path / "r.json", "--overwrite").exit_code == 0
    )


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["-p", "hotspot"], "no model for plugin 'hotspot' in "),
        (["-p", "hotspot"], "run 'xadt train --plugin hotspot DATA' first or pass --model DIR"),
        (["-p", "baseline", "-m", "MODEL"], "written by plugin 'hotspot', not 'baseline'"),
        (["-m", "nowhere"], "nowhere: no such model directory"),
        ([], "pass --plugin P (its model in the store) or --model DIR"),
        (["-m", "MODEL", "-o", "r.txt"], "unknown results format '.txt'"),
    ],
)
def test_score_errors_are_one_line(
    store: Path, tmp_path: Path, args: list[str], phrase: str
) -> None:
    model = tmp_path / "model"
    xadt(
        "train",
        "-p",
        "hotspot",
        write_scans(tmp_path / "normal", 12),
        "-o",
        model,
        "--holdout",
        "0.3",
    )
    args = [str(model) if a == "MODEL" else a for a in args]
    result = xadt("score", *args, write_scans(tmp_path / "new", 2))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert phrase in result.stderr
    assert result.stderr.count("\n") == 1


def test_score_with_unreadable_scans_scores_the_rest_and_exits_1(
    store: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    xadt(
        "train",
        "-p",
        "hotspot",
        write_scans(tmp_path / "normal", 12),
        "-o",
        model,
        "--holdout",
        "0.3",
    )
    scans = write_scans(tmp_path / "new", 2)
    (scans / "bad.png").write_bytes(b"")
    result = xadt("score", "-m", model, scans, "-o", tmp_path / "r.csv")
    assert result.exit_code == 1
    assert "s01" in result.stdout
    assert "error: 1 of 3 scans skipped: bad.png: file is empty" in result.stderr
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert len(lines) == 4  # two scans, then the skipped file with its reason
    assert lines[-1].startswith("bad.png,")
    assert lines[-1].endswith(",skipped: file is empty (0 bytes),")  # no warning


def test_train_backbone_and_weights_shorthands(store: Path, tmp_path: Path) -> None:
    # A mismatched weights file is the backbone's error, tested in test_backbones.py.
    data = write_scans(tmp_path / "normal", 4)
    no_option = xadt("train", "-p", "baseline", data, "--backbone", "resnet18")
    assert no_option.exit_code == 1
    assert "baseline has no option 'backbone'" in no_option.stderr
    both = xadt("train", "-p", "baseline", data, "--backbone", "resnet18", "--set", "backbone=x")
    assert both.exit_code == 1
    assert "--backbone and --set backbone=... both set 'backbone'" in both.stderr
    missing = xadt("train", "-p", "baseline", data, "--weights", tmp_path / "absent.pth")
    assert missing.exit_code == 2
    assert "absent.pth" in missing.output
    assert not store_path("baseline").exists()


def test_train_reads_an_option_file_that_set_overrides_and_dry_run_prints_it(
    store: Path, tmp_path: Path
) -> None:
    data = write_scans(tmp_path / "normal", 12)
    options = tmp_path / "baseline.toml"
    options.write_text('feature = "size"\nridge = 0.5\n')
    dry = xadt(
        "train", "-p", "baseline", data, "--config", options, "--set", "ridge=0.25", "--dry-run"
    )
    assert dry.exit_code == 0, dry.output
    assert 'feature = "size"' in dry.stdout
    assert "ridge = 0.25" in dry.stdout
    assert "12 scans in" in dry.stdout
    assert not store_path("baseline").exists()
    trained = xadt("train", "-p", "baseline", data, "--config", options, "--holdout", "0.3")
    assert trained.exit_code == 0, trained.output
    assert read_model_info(store_path("baseline")).config == {"feature": "size", "ridge": 0.5}


@pytest.mark.parametrize(
    ("text", "name", "phrase"),
    [
        ("rigde = 1\n", "o.toml", "o.toml: baseline has no option 'rigde'; did you mean 'ridge'?"),
        ("ridge = [1]\n", "o.toml", "option 'ridge' must be a string, number or boolean"),
        ("ridge = \n", "o.toml", "o.toml: not a TOML option file"),
        ("ridge: 1\n", "o.yaml", "YAML option files are not read; write TOML instead"),
        ('ridge = "big"\n', "o.toml", "The 'ridge' option of baseline must be a float"),
    ],
)
def test_a_bad_option_file_is_one_line_naming_it(
    store: Path, tmp_path: Path, text: str, name: str, phrase: str
) -> None:
    data = write_scans(tmp_path / "normal", 4)
    (tmp_path / name).write_text(text)
    result = xadt("train", "-p", "baseline", data, "--config", tmp_path / name)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert phrase in result.stderr


def test_a_data_folder_with_images_only_in_subfolders_gets_a_hint(
    store: Path, tmp_path: Path
) -> None:
    write_scans(tmp_path / "data" / "train" / "normal", 6)
    result = xadt("train", "-p", "baseline", tmp_path / "data")
    assert result.exit_code == 1
    assert "its subfolder train/normal/ holds some: name the subfolder, or pass --recursive" in (
        result.stderr
    )
    assert result.stderr.count("\n") == 1
    recursive = xadt("train", "-p", "baseline", tmp_path / "data", "-r", "--holdout", "0.5")
    assert recursive.exit_code == 0, recursive.output
    assert "trained baseline on 2 scans" in recursive.stdout  # 4 of 6 held out (hashed ids)


def test_ctrl_c_is_one_line_and_exit_130(store: Path, tmp_path: Path, monkeypatch) -> None:
    from xadt.workflows import score as score_module

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(score_module, "load_scoring_model", interrupted)
    result = xadt("score", "-p", "baseline", tmp_path)
    assert result.exit_code == 130
    assert result.stderr == "interrupted; no file was half written\n"
