"""``xadt.workflows.evaluate`` and ``xadt eval`` with a tiny darkness detector defined here, on
tiny scans."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pytest
from PIL import Image

import xadt
from xadt import metrics
from xadt.context import RunContext
from xadt.detector import DetectorState, ScanResult
from xadt.errors import NotFittedError, XadtError
from xadt.model import Model
from xadt.scans import Scan, ScanSkippedWarning
from xadt.training_data import TrainingData
from xadt.workflows import evaluate as ev

FAST = {"n_resamples": 200}


@dataclass
class DarknessConfig:
    threshold: float | None = 0.2
    maps: bool = True
    partial: bool = True


class Darkness(xadt.Detector):
    """Anomaly score = mean darkness of the scan; map = darkness of each pixel."""

    name = "darkness"
    Config = DarknessConfig

    def __init__(self, config: DarknessConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.fitted_ = False
        self.calls: list[int] = []

    def fit(self, data: TrainingData, context: RunContext | None = None) -> Self:
        for _ in data:
            pass
        self.fitted_ = True
        return self

    @property
    def is_fitted(self) -> bool:
        return self.fitted_

    def score(self, scans: Iterable[Scan], context: RunContext | None = None) -> list[ScanResult]:
        self.check_fitted()
        results = []
        for scan in scans:
            maps = [1 - view.mean(axis=2, dtype=np.float32) / 255 for view in scan.views]
            score = float(np.mean([m.mean() for m in maps]))
            results.append(
                ScanResult(
                    scan.id,
                    score,
                    partial={"peak": float(max(m.max() for m in maps))}
                    if self.config.partial
                    else {},
                    maps=maps if self.config.maps else [],
                    flag=None if self.config.threshold is None else score > self.config.threshold,
                )
            )
        self.calls.append(len(results))
        return results

    def state(self) -> DetectorState:
        return DetectorState()

    @classmethod
    def from_state(cls, config: DarknessConfig, state: DetectorState) -> Self:
        detector = cls(config)
        detector.fitted_ = True
        return detector


def fitted(**overrides: Any) -> Model:
    """A fitted darkness detector, as a model without calibration."""
    return Model(Darkness(**overrides).fit(TrainingData.from_scans([])))


def make_view(rng: np.random.Generator, anomalous: bool) -> tuple[np.ndarray, np.ndarray]:
    """A light noisy 24x32 RGB view; anomalous ones get a dark square of random size."""
    view = rng.integers(150, 256, size=(24, 32, 3), dtype=np.uint8)
    mask = np.zeros((24, 32), bool)
    if anomalous:
        size = int(rng.integers(3, 9))
        y, x = int(rng.integers(0, 24 - size)), int(rng.integers(0, 32 - size))
        mask[y : y + size, x : x + size] = True
        view[mask] = rng.integers(0, 120, size=(int(mask.sum()), 3), dtype=np.uint8)
    return view, mask


def make_scans(n: int, *, anomalous: bool, seed: int, views: int = 1) -> list[Scan]:
    rng = np.random.default_rng(seed)
    scans = []
    for k in range(n):
        pairs = [make_view(rng, anomalous) for _ in range(views)]
        scans.append(
            Scan(
                f"{'a' if anomalous else 'n'}{k:03d}",
                [v for v, _ in pairs],
                masks=[m for _, m in pairs] if anomalous else None,
            )
        )
    return scans


def write_folder(
    root: Path, *, n_normal: int = 6, n_anomalous: int = 5, masks: bool = True
) -> Path:
    """The layout ``xadt synth`` writes under OUT/test: normal/, anomalous/ and masks/."""
    for sub in ("normal", "anomalous", *(["masks"] if masks else [])):
        (root / sub).mkdir(parents=True)
    for label, scans in (
        ("normal", make_scans(n_normal, anomalous=False, seed=1)),
        ("anomalous", make_scans(n_anomalous, anomalous=True, seed=2)),
    ):
        for scan in scans:
            Image.fromarray(scan.views[0]).save(root / label / f"{scan.id}.png")
            if masks and scan.masks is not None:
                mask = scan.masks[0].astype(np.uint8) * 255
                Image.fromarray(mask).save(root / "masks" / f"{scan.id}.png")
    return root


# --- evaluate_scans: the metrics, through the detector contract ---------------------------------


def test_report_metrics_equal_the_metrics_of_the_recorded_scores() -> None:
    normal = make_scans(14, anomalous=False, seed=1)
    anomalous = make_scans(9, anomalous=True, seed=2)
    detector = fitted()
    report = ev.evaluate_scans(detector, normal, anomalous, **FAST)

    assert (report.n_normal, report.n_anomalous) == (14, 9)
    assert [r.anomalous for r in report.scans] == [False] * 14 + [True] * 9
    direct = detector.detector.score(normal + anomalous)
    assert [r.score for r in report.scans] == [r.score for r in direct]
    labels = np.array([r.anomalous for r in report.scans], dtype=int)
    scores = np.array([r.score for r in report.scans])
    peaks = np.array([r.partial["peak"] for r in report.scans])

    assert set(report.auroc) == {"score", "peak"}
    assert report.auroc["score"] == ev.Estimate(
        *metrics.bootstrap_ci(labels, scores, n_resamples=200)
    )
    assert report.auroc["peak"].value == metrics.auroc(labels, peaks)
    assert report.tpr_at_fpr.value == metrics.tpr_at_fpr(labels, scores, 0.05)
    assert report.fpr_at_tpr.value == metrics.fpr_at_tpr(labels, scores, 0.9)
    for estimate in (*report.auroc.values(), report.tpr_at_fpr, report.fpr_at_tpr):
        assert estimate.low is not None
        assert estimate.high is not None
        assert estimate.low <= estimate.value <= estimate.high

    flags = np.array([r.flag for r in report.scans])
    assert report.flag_rate_normal == flags[:14].mean()
    assert report.flag_rate_anomalous == flags[14:].mean()


def test_pixel_metrics_pool_masked_anomalous_views_and_all_normal_views() -> None:
    normal = make_scans(4, anomalous=False, seed=1, views=2)
    anomalous = make_scans(3, anomalous=True, seed=2, views=2)
    detector = fitted()
    report = ev.evaluate_scans(detector, normal, anomalous, **FAST)

    maps = [m for r in detector.detector.score(normal + anomalous) for m in r.maps]
    masks = [np.zeros((24, 32), bool)] * 8 + [m for s in anomalous for m in s.masks]
    assert report.pixel_views == 14
    assert report.pixel_auroc == pytest.approx(metrics.pixel_auroc(masks, maps))
    assert report.aupro == pytest.approx(metrics.aupro(masks, maps))
    assert report.aupro > 0.9  # the dark squares are the darkest pixels
    rate, chance, _ = metrics.pointing(masks, maps)
    assert (report.pointing, report.pointing_chance) == pytest.approx((rate, chance))
    assert report.pointing > report.pointing_chance
    assert report.to_json()["metrics"]["pointing"] == report.pointing


def test_anomalous_views_without_a_mask_are_left_out_of_pixel_metrics() -> None:
    anomalous = make_scans(3, anomalous=True, seed=2, views=2)
    anomalous[0] = Scan(anomalous[0].id, anomalous[0].views, masks=[None, anomalous[0].masks[1]])
    anomalous[1] = Scan(anomalous[1].id, anomalous[1].views)
    report = ev.evaluate_scans(fitted(), make_scans(4, anomalous=False, seed=1), anomalous, **FAST)
    assert report.pixel_views == 4 + 3  # normal views + the masked anomalous ones
    assert any("3 anomalous view(s) have no mask" in note for note in report.notes)


def test_no_masks_no_maps_no_flags_give_no_such_metrics_and_say_why() -> None:
    normal = make_scans(5, anomalous=False, seed=1)
    unmasked = [Scan(s.id, s.views) for s in make_scans(4, anomalous=True, seed=2)]
    report = ev.evaluate_scans(fitted(), normal, unmasked, **FAST)
    assert report.pixel_auroc is None
    assert report.aupro is None
    assert report.pointing is None
    assert any("no anomalous scan has a mask" in n for n in report.notes)

    report = ev.evaluate_scans(
        fitted(maps=False, threshold=None, partial=False),
        normal,
        make_scans(4, anomalous=True, seed=2),
        **FAST,
    )
    assert (report.pixel_auroc, report.aupro, report.pixel_views) == (None, None, 0)
    assert (report.flag_rate_normal, report.flag_rate_anomalous) == (None, None)
    assert set(report.auroc) == {"score"}
    assert any("carry no anomaly maps" in n for n in report.notes)
    assert any("no threshold" in n for n in report.notes)
    labels = [row for row, _ in report.rows()]
    assert not any("pixel" in row or "flagged" in row for row in labels)


def test_scans_are_scored_in_chunks_and_progress_counts_them() -> None:
    detector = fitted()
    seen: list[tuple[int, int | None]] = []
    ev.evaluate_scans(
        detector,
        make_scans(40, anomalous=False, seed=1),
        make_scans(3, anomalous=True, seed=2),
        progress=lambda done, total: seen.append((done, total)),
        **FAST,
    )
    assert detector.detector.calls == [3, 32, 8]
    assert seen == [(3, 43), (35, 43), (43, 43)]


def test_generators_are_accepted_with_an_unknown_total() -> None:
    seen: list[tuple[int, int | None]] = []
    report = ev.evaluate_scans(
        fitted(),
        iter(make_scans(3, anomalous=False, seed=1)),
        (s for s in make_scans(2, anomalous=True, seed=2)),
        progress=lambda done, total: seen.append((done, total)),
        **FAST,
    )
    assert report.n_normal + report.n_anomalous == 5
    assert seen[-1] == (5, None)


def test_a_partial_score_missing_on_some_scans_is_not_evaluated() -> None:
    class Patchy(Darkness):
        def score(
            self, scans: Iterable[Scan], context: RunContext | None = None
        ) -> list[ScanResult]:
            results = super().score(scans)
            results[0].partial.clear()
            return results

    report = ev.evaluate_scans(
        Model(Patchy().fit(TrainingData.from_scans([]))),
        make_scans(3, anomalous=False, seed=1),
        make_scans(3, anomalous=True, seed=2),
        **FAST,
    )
    assert set(report.auroc) == {"score"}
    assert any("'peak' is missing on some scans" in n for n in report.notes)


def test_settings_are_passed_on_and_recorded() -> None:
    normal, anomalous = (
        make_scans(20, anomalous=False, seed=1),
        make_scans(8, anomalous=True, seed=2),
    )
    report = ev.evaluate_scans(fitted(), normal, anomalous, fpr=0.1, tpr=0.5, n_resamples=50)
    labels = np.array([r.anomalous for r in report.scans], dtype=int)
    scores = np.array([r.score for r in report.scans])
    assert report.settings == ev.EvalSettings(fpr=0.1, tpr=0.5, n_resamples=50)
    assert report.tpr_at_fpr.value == metrics.tpr_at_fpr(labels, scores, 0.1)
    assert report.fpr_at_tpr.value == metrics.fpr_at_tpr(labels, scores, 0.5)
    rows = dict(report.rows())
    assert "detection rate at 10% false alarms" in rows
    assert "false alarms at 50% detection (post hoc)" in rows


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ({"fpr": 1.0}, r"'fpr' evaluation setting must be in \(0, 1\)\. Got 1\.0 instead"),
        ({"tpr": 0}, r"'tpr' evaluation setting must be in \(0, 1\]"),
        ({"level": 95}, "'level' evaluation setting"),
        ({"fpr_limit": -0.3}, "'fpr_limit' evaluation setting"),
        ({"n_resamples": 0}, "'n_resamples' evaluation setting must be an integer >= 1"),
    ],
)
def test_bad_settings_are_refused_before_any_scoring(setting: dict[str, Any], match: str) -> None:
    detector = fitted()
    with pytest.raises(ValueError, match=match):
        ev.evaluate_scans(detector, make_scans(2, anomalous=False, seed=1), [], **setting)
    assert detector.detector.calls == []


def test_an_unfitted_detector_is_refused() -> None:
    with pytest.raises(NotFittedError, match="darkness: no fitted state"):
        ev.evaluate_scans(Model(Darkness()), make_scans(2, anomalous=False, seed=1), [], **FAST)


def test_an_empty_class_is_refused() -> None:
    normal = make_scans(2, anomalous=False, seed=1)
    with pytest.raises(XadtError, match="no anomalous scans to evaluate"):
        ev.evaluate_scans(fitted(), normal, [], **FAST)
    with pytest.raises(XadtError, match="no normal scans to evaluate"):
        ev.evaluate_scans(fitted(), [], make_scans(2, anomalous=True, seed=2), **FAST)


def test_non_finite_scores_are_refused_naming_the_scan() -> None:
    class Broken(Darkness):
        def score(
            self, scans: Iterable[Scan], context: RunContext | None = None
        ) -> list[ScanResult]:
            results = super().score(scans)
            results[-1].score = float("nan")
            return results

    with pytest.raises(
        XadtError, match=r"darkness gave scan 'a001' non-finite anomaly scores \{'score'"
    ):
        ev.evaluate_scans(
            Model(Broken().fit(TrainingData.from_scans([]))),
            make_scans(2, anomalous=False, seed=1),
            make_scans(2, anomalous=True, seed=2),
        )


@pytest.mark.parametrize("fault", ["count", "order", "map shape"])
def test_contract_violations_are_bugs_not_user_errors(fault: str) -> None:
    class Faulty(Darkness):
        def score(
            self, scans: Iterable[Scan], context: RunContext | None = None
        ) -> list[ScanResult]:
            results = super().score(scans)
            if fault == "count":
                return results[:-1]
            if fault == "order":
                return results[::-1]
            results[0].maps = [m[:-1] for m in results[0].maps]
            return results

    with pytest.raises(RuntimeError, match="darkness"):
        ev.evaluate_scans(
            Model(Faulty().fit(TrainingData.from_scans([]))),
            make_scans(2, anomalous=False, seed=1),
            make_scans(2, anomalous=True, seed=2),
        )


# --- evaluate: a labelled folder -----------------------------------------------------------------


def test_evaluate_reads_the_synth_layout(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "test")
    report = ev.evaluate(fitted(), root, **FAST)
    assert (report.n_normal, report.n_anomalous) == (6, 5)
    assert report.data == str(root)
    assert report.skipped == []
    assert report.pixel_views == 11
    assert report.aupro is not None
    assert report.aupro > 0.9
    in_memory = ev.evaluate_scans(
        fitted(),
        make_scans(6, anomalous=False, seed=1),
        make_scans(5, anomalous=True, seed=2),
        **FAST,
    )
    assert report.auroc == in_memory.auroc
    assert report.aupro == pytest.approx(in_memory.aupro)


def test_evaluate_without_masks_folder(tmp_path: Path) -> None:
    report = ev.evaluate(fitted(), write_folder(tmp_path, masks=False), **FAST)
    assert report.aupro is None
    assert report.auroc["score"].value == 1.0


def test_unreadable_scans_are_skipped_and_reported(tmp_path: Path) -> None:
    root = write_folder(tmp_path)
    (root / "normal" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.warns(ScanSkippedWarning, match="broken"):
        report = ev.evaluate(fitted(), root, **FAST)
    assert report.n_normal == 6
    assert [Path(f).name for f, _ in report.skipped] == ["broken.png"]


def test_all_scans_of_a_class_unreadable_is_an_error(tmp_path: Path) -> None:
    root = write_folder(tmp_path, n_anomalous=0, masks=False)
    (root / "anomalous" / "x.png").write_bytes(b"garbage")
    with pytest.warns(ScanSkippedWarning), pytest.raises(XadtError, match="no anomalous scan"):
        ev.evaluate(fitted(), root, **FAST)


@pytest.mark.parametrize("missing", ["normal", "anomalous"])
def test_missing_class_folder_is_named(tmp_path: Path, missing: str) -> None:
    root = write_folder(tmp_path)
    for file in (root / missing).iterdir():
        file.unlink()
    (root / missing).rmdir()
    with pytest.raises(XadtError, match=rf"{missing}: no such folder; an evaluation folder"):
        ev.evaluate(fitted(), root)


def test_empty_class_folder_and_missing_root_are_named(tmp_path: Path) -> None:
    (tmp_path / "normal").mkdir()
    (tmp_path / "anomalous").mkdir()
    with pytest.raises(XadtError, match="normal: no image files"):
        ev.evaluate(fitted(), tmp_path)
    with pytest.raises(XadtError, match="nowhere: no such folder"):
        ev.evaluate(fitted(), tmp_path / "nowhere")


# --- the JSON report -----------------------------------------------------------------------------


def small_report() -> ev.EvalReport:
    return ev.evaluate_scans(
        fitted(),
        make_scans(4, anomalous=False, seed=1),
        make_scans(3, anomalous=True, seed=2),
        n_resamples=20,
    )


def test_write_report_is_json_and_refuses_to_overwrite(tmp_path: Path) -> None:
    report = small_report()
    out = ev.write_report(report, tmp_path / "sub" / "report.json")
    doc = json.loads(out.read_text())
    assert doc["detector"] == "darkness"
    assert doc["metrics"]["auroc"]["score"]["value"] == report.auroc["score"].value
    assert doc["metrics"]["aupro"] == report.aupro
    assert doc["settings"]["n_resamples"] == 20
    assert [s["label"] for s in doc["scans"]] == ["normal"] * 4 + ["anomalous"] * 3
    assert [p.name for p in out.parent.iterdir()] == ["report.json"]  # no temporary left

    with pytest.raises(XadtError, match=r"report\.json: a report already exists; pass --overwrite"):
        ev.write_report(report, out)
    out.write_text("old")
    ev.write_report(report, out, overwrite=True)
    assert json.loads(out.read_text())["n_normal"] == 4
    with pytest.raises(XadtError, match="is a folder"):
        ev.write_report(report, tmp_path, overwrite=True)


# --- the command line ----------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app with the model loader giving a darkness detector for the path 'darkness-model'.

    Saving a real model file needs the detector registered through entry points, so the test
    replaces only the loading step; everything after it is the real command.
    """
    app_module = pytest.importorskip("xadt.cli.app")
    from typer.testing import CliRunner

    from xadt.workflows import score

    real = score.load_scoring_model

    def load_model(plugin: Any, path: Any, **options: Any) -> Model:
        if path is not None and Path(path).name == "darkness-model":
            model = fitted()
            model.path = Path(path)
            return model
        return real(plugin, path, **options)

    monkeypatch.setattr(score, "load_scoring_model", load_model)
    runner = CliRunner()
    return lambda *args: runner.invoke(app_module.app, ["eval", *map(str, args)])


def test_cli_prints_the_table_and_writes_the_report(cli: Any, tmp_path: Path) -> None:
    root = write_folder(tmp_path / "test")
    out = tmp_path / "report.json"
    result = cli("--model", "darkness-model", root, "-o", out)
    assert result.exit_code == 0, result.output
    assert "AUROC (scan score)" in result.stdout
    assert "AUPRO" in result.stdout
    assert "95% CI" in result.stdout
    doc = json.loads(out.read_text())
    assert doc["model"] == "darkness-model"
    assert doc["n_anomalous"] == 5

    again = cli("--model", "darkness-model", root, "-o", out)
    assert again.exit_code == 1
    assert "already exists; pass --overwrite" in again.stderr
    assert cli("--model", "darkness-model", root, "-o", out, "--overwrite").exit_code == 0


def test_cli_skipped_scans_give_a_summary_and_exit_1(cli: Any, tmp_path: Path) -> None:
    root = write_folder(tmp_path / "test")
    (root / "anomalous" / "torn.png").write_bytes(b"not an image")
    result = cli("--model", "darkness-model", root)
    assert result.exit_code == 1
    assert "AUROC (scan score)" in result.stdout  # the rest was evaluated
    assert "error: 1 unreadable scan(s) skipped" in result.stderr
    assert "torn.png" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("setup", "args", "phrase"),
    [
        ("no-anomalous", ["--model", "darkness-model"], "anomalous: no such folder"),
        ("empty-normal", ["--model", "darkness-model"], "normal: no image files"),
        ("ok", ["--model", "no-such-model"], "no-such-model: no such model directory"),
    ],
)
def test_cli_bad_input_is_one_error_line(
    cli: Any, tmp_path: Path, setup: str, args: list[str], phrase: str
) -> None:
    root = write_folder(tmp_path / "test")
    if setup == "no-anomalous":
        for file in (root / "anomalous").iterdir():
            file.unlink()
        (root / "anomalous").rmdir()
    if setup == "empty-normal":
        for file in (root / "normal").iterdir():
            file.unlink()
    result = cli(*args, root)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert phrase in result.stderr
    assert "Traceback" not in result.output


def test_flags_come_from_the_models_calibration() -> None:
    from xadt.calibration import calibrate

    detector = fitted(threshold=None)
    normal = make_scans(6, anomalous=False, seed=1)
    detector.calibration = calibrate(detector.detector.score(normal), target_fpr=0.2)
    report = ev.evaluate_scans(detector, normal, make_scans(4, anomalous=True, seed=2), **FAST)
    assert report.flag_rate_normal is not None
    assert report.flag_rate_normal <= 0.2
    assert report.flag_rate_anomalous is not None
    assert not any("no threshold" in n for n in report.notes)


def test_cli_takes_the_folders_one_by_one(cli: Any, tmp_path: Path) -> None:
    root = write_folder(tmp_path / "data")
    args = ["--normal", root / "normal", "--anomalous", root / "anomalous", "--masks"]
    result = cli(*args, root / "masks", "--model", "darkness-model")
    assert result.exit_code == 0, result.output
    assert "pixel AUROC" in result.stdout
    both = cli(root, "--normal", root / "normal", "--model", "darkness-model")
    assert both.exit_code == 1
    assert "pass either DATA or --normal/--anomalous/--masks, not both" in both.stderr
    half = cli("--normal", root / "normal", "--model", "darkness-model")
    assert half.exit_code == 1
    assert "or --normal and --anomalous" in half.stderr
