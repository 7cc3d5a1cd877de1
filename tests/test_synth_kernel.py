"""The compiled projection, scatter-veil and photon-noise kernels against the numpy references of
``project``, ``scatter_veil`` and ``expose``, and their errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xadt import _kernels
from xadt.synth import render
from xadt.synth.materials import MATERIALS
from xadt.synth.parts import TEXTURE_KINDS, Part
from xadt.synth.render import _normal_quantiles, _texture_bank, expose, project, scatter_veil
from xadt.synth.shapes import (
    BOX,
    CYLINDER,
    DISC,
    EDGE_ON_PLATE,
    ELLIPSOID,
    PLATE,
    SIDE_ON_CYLINDER,
    TUBE,
    Box,
    Cylinder,
    Ellipsoid,
    Plate,
    Shape,
    Tube,
    View,
    random_rotation,
    rotation,
)

# Path lengths to float32 rounding: rtol 1e-4, atol 1e-3 mm (times the material's coefficient).
RTOL, ATOL_MM = 1e-4, 1e-3
QUARTER = st.sampled_from([0.0, math.pi / 2, math.pi, -math.pi / 2])  # faces parallel to rays
ANGLE = st.one_of(QUARTER, st.floats(-math.pi, math.pi))
MATERIALS_USED = ["steel", "water", "nylon", "aluminium"]


def _view(shape: tuple[int, int], pitch: float) -> View:
    rot = np.array([[0.0, 1, 0], [1, 0, 0], [0, 0, -1]])  # rows = y, cols = x, rays down z
    return View(rot, np.zeros(3), pitch, shape)


@st.composite
def shapes(draw: st.DrawFn) -> Shape:
    centre = np.array([draw(st.floats(-20, 140)) for _ in range(2)] + [draw(st.floats(-50, 50))])
    if draw(st.booleans()):
        rot = rotation(draw(ANGLE), draw(ANGLE), draw(ANGLE))
    else:
        rot = random_rotation(np.random.default_rng(draw(st.integers(0, 2**32 - 1))))
    size = st.floats(0.3, 60)
    kind = draw(st.sampled_from(["box", "ellipsoid", "cylinder", "plate", "tube"]))
    if kind == "box":
        return Box(centre, rot, np.array([draw(size) for _ in range(3)]))
    if kind == "ellipsoid":
        return Ellipsoid(centre, rot, np.array([draw(size) for _ in range(3)]))
    if kind == "cylinder":
        return Cylinder(centre, rot, draw(size), draw(size))
    if kind == "plate":
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
        outline = rng.random((h, w)).astype(np.float32) * (rng.random((h, w)) > 0.3)
        return Plate(centre, rot, outline, draw(st.floats(0.5, 3)), draw(st.floats(0.3, 20)))
    n = draw(st.integers(2, 5))
    points = np.array([[draw(st.floats(-40, 40)) for _ in range(3)] for _ in range(n)])
    return Tube(centre, rot, points, draw(st.floats(0.3, 8)))


@st.composite
def parts(draw: st.DrawFn) -> Part:
    texture = None
    if draw(st.booleans()):
        texture = (
            draw(st.integers(0, len(TEXTURE_KINDS) - 1)),
            draw(st.floats(0, 1.5)),
            draw(st.integers(0, 511)),
            draw(st.integers(0, 511)),
        )
    return Part(
        draw(shapes()),
        MATERIALS[draw(st.sampled_from(MATERIALS_USED))],
        draw(st.sampled_from([1.0, 1.0, -1.0])),
        texture,
        draw(st.booleans()),
    )


def _assert_close(fast: render.Projection, slow: render.Projection) -> None:
    # The basis coefficients are up to ~0.1/mm (Compton) and ~4e4/mm·keV³ (photo): scale the
    # tolerance in mm by the largest map value per mm of the reference.
    for name in ("compton", "photo", "threat"):
        a, b = getattr(fast, name), getattr(slow, name)
        per_mm = max(abs(float(c)) for c in _coefficients(name))
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL_MM * per_mm, err_msg=name)


def _coefficients(name: str) -> list[float]:
    basis = [render._basis(MATERIALS[m].z, MATERIALS[m].rho) for m in MATERIALS_USED]
    kn, inv = render.klein_nishina(render.E_HIGH), 1 / render.E_HIGH**3
    if name == "compton":
        return [c for c, _ in basis]
    if name == "photo":
        return [p for _, p in basis]
    return [c * kn + p * inv for c, p in basis]


@settings(max_examples=300, deadline=None)
@given(
    shape=shapes(),
    pitch=st.sampled_from([1.0, 0.5, 1 / 0.3, 5.0, 0.8]),
    size=st.tuples(st.integers(1, 150), st.integers(1, 150)),
)
def test_kernel_matches_the_reference_footprint(
    shape: Shape, pitch: float, size: tuple[int, int]
) -> None:
    view = _view(size, pitch)
    part = Part(shape, MATERIALS["water"])
    _assert_close(project([part], view, kernel=True), project([part], view, kernel=False))


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(parts(), min_size=1, max_size=8),
    pitch=st.sampled_from([1.0, 0.5, 1 / 0.3, 4.0]),
    size=st.tuples(st.integers(1, 160), st.integers(1, 160)),
    source_mm=st.sampled_from([None, 300.0, 900.0, 30.0]),
)
def test_kernel_matches_the_reference_projection(
    items: list[Part], pitch: float, size: tuple[int, int], source_mm: float | None
) -> None:
    # Textures, cavities, threats and the fan beam's row magnification, several parts overlapping.
    view = _view(size, pitch)
    fast = project(items, view, source_mm, kernel=True)
    _assert_close(fast, project(items, view, source_mm, kernel=False))


def test_every_trace_kind_is_drawn() -> None:
    # The strategies above reach each formula; this pins that the poses they rely on exist.
    view = _view((64, 64), 1.0)
    c = np.array([32.0, 32.0, 0.0])
    kinds = {
        BOX: Box(c, rotation(0.3, 0.4, 0.5), np.full(3, 5.0)),
        ELLIPSOID: Ellipsoid(c, rotation(0.3), np.full(3, 5.0)),
        DISC: Cylinder(c, np.eye(3), 5.0, 5.0),
        SIDE_ON_CYLINDER: Cylinder(c, rotation(pitch=math.pi / 2), 5.0, 5.0),
        CYLINDER: Cylinder(c, rotation(0.3, 0.4), 5.0, 5.0),
        PLATE: Plate(c, np.eye(3), np.ones((4, 4), np.float32)),
        EDGE_ON_PLATE: Plate(c, rotation(roll=math.pi / 2), np.ones((4, 4), np.float32)),
        TUBE: Tube(c, np.eye(3), np.array([[-5.0, 0, 0], [5, 0, 0], [5, 5, 0]]), 2.0),
    }
    for kind, shape in kinds.items():
        trace = shape.trace(view)
        assert trace is not None
        assert trace.kind == kind
        part = Part(shape, MATERIALS["steel"], texture=(2, 0.5, 3, 7), threat=True)
        _assert_close(project([part], view, kernel=True), project([part], view, kernel=False))


def _maps(shape: tuple[int, int] = (8, 8)) -> list[np.ndarray]:
    return [np.zeros(shape, np.float32) for _ in range(3)]


def _records(**fields: float) -> np.ndarray:
    record = np.zeros((1, 33))
    record[0, :5] = [BOX, 0, 4, 0, 4]
    record[0, 7] = 1.0  # pitch
    record[0, 8:20] = [1, 0, 1, 0] * 3  # 2 mm deep
    record[0, 24] = -1  # no array
    record[0, 25] = 1.0  # Compton coefficient
    record[0, 28] = -1  # no texture
    names = {"kind": 0, "row1": 2, "n": 14, "array": 24, "texture": 28, "magnification": 32}
    for name, value in fields.items():
        record[0, names[name]] = value
    return record


@pytest.mark.parametrize(
    ("fields", "arrays", "message"),
    [
        ({"kind": 9}, [], "unknown kind 9"),
        ({"kind": 0.5}, [], "kind must be a whole number"),
        ({"row1": 9}, [], "pixel box outside the maps"),
        ({"row1": 0}, [], "or empty"),
        ({"kind": TUBE}, [], "array index out of range"),
        ({"kind": TUBE, "array": 0}, [np.zeros((1, 7), np.float32)], "must be float64 \\(N >= 1"),
        ({"kind": TUBE, "array": 0}, [np.full((1, 7), 4.0)], "sample 0 lies outside"),
        ({"kind": PLATE, "array": 0}, [np.ones((2, 2))], "outline must be float32"),
        ({"kind": EDGE_ON_PLATE, "array": 0, "n": 1}, [np.ones((2, 2), np.float32)], "profile"),
        ({"texture": 7}, [], "texture kind out of range"),
        ({"magnification": -1}, [], "magnification must be >= 0"),
        ({"magnification": math.nan}, [], "is not finite"),
    ],
)
def test_kernel_rejects_bad_records(
    fields: dict[str, float], arrays: list[np.ndarray], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _kernels.project_traces(*_maps(), _records(**fields), arrays, _texture_bank())


def test_kernel_rejects_bad_arrays() -> None:
    bank = _texture_bank()
    with pytest.raises(ValueError, match="compton, photo and threat differ"):
        _kernels.project_traces(*_maps()[:2], np.zeros((8, 9), np.float32), _records(), [], bank)
    with pytest.raises(ValueError, match="photo must be a writeable C-contiguous float32"):
        _kernels.project_traces(_maps()[0], np.zeros((8, 8)), _maps()[0], _records(), [], bank)
    with pytest.raises(ValueError, match="records must be a C-contiguous float64"):
        _kernels.project_traces(*_maps(), np.zeros((1, 29)), [], bank)
    with pytest.raises(ValueError, match="bank must be"):
        _kernels.project_traces(*_maps(), _records(), [], bank[0])
    with pytest.raises(ValueError, match="arrays must hold"):
        _kernels.project_traces(*_maps(), _records(), [np.zeros((2, 2), np.int64)], bank)
    maps = _maps()
    _kernels.project_traces(*maps, _records(), [], bank)  # 2 mm deep over rows and columns 0-3
    expected = np.zeros((8, 8), np.float32)
    expected[:4, :4] = 2
    np.testing.assert_array_equal(maps[0], expected)
    assert not maps[1].any()
    assert not maps[2].any()


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    photons=st.floats(1.0, 1e6),
    blur=st.sampled_from([0.0, 1.5]),
    gain=st.booleans(),
    size=st.tuples(st.integers(1, 40), st.integers(1, 40)),
)
def test_expose_kernel_gives_the_reference_bits(
    seed: int, photons: float, blur: float, gain: bool, size: tuple[int, int]
) -> None:
    # Down to a few photons, so that some pixels take the exact Poisson draws.
    rng = np.random.default_rng(seed)
    t = np.exp(-rng.uniform(0, 14, size)).astype(np.float32)
    g = 1 + 0.01 * rng.standard_normal(size[0]) if gain else None
    fast = expose(t, photons, np.random.default_rng(seed), blur, g, kernel=True)
    slow = expose(t, photons, np.random.default_rng(seed), blur, g, kernel=False)
    np.testing.assert_array_equal(fast, slow)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    sigma=st.floats(0.5, 40),
    size=st.tuples(st.integers(1, 90), st.integers(1, 90)),
)
def test_scatter_veil_kernel_gives_the_reference_bits(
    seed: int, sigma: float, size: tuple[int, int]
) -> None:
    t = np.random.default_rng(seed).random(size).astype(np.float32)
    fast = scatter_veil(t, 0.05, sigma, kernel=True)
    np.testing.assert_array_equal(fast, scatter_veil(t, 0.05, sigma, kernel=False))


def test_add_veil_rejects_bad_arguments() -> None:
    t = np.ones((5, 7), np.float32)
    with pytest.raises(ValueError, match="t must be a C-contiguous float32"):
        _kernels.add_veil(t[:, ::2], np.ones((3, 2), np.float32), 2)
    with pytest.raises(ValueError, match="veil must be a C-contiguous float32"):
        _kernels.add_veil(t, np.ones((3, 4)), 2)
    with pytest.raises(ValueError, match="veil must be t subsampled every step"):
        _kernels.add_veil(t, np.ones((3, 3), np.float32), 2)
    with pytest.raises(ValueError, match="step >= 1"):
        _kernels.add_veil(t, np.ones((5, 7), np.float32), 0)
    veiled = _kernels.add_veil(np.zeros((5, 7), np.float32), np.ones((3, 4), np.float32), 2)
    np.testing.assert_array_equal(veiled, np.ones((5, 7), np.float32))


def test_photon_noise_rejects_bad_arguments() -> None:
    t, q = np.ones((2, 3), np.float32), _normal_quantiles()
    bits = np.zeros(6, np.uint16)
    with pytest.raises(ValueError, match="t must be a C-contiguous float32"):
        _kernels.photon_noise(t.astype(np.float64), 10.0, bits, q)
    with pytest.raises(ValueError, match="bits must be a contiguous uint16 array of 6 values"):
        _kernels.photon_noise(t, 10.0, bits[:5], q)
    with pytest.raises(ValueError, match="quantiles must be"):
        _kernels.photon_noise(t, 10.0, bits, q[:10])
    with pytest.raises(ValueError, match="photons must be finite and > 0"):
        _kernels.photon_noise(t, 0.0, bits, q)
    noisy, few = _kernels.photon_noise(t, 1e4, bits, q)  # the lowest quantile: -4.3 SD
    np.testing.assert_allclose(noisy, 1 + q[0] / 100, rtol=1e-6)
    assert not few


def test_kernels_are_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    part = Part(Box(np.array([8.0, 8.0, 0.0]), np.eye(3), np.full(3, 3.0)), MATERIALS["steel"])
    view = _view((16, 16), 1.0)
    expected = project([part], view, kernel=False)
    t = np.full((4, 4), 0.5, np.float32)
    noisy = expose(t, 100.0, np.random.default_rng(0), 0.0, kernel=False)
    veiled = scatter_veil(t, 0.05, 8.0, kernel=False)
    monkeypatch.setattr(render, "_kernels", None)
    _assert_close(project([part], view), expected)
    np.testing.assert_array_equal(expose(t, 100.0, np.random.default_rng(0), 0.0), noisy)
    np.testing.assert_array_equal(scatter_veil(t, 0.05, 8.0), veiled)
    with pytest.raises(RuntimeError, match=r"project: kernel=True but .*xadt\._kernels"):
        project([part], view, kernel=True)
    with pytest.raises(RuntimeError, match=r"expose: kernel=True but"):
        expose(t, 100.0, np.random.default_rng(0), 0.0, kernel=True)
