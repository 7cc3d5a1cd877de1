"""Run one paper reproduction: split, train and score through the detector contract, AUROC.

Each seed draws its own subsets (``reduced``), seeds the detector, trains on the normal images
and scores the test images with the final epoch's weights: model selection never sees a test
label. With ``optimistic`` the GAN family is also scored after every epoch (training resumes
from each epoch's checkpoint, bit for bit the same run on CPU), and the best of those test
AUROCs, the official GANomaly code's selection rule, is reported beside the result, never as it.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xadt.context import RunContext
from xadt.detector import Detector
from xadt.errors import XadtError
from xadt.metrics import auroc
from xadt.reproduce.datasets import (
    Benchmark,
    one_class_split,
    scans,
    subsample,
)
from xadt.reproduce.papers import PaperFigure, paper_figure
from xadt.reproduce.protocols import CONVENTION, MNIST_FIT, Protocol
from xadt.scans import Scan
from xadt.training_data import TrainingData
from xadt.workflows.train import build_detector

__all__ = ["ClassResult", "SeedRun", "reproduce_class"]


@dataclass(frozen=True)
class SeedRun:
    """One seed of one class.

    Attributes:
        seed: seeds the subsets, the weights and the data order.
        auroc: test AUROC of the final epoch (the result).
        epoch_aurocs: test AUROC after each epoch (``optimistic`` runs only, else empty).
        n_train: training images.
        n_test: test images.
        n_anomalous: anomalous test images.
        seconds: wall time of training and scoring.
        load: the 1-minute load average at the end (other jobs slow a run down).
    """

    seed: int
    auroc: float
    epoch_aurocs: tuple[float, ...]
    n_train: int
    n_test: int
    n_anomalous: int
    seconds: float
    load: float


@dataclass
class ClassResult:
    """Every seed of one class, with the paper's figure for it.

    Attributes:
        plugin: the detector.
        dataset: ``mnist`` or ``cifar10``.
        class_name: the class (anomalous for the GAN family, normal for ``geom``).
        label: its index.
        protocol: what the runs trained and tested on.
        paper: the published AUROC, None where the papers print none.
        runs: one per seed.
    """

    plugin: str
    dataset: str
    class_name: str
    label: int
    protocol: Protocol
    paper: PaperFigure | None
    runs: list[SeedRun] = field(default_factory=list)

    @property
    def mean(self) -> float:
        """Mean final-epoch AUROC over the seeds."""
        return float(np.mean([r.auroc for r in self.runs]))

    @property
    def sd(self) -> float | None:
        """Sample standard deviation over the seeds; None for one seed."""
        if len(self.runs) < 2:
            return None
        return float(np.std([r.auroc for r in self.runs], ddof=1))

    @property
    def optimistic(self) -> float | None:
        """Mean over seeds of the best test AUROC over epochs; None unless measured."""
        if not all(r.epoch_aurocs for r in self.runs):
            return None
        return float(np.mean([max(r.epoch_aurocs) for r in self.runs]))

    def to_json(self) -> dict[str, Any]:
        """The result as JSON-ready values."""
        paper = None
        if self.paper is not None:
            paper = {
                "auroc": self.paper.auroc,
                "spread": self.paper.spread,
                "source": self.paper.source,
            }
        return {
            "plugin": self.plugin,
            "dataset": self.dataset,
            "class": self.class_name,
            "label": self.label,
            "convention": CONVENTION[self.plugin],
            "protocol": self.protocol.name,
            "protocol_description": self.protocol.describe(),
            "options": self.protocol.options,
            "auroc_mean": self.mean,
            "auroc_sd": self.sd,
            "optimistic_best_epoch_auroc": self.optimistic,
            "paper": paper,
            "runs": [
                {
                    "seed": r.seed,
                    "auroc": r.auroc,
                    "epoch_aurocs": list(r.epoch_aurocs),
                    "n_train": r.n_train,
                    "n_test": r.n_test,
                    "n_anomalous": r.n_anomalous,
                    "seconds": round(r.seconds, 1),
                    "load": round(r.load, 2),
                }
                for r in self.runs
            ],
        }


def reproduce_class(
    detector_cls: type[Detector],
    benchmark: Benchmark,
    label: int,
    protocol: Protocol,
    *,
    seeds: Sequence[int],
    context: RunContext,
    optimistic: bool = False,
) -> ClassResult:
    """Train and score ``detector_cls`` on class ``label`` of ``benchmark`` once per seed.

    Raises:
        XadtError: ``optimistic`` for a detector outside the GAN family, or a failed fit.
    """
    plugin = detector_cls.name
    if optimistic and CONVENTION[plugin] != "anomaly":
        msg = f"--optimistic applies to the GAN family only, not {plugin}"
        raise XadtError(msg)
    name = benchmark.classes[label]
    result = ClassResult(
        plugin, benchmark.name, name, label, protocol, paper_figure(plugin, benchmark.name, name)
    )
    whole = one_class_split(benchmark, label, CONVENTION[plugin])
    for seed in seeds:
        start = time.perf_counter()
        split = subsample(
            whole,
            benchmark.labels,
            train=protocol.train_images,
            test=protocol.test_images,
            seed=seed,
        )
        train = scans(benchmark, split.train, MNIST_FIT[plugin])
        test = scans(benchmark, split.test, MNIST_FIT[plugin])
        data = TrainingData.from_scans(train, seed=seed)
        run = context.replace(seed=seed)
        epochs = int(protocol.options.get("epochs") or 0)
        if optimistic:
            aurocs = _epoch_by_epoch(
                detector_cls, protocol, data, test, split.anomalous, run, epochs
            )
            final = aurocs[-1]
        else:
            detector = build_detector(detector_cls, options=protocol.options)
            detector.fit(data, run)
            final, aurocs = _auroc(detector, test, split.anomalous, run), []
        result.runs.append(
            SeedRun(
                seed=seed,
                auroc=final,
                epoch_aurocs=tuple(aurocs),
                n_train=len(split.train),
                n_test=len(split.test),
                n_anomalous=int(split.anomalous.sum()),
                seconds=time.perf_counter() - start,
                load=os.getloadavg()[0],
            )
        )
    return result


def _epoch_by_epoch(
    detector_cls: type[Detector],
    protocol: Protocol,
    data: TrainingData,
    test: list[Scan],
    anomalous: np.ndarray,
    context: RunContext,
    epochs: int,
) -> list[float]:
    """Test AUROC after each epoch: fit to epoch k by resuming from epoch k - 1's checkpoint."""
    aurocs = []
    with tempfile.TemporaryDirectory(prefix="xadt-reproduce-") as folder:
        checkpoints, cache = Path(folder) / "checkpoints", Path(folder) / "cache"
        for epoch in range(1, epochs + 1):
            detector = build_detector(detector_cls, options={**protocol.options, "epochs": epoch})
            run = context.replace(checkpoint_dir=checkpoints, resume=epoch > 1, cache_dir=cache)
            detector.fit(data, run)
            aurocs.append(_auroc(detector, test, anomalous, context))
    return aurocs


def _auroc(
    detector: Detector, test: list[Scan], anomalous: np.ndarray, context: RunContext
) -> float:
    context.progress.stage("scoring the test images", None)
    scores = [r.score for r in detector.score(test, context)]
    value = auroc(anomalous, scores)
    if not math.isfinite(value):
        msg = f"{detector.name}: the test AUROC is {value}; a score was not finite"
        raise XadtError(msg)
    return value
