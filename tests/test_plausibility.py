"""The warning for images that are plainly not X-ray scans (``xadt.plausibility``)."""

from __future__ import annotations

import numpy as np
import pytest

from xadt.plausibility import implausibility
from xadt.scans import Scan
from xadt.synth import make_parcel


def _scan(*views: np.ndarray) -> Scan:
    return Scan("x", list(views), encoding="grey" if views[0].shape[2] == 1 else "rgb")


@pytest.mark.parametrize("energies", [False, True])
def test_synthetic_parcels_look_like_x_ray_scans(energies: bool) -> None:
    for seed in range(3):
        parcel = make_parcel(np.random.default_rng(seed), scale=0.15, energies=energies)
        assert implausibility(parcel.to_scan("p")) == ""


def test_12_bit_data_in_uint16_reads_as_a_scan() -> None:
    view = np.full((64, 80, 1), 4000, np.uint16)  # air at the top of a 12-bit range
    view[16:48, 20:60] = 900
    assert implausibility(_scan(view)) == ""


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        (np.zeros((64, 64, 3), np.uint8), "one value throughout"),
        (np.full((64, 64, 1), 0.4, np.float32), "one value throughout"),
        (np.random.default_rng(0).integers(0, 12, (64, 64, 3), dtype=np.uint8), "mostly black"),
        (np.full((20, 300, 3), 255, np.uint8), "tiny (20x300 px)"),
    ],
)
def test_blank_black_and_tiny_images_are_named(view: np.ndarray, expected: str) -> None:
    warning = implausibility(_scan(view))
    assert warning.startswith("not like an X-ray scan: ")
    assert expected in warning


def test_a_photo_without_air_at_its_border_warns() -> None:
    rng = np.random.default_rng(1)
    sky = np.linspace(90, 200, 96)[:, None, None] * np.array([0.6, 0.8, 1.0])
    photo = np.clip(sky + rng.normal(0, 20, (96, 128, 3)), 0, 255).astype(np.uint8)
    warning = implausibility(_scan(photo))
    assert "no air at the image border" in warning
    parcel = make_parcel(np.random.default_rng(0), scale=0.15).to_scan("p")
    two = _scan(parcel.views[0], photo)
    assert "view 1: no air" in implausibility(two)
    assert "view 0" not in implausibility(two)
