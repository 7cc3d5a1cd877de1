"""``xadt bench``: the table and the JSON on tiny inputs, and the refusals of --device cuda."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from xadt import _kernels
from xadt.cli.app import app

runner = CliRunner()
KERNELS = ["extract_patches", "mahalanobis", "topn_excursion", "window_map"]
QUICK = ["bench", "--quick", "--plugin", "baseline", "--scans", "2", "--scale", "0.25"]


def test_bench_prints_the_table_and_writes_the_same_figures(tmp_path: Path) -> None:
    out = tmp_path / "figures" / "bench.json"
    result = runner.invoke(
        app, [*QUICK, "--repeats", "2", "--json", str(out)], env={"COLUMNS": "240"}
    )
    assert result.exit_code == 0, result.output
    for header in ("patches/s", "scans/s", "speed-up", "device", "torch threads"):
        assert header in result.stdout
    report = json.loads(out.read_text())
    assert report["device"] == "cpu"
    assert report["versions"]["xadt"]
    assert report["versions"]["torch"] == torch.__version__
    rows = {row["what"]: row for row in report["rows"]}
    assert list(rows) == [*KERNELS, "baseline"]
    for name in KERNELS:
        row = rows[name]
        assert row["kind"] == "kernel"
        assert row["device"] == "cpu"
        assert row["agrees"] is True, row  # the fast path matches its reference
        assert row["speedup"] == pytest.approx(
            row["reference_timing"]["wall"] / row["timing"]["wall"]
        )
        assert row["patches_per_s"] > 0
        assert row["timing"]["repeats"] == 2
        assert name in result.stdout
    detector = rows["baseline"]
    assert detector["scans"] == 2
    assert detector["scans_per_s"] > 0
    assert detector["timing"]["cpu"] > 0
    assert "fitted on" in detector["note"]


def test_bench_refuses_to_overwrite_its_json_before_measuring(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    out.write_text("{}")
    result = runner.invoke(app, [*QUICK, "--json", str(out)])
    assert result.exit_code == 1
    assert "already exists; pass --overwrite" in result.stderr
    assert out.read_text() == "{}"


def test_bench_on_cuda_without_a_gpu_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = runner.invoke(app, ["bench", "--device", "cuda"])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: --device cuda: torch sees no CUDA GPU on this machine; use --device cpu\n"
    )


def test_bench_on_cuda_without_the_cuda_kernels_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(_kernels, "cuda_compiled", False)
    result = runner.invoke(app, ["bench", "--device", "cuda"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "--device cuda: xadt was built without its CUDA kernels" in result.stderr


def test_bench_names_an_unknown_device() -> None:
    result = runner.invoke(app, ["bench", "--device", "tpu"])
    assert result.exit_code == 1
    assert result.stderr == "error: --device: expected cpu or cuda, got 'tpu'\n"


def test_bench_passes_set_to_the_detector_and_names_a_bad_option() -> None:
    result = runner.invoke(app, [*QUICK, "--set", "nonsense=1"])
    assert result.exit_code == 1
    assert "baseline has no option 'nonsense'" in result.stderr
    assert "Traceback" not in result.output


def test_bench_precision_names_a_bad_precision() -> None:
    result = runner.invoke(app, ["bench", "--precision", "fp8"])
    assert result.exit_code == 1
    assert "--precision: expected bfloat16 or float16, got 'fp8'" in result.stderr
    result = runner.invoke(app, ["bench", "--precision", "bfloat16", "--plugin", "geom"])
    assert result.exit_code == 1
    assert "--precision compares gaussian's scores" in result.stderr


def test_precision_check_compares_scores_and_aurocs_on_the_same_parcels() -> None:
    from xadt.bench import check_precision

    check = check_precision("bfloat16", fit_scans=3, normal=2, threats=2, scale=0.25)
    assert (check.normal, check.threats, check.device) == (2, 2, "cpu")
    assert set(check.max_rel_diff) == {"score", "appearance", "semantic"}
    assert all(0 < d < 1 for d in check.max_rel_diff.values())  # bfloat16 moves, but a little
    assert 0 <= check.auroc_float32 <= 1
    assert 0 <= check.auroc_half <= 1
    assert check.to_json()["timing_half"]["wall"] > 0
