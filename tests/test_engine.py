"""The training engine on a tiny detector with in-memory batches: checkpoints, the log, resume
checks, model selection and loss errors (the subprocess tests of a real plugin are in
tests/test_trainable_plugin.py)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from xadt.checkpoints import LATEST, load_latest
from xadt.config import option
from xadt.context import RunContext
from xadt.detector import ScanResult
from xadt.engine import LOG_FILE, Step, TrainableDetector, TrainingOptions
from xadt.errors import XadtError
from xadt.scans import Scan
from xadt.training_data import TrainingData


@dataclass
class LineConfig(TrainingOptions):
    """Options of the test detector."""

    lr: float = option(0.05, help="SGD learning rate", check=(lambda v: v > 0, "a float > 0"))
    blow_up: bool = option(False, help="make the loss infinite")


class _Batches:
    def __init__(self, data: TrainingData, seed: int, validation: _Batches | None = None) -> None:
        self.rows = np.stack([s.views[0].reshape(-1)[:8] for s in data]).astype(np.float32)
        self.seed, self.validation = seed, validation
        self.info = {"width": 8}

    def __len__(self) -> int:
        return 2

    def epoch(self, epoch: int) -> Iterator[torch.Tensor]:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.rows))
        for half in np.array_split(order, 2):
            yield torch.from_numpy(self.rows[half])


class Line(TrainableDetector):
    """Fits a linear map x -> x with SGD; the score is the reconstruction error."""

    name: ClassVar[str] = "line"
    Config: ClassVar[type] = LineConfig
    config: LineConfig

    def batches(self, data: TrainingData, context: RunContext) -> _Batches:
        held = _Batches(data.validation, context.seed) if len(data.validation) else None
        return _Batches(data, context.seed, held)

    def build_networks(self, info: Mapping[str, Any]) -> dict[str, torch.nn.Module]:
        return {"line": torch.nn.Linear(info["width"], info["width"])}

    def build_optimizers(self, nets: Mapping[str, torch.nn.Module]) -> dict[str, Any]:
        return {"line": torch.optim.SGD(nets["line"].parameters(), lr=self.config.lr)}

    def training_step(self, step: Step, batch: torch.Tensor) -> dict[str, float]:
        loss = torch.nn.functional.mse_loss(step.nets["line"](batch), batch)
        if self.config.blow_up:
            loss = loss * float("inf")
        step.optimize("line", loss)
        return {"loss": float(loss.detach())}

    def validation_step(self, step: Step, batch: torch.Tensor) -> dict[str, float]:
        return {"loss": float(torch.nn.functional.mse_loss(step.nets["line"](batch), batch))}

    def score(self, scans: Iterable[Scan], context: RunContext | None = None) -> list[ScanResult]:
        with self.inference(context):
            net = self.networks()["line"]
            out = []
            for scan in scans:
                x = torch.from_numpy(scan.views[0].reshape(-1)[:8].astype(np.float32))
                out.append(ScanResult(scan.id, float(((net(x) - x) ** 2).mean())))
        return out


def _data(n: int = 12, validation: int = 0) -> TrainingData:
    rng = np.random.default_rng(0)
    scans = [
        Scan(f"s{i:02d}", [rng.random((4, 4, 1), dtype=np.float32)], encoding="grey")
        for i in range(n)
    ]
    return TrainingData.from_scans(scans[: n - validation], validation=scans[n - validation :])


def _weights(detector: Line) -> dict[str, np.ndarray]:
    return detector.state().tensors


def test_checkpoints_every_epoch_and_a_log_line_each(tmp_path: Path) -> None:
    detector = Line(epochs=3).fit(_data(), RunContext(checkpoint_dir=tmp_path))
    assert json.loads((tmp_path / LATEST).read_text())["epoch"] == 3
    assert sorted(p.name for p in tmp_path.glob("epoch-*")) == ["epoch-0003"]
    log = [json.loads(line) for line in (tmp_path / LOG_FILE).read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2, 3]
    assert log[0]["train"]["loss"] > log[-1]["train"]["loss"]
    assert detector.selected_epoch_ == 3
    assert len(detector.history_) == 3


def test_a_resume_after_a_lost_log_line_rewrites_the_log_from_the_checkpoint(
    tmp_path: Path,
) -> None:
    Line(epochs=2).fit(_data(), RunContext(checkpoint_dir=tmp_path))
    lines = (tmp_path / LOG_FILE).read_text().splitlines()
    (tmp_path / LOG_FILE).write_text(lines[0] + "\n")  # killed between checkpoint and log
    resumed = Line(epochs=4).fit(_data(), RunContext(checkpoint_dir=tmp_path, resume=True))
    log = [json.loads(line) for line in (tmp_path / LOG_FILE).read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2, 3, 4]
    whole = Line(epochs=4).fit(_data(), RunContext())
    for key, value in _weights(whole).items():
        np.testing.assert_array_equal(value, _weights(resumed)[key], err_msg=key)


def test_a_half_written_epoch_is_never_loaded(tmp_path: Path) -> None:
    Line(epochs=2).fit(_data(), RunContext(checkpoint_dir=tmp_path))
    broken = tmp_path / ".epoch-0003.tmp-abc"  # a kill while epoch 3 was being written
    broken.mkdir()
    (broken / "tensors.safetensors").write_bytes(b"half")
    checkpoint = load_latest(tmp_path)
    assert checkpoint is not None
    assert checkpoint.epoch == 2
    (tmp_path / "epoch-0002" / "tensors.safetensors").write_bytes(b"damaged")
    with pytest.raises(XadtError, match="corrupt or truncated"):
        load_latest(tmp_path)


def test_resuming_another_run_is_refused(tmp_path: Path) -> None:
    Line(epochs=2).fit(_data(), RunContext(checkpoint_dir=tmp_path))
    with pytest.raises(XadtError, match="belongs to another training run"):
        Line(epochs=3, lr=0.01).fit(_data(), RunContext(checkpoint_dir=tmp_path, resume=True))


def test_validation_selection_keeps_the_best_epoch_and_needs_held_out_scans() -> None:
    detector = Line(epochs=4, select="validation", lr=5.0)  # a rate that diverges after a while
    detector.fit(_data(12, validation=4), RunContext())
    losses = [h["validation"]["loss"] for h in detector.history_]
    assert detector.selected_epoch_ == int(np.argmin(losses)) + 1
    with pytest.raises(XadtError, match="needs held-out validation scans"):
        Line(epochs=2, select="validation").fit(_data(), RunContext())
    assert Line(select="validation").default_validation() == 0.1
    assert Line().default_validation() == 0.0


def test_a_non_finite_loss_is_one_sentence_naming_epoch_and_step() -> None:
    with pytest.raises(XadtError, match=r"training loss 'loss' became inf in epoch 1, step 0"):
        Line(epochs=1, blow_up=True).fit(_data(), RunContext())


def test_the_state_rebuilds_the_networks_and_scores_identically() -> None:
    detector = Line(epochs=2).fit(_data(), RunContext())
    again = Line.from_state(detector.config, detector.state())
    probe = list(_data(3))
    assert [r.score for r in again.score(probe)] == [r.score for r in detector.score(probe)]
    with pytest.raises(XadtError, match="do not fit network 'line'"):
        Line.from_state(
            detector.config,
            dataclasses.replace(
                detector.state(), meta={**detector.state().meta, "info": {"width": 3}}
            ),
        )
