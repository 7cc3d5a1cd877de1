"""Train and score orchestration (``xadt.workflows.train``, ``xadt.workflows.score``) on tiny PNG
folders, with the built-in baseline and a tiny map-making detector defined here."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pytest
from PIL import Image

import xadt
from xadt import host
from xadt.artifacts import read_model_info, store_path
from xadt.context import NullProgress, RunContext
from xadt.detector import DetectorState, PatchScores, ScanResult
from xadt.errors import XadtError
from xadt.host import PluginRecord, Registry, RegistryEntry
from xadt.model import Model
from xadt.plugins.baseline import BaselineDetector
from xadt.scans import Scan, ScanSkippedWarning, iter_scans
from xadt.training_data import TrainingData, split_ids
from xadt.workflows.score import (
    ScoreRow,
    check_results_path,
    load_scoring_model,
    resolve_model,
    score_folder,
    score_in_chunks,
    write_results,
)
from xadt.workflows.train import train

# --- fixtures shared with the other workflow test files ------------------------------------------


def write_scans(
    folder: Path, n: int, *, prefix: str = "s", seed: int = 0, views: int = 1, dark: float = 0.0
) -> Path:
    """``n`` small RGB scans of random size and texture; ``dark`` darkens a square in each."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        h, w = int(rng.integers(20, 28)), int(rng.integers(24, 34))
        for k in range(views):
            image = rng.integers(150, 256, size=(h, w, 3)).astype(np.uint8)
            if dark:
                image[4:12, 4:12] = (image[4:12, 4:12] * (1 - dark)).astype(np.uint8)
            name = f"{prefix}{i:02d}_v{k}.png" if views > 1 else f"{prefix}{i:02d}.png"
            Image.fromarray(image).save(folder / name)
    return folder


@dataclass
class HotspotConfig:
    """Options of the test detector."""

    fail: bool = False
    cache: str | None = None
    gain: float = 1.0


class Hotspot(xadt.Detector):
    """Anomaly map = darkness of each pixel times ``gain`` (NaN on the top row); score = its max;
    patches = the four quadrants of each view, scored by their mean darkness."""

    name: ClassVar[str] = "hotspot"
    Config: ClassVar[type] = HotspotConfig
    config: HotspotConfig
    fitted_ids: ClassVar[list[str]] = []

    def __init__(self, config: HotspotConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.fitted_ = False

    def fit(self, data: TrainingData, context: RunContext | None = None) -> Self:
        self.validate()
        ids = [scan.id for scan in data]
        if self.config.fail:
            msg = "hotspot: the fit failed on purpose"
            raise XadtError(msg)
        Hotspot.fitted_ids = ids
        self.fitted_ = True
        return self

    @property
    def is_fitted(self) -> bool:
        return self.fitted_

    def score(self, scans: Iterable[Scan], context: RunContext | None = None) -> list[ScanResult]:
        self.check_fitted()
        results = []
        for scan in scans:
            maps = [self.map(view) for view in scan.views]
            patches = [PatchScores(k, *_quadrants(m)) for k, m in enumerate(maps)]
            score = float(max(np.nanmax(m) for m in maps))
            partial = {"peak": score, "mean": float(np.mean([np.nanmean(m) for m in maps]))}
            results.append(ScanResult(scan.id, score, partial, patches, maps))
        return results

    def map(self, view: np.ndarray) -> np.ndarray:
        """The anomaly map of a view."""
        amap = (1 - view.mean(axis=2, dtype=np.float32) / 255) * np.float32(self.config.gain)
        amap[0, :] = np.nan
        return amap.astype(np.float32)

    def state(self) -> DetectorState:
        return DetectorState(tensors={"fitted": np.ones(1)}, meta={})

    @classmethod
    def from_state(cls, config: HotspotConfig, state: DetectorState) -> Self:
        detector = cls(config)
        detector.fitted_ = True
        return detector


def _quadrants(amap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = amap.shape
    boxes = np.array([(y, x, y + h // 2, x + w // 2) for y in (0, h // 2) for x in (0, w // 2)])
    scores = np.array([np.nanmean(amap[y0:y1, x0:x1]) for y0, x0, y1, x1 in boxes])
    return boxes, scores


def registry_with(*classes: type[xadt.Detector]) -> Registry:
    """A registry offering exactly ``classes``."""
    record = PluginRecord("tests", None, None, "in-process")
    return Registry(
        detectors={c.name: RegistryEntry(c.name, "detector", record, c) for c in classes}
    )


REGISTRY = registry_with(BaselineDetector, Hotspot)


def context(**settings: Any) -> RunContext:
    """A run context whose registry offers baseline and hotspot."""
    return RunContext(registry=REGISTRY, **settings)


def fitted(detector: xadt.Detector, scans: Sequence[Scan] = ()) -> Model:
    """``detector`` fitted on ``scans``, as a model without calibration."""
    return Model(detector.fit(TrainingData.from_scans(scans), context()))


def trained(tmp_path: Path, plugin: str = "hotspot", name: str = "model") -> Path:
    """A model of ``plugin`` trained on 12 small normal scans, saved to ``tmp_path / name``."""
    output = tmp_path / name
    train(
        plugin, write_scans(tmp_path / "normal", 12), context=context(), holdout=0.3, output=output
    )
    return output


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private model store; the CLI's registry offers baseline and hotspot."""
    home = tmp_path / "home"
    monkeypatch.setenv("XADT_HOME", str(home))
    monkeypatch.setattr(host, "load_registry", lambda pm=None: REGISTRY)
    return home


# --- training -------------------------------------------------------------------------------------


def test_train_writes_a_calibrated_model_to_the_store(store: Path, tmp_path: Path) -> None:
    data = write_scans(tmp_path / "normal", 12)
    result = train("baseline", data, context=context(), holdout=0.3)
    assert result.path == store_path("baseline") == store / "models" / "baseline"
    assert result.n_fitted + result.n_holdout == 12
    assert result.n_holdout >= 2
    info = read_model_info(result.path)
    assert info.plugin == "baseline"
    assert info.calibration == result.model.calibration
    assert info.provenance.training["n_calibration"] == result.n_holdout
    assert info.calibration is not None
    assert info.calibration.n_holdout == result.n_holdout
    assert info.calibration.target_fpr == 0.05
    assert result.skipped == []


def test_held_out_scans_are_never_fitted_on(store: Path, tmp_path: Path) -> None:
    data = write_scans(tmp_path / "normal", 12, prefix="n")
    result = train("hotspot", data, context=context(seed=0), holdout=0.3)
    held = set(split_ids(iter_scans(data).ids, holdout=0.3, validation=0.0, seed=0).calibration)
    assert held
    assert len(held) == result.n_holdout
    assert set(Hotspot.fitted_ids).isdisjoint(held)
    assert set(Hotspot.fitted_ids) | held == set(iter_scans(data).ids)


def test_an_existing_model_is_refused_before_the_fit(store: Path, tmp_path: Path) -> None:
    data = write_scans(tmp_path / "normal", 12, prefix="n")
    train("hotspot", data, context=context(), holdout=0.3)
    with pytest.raises(XadtError, match="a model already exists there; pass --overwrite"):
        train(
            "hotspot", data, context=context(), holdout=0.3, overrides=["fail=true"]
        )  # the fit would fail


def test_a_failed_fit_leaves_the_old_model_intact(store: Path, tmp_path: Path) -> None:
    data = write_scans(tmp_path / "normal", 12, prefix="n")
    first = train("hotspot", data, context=context(), holdout=0.3)
    before = {f.name: f.read_bytes() for f in first.path.iterdir()}
    with pytest.raises(XadtError, match="failed on purpose"):
        train(
            "hotspot", data, context=context(), holdout=0.3, overrides=["fail=true"], overwrite=True
        )
    assert {f.name: f.read_bytes() for f in first.path.iterdir()} == before
    assert [p.name for p in first.path.parent.iterdir()] == ["hotspot"]


def test_overwrite_replaces_the_model(store: Path, tmp_path: Path) -> None:
    data = write_scans(tmp_path / "normal", 12, prefix="n")
    train("hotspot", data, context=context(), holdout=0.3, output=tmp_path / "m")
    train(
        "hotspot",
        data,
        context=context(),
        holdout=0.3,
        output=tmp_path / "m",
        overrides=["gain=2"],
        overwrite=True,
    )
    assert read_model_info(tmp_path / "m").config["gain"] == 2.0


def test_an_unrelated_folder_is_never_a_model_path(store: Path, tmp_path: Path) -> None:
    data = write_scans(tmp_path / "normal", 12)
    (tmp_path / "docs").mkdir()
    with pytest.raises(XadtError, match="not an xadt model directory"):
        train("baseline", data, context=context(), output=tmp_path / "docs", overwrite=True)


def test_unknown_set_key_lists_the_valid_keys(store: Path, tmp_path: Path) -> None:
    data = write_scans(tmp_path / "normal", 4)
    with pytest.raises(
        XadtError, match=r"--set: baseline has no option 'rigde'; did you mean 'ridge'\? options: "
    ):
        train("baseline", data, context=context(), overrides=["rigde=1"])
    with pytest.raises(XadtError, match="The 'ridge' option of baseline must be a float > 0"):
        train("baseline", data, context=context(), overrides=["ridge=-1"])


@pytest.mark.parametrize(
    ("option", "value"), [("holdout", 0.0), ("holdout", 1.0), ("target_fpr", 1.5)]
)
def test_bad_fractions_are_refused(store: Path, tmp_path: Path, option: str, value: float) -> None:
    data = write_scans(tmp_path / "normal", 4)
    flag = "--" + option.replace("_", "-")
    with pytest.raises(XadtError, match=f"{flag} must be a fraction between 0 and 1"):
        train("baseline", data, context=context(), **{option: value})
    assert not store_path("baseline").exists()


def test_unreadable_scans_are_skipped_and_the_rest_is_saved(store: Path, tmp_path: Path) -> None:
    data = write_scans(tmp_path / "normal", 12)
    (data / "torn.png").write_bytes(b"not a png")
    with pytest.warns(ScanSkippedWarning, match="torn.png"):
        result = train("baseline", data, context=context(), holdout=0.3)
    assert result.path.is_dir()
    assert [p.name for p, _ in result.skipped] == ["torn.png"]
    assert "1 of 13 scans skipped" in result.summary


def test_empty_or_missing_data_folder_is_named(store: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(XadtError, match="empty: no image files"):
        train("baseline", context=context(), data=tmp_path / "empty")
    with pytest.raises(XadtError, match="nowhere"):
        train("baseline", context=context(), data=tmp_path / "nowhere")


def test_too_few_held_out_scans_is_explained_before_the_fit(store: Path, tmp_path: Path) -> None:
    data = write_scans(tmp_path / "normal", 3)
    with pytest.raises(
        XadtError,
        match=r"--holdout 0.01 holds out 0 of its 3 scans, but calibration needs at least 2",
    ):
        train("hotspot", data, context=context(), holdout=0.01, overrides=["fail=true"])
    # Unreadable held-out scans can still leave too few after the fit.
    data = write_scans(tmp_path / "more", 12, prefix="n")
    held = list(split_ids(iter_scans(data).ids, holdout=0.3, validation=0.0, seed=0).calibration)
    for scan_id in held[1:]:
        (data / f"{scan_id}.png").write_bytes(b"")
    with (
        pytest.warns(ScanSkippedWarning),
        pytest.raises(XadtError, match=r"at least 2 held-out normal scans, got 1.*skipped"),
    ):
        train("hotspot", data, context=context(), holdout=0.3)


def test_train_reports_stages_to_the_context(store: Path, tmp_path: Path) -> None:
    data = write_scans(tmp_path / "normal", 12, prefix="n")
    stages: list[tuple[str, int | None]] = []

    class Record(NullProgress):
        def stage(self, name: str, total: int | None = None) -> None:
            stages.append((name, total))

    result = train("baseline", data, context=context(progress=Record()), holdout=0.3)
    assert ("reading scans", result.n_fitted) in stages
    assert ("calibrating", result.n_holdout) in stages
    assert stages[-1] == ("saving", None)


# --- scoring --------------------------------------------------------------------------------------


def test_resolve_model_from_the_store_or_a_path(store: Path, tmp_path: Path) -> None:
    data = write_scans(tmp_path / "normal", 12)
    with pytest.raises(
        XadtError,
        match=(
            r"no model for plugin 'baseline' in .*models; run 'xadt train --plugin baseline "
            r"DATA' first or pass --model DIR"
        ),
    ):
        resolve_model("baseline", None, registry=REGISTRY)
    train("baseline", data, context=context(), holdout=0.3)
    assert resolve_model("baseline", None, registry=REGISTRY) == store_path("baseline")
    assert resolve_model(None, store_path("baseline"), registry=REGISTRY) == store_path("baseline")
    assert resolve_model("baseline", store_path("baseline"), registry=REGISTRY) == store_path(
        "baseline"
    )
    with pytest.raises(XadtError, match="written by plugin 'baseline', not 'hotspot'"):
        resolve_model("hotspot", store_path("baseline"), registry=REGISTRY)
    with pytest.raises(XadtError, match=r"pass --plugin P .* or --model DIR"):
        resolve_model(None, None, registry=REGISTRY)
    with pytest.raises(XadtError, match="unknown plugin 'basline'; did you mean 'baseline'"):
        resolve_model("basline", None, registry=REGISTRY)


def test_score_folder_flags_from_the_model_calibration(store: Path, tmp_path: Path) -> None:
    train("hotspot", write_scans(tmp_path / "normal", 12), context=context(), holdout=0.3)
    model = load_scoring_model("hotspot", None, registry=REGISTRY)
    assert model.calibration is not None
    normal = score_folder(model, write_scans(tmp_path / "more", 3, seed=5))
    dark = score_folder(model, write_scans(tmp_path / "dark", 3, seed=6, dark=0.9))
    assert [r.flag for r in dark.rows] == [True] * 3
    threshold = model.calibration.threshold
    assert all(r.flag == (r.score > threshold) for r in [*normal.rows, *dark.rows])
    assert dark.rows[0].partial.keys() == {"peak", "mean"}
    assert dark.rows[0].patches == 4
    assert dark.summary == "3 of 3 scans read, none skipped"


def test_score_folder_skips_unreadable_scans(store: Path, tmp_path: Path) -> None:
    model = fitted(Hotspot())
    folder = write_scans(tmp_path / "scans", 2)
    (folder / "bad.png").write_bytes(b"")
    with pytest.warns(ScanSkippedWarning):
        run = score_folder(model, folder)
    assert len(run.rows) == 2
    assert "bad.png: file is empty" in run.summary
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "bad.png").write_bytes(b"")
    with pytest.warns(ScanSkippedWarning), pytest.raises(XadtError, match="no scan could be read"):
        score_folder(model, tmp_path / "only")


def test_non_finite_scores_are_a_user_error_naming_the_scan(tmp_path: Path) -> None:
    class Broken(Hotspot):
        def score(
            self, scans: Iterable[Scan], context: RunContext | None = None
        ) -> list[ScanResult]:
            return [ScanResult(s.id, float("nan")) for s in scans]

    scans = list(iter_scans(write_scans(tmp_path / "s", 2)))
    with pytest.raises(XadtError, match="gave scan 's00' non-finite anomaly scores"):
        list(score_in_chunks(fitted(Broken()), scans))


def _rows() -> list[ScoreRow]:
    return [
        ScoreRow("a", 1.5, {"appearance": 1.0, "semantic": 2.0}, True, 12, 0.96),
        ScoreRow("b", 0.25, {"appearance": 0.5}, False, 10, 0.5, "not like an X-ray scan: tiny"),
        ScoreRow("c", 1e30, {}, None, 0),
    ]


def test_results_as_csv(tmp_path: Path) -> None:
    out = write_results(_rows(), tmp_path / "r.csv")
    lines = list(csv.reader(out.read_text().splitlines()))
    assert lines[0] == [
        "id",
        "score",
        "normal_quantile",
        "appearance",
        "semantic",
        "flag",
        "patches",
        "note",
        "warning",
    ]
    assert lines[1] == ["a", "1.5", "0.96", "1.0", "2.0", "true", "12", "", ""]
    assert lines[2] == ["b", "0.25", "0.5", "0.5", "", "false", "10", "", lines[2][-1]]
    assert lines[2][-1] == "not like an X-ray scan: tiny"
    assert lines[3][:7] == ["c", "1e+30", "", "", "", "", "0"]
    assert lines[3][7].startswith("all air")


def test_results_as_json(tmp_path: Path) -> None:
    model = fitted(Hotspot())
    model.path = Path("m")
    out = write_results(_rows(), tmp_path / "r.JSON", model=model)
    doc = json.loads(out.read_text())
    assert doc["plugin"] == "hotspot"
    assert doc["model"] == "m"
    assert doc["threshold"] is None
    assert doc["scans"][0] == {
        "id": "a",
        "score": 1.5,
        "partial": {"appearance": 1.0, "semantic": 2.0},
        "flag": True,
        "patches": 12,
        "normal_quantile": 0.96,
        "note": "",
        "warning": "",
    }
    assert doc["scans"][1]["warning"] == "not like an X-ray scan: tiny"


def test_results_files_are_never_overwritten_silently(tmp_path: Path) -> None:
    out = write_results(_rows(), tmp_path / "r.csv")
    before = out.read_bytes()
    with pytest.raises(XadtError, match=r"r\.csv: already exists; pass --overwrite"):
        write_results(_rows()[:1], out)
    assert out.read_bytes() == before
    write_results(_rows()[:1], out, overwrite=True)
    assert out.read_text().count("\n") == 2
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]  # no temporary left behind
    with pytest.raises(
        XadtError, match=r"unknown results format '\.txt'; name a \.csv, \.json or \.parquet"
    ):
        check_results_path(tmp_path / "r.txt", overwrite=False)
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(XadtError, match="is a folder"):
        check_results_path(tmp_path / "dir.csv", overwrite=True)


def test_results_name_every_skipped_file_and_never_run_as_formulas(tmp_path: Path) -> None:
    rows = [ScoreRow("=HYPERLINK(1)", 1.0), ScoreRow("-3", 2.0), ScoreRow("plain", 3.0)]
    skipped = [(Path(f"bad{i}.png"), "damaged") for i in range(5)]
    skipped.append((Path(b"odd\xffname\n.png".decode("utf-8", "surrogateescape")), "empty"))
    lines = list(
        csv.reader(
            write_results(rows, tmp_path / "r.csv", skipped=skipped).read_text().splitlines()
        )
    )
    assert [line[0] for line in lines[1:4]] == ["'=HYPERLINK(1)", "'-3", "plain"]
    assert len(lines) == 1 + 3 + 6
    assert lines[4][0] == "bad0.png"
    assert lines[4][-2:] == ["skipped: damaged", ""]
    assert lines[-1][0] == "odd\\xffname\\n.png"
    doc = json.loads(write_results(rows, tmp_path / "r.json", skipped=skipped).read_text())
    assert doc["summary"] == "3 scans scored, 6 files skipped"
    assert len(doc["skipped"]) == 6
    assert doc["skipped"][0] == {"file": "bad0.png", "reason": "damaged"}
