"""Scans far larger than a parcel: a warning naming the size and the option, scored alone, and
``--max-pixels`` / ``--max-scan-bytes`` to skip them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.test_workflows import Hotspot, fitted, store, trained, write_scans
from xadt.cli.app import app
from xadt.scans import iter_scans
from xadt.workflows import score

__all__ = ["store"]  # the fixture, imported for pytest


def test_a_huge_scan_warns_and_is_scored_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(score, "LARGE_SCAN_PIXELS", 30 * 40)
    folder = write_scans(tmp_path / "s", 4)
    Image.fromarray(np.full((40, 50, 3), 200, np.uint8)).save(folder / "s01.png")  # 2,000 px
    chunks: list[list[str]] = []
    with pytest.warns(
        score.LargeScanWarning, match=r"scan 's01' is 0 MP \(50x40 px\).*--max-pixels"
    ):
        results = list(
            score.score_in_chunks(
                fitted(Hotspot()),
                iter_scans(folder),
                on_chunk=lambda batch, _r: chunks.append([s.id for s in batch]),
            )
        )
    assert [r.scan_id for r in results] == ["s00", "s01", "s02", "s03"]
    assert chunks == [["s00"], ["s01"], ["s02", "s03"]]


def test_cli_prints_the_warning_and_skips_with_the_limits(
    store: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(score, "LARGE_SCAN_PIXELS", 30 * 40)
    trained(tmp_path, name="m")
    folder = write_scans(tmp_path / "s", 2)
    Image.fromarray(np.full((40, 50, 3), 200, np.uint8)).save(folder / "big.png")
    runner = CliRunner()
    scored = runner.invoke(app, ["score", "-m", str(tmp_path / "m"), str(folder)])
    assert scored.exit_code == 0, scored.output
    assert "warning: scan 'big' is 0 MP (50x40 px), far larger than a parcel scan" in scored.stderr
    limited = runner.invoke(
        app, ["score", "-m", str(tmp_path / "m"), str(folder), "--max-pixels", "1000"]
    )
    assert limited.exit_code == 1
    assert "big.png: image is 40x50 = 2,000 pixels, over the limit of 1,000 (--max-pixels)" in (
        limited.stderr
    )
    assert "the other 2 were scored" in limited.stderr
    small = runner.invoke(
        app, ["score", "-m", str(tmp_path / "m"), str(folder), "--max-scan-bytes", "2000"]
    )
    assert small.exit_code == 1
    assert "2 of 3 scans skipped: big.png: decoded, it would take 6,000 bytes" in small.stderr
    assert small.stderr.rstrip().endswith("the other 1 was scored")
    assert "(--max-scan-bytes); raise it if the file is trusted" in small.stderr


def test_progress_inside_a_scan_shows_beside_the_bar_and_old_reporters_still_work() -> None:
    from rich.progress import Progress

    from xadt.cli.common import RichProgress
    from xadt.context import report_within

    class Old:  # a reporter written before ``within`` existed
        def stage(self, name: str, total: int | None = None) -> None: ...
        def epoch(self, index: int, total: int, steps: int | None = None) -> None: ...
        def update(self, done: int, **values: float) -> None: ...

    report_within(Old(), "bag", 1, 4)  # nothing to show, and no error
    reporter = RichProgress(Progress(disable=True))
    report_within(reporter, "bag", 64, 900)
    assert reporter.bar.tasks[0].fields["values"] == "bag: 64/900 windows"
    report_within(reporter, "bag", 900, 900)
    assert reporter.bar.tasks[0].fields["values"] == ""


def test_a_large_run_shows_its_most_anomalous_scans_and_keeps_every_score(
    store: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from xadt.cli import score as score_cli

    monkeypatch.setattr(score_cli, "TABLE_ROWS", 2)
    trained(tmp_path, name="m")
    folder = write_scans(tmp_path / "s", 4)
    write_scans(tmp_path / "s", 1, prefix="dark", dark=0.9)
    out = tmp_path / "r.csv"
    result = CliRunner().invoke(
        app, ["score", "-m", str(tmp_path / "m"), str(folder), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "the 2 most anomalous of 5 scans; every score is in the -o file" in result.stdout
    assert "dark00" in result.stdout
    assert len(out.read_text().splitlines()) == 6
    alone = CliRunner().invoke(app, ["score", "-m", str(tmp_path / "m"), str(folder)])
    assert "pass -o FILE for every score" in alone.stdout
