"""Realism check: the paper's global baseline features must not separate normal from threat scans.

Griffin et al. saw AUROCs of 0.675 (size), 0.690 (attenuation) and 0.723 (busyness) on real
parcels; a synthetic set on which one of them is near 1 would make the task trivially easy.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from xadt.crop import EmptyScanError, crop_air
from xadt.features import FEATURES, global_features
from xadt.synth.dataset import generate


def crop(view: np.ndarray) -> np.ndarray:
    """The view cut to its parcel by :func:`xadt.crop.crop_air` (the whole view if all air)."""
    try:
        return crop_air(view).apply(view)
    except EmptyScanError:
        return view


def scan_features(views: list[np.ndarray]) -> dict[str, float]:
    """Global features (size, attenuation, busyness) of one scan's air-cropped views."""
    return global_features([crop(v) for v in views])


def baseline_aurocs(
    n_normal: int, n_threat: int, *, seed: int = 0, scale: float = 0.25
) -> dict[str, float]:
    """AUROC (threat = positive) of each global feature on a generated test set.

    Uses the test splits of the data set with ``seed``; ``max(a, 1 - a)`` of each value is how
    well that feature alone would separate the classes.
    """
    rows = []
    labels = []
    for split, count, label in (("test-normal", n_normal, 0), ("test-threat", n_threat, 1)):
        for i in range(count):
            scan = generate(seed, split, i, scale=scale)
            rows.append(scan_features(scan.views))
            labels.append(label)
    y = np.array(labels)
    return {f: float(roc_auc_score(y, [r[f] for r in rows])) for f in FEATURES}
