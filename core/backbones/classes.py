"""ImageNet-1k class names and the curated class subsets, read from the files in ``xadt/data``."""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np

__all__ = ["gun_indices", "imagenet_classes", "imagenet_wnids", "plausible_indices"]

N_IMAGENET_CLASSES = 1000


@cache
def _rows(file_name: str) -> tuple[tuple[str, ...], ...]:
    """Tab-separated rows of a packaged data file, without comment and blank lines."""
    text = resources.files("xadt").joinpath("data", file_name).read_text(encoding="utf-8")
    return tuple(
        tuple(line.split("\t")) for line in text.splitlines() if line and not line.startswith("#")
    )


def imagenet_classes() -> list[str]:
    """Return the 1,000 ImageNet-1k class names in logit order (index ``i`` names logit ``i``).

    Each name is the first WordNet synonym of the class (``'tabby'``, ``'espresso'``). Two names
    occur twice because ImageNet has two classes each: 'crane' (134 the bird, 517 the machine)
    and 'maillot' (638, 639); use the index, or :func:`imagenet_wnids`, to tell them apart.
    """
    return [row[2] for row in _rows("imagenet_classes.txt")]


def imagenet_wnids() -> list[str]:
    """Return the WordNet ids (``'n02123045'``) of the 1,000 ImageNet-1k classes in logit order."""
    return [row[1] for row in _rows("imagenet_classes.txt")]


def plausible_indices() -> np.ndarray:
    """Return the sorted indices of the parcel-plausible ImageNet-1k classes (methods.md §1.5).

    A class is excluded when it is living (animal, plant, fungus, person), food or drink, or too
    large for a parcel (vehicles, buildings, landscapes, large furniture and machines); firearms
    are kept. The list is versioned in ``xadt/data/plausible_classes.txt`` and built by
    ``python -m xadt.backbones.curation`` from the rules written there.

    Returns:
        A read-only int64 array of class indices, ascending.
    """
    return _indices("plausible_classes.txt")


def gun_indices() -> np.ndarray:
    """Return the sorted indices of the ImageNet-1k firearm classes that fit in a parcel.

    These are 'assault rifle', 'revolver' and 'rifle'; all are among :func:`plausible_indices`.

    Returns:
        A read-only int64 array of class indices, ascending.
    """
    return _indices("gun_classes.txt")


def _indices(file_name: str) -> np.ndarray:
    """The index column of a curated list as a read-only array."""
    out = np.array([int(row[0]) for row in _rows(file_name)], dtype=np.int64)
    out.flags.writeable = False
    return out
