"""3-D shapes and their analytic path-length maps in a parallel-beam view.

Each shape knows its pose in world millimetres and returns, for a view, the length (mm) of the ray
through it at every pixel of its image bounding box. The maps are computed with numpy over that box
only: rays are parallel to the view's third axis, so the entry and exit depths along a ray are
linear or quadratic in the pixel coordinates and broadcast from one row and one column vector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

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


@dataclass(frozen=True)
class _Frame:
    """A shape's pose seen from one view: centre and axes in view coordinates, and its pixel box."""

    rv: np.ndarray  # columns: the shape's local axes in view coordinates
    rows: slice
    cols: slice
    du: np.ndarray  # (h, 1) float32, row-pixel centres minus the shape centre, mm
    dv: np.ndarray  # (1, w) float32


def _frame(view: View, centre: np.ndarray, rot: np.ndarray, half: np.ndarray) -> _Frame | None:
    c = view.to_view(centre)
    rv = view.rotation @ rot
    ext = np.abs(rv[:2]) @ half
    p = view.pitch
    r0 = max(math.floor((c[0] - ext[0]) / p), 0)
    r1 = min(math.ceil((c[0] + ext[0]) / p) + 1, view.shape[0])
    c0 = max(math.floor((c[1] - ext[1]) / p), 0)
    c1 = min(math.ceil((c[1] + ext[1]) / p) + 1, view.shape[1])
    if r1 <= r0 or c1 <= c0:
        return None
    du = (np.arange(r0, r1, dtype=np.float32) * np.float32(p) - np.float32(c[0]))[:, None]
    dv = (np.arange(c0, c1, dtype=np.float32) * np.float32(p) - np.float32(c[1]))[None, :]
    return _Frame(rv, slice(r0, r1), slice(c0, c1), du, dv)


def _lin(a: float, b: float, fr: _Frame) -> np.ndarray:
    """a·du + b·dv over the frame's pixel box, float32."""
    return np.float32(a) * fr.du + np.float32(b) * fr.dv


@dataclass(frozen=True)
class Shape:
    """Base class: a solid with a centre (mm) and a rotation (columns = local axes in world)."""

    centre: np.ndarray
    rot: np.ndarray = field(default_factory=lambda: np.eye(3))

    def half_extents(self) -> np.ndarray:
        """Half sizes of the local bounding box, mm."""
        raise NotImplementedError

    def footprint(self, view: View) -> Footprint | None:
        """Path length through the shape at each pixel of its bounding box in ``view``."""
        raise NotImplementedError

    def moved(self, rot: np.ndarray, offset: np.ndarray) -> Shape:
        """The shape rotated by ``rot`` about the origin, then translated by ``offset``."""
        return replace(self, centre=rot @ self.centre + offset, rot=rot @ self.rot)


@dataclass(frozen=True)
class Box(Shape):
    """A rectangular block with half sizes ``half`` (mm) along its local axes."""

    half: np.ndarray = field(default_factory=lambda: np.ones(3))

    def half_extents(self) -> np.ndarray:
        return np.asarray(self.half, dtype=np.float64)

    def footprint(self, view: View) -> Footprint | None:
        half = self.half_extents()
        fr = _frame(view, self.centre, self.rot, half)
        if fr is None:
            return None
        rv = fr.rv
        near = far = inside = None
        for k in range(3):
            d = rv[2, k]
            if abs(d) < _EPS:
                # A face parallel to the rays: it bounds the footprint, not the depth.
                ok = np.abs(_lin(rv[0, k], rv[1, k], fr)) <= half[k]
                inside = ok if inside is None else inside & ok
                continue
            mid = _lin(-rv[0, k] / d, -rv[1, k] / d, fr)
            h = np.float32(half[k] / abs(d))
            near = mid - h if near is None else np.maximum(near, mid - h)
            far = mid + h if far is None else np.minimum(far, mid + h)
        if near is None or far is None:  # cannot happen for an orthonormal rv
            return None
        length = far - near
        np.maximum(length, 0, out=length)
        if inside is not None:
            length *= inside
        return fr.rows, fr.cols, length


@dataclass(frozen=True)
class Ellipsoid(Shape):
    """An ellipsoid with semi-axes ``half`` (mm) along its local axes."""

    half: np.ndarray = field(default_factory=lambda: np.ones(3))

    def half_extents(self) -> np.ndarray:
        return np.asarray(self.half, dtype=np.float64)

    def footprint(self, view: View) -> Footprint | None:
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
        ae, be = np.cross(a, e), np.cross(b, e)
        q = (
            np.float32(ae @ ae) * fr.du**2
            + np.float32(be @ be) * fr.dv**2
            + np.float32(2 * (ae @ be)) * (fr.du * fr.dv)
        )
        disc = np.float32(ee) - q
        np.maximum(disc, 0, out=disc)
        return fr.rows, fr.cols, np.sqrt(disc) * np.float32(2 / ee)


@dataclass(frozen=True)
class Cylinder(Shape):
    """A solid cylinder of ``radius`` (mm) and half-length ``half_length`` along its local z."""

    radius: float = 1.0
    half_length: float = 1.0

    def half_extents(self) -> np.ndarray:
        return np.array([self.radius, self.radius, self.half_length])

    def footprint(self, view: View) -> Footprint | None:
        fr = _frame(view, self.centre, self.rot, self.half_extents())
        if fr is None:
            return None
        rv, r, h = fr.rv, self.radius, self.half_length
        ex, ey, ez = rv[2] / np.array([r, r, 1.0])
        ee = ex * ex + ey * ey
        if ee < _EPS**2:  # rays along the axis: a disc of constant depth
            x = _lin(rv[0, 0] / r, rv[1, 0] / r, fr)
            y = _lin(rv[0, 1] / r, rv[1, 1] / r, fr)
            length = (x * x + y * y <= 1).astype(np.float32) * np.float32(2 * h / abs(ez))
            return fr.rows, fr.cols, length
        # Circle in the local xy plane: t in [tc − δ, tc + δ]; caps: t in [mz − hz, mz + hz].
        qx = (rv[0, 0] / r, rv[1, 0] / r)
        qy = (rv[0, 1] / r, rv[1, 1] / r)
        cross = _lin(qx[0] * ey - qy[0] * ex, qx[1] * ey - qy[1] * ex, fr)
        disc = np.float32(ee) - cross * cross
        np.maximum(disc, 0, out=disc)
        delta = np.sqrt(disc) * np.float32(1 / ee)
        if abs(ez) < _EPS:
            inside = np.abs(_lin(rv[0, 2], rv[1, 2], fr)) <= h
            return fr.rows, fr.cols, (2 * delta) * inside
        tc = _lin(-(qx[0] * ex + qy[0] * ey) / ee, -(qx[1] * ex + qy[1] * ey) / ee, fr)
        mz = _lin(-rv[0, 2] / ez, -rv[1, 2] / ez, fr)
        hz = np.float32(h / abs(ez))
        length = np.minimum(tc + delta, mz + hz) - np.maximum(tc - delta, mz - hz)
        np.maximum(length, 0, out=length)
        return fr.rows, fr.cols, length


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

    def footprint(self, view: View) -> Footprint | None:
        half = self.half_extents()
        fr = _frame(view, self.centre, self.rot, half + view.pitch)
        if fr is None:
            return None
        rv, d = fr.rv, fr.rv[2]
        op = self.outline_pitch
        oh, ow = self.outline.shape
        if abs(d[2]) >= 0.6:
            # Where a ray crosses the mid-plane, in outline pixel units (row = local y, col = x).
            m = np.array(
                [
                    [rv[0, 1] - d[1] * rv[0, 2] / d[2], rv[1, 1] - d[1] * rv[1, 2] / d[2]],
                    [rv[0, 0] - d[0] * rv[0, 2] / d[2], rv[1, 0] - d[0] * rv[1, 2] / d[2]],
                ]
            )
            p = view.pitch
            start = np.array([float(fr.du[0, 0]), float(fr.dv[0, 0])])
            matrix = m * (p / op)
            offset = m @ start / op + np.array([oh / 2 - 0.5, ow / 2 - 0.5])
            shape = (fr.du.shape[0], fr.dv.shape[1])
            cover = ndimage.affine_transform(
                self.outline, matrix, offset, output_shape=shape, order=1, mode="grid-constant"
            )
            return fr.rows, fr.cols, cover * np.float32(self.thickness / abs(d[2]))
        # Edge-on: chord of the outline along the in-plane ray direction, as a profile across it.
        dab = math.hypot(d[0], d[1])
        ux, uy = d[0] / dab, d[1] / dab
        diag = math.hypot(oh, ow)
        n = math.ceil(diag) + 2
        # Sample the outline on a grid rotated so that axis 0 runs along the ray.
        mat = np.array([[ux, -uy], [uy, ux]])[::-1]  # rows: (y, x) of outline per (along, across)
        centre_out = np.array([n / 2 - 0.5, n / 2 - 0.5])
        offset = np.array([oh / 2 - 0.5, ow / 2 - 0.5]) - mat @ centre_out
        rotated = ndimage.affine_transform(
            self.outline, mat, offset, output_shape=(n, n), order=1, mode="grid-constant"
        )
        profile = rotated.sum(axis=0) * np.float32(op)
        # Across-ray coordinate s (outline pixels) and height c (mm) of each image pixel.
        s = _lin((-uy * rv[0, 0] + ux * rv[0, 1]) / op, (-uy * rv[1, 0] + ux * rv[1, 1]) / op, fr)
        s += np.float32(n / 2 - 0.5)
        chord = np.interp(s.ravel(), np.arange(n, dtype=np.float32), profile, left=0, right=0)
        chord = chord.reshape(s.shape).astype(np.float32)
        # Height where the ray is level with the outline's centre line: the pixel's own
        # height (at the ray's closest approach to the centre) divided by dab².
        c = _lin(rv[0, 2] / dab**2, rv[1, 2] / dab**2, fr)
        # The ray crosses heights c ± spread inside the outline; at least a pixel's worth, so
        # the strip's edges are anti-aliased. Its share inside the plate scales the depth.
        spread = chord * np.float32(abs(d[2]) / (2 * dab))
        np.maximum(spread, np.float32(view.pitch / 2), out=spread)
        h = np.float32(self.thickness / 2)
        overlap = np.minimum(c + spread, h) - np.maximum(c - spread, -h)
        frac = np.clip(overlap / (2 * spread), 0, 1)
        return fr.rows, fr.cols, chord * np.float32(1 / dab) * frac


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

    def footprint(self, view: View) -> Footprint | None:
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
        gi, samples, t2, sin_t = gi[ok], samples[ok], t2[ok], sin_t[ok]
        owner = np.full(shape, -1, dtype=np.int64)
        owner[gi[:, 0], gi[:, 1]] = np.arange(len(gi))
        dist, (ni, nj) = ndimage.distance_transform_edt(owner < 0, return_indices=True)
        near = owner[ni, nj]
        rows = (np.arange(shape[0]) + lo[0]) * p
        cols = (np.arange(shape[1]) + lo[1]) * p
        du = rows[:, None] - samples[near, 0]
        dv = cols[None, :] - samples[near, 1]
        perp = du * t2[near, 1] - dv * t2[near, 0]
        disc = np.maximum(r * r - perp * perp, 0.0)
        length = 2 * np.sqrt(disc) / np.maximum(sin_t[near], 0.15)
        length[dist * p > r + p] = 0
        # Flat ends: nothing beyond the first and last sample along the centre line.
        along = du * t2[near, 0] + dv * t2[near, 1]
        length[(near == 0) & (along < 0)] = 0
        length[(near == len(gi) - 1) & (along > 0)] = 0
        return slice(lo[0], hi[0]), slice(lo[1], hi[1]), length.astype(np.float32)


def hollow(outer: Shape, inner: Shape) -> tuple[Shape, Shape]:
    """An outer solid and the cavity to subtract from it (render the cavity with weight −1)."""
    return outer, inner
