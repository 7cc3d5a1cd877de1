"""3-D shapes and their analytic path-length maps in a parallel-beam view.

Each shape knows its pose in world millimetres and returns, for a view, the length (mm) of the ray
through it at every pixel of its image bounding box. Rays are parallel to the view's third axis, so
the entry and exit depths along a ray are linear or quadratic in the pixel coordinates: a shape's
:class:`Trace` in a view is its pixel box and the few coefficients of those forms. The trace is
evaluated with numpy (:meth:`Trace.lengths`, broadcast from one row and one column vector) or, when
projecting, by the compiled kernel that adds it straight into the projection's maps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from scipy import ndimage

Footprint = tuple[slice, slice, np.ndarray]
"""Rows and columns of a view that a shape covers, and the path length (mm, float32) there."""

_EPS = 1e-4


@dataclass(frozen=True)
class View:
    """A parallel-beam projection: world → view rotation, origin, pixel pitch and image shape.

    Row ``i`` and column ``j`` of the image lie at view coordinates ``(i·pitch, j·pitch)``; rays run
    along the view's third axis. ``rotation`` rows are the view axes expressed in world coordinates.
    """

    rotation: np.ndarray
    origin: np.ndarray
    pitch: float
    shape: tuple[int, int]

    def to_view(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) in view coordinates (..., 3), mm."""
        return (np.asarray(points, dtype=np.float64) - self.origin) @ self.rotation.T


def rotation(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """Rotation matrix R = Rz(yaw) · Ry(pitch) · Rx(roll), angles in radians."""
    cz, sz = math.cos(yaw), math.sin(yaw)
    cy, sy = math.cos(pitch), math.sin(pitch)
    cx, sx = math.cos(roll), math.sin(roll)
    rz = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]])
    return rz @ ry @ rx


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation drawn uniformly from SO(3)."""
    q = rng.standard_normal(4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


BOX, ELLIPSOID, DISC, SIDE_ON_CYLINDER, CYLINDER, PLATE, EDGE_ON_PLATE, TUBE = range(8)
"""Path-length formulas of a :class:`Trace` (``Trace.kind``); the compiled kernel
(``xadt._kernels.project_traces``) numbers them the same way."""


@dataclass(frozen=True)
class _Frame:
    """A shape's pose seen from one view: its axes in view coordinates, its pixel box, and its
    centre in view coordinates rounded to float32 (as the pixel offsets are computed)."""

    rv: np.ndarray  # columns: the shape's local axes in view coordinates
    rows: slice
    cols: slice
    u: float
    v: float
    pitch: float

    def trace(self, kind: int, coef: tuple[float, ...], array: np.ndarray | None = None) -> Trace:
        """This frame's :class:`Trace` with the formula ``kind`` and its coefficients."""
        return Trace(kind, self.rows, self.cols, self.u, self.v, self.pitch, coef, array)


def _offsets(pixels: slice, centre: float, pitch: float) -> np.ndarray:
    grid = np.arange(pixels.start, pixels.stop, dtype=np.float32)
    return grid * np.float32(pitch) - np.float32(centre)


def _frame(view: View, centre: np.ndarray, rot: np.ndarray, half: np.ndarray) -> _Frame | None:
    c = view.to_view(centre)[:2]
    rv = view.rotation @ rot
    (cu, cv), (eu, ev) = c.tolist(), (np.abs(rv[:2]) @ half).tolist()
    p = view.pitch
    r0 = max(math.floor((cu - eu) / p), 0)
    r1 = min(math.ceil((cu + eu) / p) + 1, view.shape[0])
    c0 = max(math.floor((cv - ev) / p), 0)
    c1 = min(math.ceil((cv + ev) / p) + 1, view.shape[1])
    if r1 <= r0 or c1 <= c0:
        return None
    u, v = c.astype(np.float32).tolist()
    return _Frame(rv, slice(r0, r1), slice(c0, c1), u, v, p)


@dataclass(frozen=True)
class Trace:
    """A shape's footprint in one view, before its path lengths are computed.

    Pixel ``(i, j)`` of the box ``rows`` × ``cols`` lies at ``du = i·pitch − u``,
    ``dv = j·pitch − v`` (mm, float32) from the shape's centre; the path length there follows the
    formula ``kind`` with coefficients ``coef``, mostly through linear forms ``a·du + b·dv``.
    ``array`` is a plate's outline (float32) or a tube's centre-line samples (float64 (N, 7):
    pixel of the box, view position, in-plane direction and sine to the ray of each sample).
    :meth:`lengths` evaluates the formula with numpy; :func:`xadt.synth.render.project` hands
    the trace to the compiled kernel instead, which evaluates the same expressions.
    """

    kind: int
    rows: slice
    cols: slice
    u: float
    v: float
    pitch: float
    coef: tuple[float, ...]
    array: np.ndarray | None = None

    def shape(self) -> tuple[int, int]:
        """Rows and columns of the pixel box."""
        return self.rows.stop - self.rows.start, self.cols.stop - self.cols.start

    def offsets(self) -> tuple[np.ndarray, np.ndarray]:
        """du (h, 1) and dv (1, w): pixel centres minus the shape's centre, mm, float32."""
        du = _offsets(self.rows, self.u, self.pitch)
        return du[:, None], _offsets(self.cols, self.v, self.pitch)[None, :]

    def lin(self, a: float, b: float) -> np.ndarray:
        """a·du + b·dv over the pixel box, float32."""
        du, dv = self.offsets()
        return np.float32(a) * du + np.float32(b) * dv

    def lengths(self) -> np.ndarray:
        """The float32 path length (mm) at each pixel of the box."""
        return _LENGTHS[self.kind](self)


def _box_lengths(t: Trace) -> np.ndarray:
    near = far = inside = None
    for k in range(0, 12, 4):
        a, b, h, parallel = t.coef[k : k + 4]
        mid = t.lin(a, b)
        if parallel:  # a face parallel to the rays: it bounds the footprint, not the depth
            ok = np.abs(mid) <= np.float64(h)
            inside = ok if inside is None else inside & ok
            continue
        h32 = np.float32(h)
        near = mid - h32 if near is None else np.maximum(near, mid - h32)
        far = mid + h32 if far is None else np.minimum(far, mid + h32)
    if near is None or far is None:  # cannot happen for an orthonormal rotation
        return np.zeros(t.shape(), np.float32)
    length = far - near
    np.maximum(length, 0, out=length)
    if inside is not None:
        length *= inside
    return length


def _ellipsoid_lengths(t: Trace) -> np.ndarray:
    qa, qb, qab, ee, scale = (np.float32(x) for x in t.coef[:5])
    du, dv = t.offsets()
    q = qa * du**2 + qb * dv**2 + qab * (du * dv)
    disc = ee - q
    np.maximum(disc, 0, out=disc)
    return np.sqrt(disc) * scale


def _disc_lengths(t: Trace) -> np.ndarray:
    x0, x1, y0, y1, depth = t.coef[:5]
    x, y = t.lin(x0, x1), t.lin(y0, y1)
    return (x * x + y * y <= 1).astype(np.float32) * np.float32(depth)


def _cylinder_lengths(t: Trace) -> np.ndarray:
    k0, k1, ee = t.coef[:3]
    cross = t.lin(k0, k1)
    disc = np.float32(ee) - cross * cross
    np.maximum(disc, 0, out=disc)
    delta = np.sqrt(disc) * np.float32(1 / ee)
    if t.kind == SIDE_ON_CYLINDER:
        z0, z1, h = t.coef[3:6]
        return (2 * delta) * (np.abs(t.lin(z0, z1)) <= np.float64(h))
    t0, t1, m0, m1, hz = t.coef[3:8]
    tc, mz, hz32 = t.lin(t0, t1), t.lin(m0, m1), np.float32(hz)
    length = np.minimum(tc + delta, mz + hz32) - np.maximum(tc - delta, mz - hz32)
    np.maximum(length, 0, out=length)
    return length


def _sample(outline: np.ndarray, coef: tuple[float, ...], shape: tuple[int, int]) -> np.ndarray:
    """``outline`` sampled bilinearly at ``matrix @ (i, j) + offset`` (coef: the 4 entries of
    matrix by rows, then offset), zero outside it."""
    matrix = np.array(coef[:4]).reshape(2, 2)
    return ndimage.affine_transform(
        outline, matrix, coef[4:6], output_shape=shape, order=1, mode="grid-constant"
    )


def _plate_lengths(t: Trace) -> np.ndarray:
    assert t.array is not None
    return _sample(t.array, t.coef, t.shape()) * np.float32(t.coef[6])


def _edge_on_plate_lengths(t: Trace) -> np.ndarray:
    assert t.array is not None
    n = int(t.coef[6])
    op, sa, sb, shift, ca, cb, spread_scale, half, inv_dab = t.coef[7:16]
    profile = _sample(t.array, t.coef, (n, n)).sum(axis=0) * np.float32(op)
    s = t.lin(sa, sb)
    s += np.float32(shift)
    chord = np.interp(s.ravel(), np.arange(n, dtype=np.float32), profile, left=0, right=0)
    chord = chord.reshape(s.shape).astype(np.float32)
    c = t.lin(ca, cb)
    spread = chord * np.float32(spread_scale)
    np.maximum(spread, np.float32(t.pitch / 2), out=spread)
    h = np.float32(half)
    overlap = np.minimum(c + spread, h) - np.maximum(c - spread, -h)
    frac = np.clip(overlap / (2 * spread), 0, 1)
    return chord * np.float32(inv_dab) * frac


def _tube_lengths(t: Trace) -> np.ndarray:
    assert t.array is not None
    cells = t.array[:, :2].astype(np.int64)
    samples, t2, sin_t = t.array[:, 2:4], t.array[:, 4:6], t.array[:, 6]
    p, r = t.pitch, t.coef[0]
    shape = t.shape()
    owner = np.full(shape, -1, dtype=np.int64)
    owner[cells[:, 0], cells[:, 1]] = np.arange(len(cells))
    dist, (ni, nj) = ndimage.distance_transform_edt(owner < 0, return_indices=True)
    near = owner[ni, nj]
    du = (np.arange(t.rows.start, t.rows.stop) * p)[:, None] - samples[near, 0]
    dv = (np.arange(t.cols.start, t.cols.stop) * p)[None, :] - samples[near, 1]
    perp = du * t2[near, 1] - dv * t2[near, 0]
    disc = np.maximum(r * r - perp * perp, 0.0)
    length = 2 * np.sqrt(disc) / np.maximum(sin_t[near], 0.15)
    length[dist * p > r + p] = 0
    # Flat ends: nothing beyond the first and last sample along the centre line.
    along = du * t2[near, 0] + dv * t2[near, 1]
    length[(near == 0) & (along < 0)] = 0
    length[(near == len(cells) - 1) & (along > 0)] = 0
    return length.astype(np.float32)


_LENGTHS = {
    BOX: _box_lengths,
    ELLIPSOID: _ellipsoid_lengths,
    DISC: _disc_lengths,
    SIDE_ON_CYLINDER: _cylinder_lengths,
    CYLINDER: _cylinder_lengths,
    PLATE: _plate_lengths,
    EDGE_ON_PLATE: _edge_on_plate_lengths,
    TUBE: _tube_lengths,
}


def _cross(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``np.cross`` of two 3-vectors (the same products and differences), without its overhead."""
    x0, x1, x2 = x.tolist()
    y0, y1, y2 = y.tolist()
    return np.array([x1 * y2 - x2 * y1, x2 * y0 - x0 * y2, x0 * y1 - x1 * y0])


T = TypeVar("T")


def evolve(obj: T, **changes: Any) -> T:
    """``dataclasses.replace`` for the simulator's frozen dataclasses (none has a
    ``__post_init__`` or init-only fields), without re-running ``__init__``: a shallow copy of
    ``obj`` with ``changes``. Scenes move each part several times, so this is a hot path."""
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__, **changes)
    return new


@dataclass(frozen=True)
class Shape:
    """Base class: a solid with a centre (mm) and a rotation (columns = local axes in world)."""

    centre: np.ndarray
    rot: np.ndarray = field(default_factory=lambda: np.eye(3))

    def half_extents(self) -> np.ndarray:
        """Half sizes of the local bounding box, mm."""
        raise NotImplementedError

    def trace(self, view: View) -> Trace | None:
        """The shape's footprint in ``view`` as a :class:`Trace`; None where it misses the image."""
        raise NotImplementedError

    def footprint(self, view: View) -> Footprint | None:
        """Path length through the shape at each pixel of its bounding box in ``view``."""
        trace = self.trace(view)
        if trace is None:
            return None
        return trace.rows, trace.cols, trace.lengths()

    def moved(self, rot: np.ndarray, offset: np.ndarray) -> Shape:
        """The shape rotated by ``rot`` about the origin, then translated by ``offset``."""
        return evolve(self, centre=rot @ self.centre + offset, rot=rot @ self.rot)


@dataclass(frozen=True)
class Box(Shape):
    """A rectangular block with half sizes ``half`` (mm) along its local axes."""

    half: np.ndarray = field(default_factory=lambda: np.ones(3))

    def half_extents(self) -> np.ndarray:
        return np.asarray(self.half, dtype=np.float64)

    def trace(self, view: View) -> Trace | None:
        half = self.half_extents()
        fr = _frame(view, self.centre, self.rot, half)
        if fr is None:
            return None
        (a, b, d), h = fr.rv.tolist(), half.tolist()
        coef: list[float] = []
        for k in range(3):
            if abs(d[k]) < _EPS:  # a face parallel to the rays: |a·du + b·dv| ≤ h inside
                coef += [a[k], b[k], h[k], 1.0]
            else:  # entry and exit depths mid ∓ h along the ray
                coef += [-a[k] / d[k], -b[k] / d[k], h[k] / abs(d[k]), 0.0]
        return fr.trace(BOX, tuple(coef))


@dataclass(frozen=True)
class Ellipsoid(Shape):
    """An ellipsoid with semi-axes ``half`` (mm) along its local axes."""

    half: np.ndarray = field(default_factory=lambda: np.ones(3))

    def half_extents(self) -> np.ndarray:
        return np.asarray(self.half, dtype=np.float64)

    def trace(self, view: View) -> Trace | None:
        half = self.half_extents()
        fr = _frame(view, self.centre, self.rot, half)
        if fr is None:
            return None
        # In coordinates scaled to the unit sphere the chord is 2·sqrt(|e|² − |q × e|²)/|e|²,
        # with q linear in the pixel offsets, so |q × e|² is a quadratic form in (du, dv).
        a = fr.rv[0] / half
        b = fr.rv[1] / half
        e = fr.rv[2] / half
        ee = float(e @ e)
        ae, be = _cross(a, e), _cross(b, e)
        coef = (float(ae @ ae), float(be @ be), float(2 * (ae @ be)), ee, 2 / ee)
        return fr.trace(ELLIPSOID, coef)


@dataclass(frozen=True)
class Cylinder(Shape):
    """A solid cylinder of ``radius`` (mm) and half-length ``half_length`` along its local z."""

    radius: float = 1.0
    half_length: float = 1.0

    def half_extents(self) -> np.ndarray:
        return np.array([self.radius, self.radius, self.half_length])

    def trace(self, view: View) -> Trace | None:
        fr = _frame(view, self.centre, self.rot, self.half_extents())
        if fr is None:
            return None
        (a, b, d), r, h = fr.rv.tolist(), float(self.radius), float(self.half_length)
        ex, ey, ez = d[0] / r, d[1] / r, d[2]
        ee = ex * ex + ey * ey
        if ee < _EPS**2:  # rays along the axis: a disc of constant depth
            return fr.trace(DISC, (a[0] / r, b[0] / r, a[1] / r, b[1] / r, 2 * h / abs(ez)))
        # Circle in the local xy plane: t in [tc − δ, tc + δ]; caps: t in [mz − hz, mz + hz].
        qx = (a[0] / r, b[0] / r)
        qy = (a[1] / r, b[1] / r)
        circle = (qx[0] * ey - qy[0] * ex, qx[1] * ey - qy[1] * ex, ee)
        if abs(ez) < _EPS:
            return fr.trace(SIDE_ON_CYLINDER, (*circle, a[2], b[2], h))
        tc = (-(qx[0] * ex + qy[0] * ey) / ee, -(qx[1] * ex + qy[1] * ey) / ee)
        caps = (-a[2] / ez, -b[2] / ez, h / abs(ez))
        return fr.trace(CYLINDER, (*circle, *tc, *caps))


@dataclass(frozen=True)
class Plate(Shape):
    """A flat extrusion: a 2-D outline (coverage in [0, 1]) in the local xy plane, ``thickness``
    along local z.

    ``outline`` is sampled every ``outline_pitch`` mm and centred on the shape's centre. Seen
    within ~50° of its normal the plate is the outline mapped onto the image; seen closer to
    edge-on it is a strip whose depth is the outline's chord along the ray.
    """

    outline: np.ndarray = field(default_factory=lambda: np.ones((1, 1), np.float32))
    outline_pitch: float = 1.0
    thickness: float = 1.0

    def half_extents(self) -> np.ndarray:
        h, w = self.outline.shape
        return np.array(
            [w * self.outline_pitch / 2, h * self.outline_pitch / 2, self.thickness / 2]
        )

    def trace(self, view: View) -> Trace | None:
        half = self.half_extents()
        fr = _frame(view, self.centre, self.rot, half + view.pitch)
        if fr is None:
            return None
        rv, d = fr.rv, fr.rv[2]
        op = self.outline_pitch
        oh, ow = self.outline.shape
        if abs(d[2]) >= 0.6:
            # Where a ray crosses the mid-plane, in outline pixel units (row = local y, col = x):
            # the outline sampled bilinearly at matrix @ (i, j) + offset, zero outside it.
            m = np.array(
                [
                    [rv[0, 1] - d[1] * rv[0, 2] / d[2], rv[1, 1] - d[1] * rv[1, 2] / d[2]],
                    [rv[0, 0] - d[0] * rv[0, 2] / d[2], rv[1, 0] - d[0] * rv[1, 2] / d[2]],
                ]
            )
            start = np.array(
                [_offsets(fr.rows, fr.u, fr.pitch)[0], _offsets(fr.cols, fr.v, fr.pitch)[0]],
                dtype=np.float64,
            )
            matrix = m * (view.pitch / op)
            offset = m @ start / op + np.array([oh / 2 - 0.5, ow / 2 - 0.5])
            depth = float(self.thickness / abs(d[2]))
            coef = (*matrix.ravel().tolist(), *offset.tolist(), depth)
            return fr.trace(PLATE, coef, np.asarray(self.outline, dtype=np.float32))
        # Edge-on: chord of the outline along the in-plane ray direction, as a profile across it
        # (the outline sampled on a grid turned so that its axis 0 runs along the ray, summed).
        dab = math.hypot(d[0], d[1])
        ux, uy = d[0] / dab, d[1] / dab
        n = math.ceil(math.hypot(oh, ow)) + 2
        mat = np.array([[ux, -uy], [uy, ux]])[::-1]  # rows: (y, x) of outline per (along, across)
        centre_out = np.array([n / 2 - 0.5, n / 2 - 0.5])
        offset = np.array([oh / 2 - 0.5, ow / 2 - 0.5]) - mat @ centre_out
        # Each image pixel's across-ray coordinate s (outline pixels, from the profile's start)
        # reads its chord; c (mm) is its height where the ray is level with the outline's centre
        # line (the pixel's own height at the ray's closest approach to the centre, over dab²).
        # The ray crosses heights c ± spread inside the outline, spread at least half a pixel so
        # the strip's edges are anti-aliased; its share inside the plate scales the depth.
        coef = (
            *mat.ravel().tolist(),
            *offset.tolist(),
            n,
            op,
            (-uy * rv[0, 0] + ux * rv[0, 1]) / op,
            (-uy * rv[1, 0] + ux * rv[1, 1]) / op,
            n / 2 - 0.5,
            rv[0, 2] / dab**2,
            rv[1, 2] / dab**2,
            abs(d[2]) / (2 * dab),
            self.thickness / 2,
            1 / dab,
        )
        outline = np.asarray(self.outline, dtype=np.float32)
        return fr.trace(EDGE_ON_PLATE, tuple(float(x) for x in coef), outline)


@dataclass(frozen=True)
class Tube(Shape):
    """A thin tube of ``radius`` (mm) along a polyline ``points`` (N, 3) given in local coordinates.

    Used for wires, cables, rings and handles: at each pixel the depth is the chord of a circle
    at the pixel's distance from the projected centre line, divided by the sine of the angle
    between the tube and the ray.
    """

    points: np.ndarray = field(default_factory=lambda: np.zeros((2, 3)))
    radius: float = 1.0

    def half_extents(self) -> np.ndarray:
        return np.abs(self.points).max(axis=0) + self.radius

    def trace(self, view: View) -> Trace | None:
        pts = view.to_view(self.centre + self.points @ self.rot.T)
        p, r = view.pitch, self.radius
        lo = np.floor((pts[:, :2].min(axis=0) - r) / p - 1).astype(int)
        hi = np.ceil((pts[:, :2].max(axis=0) + r) / p + 2).astype(int)
        lo = np.maximum(lo, 0)
        hi = np.minimum(hi, view.shape)
        if np.any(hi <= lo):
            return None
        # Resample the centre line every ~0.3 px, with the unit tangent of each sample.
        seg = np.diff(pts, axis=0)
        seg_len = np.linalg.norm(seg, axis=1)
        keep = seg_len > 1e-9
        seg, seg_len, starts = seg[keep], seg_len[keep], pts[:-1][keep]
        if len(seg) == 0:
            return None
        counts = np.maximum(np.ceil(seg_len / (0.3 * p)).astype(int), 1)
        idx = np.repeat(np.arange(len(seg)), counts)
        frac = (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)) / counts[
            idx
        ]
        samples = starts[idx] + seg[idx] * frac[:, None]
        tangent = seg[idx] / seg_len[idx, None]
        sin_t = np.hypot(tangent[:, 0], tangent[:, 1])
        t2 = tangent[:, :2] / np.maximum(sin_t, 1e-6)[:, None]
        grid = samples[:, :2] / p - lo
        gi = np.rint(grid).astype(int)
        shape = (int(hi[0] - lo[0]), int(hi[1] - lo[1]))
        ok = (gi[:, 0] >= 0) & (gi[:, 0] < shape[0]) & (gi[:, 1] >= 0) & (gi[:, 1] < shape[1])
        if not ok.any():
            return None
        table = np.column_stack([gi, samples[:, :2], t2, sin_t])[ok]
        rows, cols = slice(int(lo[0]), int(hi[0])), slice(int(lo[1]), int(hi[1]))
        return Trace(TUBE, rows, cols, 0.0, 0.0, p, (float(r),), table)


def hollow(outer: Shape, inner: Shape) -> tuple[Shape, Shape]:
    """An outer solid and the cavity to subtract from it (render the cavity with weight −1)."""
    return outer, inner
