"""Heat-map overlays and maps (``xadt.workflows.localize``, ``xadt localize``) on a fixed per-model
scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.test_workflows import REGISTRY, Hotspot, fitted, store, trained, write_scans
from xadt.artifacts import load_model
from xadt.cli.app import app
from xadt.errors import XadtError
from xadt.model import Model
from xadt.scans import ScanSkippedWarning, iter_scans
from xadt.workflows.localize import (
    MAX_ALPHA,
    MapScale,
    colourize,
    legend_height,
    localize_folder,
    map_scale,
    render_overlay,
    smoothed,
)
from xadt.workflows.score import ScoreRow

__all__ = ["store"]  # the fixture, imported for pytest

SCALE = MapScale(low=0.2, high=0.6)


def test_colourize_is_transparent_at_and_below_low_and_on_nan() -> None:
    amap = np.array([[np.nan, 0.0, 0.2, 0.4, 0.6, 5.0]], dtype=np.float32)
    rgb, alpha = colourize(amap, SCALE)
    assert alpha[0, :3].tolist() == [0.0, 0.0, 0.0]
    assert 0 < alpha[0, 3] < MAX_ALPHA
    assert alpha[0, 4] == pytest.approx(MAX_ALPHA)
    assert alpha[0, 5] == pytest.approx(MAX_ALPHA)
    assert np.array_equal(rgb[0, 4], rgb[0, 5])  # above the scale: clipped to its top colour
    assert rgb.shape == (1, 6, 3)
    assert rgb.min() >= 0.0
    assert rgb.max() <= 1.0


def test_colourize_ramps_monotonically_in_brightness() -> None:
    rgb, _ = colourize(np.linspace(0.2, 0.6, 50, dtype=np.float32)[None], SCALE)
    brightness = rgb[0].sum(axis=1)
    assert np.all(np.diff(brightness) >= -1e-6)


def test_render_overlay_keeps_unscored_pixels_grey_and_adds_a_legend() -> None:
    view = np.full((20, 90, 3), 200, dtype=np.uint8)
    amap = np.full((20, 90), np.nan, dtype=np.float32)
    amap[5:10, 5:10] = 1.0
    image = render_overlay(view, amap, SCALE)
    assert image.shape == (20 + legend_height(90), 90, 3)
    assert image.dtype == np.uint8
    assert image[0, 0].tolist() == [200, 200, 200]
    assert image[7, 7].tolist() != [200, 200, 200]
    assert image[20:].any()  # the colour bar


@pytest.mark.parametrize(
    ("dtype", "white"), [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1.0)]
)
def test_render_overlay_reads_every_view_dtype_and_grey(dtype: type, white: float) -> None:
    amap = np.full((8, 8), np.nan, dtype=np.float32)
    for channels in (1, 3):
        view = np.full((8, 8, channels), white, dtype=dtype)
        assert render_overlay(view, amap, SCALE)[0, 0].tolist() == [255, 255, 255]


CALIBRATED = MapScale(
    0.2,
    0.6,
    ticks=(("50%", 0.2), ("90%", 0.4), ("99%", 0.6)),
    unit="percentile among normal patches",
    threshold=0.5,
    threshold_label="| 5% of normal patches lie above",
)


def _text_rows(band: np.ndarray) -> int:
    """How many pixel rows of a legend band hold bright text."""
    return int((band.min(axis=2) > 150).any(axis=1).sum())


def test_legend_text_grows_with_the_image_and_marks_the_threshold() -> None:
    def overlay(width: int) -> np.ndarray:
        view = np.full((8, width, 3), 128, np.uint8)
        amap = np.full((8, width), np.nan, np.float32)
        captions = ("s7 view 0: score 3 · FLAGGED", "FLAGGED")
        return render_overlay(view, amap, CALIBRATED, captions)[8:]

    small, large = overlay(120), overlay(2400)
    assert small.shape[0] == legend_height(120)
    assert legend_height(2400) > 2 * legend_height(120)
    for legend in (small, large):
        row = legend.shape[0] // 4
        x = round(4 + CALIBRATED.unit_of(0.5) * (legend.shape[1] - 9))
        mark = legend[row : 2 * row, x - 1 : x + 2].reshape(-1, 3)
        assert (mark == [0, 230, 255]).all(axis=1).any()  # the threshold, in cyan
        assert _text_rows(legend[:row]) > 0  # the caption
        assert _text_rows(legend[2 * row : 3 * row]) > 0  # the tick labels
    assert _text_rows(large[: large.shape[0] // 4]) > 2 * _text_rows(small[: small.shape[0] // 4])


def test_text_that_does_not_fit_is_left_out_not_cut() -> None:
    legend = render_overlay(
        np.zeros((4, 12, 3), np.uint8), np.zeros((4, 12), np.float32), CALIBRATED, "x" * 50
    )[4:]
    assert _text_rows(legend[: legend.shape[0] // 4]) == 0


def test_render_overlay_refuses_a_map_of_another_shape() -> None:
    with pytest.raises(ValueError, match="does not match"):
        render_overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.float32), SCALE)


def _trained(tmp_path: Path) -> Model:
    model = load_model(trained(tmp_path), registry=REGISTRY)
    assert isinstance(model.detector, Hotspot)
    return model


def test_localize_writes_png_and_float32_npy_per_view(store: Path, tmp_path: Path) -> None:
    detector = _trained(tmp_path)
    scans = write_scans(tmp_path / "scans", 2, views=2, seed=3)
    run = localize_folder(detector, scans, tmp_path / "out")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [f"s0{i}_v{k}.{ext}" for i in (0, 1) for k in (0, 1) for ext in ("npy", "png")]
    assert run.n_scans == 2
    assert len(run.files) == 8
    view = np.asarray(Image.open(scans / "s00_v1.png"))
    amap = np.load(tmp_path / "out" / "s00_v1.npy", allow_pickle=False)
    assert amap.dtype == np.float32
    np.testing.assert_array_equal(amap, detector.detector.map(view[..., :3]), strict=True)
    overlay = np.asarray(Image.open(tmp_path / "out" / "s00_v1.png"))
    assert overlay.shape == (view.shape[0] + legend_height(view.shape[1]), view.shape[1], 3)
    assert np.isnan(amap[0]).all()


def test_two_scans_with_different_ranges_share_one_colour_mapping(
    store: Path, tmp_path: Path
) -> None:
    detector = _trained(tmp_path)
    scale = map_scale(detector)
    folder = tmp_path / "scans"
    folder.mkdir()
    value = 0.5 * (scale.low + scale.high)  # a map value inside the model's scale
    grey = round(255 * (1 - value))
    faint = np.full((16, 24, 3), 255, np.uint8)  # the map ranges from 0 to `value`
    faint[8:, :12] = grey
    strong = faint.copy()
    strong[8:, 12:] = 0  # ... and this one's up to 1, far above the scale
    Image.fromarray(faint).save(folder / "faint.png")
    Image.fromarray(strong).save(folder / "strong.png")
    localize_folder(detector, folder, tmp_path / "out")
    a = np.asarray(Image.open(tmp_path / "out" / "faint_v0.png"))
    b = np.asarray(Image.open(tmp_path / "out" / "strong_v0.png"))
    # Per-image normalisation would paint `faint`'s patch at full strength and `strong`'s at half.
    assert np.array_equal(a[10, 4], b[10, 4])
    assert not np.array_equal(a[10, 4], [grey] * 3)  # it is coloured
    # The same colour bar and labels; only the caption (scan id and score) differs.
    bar = slice(16 + legend_height(24) // 4, None)
    assert np.array_equal(a[bar], b[bar])
    (result,) = detector.score([next(s for s in iter_scans(folder) if s.id == "faint")])
    caption = ScoreRow.from_result(result).caption
    captions = (f"faint view 0: {caption}", caption, caption.rpartition(" · ")[2])
    assert np.array_equal(a, render_overlay(faint, detector.detector.map(faint), scale, captions))


def test_localize_refuses_to_overwrite(store: Path, tmp_path: Path) -> None:
    detector = _trained(tmp_path)
    scans = write_scans(tmp_path / "scans", 2, seed=3)
    localize_folder(detector, scans, tmp_path / "out")
    before = (tmp_path / "out" / "s01_v0.png").read_bytes()
    with pytest.raises(XadtError, match=r"s00_v0\.npy: already exists; pass --overwrite"):
        localize_folder(detector, scans, tmp_path / "out")
    assert (tmp_path / "out" / "s01_v0.png").read_bytes() == before
    localize_folder(detector, scans, tmp_path / "out", overwrite=True)


def test_localize_without_maps_or_calibration_is_a_clear_error(store: Path, tmp_path: Path) -> None:
    scans = write_scans(tmp_path / "scans", 2)
    trained(tmp_path, "baseline", "b")
    with pytest.raises(XadtError, match="plugin 'baseline' has no localisation"):
        localize_folder(load_model(tmp_path / "b", registry=REGISTRY), scans, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    with pytest.raises(XadtError, match="the model has no calibration"):
        localize_folder(fitted(Hotspot()), scans, tmp_path / "out")


def test_localize_skips_unreadable_scans(store: Path, tmp_path: Path) -> None:
    detector = _trained(tmp_path)
    scans = write_scans(tmp_path / "scans", 2)
    (scans / "bad.png").write_bytes(b"GIF89a")
    with pytest.warns(ScanSkippedWarning):
        run = localize_folder(detector, scans, tmp_path / "out")
    assert run.n_scans == 2
    assert "bad.png" in run.summary


def test_cli_localize(store: Path, tmp_path: Path) -> None:
    _trained(tmp_path)
    scans = write_scans(tmp_path / "scans", 2)
    runner = CliRunner()
    args = ["localize", "--model", str(tmp_path / "model"), str(scans), "-o", str(tmp_path / "o")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote 2 overlays and maps of 2 scans" in result.stdout
    assert "fixed for this model" in result.stdout
    assert (tmp_path / "o" / "s01_v0.png").is_file()
    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert again.stderr.startswith("error: ")
    assert "already exists; pass --overwrite" in again.stderr
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    trained(tmp_path, "baseline", "b")
    no_maps = runner.invoke(app, ["localize", "-m", str(tmp_path / "b"), str(scans), "-o", "x"])
    assert no_maps.exit_code == 1
    assert "plugin 'baseline' has no localisation" in no_maps.stderr
    assert "Traceback" not in no_maps.output + again.output
    usage = runner.invoke(app, ["localize", "-m", str(tmp_path / "model"), str(scans)])
    assert usage.exit_code == 2


def test_smoothed_spreads_a_spike_and_keeps_unscored_pixels_out() -> None:
    amap = np.zeros((21, 21), np.float32)
    amap[10, 10] = 1.0
    amap[:, :3] = np.nan  # unscored: must neither pull the average down nor get a value
    out = smoothed(amap, 2.0)
    assert np.isnan(out[:, :3]).all()
    assert not np.isnan(out[:, 3:]).any()
    assert 0 < out[10, 10] < 1
    assert out[10, 12] > 0
    assert out[:, 3:].sum() == pytest.approx(1.0, rel=0.05)  # the spike is spread, not lost
    edge = np.ones((8, 8), np.float32)
    edge[:, :4] = np.nan
    assert np.allclose(smoothed(edge, 3.0)[:, 4:], 1.0)  # NaN-aware: a flat map stays flat
    assert smoothed(amap, 0.0) is amap


def test_cli_localize_smooth_changes_the_overlay_not_the_map(store: Path, tmp_path: Path) -> None:
    scans = write_scans(tmp_path / "scans", 2, seed=3)
    model = trained(tmp_path)
    outs = []
    for name, extra in (("plain", []), ("smooth", ["--smooth", "4"])):
        out = tmp_path / name
        args = ["localize", "-m", str(model), str(scans), "-o", str(out), *extra]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        outs.append(out)
    png = sorted(p.name for p in outs[0].glob("*.png"))
    assert png
    assert png == sorted(p.name for p in outs[1].glob("*.png"))
    for name in png:
        stem = name.removesuffix(".png")
        plain, smooth = (np.load(o / f"{stem}.npy") for o in outs)
        assert np.array_equal(plain, smooth, equal_nan=True)
        images = [np.asarray(Image.open(o / name)) for o in outs]
        assert images[0].shape == images[1].shape
