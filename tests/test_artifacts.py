"""Model files: round trip, atomic replacement, and clear errors for every kind of bad file."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.numpy

from xadt import artifacts
from xadt.artifacts import load_model, read_model_info, save_model
from xadt.calibration import Calibration, calibrate
from xadt.errors import NotFittedError, XadtError
from xadt.host import load_registry
from xadt.model import Model, Provenance
from xadt.scans import Scan
from xadt.training_data import TrainingData
from xadt.workflows.score import score_in_chunks


@pytest.fixture(autouse=True)
def _builtins_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XADT_DISABLE_PLUGIN_AUTOLOAD", "1")


def _scans(n: int, seed: int) -> list[Scan]:
    rng = np.random.default_rng(seed)
    scans = []
    for i in range(n):
        view = rng.integers(60, 250, size=(40 + i, 50, 3), dtype=np.uint8)
        scans.append(Scan(id=f"s{seed}-{i}", views=[view]))
    return scans


def _fitted(seed: int = 0) -> Model:
    registry = load_registry()
    detector = registry.get_detector("baseline")()
    detector.fit(TrainingData.from_scans(_scans(12, seed)))
    return Model(detector, provenance=Provenance.of(detector, registry.plugins["baseline"]))


def _load(path: Path) -> Model:
    return load_model(path, registry=load_registry())


def _scores(model: Model) -> list[float]:
    return [r.score for r in model.score(_scans(5, 99))]


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_round_trip_gives_identical_scores(tmp_path: Path) -> None:
    model = _fitted()
    path = save_model(tmp_path / "model", model)
    loaded = _load(path)
    assert type(loaded.detector) is type(model.detector)
    assert loaded.detector.config == model.detector.config
    assert _scores(loaded) == _scores(model)
    info = read_model_info(path)
    assert info.plugin == "baseline"
    assert info.provenance.distribution == "xadt"
    assert info.provenance == loaded.provenance
    document = json.loads((path / "model.json").read_text())
    assert document["format_version"] == 2
    assert set(document["tensors"]["shapes"]) == set(model.detector.state().tensors)


def test_unfitted_detector_is_not_saved(tmp_path: Path) -> None:
    detector = load_registry().get_detector("baseline")()
    with pytest.raises(NotFittedError, match="no fitted state"):
        save_model(tmp_path / "model", Model(detector))
    assert not (tmp_path / "model").exists()


def test_existing_model_is_kept_without_overwrite(tmp_path: Path) -> None:
    path = save_model(tmp_path / "model", _fitted(0))
    before = (path / "model.json").read_bytes()
    with pytest.raises(XadtError, match=r"already exists.*--overwrite"):
        save_model(path, _fitted(1))
    assert (path / "model.json").read_bytes() == before
    save_model(path, _fitted(1), overwrite=True)
    assert _scores(_load(path)) == _scores(_fitted(1))
    assert _leftovers(tmp_path) == []


def test_unrelated_folder_is_never_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.png").write_bytes(b"not a model")
    with pytest.raises(XadtError, match="not an xadt model directory"):
        save_model(folder, _fitted(), overwrite=True)
    assert (folder / "cat.png").read_bytes() == b"not a model"


@pytest.mark.parametrize("failing_file", ["tensors.safetensors", "model.json"])
def test_crash_midway_keeps_the_old_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_file: str
) -> None:
    path = save_model(tmp_path / "model", _fitted(0))
    old_scores = _scores(_load(path))

    import xadt.artifacts as artifacts

    real_write = artifacts.write_synced

    def half_write(file: Path, data: bytes) -> None:
        if file.name == failing_file:
            file.write_bytes(data[: len(data) // 2])
            raise OSError(28, "No space left on device")
        real_write(file, data)

    monkeypatch.setattr(artifacts, "write_synced", half_write)
    with pytest.raises(OSError, match="No space left"):
        save_model(path, _fitted(1), overwrite=True)
    assert _scores(_load(path)) == old_scores
    assert _leftovers(tmp_path) == []


def test_crash_on_a_new_path_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xadt.artifacts as artifacts

    def fail(file: Path, data: bytes) -> None:
        file.write_bytes(data[:10])
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(artifacts, "write_synced", fail)
    with pytest.raises(OSError, match="Input/output"):
        save_model(tmp_path / "model", _fitted())
    assert list(tmp_path.iterdir()) == []


def test_truncated_tensors_are_reported(tmp_path: Path) -> None:
    path = save_model(tmp_path / "model", _fitted())
    tensors = path / "tensors.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:-7])
    with pytest.raises(XadtError, match=r"tensors\.safetensors: corrupt or truncated"):
        _load(path)


def test_tampered_tensors_are_reported(tmp_path: Path) -> None:
    path = save_model(tmp_path / "model", _fitted())
    tensors = path / "tensors.safetensors"
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.raises(XadtError, match="checksum"):
        _load(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "corrupt model file"),
        ("[]", "format_version None is not a version"),
        ('{"format_version": 1}', "no 'plugin' section"),
        ("", "corrupt model file"),
    ],
)
def test_corrupt_model_json_is_reported(tmp_path: Path, text: str, match: str) -> None:
    path = save_model(tmp_path / "model", _fitted())
    (path / "model.json").write_text(text)
    with pytest.raises(XadtError, match=match):
        _load(path)


def test_newer_format_is_refused(tmp_path: Path) -> None:
    path = save_model(tmp_path / "model", _fitted())
    document = json.loads((path / "model.json").read_text())
    document["format_version"] = 99
    (path / "model.json").write_text(json.dumps(document))
    with pytest.raises(XadtError, match="model format 99 is newer"):
        _load(path)


def test_missing_plugin_is_reported(tmp_path: Path) -> None:
    path = save_model(tmp_path / "model", _fitted())
    document = json.loads((path / "model.json").read_text())
    document["plugin"]["name"] = "nosuchdetector"
    document["content_sha256"] = artifacts._content_digest(document)  # a consistent file
    (path / "model.json").write_text(json.dumps(document))
    with pytest.raises(XadtError, match="nosuchdetector"):
        _load(path)


def test_missing_directory_and_file_are_reported(tmp_path: Path) -> None:
    with pytest.raises(XadtError, match="no such model directory"):
        _load(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(XadtError, match=r"not an xadt model directory \(no model.json\)"):
        _load(tmp_path / "empty")


def test_loading_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_model(tmp_path / "model", _fitted())

    def forbidden(*args: object, **kwargs: object) -> None:
        pytest.fail("a model file was unpickled")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    assert np.isfinite(_scores(_load(path))).all()


def test_calibration_round_trips(tmp_path: Path) -> None:
    from xadt.calibration import calibrate

    model = _fitted()
    model.calibration = calibrate(model.score(_scans(6, 7)), target_fpr=0.2)
    loaded = _load(save_model(tmp_path / "model", model))
    assert loaded.calibration == model.calibration
    assert read_model_info(tmp_path / "model").calibration == model.calibration
    assert [r.flag for r in loaded.score(_scans(3, 99))] == [
        r.score > model.calibration.threshold for r in loaded.score(_scans(3, 99))
    ]


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d["calibration"].update(threshold=1e308), "was changed after"),
        (lambda d: d["config"].update(ridge=0.5), "was changed after"),
        (lambda d: d.update(format_version=0), "format_version 0 is not a version"),
        (lambda d: d.update(format_version=True), "format_version True is not a version"),
        (lambda d: d.pop("content_sha256"), "no content checksum"),
    ],
)
def test_an_edited_model_json_is_refused_naming_the_file(
    tmp_path: Path, edit: Any, match: str
) -> None:
    model = _fitted()
    model.calibration = calibrate(model.score(_scans(6, 7)), target_fpr=0.2)
    path = save_model(tmp_path / "model", model)
    document = json.loads((path / "model.json").read_text())
    edit(document)
    (path / "model.json").write_text(json.dumps(document))
    with pytest.raises(XadtError, match=match):
        _load(path)


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"threshold": "high"}, "'high' is not a finite number"),
        ({"threshold": float("nan")}, "nan is not a finite number"),
        ({"target_fpr": 1.5}, r"target_fpr 1.5 is not in \(0, 1\)"),
        ({"n_holdout": 0}, "0 is not a count"),
        ({"normal_scores": ""}, "'' is not a list"),
        ({"map_ticks": [[1.0, 2.0, 3.0]]}, "too many values"),
    ],
)
def test_a_calibration_that_means_nothing_is_refused(section: dict, match: str) -> None:
    good = calibrate(_fitted().score(_scans(6, 7)), target_fpr=0.2).to_json()
    with pytest.raises(XadtError, match=match):
        Calibration.from_json({**good, **section})


def test_a_fifo_in_place_of_the_tensors_is_refused_not_waited_on(tmp_path: Path) -> None:
    path = save_model(tmp_path / "model", _fitted())
    (path / "tensors.safetensors").unlink()
    os.mkfifo(path / "tensors.safetensors")
    with pytest.raises(XadtError, match="not a regular file"):
        _load(path)


def test_a_model_json_that_is_no_regular_file_is_named_as_such(tmp_path: Path) -> None:
    path = save_model(tmp_path / "model", _fitted())
    (path / "model.json").unlink()
    os.mkfifo(path / "model.json")
    with pytest.raises(XadtError, match=r"model\.json: not a regular file"):
        _load(path)
    (path / "model.json").unlink()
    (path / "model.json").symlink_to("model.json")
    with pytest.raises(XadtError, match=r"model\.json: cannot read the model file \(Too many"):
        _load(path)


def test_deeply_nested_json_is_a_corrupt_file_not_a_recursion_error(tmp_path: Path) -> None:
    path = save_model(tmp_path / "model", _fitted())
    (path / "model.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(XadtError, match="nested too deeply"):
        _load(path)


def test_replacing_a_model_swaps_it_in_one_step(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    if not artifacts._exchange(a, b):
        pytest.skip("this kernel or file system cannot exchange two paths atomically")
    assert (a / "x").read_text() == "b"
    assert (b / "x").read_text() == "a"
    path = save_model(tmp_path / "model", _fitted(0))
    calls: list[tuple[Path, Path]] = []
    real = artifacts._exchange

    def spy(x: Path, y: Path) -> bool:
        calls.append((x, y))
        assert (y / "model.json").is_file()  # the old model is in place until the swap
        return real(x, y)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(artifacts, "_exchange", spy)
        save_model(path, _fitted(1), overwrite=True)
    assert [y for _, y in calls] == [path]
    assert _scores(_load(path)) == _scores(_fitted(1))
    assert _leftovers(tmp_path) == []


def test_leftovers_of_dead_saves_are_removed_by_the_next(tmp_path: Path) -> None:
    path = save_model(tmp_path / "model", _fitted(0))
    dead = tmp_path / ".model.tmp-999999999-abc"
    alive = tmp_path / f".model.old-{os.getpid()}-def"
    for folder in (dead, alive):
        folder.mkdir()
        (folder / "model.json").write_text("{}")
    save_model(path, _fitted(1), overwrite=True)
    assert not dead.exists()
    assert alive.exists()  # another save of this process may still be using it


def _resealed(path: Path, edit: Any, tensors: dict[str, np.ndarray] | None = None) -> Path:
    """Edit a saved model and recompute its checksums, as an editor who knows the format would:
    only validation then stands between the edit and a score."""
    document = json.loads((path / "model.json").read_text())
    if tensors is not None:
        blob = safetensors.numpy.save(tensors)
        (path / "tensors.safetensors").write_bytes(blob)
        document["tensors"]["sha256"] = hashlib.sha256(blob).hexdigest()
    edit(document)
    document["content_sha256"] = artifacts._content_digest(document)
    (path / "model.json").write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"threshold": ', '"threshold": NaN, "x": '),
        ('"ridge": ', '"ridge": Infinity, "x": '),
        ('"ridge": ', '"ridge": 1e999, "x": '),
        ('"n_holdout": ', '"n_holdout": ' + "9" * 5000 + ', "x": '),
    ],
)
def test_numbers_json_does_not_allow_are_a_corrupt_file_not_a_traceback(
    tmp_path: Path, old: str, new: str
) -> None:
    model = _fitted()
    model.calibration = calibrate(model.score(_scans(6, 7)), target_fpr=0.2)
    path = save_model(tmp_path / "model", model)
    text = (path / "model.json").read_text()
    assert old in text
    (path / "model.json").write_text(text.replace(old, new, 1))
    with pytest.raises(XadtError, match=r"model\.json: corrupt model file \("):
        _load(path)


def test_an_unreadable_model_file_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_model(tmp_path / "model", _fitted())

    def denied(file: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(artifacts, "_read_regular", denied)
    with pytest.raises(XadtError, match=r"model\.json: cannot read the model file \(Permission"):
        _load(path)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.update(meta=None), "'meta' section is not an object"),
        (lambda d: d["meta"].update(features=0), "'features' must be a list of names"),
        (lambda d: d["meta"].update(n_train_scans="x"), "'n_train_scans' must be a count"),
        (lambda d: d["meta"].update(n_train_scans=None), "'n_train_scans' must be a count"),
        (lambda d: d["tensors"].update(shapes={}), "holds other arrays than model.json records"),
        (lambda d: d["calibration"].update(threshold=0.0), "the threshold is not the one"),
        (lambda d: d["calibration"].update(normal_std=1.0), "normal_std or normal_quantiles"),
        (lambda d: d["calibration"].update(n_holdout=7), "n_holdout 7 but 6 normal_scores"),
    ],
)
def test_a_resealed_model_json_with_bad_values_is_refused(
    tmp_path: Path, edit: Any, match: str
) -> None:
    model = _fitted()
    model.calibration = calibrate(model.score(_scans(6, 7)), target_fpr=0.2)
    path = _resealed(save_model(tmp_path / "model", model), edit)
    with pytest.raises(XadtError, match=match):
        _load(path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda m, c: (m.astype(np.float32), c), "dtypes float32 and float64"),
        (lambda m, c: (m * np.nan, c), "NaN or infinite"),
        (lambda m, c: (m, np.zeros_like(c)), "not positive definite"),
        (lambda m, c: (m, -c), "not positive definite"),
        (lambda m, c: (m, c + np.triu(np.ones_like(c), 1)), "not symmetric"),
    ],
)
def test_resealed_baseline_tensors_that_no_fit_writes_are_refused(
    tmp_path: Path, change: Any, match: str
) -> None:
    path = save_model(tmp_path / "model", _fitted())
    state = _fitted().detector.state().tensors
    mean, covariance = change(state["mean"], state["covariance"])
    tensors = {"mean": mean, "covariance": covariance}

    def record(document: dict[str, Any]) -> None:
        shapes = {k: [str(v.dtype), list(v.shape)] for k, v in tensors.items()}
        document["tensors"]["shapes"] = shapes

    with pytest.raises(XadtError, match=f"baseline: the model's tensors hold .*{match}"):
        _load(_resealed(path, record, tensors))


def test_a_resealed_absurd_mean_is_refused_when_scoring_without_a_numpy_warning(
    tmp_path: Path,
) -> None:
    path = save_model(tmp_path / "model", _fitted())
    state = _fitted().detector.state().tensors
    tensors = {"mean": np.full(3, 1e308), "covariance": state["covariance"]}
    model = _load(_resealed(path, lambda d: None, tensors))
    with pytest.raises(XadtError, match="non-finite anomaly scores"):
        list(score_in_chunks(model, _scans(2, 3)))  # filterwarnings=error: no RuntimeWarning


def test_a_0d_array_recorded_as_shape_nothing_by_older_saves_still_loads(tmp_path: Path) -> None:
    blob = safetensors.numpy.save({"n": np.ascontiguousarray(np.array(3))})  # stored as shape [1]
    (tmp_path / "tensors.safetensors").write_bytes(blob)
    sha = hashlib.sha256(blob).hexdigest()
    older = {"tensors": {"sha256": sha, "shapes": {"n": ["int64", []]}}}
    assert artifacts._read_tensors(tmp_path, older)["n"].tolist() == [3]
    wrong = {"tensors": {"sha256": sha, "shapes": {"n": ["int64", [2]]}}}
    with pytest.raises(XadtError, match=r"n: \['int64', \[1\]\] but model.json records"):
        artifacts._read_tensors(tmp_path, wrong)
