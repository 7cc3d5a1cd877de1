"""The papers' published AUROCs that ``xadt reproduce`` prints beside ours.

Transcribed from methods.md: seed 003 Table I (GANomaly and Skip-GANomaly rows, CIFAR-10, the
column class anomalous; seed 001 Table 1 repeats them), seed 001 Table 1 (dsagan's "Proposed"
row) and seed 004 Table 1 (GeoTrans, CIFAR-10, the row class normal, mean ± SEM over 5 runs, in
percent there and as fractions here). No paper prints an MNIST figure in its text (GANomaly's are
in a plot only), so MNIST has none: never a number read off a plot.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PAPER_MEANS", "PaperFigure", "paper_figure"]


@dataclass(frozen=True)
class PaperFigure:
    """One published AUROC.

    Attributes:
        auroc: the figure, as a fraction.
        spread: the paper's own spread for it (GeoTrans: SEM over 5 runs), None where the paper
            prints none (the GAN tables give single numbers).
        source: where it is printed, e.g. ``seed 003 Table I``.
    """

    auroc: float
    spread: float | None
    source: str


_GAN_COLUMNS = (
    "bird", "automobile", "cat", "deer", "dog", "frog", "horse", "airplane", "ship", "truck"
)  # fmt: skip
"""Table I's column order (bird, car, cat, deer, dog, frog, horse, plane, ship, truck)."""

_GANOMALY = (0.510, 0.631, 0.587, 0.593, 0.628, 0.683, 0.605, 0.633, 0.616, 0.617)
_SKIPGANOMALY = (0.448, 0.953, 0.607, 0.602, 0.615, 0.931, 0.788, 0.797, 0.659, 0.907)
_DSAGAN = (0.982, 0.998, 0.981, 0.999, 0.989, 1.000, 0.992, 1.000, 1.000, 0.974)

_GEOM = {  # seed 004 Table 1, CIFAR-10, GeoTrans (OURS): mean ± SEM in percent
    "airplane": (74.7, 0.4),
    "automobile": (95.7, 0.0),
    "bird": (78.1, 0.4),
    "cat": (72.4, 0.5),
    "deer": (87.8, 0.2),
    "dog": (87.8, 0.1),
    "frog": (83.4, 0.5),
    "horse": (95.5, 0.1),
    "ship": (93.3, 0.0),
    "truck": (91.3, 0.1),
}

_TABLES: dict[tuple[str, str], dict[str, PaperFigure]] = {
    ("ganomaly", "cifar10"): {
        c: PaperFigure(v, None, "seed 003 Table I")
        for c, v in zip(_GAN_COLUMNS, _GANOMALY, strict=True)
    },
    ("skipganomaly", "cifar10"): {
        c: PaperFigure(v, None, "seed 003 Table I")
        for c, v in zip(_GAN_COLUMNS, _SKIPGANOMALY, strict=True)
    },
    ("dsagan", "cifar10"): {
        c: PaperFigure(v, None, "seed 001 Table 1")
        for c, v in zip(_GAN_COLUMNS, _DSAGAN, strict=True)
    },
    ("geom", "cifar10"): {
        c: PaperFigure(round(v / 100, 4), round(s / 100, 4), "seed 004 Table 1")
        for c, (v, s) in _GEOM.items()
    },
}

PAPER_MEANS = {
    ("ganomaly", "cifar10"): 0.610,
    ("skipganomaly", "cifar10"): 0.731,
    ("dsagan", "cifar10"): 0.992,
    ("geom", "cifar10"): 0.860,
}
"""The mean over the ten classes of each table (methods.md's means; GeoTrans prints 86.0)."""


def paper_figure(plugin: str, dataset: str, class_name: str) -> PaperFigure | None:
    """The paper's AUROC for ``plugin`` on ``dataset`` with class ``class_name`` (anomalous for
    the GAN family, normal for ``geom``), or None where the papers print none (MNIST)."""
    return _TABLES.get((plugin, dataset), {}).get(class_name)
