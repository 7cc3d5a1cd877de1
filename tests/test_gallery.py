"""The ranked HTML gallery of ``xadt localize --html``: order, content, refusal to overwrite, and
what a real (headless) browser shows of it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.test_workflows import REGISTRY, store, trained, write_scans
from xadt.aggregate import EMPTY_SCAN_SCORE
from xadt.artifacts import load_model
from xadt.cli.app import app
from xadt.errors import XadtError
from xadt.workflows.gallery import GALLERY_NAME, write_gallery
from xadt.workflows.localize import localize_folder
from xadt.workflows.score import ScoreRow, ranked

__all__ = ["store"]  # the fixture, imported for pytest

ROWS = [
    ScoreRow("quiet", 0.1, flag=False, normal_quantile=0.4),
    ScoreRow("air", EMPTY_SCAN_SCORE),
    ScoreRow("<odd & id>", 0.9, flag=True, normal_quantile=1.0),
    ScoreRow("mid", 0.5, flag=False, normal_quantile=0.9),
]


def test_ranked_puts_the_most_anomalous_first_and_all_air_last() -> None:
    assert [r.id for r in ranked(ROWS, None)] == ["<odd & id>", "mid", "quiet", "air"]
    assert [r.id for r in ranked(ROWS, 2)] == ["<odd & id>", "mid"]


def test_gallery_escapes_ids_links_views_and_refuses_to_overwrite(tmp_path: Path) -> None:
    images = {r.id: [f"{r.id}_v0.png", f"{r.id}_v1.png"] for r in ROWS}
    page = write_gallery(tmp_path, ROWS, images, model_name="hotspot", calibration=None, top=3)
    text = page.read_text(encoding="utf-8")
    assert page == tmp_path / GALLERY_NAME
    assert "&lt;odd &amp; id&gt;" in text
    assert "<odd" not in text
    assert 'src="%3Codd%20%26%20id%3E_v1.png"' in text
    assert text.index("&lt;odd") < text.index(">2. mid") < text.index(">3. quiet")
    assert "air_v0.png" not in text  # cut by top=3
    assert "4 scans localised, 1 flagged; the 3 most anomalous shown" in text
    assert '<span class="flag">FLAGGED</span>' in text
    with pytest.raises(XadtError, match=r"index\.html: already exists; pass --overwrite"):
        write_gallery(tmp_path, ROWS, images, model_name="hotspot", calibration=None)
    assert page.read_text(encoding="utf-8") == text


def _localized(tmp_path: Path) -> Path:
    trained(tmp_path)
    scans = write_scans(tmp_path / "scans", 3, seed=3)
    hot = np.full((48, 64, 3), 255, np.uint8)
    hot[24:, 32:] = 0  # one dark quadrant: the most anomalous scan, painted in heat colours
    Image.fromarray(hot).save(scans / "hot.png")
    return scans


def test_localize_writes_the_gallery_and_checks_it_before_scoring(
    store: Path, tmp_path: Path
) -> None:
    scans = _localized(tmp_path)
    model = load_model(tmp_path / "model", registry=REGISTRY)
    run = localize_folder(model, scans, tmp_path / "out", gallery=50)
    assert run.gallery == tmp_path / "out" / GALLERY_NAME
    assert run.rows[0].id == "hot"
    text = run.gallery.read_text(encoding="utf-8")
    assert text.index("hot_v0.png") < text.index("s00_v0.png")
    assert "threshold" in text
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / GALLERY_NAME).write_text("mine")
    with pytest.raises(XadtError, match="already exists"):
        localize_folder(model, scans, tmp_path / "again", gallery=50)
    assert [p.name for p in (tmp_path / "again").iterdir()] == [GALLERY_NAME]


def test_cli_localize_html_names_the_gallery_and_the_most_anomalous_scan(
    store: Path, tmp_path: Path
) -> None:
    scans = _localized(tmp_path)
    out = tmp_path / "o"
    args = ["localize", "-m", str(tmp_path / "model"), str(scans), "-o", str(out), "--html"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"gallery: {out / GALLERY_NAME}" in result.stdout
    assert "most anomalous: hot (score" in result.stdout
    assert str(out / "hot_v0.png") in result.stdout


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (.ci/run installs it)")
def test_gallery_renders_in_a_headless_browser(store: Path, tmp_path: Path) -> None:
    scans = _localized(tmp_path)
    model = load_model(tmp_path / "model", registry=REGISTRY)
    run = localize_folder(model, scans, tmp_path / "out", gallery=50)
    assert run.gallery is not None
    shot = tmp_path / "shot.png"
    browser = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    url = run.gallery.as_uri()
    dom = subprocess.run(
        [*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert 'id="rank-1"' in dom
    assert "hot —" in dom
    subprocess.run(
        [*browser, f"--screenshot={shot}", "--window-size=1000,700", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    page = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    # The page's dark background, and the hot scan's heat colour: the overlay image loaded.
    assert (np.abs(page - [0x1D, 0x1D, 0x1F]).max(axis=1) <= 2).mean() > 0.2
    overlay = np.asarray(Image.open(tmp_path / "out" / "hot_v0.png").convert("RGB"))
    heat = overlay[40, 56].astype(int)  # inside the dark quadrant
    assert heat[0] > heat[2] + 40  # a warm colour, not the grey scan
    assert (np.abs(page - heat).max(axis=1) <= 12).sum() > 50


def test_cli_scores_and_localizes_files_patterns_and_subfolders(
    store: Path, tmp_path: Path
) -> None:
    scans = _localized(tmp_path)
    (scans / "day2").mkdir()
    Image.open(scans / "hot.png").save(scans / "day2" / "hot.png")
    runner = CliRunner()
    model = ["-m", str(tmp_path / "model")]
    out = tmp_path / "scores.csv"
    scored = runner.invoke(
        app, ["score", *model, str(scans / "s00.png"), str(scans / "h*.png"), "-o", str(out)]
    )
    assert scored.exit_code == 0, scored.output
    assert [line.split(",")[0] for line in out.read_text().splitlines()[1:]] == ["hot", "s00"]
    args = ["localize", *model, str(scans), "-r", "-o", str(tmp_path / "o"), "--html"]
    located = runner.invoke(app, args)
    assert located.exit_code == 0, located.output
    assert (tmp_path / "o" / "day2" / "hot_v0.png").is_file()
    assert 'src="day2/hot_v0.png"' in (tmp_path / "o" / GALLERY_NAME).read_text()
    again = runner.invoke(app, args[:-1])
    assert again.exit_code == 1
    assert "day2/hot_v0.npy: already exists" in again.stderr
    missing = runner.invoke(app, ["score", *model, str(scans / "nope*.png")])
    assert missing.exit_code == 1
    assert "nope*.png: no image file matches this pattern" in missing.stderr
