"""Training data: the three-way hash split, re-iterable lazy passes, seeded epoch orders."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from xadt.errors import XadtError
from xadt.scans import Scan, ScanSkippedWarning, iter_scans
from xadt.training_data import TrainingData, split_ids


def _scans(n: int) -> list[Scan]:
    view = np.zeros((4, 4, 3), np.uint8)
    return [Scan(id=f"s{i:03d}", views=[view]) for i in range(n)]


def test_split_is_stable_disjoint_and_near_the_fractions() -> None:
    ids = [f"scan-{i}" for i in range(4000)]
    split = split_ids(ids, holdout=0.1, validation=0.2, seed=3)
    assert split == split_ids(ids, holdout=0.1, validation=0.2, seed=3)
    parts = [set(split.fit), set(split.validation), set(split.calibration)]
    assert sum(map(len, parts)) == len(ids) == len(set().union(*parts))
    assert 0.08 < len(split.calibration) / len(ids) < 0.12
    assert 0.17 < len(split.validation) / len(ids) < 0.23
    assert split.calibration != split_ids(ids, holdout=0.1, validation=0.2, seed=4).calibration


@given(st.floats(0.01, 0.5), st.floats(0.0, 0.4))
def test_validation_never_moves_a_calibration_scan(holdout: float, validation: float) -> None:
    ids = [f"id{i}" for i in range(300)]
    without = split_ids(ids, holdout=holdout, validation=0.0, seed=0)
    with_validation = split_ids(ids, holdout=holdout, validation=validation, seed=0)
    assert with_validation.calibration == without.calibration
    assert set(with_validation.fit) <= set(without.fit)


@pytest.mark.parametrize(
    ("holdout", "validation", "match"),
    [(0.0, 0.1, "--holdout"), (0.1, -0.1, "--validation"), (0.6, 0.5, "leave no scans")],
)
def test_bad_fractions_are_one_line_errors(holdout: float, validation: float, match: str) -> None:
    with pytest.raises(XadtError, match=match):
        split_ids(["a"], holdout=holdout, validation=validation, seed=0)


def test_each_pass_is_fresh_and_epochs_have_seeded_orders() -> None:
    data = TrainingData.from_scans(_scans(30), validation=_scans(0), seed=5)
    assert [s.id for s in data] == [s.id for s in data] == list(data.ids)
    first, second = data.order(1), data.order(2)
    assert sorted(first) == sorted(data.ids)
    assert first != second
    assert first == TrainingData.from_scans(_scans(30), seed=5).order(1)
    assert [s.id for s in data.epoch(1)] == first
    assert len(data.validation) == 0


def test_from_scans_refuses_duplicate_ids() -> None:
    with pytest.raises(XadtError, match="unique"):
        TrainingData.from_scans(_scans(2), validation=_scans(1))


def test_folder_data_reads_lazily_and_lists_each_bad_file_once(tmp_path: Path) -> None:
    for i in range(12):
        Image.fromarray(np.full((8, 8), 200, np.uint8)).save(tmp_path / f"scan{i:02d}.png")
    (tmp_path / "scan05.png").write_bytes(b"not a png")
    folder = iter_scans(tmp_path)
    split = split_ids(folder.ids, holdout=0.3, validation=0.0, seed=0)
    data, calibration = TrainingData.from_folder(folder, split, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScanSkippedWarning)
        passes = [[s.id for s in data] for _ in range(3)]
        held = [s.id for s in calibration]
    assert passes[0] == passes[1] == passes[2]
    assert set(passes[0]).isdisjoint(held)
    assert len(passes[0]) + len(held) == 11
    assert [path.name for path, _ in data.skipped] == ["scan05.png"]
    assert data.unread == {"scan05"}
