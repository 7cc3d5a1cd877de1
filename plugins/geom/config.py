"""Options of the ``geom`` detector (methods.md §5, §7 T-entries)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from xadt.config import option
from xadt.patch_detector import PatchOptions
from xadt.plugins.geom.transforms import N_TRANSFORMS, TRANSFORM_SETS, parse_transforms

__all__ = ["PAPER_BATCH", "PAPER_PASSES", "GeomConfig"]

PAPER_BATCH = 128
"""Transformed images per optimiser step in the paper."""

PAPER_PASSES = 200
"""The paper trains ⌈200/|T|⌉ epochs over the transformed set, about 200 epochs' updates."""


def _valid_set(spec: str) -> bool:
    try:
        parse_transforms(spec)
    except ValueError:
        return False
    return True


@dataclass
class GeomConfig(PatchOptions):
    """Options of ``geom``; ``epochs=None`` means the paper's rule for the chosen transformation
    set, resolved (and recorded in the model) when fitting."""

    epochs: int | None = option(  # type: ignore[assignment]
        None,
        help="passes over the training patches, each under every transformation; None = the "
        "paper's rule ceil(200 / |T|) (3 for full72)",
        check=(lambda v: v >= 1, "an integer >= 1, or None for the paper's rule"),
    )
    batch_size: int = option(
        128,
        help="patches per training step; their copies under every transformation are shuffled "
        "and split into optimiser steps of images_per_step images",
        check=(lambda v: v >= 1, "an integer >= 1"),
    )
    images_per_step: int = option(
        PAPER_BATCH,
        help="transformed images per optimiser step (the paper: 128)",
        check=(lambda v: v >= 2, "an integer >= 2"),
    )
    score_batch: int = option(
        4,
        help="patches per forward pass when scoring; a pass holds score_batch × |T| images",
        check=(lambda v: v >= 1, "an integer >= 1"),
        runtime=True,
    )
    transforms: str = option(
        "full72",
        help="the transformation set: " + ", ".join(TRANSFORM_SETS) + ", or a comma-separated "
        "list of indices flip*36 + ix*12 + iy*4 + k (class j is the j-th listed)",
        check=(
            _valid_set,
            f"one of {', '.join(TRANSFORM_SETS)}, or at least two distinct comma-separated "
            f"indices in 0..{N_TRANSFORMS - 1}",
        ),
    )
    shift: float = option(
        0.25,
        help="translation as a fraction of the patch side (the paper: a quarter, 8 px of 32)",
        check=(lambda v: 0 < v < 1, "a float in (0, 1)"),
    )
    depth: int = option(
        10,
        help="Wide-ResNet depth, 6n + 4 (the paper: 10; 16 for 64-px CatsVsDogs)",
        check=(lambda v: v >= 10 and (v - 4) % 6 == 0, "an integer 6n + 4 >= 10"),
    )
    widen: int = option(
        4,
        help="Wide-ResNet widening factor (the paper: 4; 8 for 64-px CatsVsDogs)",
        check=(lambda v: v >= 1, "an integer >= 1"),
    )
    lr: float = option(1e-3, help="Adam learning rate", check=(lambda v: v > 0, "a float > 0"))
    weight_decay: float = option(
        5e-4,
        help="L2 penalty of Adam (coupled, as the paper's Keras regulariser 2.5e-4·Σw²)",
        check=(lambda v: v >= 0, "a float >= 0"),
    )
    normality: Literal["dirichlet", "simple"] = option(
        "dirichlet",
        help="patch normality: the Dirichlet log-likelihood of the softmax outputs, or the mean "
        "probability of the right transformation; the patch score is its negation",
    )
    dirichlet_patches: int = option(
        20000,
        help="training patches (a seeded sample) the Dirichlet parameters are fitted on",
        check=(lambda v: v >= 2, "an integer >= 2"),
    )

    @property
    def indices(self) -> tuple[int, ...]:
        """The transformation indices of ``transforms``."""
        return parse_transforms(self.transforms)

    def resolved(self) -> GeomConfig:
        """This config with ``epochs`` set by the paper's rule where None."""
        return dataclasses.replace(
            self, epochs=self.epochs or math.ceil(PAPER_PASSES / len(self.indices))
        )
