"""The ``geom`` detector: GeoTrans (Golan & El-Yaniv, 2018) on patches of X-ray scans.

The engine trains the transformation classifier on patches from the patch store; ``fit`` then
fits one Dirichlet per transformation to the softmax outputs on a seeded sample of the same
store's patches. A patch's anomaly score is its negated normality score.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import nn

from xadt.context import RunContext
from xadt.detector import DetectorState, require_tensors
from xadt.engine import Step
from xadt.errors import XadtError
from xadt.patch_detector import PatchDetector, StoreBatches
from xadt.patchstore import PatchStore, unit_patches
from xadt.plugins.geom.config import GeomConfig
from xadt.plugins.geom.dirichlet import CLIP, fit_dirichlet, normality, simple_normality
from xadt.plugins.geom.network import TransformClassifier
from xadt.training_data import TrainingData

__all__ = ["GeomDetector"]

_NET = "classifier"
_ALPHA = "dirichlet.alpha"


class GeomDetector(PatchDetector):
    """GeoTrans: a Wide ResNet learns which geometric transformation was applied to a normal
    patch; a patch whose transformed copies it cannot tell apart is anomalous.

    Patch score: minus the Dirichlet normality Σ_i (α_i - 1)·log y(T_i x) / K (or minus the
    mean probability of the right transformation); higher = more anomalous. Scan score: the
    worst patch (``reduction``); maps: window averages of the patch scores.

    Fitted attributes besides the engine's: ``alpha_`` ((K, K) Dirichlet concentrations, row i
    for transformation i), ``n_dirichlet_patches_``.
    """

    name: ClassVar[str] = "geom"
    description: ClassVar[str] = (
        "GeoTrans: classify 72 geometric transformations of patches, Dirichlet normality score"
    )
    Config: ClassVar[type] = GeomConfig
    config: GeomConfig
    map_kind = "window"
    monitor: ClassVar[str] = "loss"

    def __init__(self, config: Any | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.alpha_: np.ndarray | None = None
        self.n_dirichlet_patches_: int | None = None
        self._store: PatchStore | None = None

    # -- training --------------------------------------------------------------------------------

    def fit(self, data: TrainingData, context: RunContext | None = None) -> Self:
        """Train the classifier through the engine, then fit the Dirichlet parameters.

        ``epochs=None`` is resolved to the paper's rule first, and the resolved config is the one
        the model records.
        """
        context = context or RunContext()
        self.validate()
        self.config = self.config.resolved()
        super().fit(data, context)
        assert self._store is not None
        try:
            self._fit_dirichlet(self._store, context)
        finally:
            self._store = None
        return self

    def batches(self, data: TrainingData, context: RunContext) -> StoreBatches:
        """The patch detector's store batches; the store is kept for the Dirichlet fit and the
        transformation set joins the data info (the networks' shape depends on it)."""
        batches = super().batches(data, context)
        self._store = batches.store
        batches.info["transforms"] = list(self.config.indices)
        return batches

    def build_networks(self, info: Mapping[str, Any]) -> dict[str, nn.Module]:
        """The transformation classifier for ``info``'s channels, patch side and transformations."""
        c = self.config
        transforms = tuple(info.get("transforms", c.indices))
        if transforms != c.indices:
            msg = (
                f"The 'transforms' option of {self.name} must be the set the model was trained "
                f"with ({','.join(map(str, transforms))}). Got {c.transforms!r} instead."
            )
            raise XadtError(msg)
        patch = int(info["patch"])
        net = TransformClassifier(
            int(info["channels"]),
            patch,
            transforms,
            shift=round(c.shift * patch),
            depth=c.depth,
            widen=c.widen,
        )
        return {_NET: net}

    def build_optimizers(self, nets: Mapping[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        """Adam with the paper's defaults and coupled L2 weight decay."""
        c = self.config
        params = nets[_NET].parameters()
        return {_NET: torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)}

    def training_step(self, step: Step, batch: torch.Tensor) -> dict[str, float]:
        """Cross-entropy of the transformation, one optimiser step per ``images_per_step`` of the
        batch's shuffled transformed copies (so each step mixes patches and transformations, as
        the paper's shuffled transformed set does, and no batch holds one patch's every copy)."""
        order = torch.randperm(len(batch) * len(self.config.indices)).to(batch.device)
        loss_sum, correct = 0.0, 0
        for chunk in order.split(self.config.images_per_step):
            with step.autocast():
                loss, right = self._copies_loss(step.nets[_NET], batch, chunk)
            step.optimize(_NET, loss)
            loss_sum += float(loss.detach()) * len(chunk)
            correct += right
        return {"loss": loss_sum / len(order), "accuracy": correct / len(order)}

    def validation_step(self, step: Step, batch: torch.Tensor) -> dict[str, float]:
        """The same cross-entropy on every transformed copy of held-out normal patches."""
        every = torch.arange(len(batch) * len(self.config.indices), device=batch.device)
        loss_sum, correct = 0.0, 0
        for chunk in every.split(self.config.images_per_step):
            loss, right = self._copies_loss(step.nets[_NET], batch, chunk)
            loss_sum += float(loss) * len(chunk)
            correct += right
        return {"loss": loss_sum / len(every), "accuracy": correct / len(every)}

    def _copies_loss(
        self, net: nn.Module, batch: torch.Tensor, copies: torch.Tensor
    ) -> tuple[torch.Tensor, int]:
        """Mean cross-entropy and number right over ``copies``, flat indices patch·K + class."""
        classes = len(self.config.indices)
        labels = copies % classes
        logits = net(batch, torch.stack([copies // classes, labels], dim=1))
        right = int((logits.argmax(dim=1) == labels).sum())
        return nn.functional.cross_entropy(logits.float(), labels), right

    def _fit_dirichlet(self, store: PatchStore, context: RunContext) -> None:
        n = min(len(store), self.config.dirichlet_patches)
        rng = np.random.default_rng(context.seed)
        chosen = np.sort(rng.choice(len(store), n, replace=False))
        context.progress.stage("fitting the Dirichlet parameters", n)
        total = total_log = 0.0
        with self.inference(context) as device:
            for start in range(0, n, self.config.score_batch):
                rows = chosen[start : start + self.config.score_batch]
                patches = torch.from_numpy(unit_patches(store.read(rows))).to(device)
                log_probs = self._log_probs(patches)
                total = total + log_probs.exp().sum(dim=0).cpu().numpy()
                total_log = total_log + log_probs.sum(dim=0).cpu().numpy()
                context.progress.update(start + len(rows))
        self.alpha_ = fit_dirichlet(total / n, total_log / n)
        self.n_dirichlet_patches_ = n

    # -- scoring ---------------------------------------------------------------------------------

    def _log_probs(self, patches: torch.Tensor) -> torch.Tensor:
        """float64 (B, K, K) log softmax outputs, clipped at log CLIP."""
        logits = self.networks()[_NET](patches).double()
        return torch.log_softmax(logits, dim=-1).clamp(min=float(np.log(CLIP)))

    def score_patches(self, patches: torch.Tensor) -> tuple[torch.Tensor, None]:
        """Minus the normality score of each patch (higher = more anomalous); no pixel errors."""
        log_probs = self._log_probs(patches).cpu().numpy()
        if self.config.normality == "simple":
            value = simple_normality(log_probs)
        else:
            assert self.alpha_ is not None
            value = normality(log_probs, self.alpha_)
        return torch.from_numpy(-value), None

    def state(self) -> DetectorState:
        """The engine's state plus the Dirichlet concentrations (``dirichlet.alpha``)."""
        state = super().state()
        assert self.alpha_ is not None
        state.tensors[_ALPHA] = self.alpha_
        state.meta["n_dirichlet_patches"] = self.n_dirichlet_patches_
        return state

    @classmethod
    def from_state(cls, config: Any, state: DetectorState) -> Self:
        """The networks from the engine's state, then the Dirichlet concentrations."""
        require_tensors(cls.name, state, [_ALPHA])
        detector = super().from_state(config, state)
        detector.alpha_ = np.array(state.tensors[_ALPHA], dtype=np.float64)
        n = state.meta.get("n_dirichlet_patches")
        detector.n_dirichlet_patches_ = int(n) if isinstance(n, int) else None
        return detector
