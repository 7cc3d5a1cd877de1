"""The Python API: ``xadt.fit``, ``xadt.load_model``, any input, PyOD's names, and the README's
Python section run as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import xadt
from xadt.calibration import CalibrationWarning
from xadt.errors import XadtError
from xadt.inputs import as_scans
from xadt.model import Model
from xadt.plugins.baseline import BaselineDetector
from xadt.testing import anomalous_scan, normal_scans
from xadt.training_data import TrainingData

README = Path(__file__).parents[1] / "README.md"


def _folder(root: Path, n: int, seed: int) -> Path:
    root.mkdir(parents=True)
    for scan in normal_scans(n, seed=seed, prefix="s"):
        Image.fromarray(scan.views[0]).save(root / f"{scan.id}.png")
    return root


def test_as_scans_wraps_everything_a_user_holds(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "f", 3, seed=1)
    files = sorted(folder.iterdir())
    scan = normal_scans(1)[0]
    grey = np.zeros((8, 9), np.uint16)
    dual = np.zeros((8, 9, 2), np.float32)
    assert [s.id for s in as_scans(scan)] == [scan.id]
    assert [s.id for s in as_scans(folder)] == ["s-00", "s-01", "s-02"]
    assert [s.id for s in as_scans(str(files[0]))] == ["s-00"]
    assert [s.id for s in as_scans(files[:2])] == ["s-00", "s-01"]
    (g,) = as_scans(grey)
    assert (g.encoding, g.views[0].shape) == ("grey", (8, 9, 1))
    two = list(as_scans([grey, dual]))
    assert [s.encoding for s in two] == ["grey", "dual-energy"]
    assert [s.id for s in two] == ["array-0000", "array-0001"]
    (views,) = as_scans([[grey, grey]])
    assert len(views.views) == 2


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.zeros((4, 4), np.int64), "pixels must be uint8, uint16 or float32"),
        (np.zeros((4, 4, 5), np.uint8), r"must be \(H, W\) or \(H, W, C\) with C = 1, 2 or 3"),
        ([[np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.uint8)]], "different channel"),
        (3.5, "cannot score a float"),
    ],
)
def test_as_scans_refuses_what_is_not_a_scan_in_one_sentence(value: object, match: str) -> None:
    with pytest.raises(XadtError, match=match):
        list(as_scans(value))


def test_fit_predict_and_decision_function_like_pyod(tmp_path: Path) -> None:
    arrays = [s.views[0] for s in normal_scans(30, seed=4)]
    with pytest.warns(CalibrationWarning, match=r"only \d+ held-out normal scans"):
        model = xadt.fit("baseline", arrays, holdout=0.3)
    assert isinstance(model, Model)
    probe = [*normal_scans(3, seed=9), anomalous_scan()]
    scores = model.decision_function(probe)
    assert scores.dtype == np.float64
    assert scores.shape == (4,)
    np.testing.assert_array_equal(model.predict(probe), (scores > model.threshold_).astype(int))
    assert model.predict([anomalous_scan()]).tolist() == [1]
    assert [r.flag for r in model.score(probe)] == [bool(p) for p in model.predict(probe)]
    path = xadt.save_model(tmp_path / "m", model)
    again = xadt.load_model(path)
    np.testing.assert_array_equal(again.decision_function(probe), scores)
    assert again.threshold_ == model.threshold_
    assert again.provenance is not None
    assert again.provenance.training["n_calibration"] >= 2


def test_a_model_without_threshold_cannot_predict() -> None:
    detector = BaselineDetector().fit(TrainingData.from_scans(normal_scans(4)))
    with pytest.raises(XadtError, match="has no threshold"):
        Model(detector).predict(normal_scans(1))


def test_fit_names_too_small_a_holdout() -> None:
    with pytest.raises(XadtError, match="calibration needs at least 2 held-out normal scans"):
        xadt.fit("baseline", normal_scans(3), holdout=0.05)


def test_the_readme_python_section_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = README.read_text().split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert blocks
    _folder(tmp_path / "normal", 12, seed=1)
    _folder(tmp_path / "scans", 2, seed=2)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XADT_DISABLE_PLUGIN_AUTOLOAD", "1")
    code = compile("\n".join(blocks), str(README), "exec")
    with pytest.warns(CalibrationWarning):  # 12 scans: a warned-about threshold
        exec(code, {})  # the README is ours
    assert (tmp_path / "model-dir" / "model.json").is_file()
