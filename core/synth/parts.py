"""Parts and items: a shape with a material, grouped into the objects a parcel holds.

Item generators build parts in the item's own frame (x along its length, z along its thinnest
side, so that the identity pose is "lying flat"); :func:`place` moves them into the parcel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from xadt.synth.materials import MATERIALS, Material
from xadt.synth.shapes import Box, Cylinder, Ellipsoid, Plate, Shape, Tube, evolve, rotation

ALONG_X = rotation(pitch=math.pi / 2)
"""Rotation that turns a shape's local z axis (a cylinder's axis) onto x."""
ALONG_Y = rotation(roll=-math.pi / 2)
"""Rotation that turns a shape's local z axis onto y."""

TEXTURE_KINDS = ("blotch", "grain", "wrinkle", "bubbles", "weave", "flutes", "lines")
"""Texture patterns that modulate a part's path length (index into this tuple)."""

Texture = tuple[int, float, int, int]
"""(kind index, amplitude, row offset, column offset) of a texture pattern."""


@dataclass(frozen=True)
class Part:
    """One shape of one material. ``sign`` −1 makes it a cavity cut out of the part it lies in.

    ``texture`` is ``(kind, amplitude, row offset, column offset)``: the path length is multiplied
    by ``1 + amplitude · pattern``, a zero-mean pattern from :data:`TEXTURE_KINDS`.
    """

    shape: Shape
    material: Material
    sign: float = 1.0
    texture: Texture | None = None
    threat: bool = False


@dataclass
class Item:
    """A named object of one catalogue category, made of parts (parcel coordinates once placed)."""

    name: str
    category: str
    parts: list[Part] = field(default_factory=list)
    threat: bool = False

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned (low, high) corners of the item's solid parts, mm."""
        lo = np.full(3, np.inf)
        hi = np.full(3, -np.inf)
        for part in self.parts:
            if part.sign < 0:
                continue
            s = part.shape
            ext = np.abs(s.rot) @ s.half_extents()
            lo = np.minimum(lo, s.centre - ext)
            hi = np.maximum(hi, s.centre + ext)
        return lo, hi

    def moved(self, rot: np.ndarray, offset: np.ndarray) -> Item:
        """The item rotated about its own origin by ``rot`` and shifted by ``offset``."""
        parts = [evolve(p, shape=p.shape.moved(rot, offset)) for p in self.parts]
        return Item(self.name, self.category, parts, self.threat)

    def centred(self) -> Item:
        """The item shifted so that its bounding box is centred on the origin."""
        lo, hi = self.bounds()
        return self.moved(np.eye(3), -(lo + hi) / 2)

    def as_threat(self) -> Item:
        """The item with every part flagged as threat (for the ground-truth mask)."""
        return Item(self.name, self.category, [replace(p, threat=True) for p in self.parts], True)


def mat(name: str, rng: np.random.Generator | None = None, spread: float = 0.0) -> Material:
    """A catalogue material, its density jittered by ±``spread`` (relative) given ``rng``."""
    m = MATERIALS[name]
    if rng is None or spread == 0.0:
        return m
    return m.with_density(m.rho * float(rng.uniform(1 - spread, 1 + spread)))


def _v(x: float, y: float, z: float) -> np.ndarray:
    return np.array([x, y, z], dtype=np.float64)


def texture(rng: np.random.Generator, kind: str, amplitude: float) -> Texture:
    """A texture spec with a random placement of the pattern."""
    return (TEXTURE_KINDS.index(kind), amplitude, int(rng.integers(512)), int(rng.integers(512)))


def box(
    centre: tuple[float, float, float],
    size: tuple[float, float, float],
    material: Material,
    rot: np.ndarray | None = None,
    *,
    sign: float = 1.0,
    texture: Texture | None = None,
) -> Part:
    """A block of full ``size`` (mm) at ``centre``."""
    shape = Box(_v(*centre), np.eye(3) if rot is None else rot, np.asarray(size, float) / 2)
    return Part(shape, material, sign, texture)


def ellipsoid(
    centre: tuple[float, float, float],
    size: tuple[float, float, float],
    material: Material,
    rot: np.ndarray | None = None,
    *,
    sign: float = 1.0,
    texture: Texture | None = None,
) -> Part:
    """An ellipsoid of full ``size`` (diameters, mm) at ``centre``."""
    shape = Ellipsoid(_v(*centre), np.eye(3) if rot is None else rot, np.asarray(size, float) / 2)
    return Part(shape, material, sign, texture)


def cylinder(
    centre: tuple[float, float, float],
    radius: float,
    length: float,
    material: Material,
    rot: np.ndarray | None = None,
    *,
    sign: float = 1.0,
    texture: Texture | None = None,
) -> Part:
    """A cylinder of ``radius`` and ``length`` (mm) along the local z axis rotated by ``rot``."""
    shape = Cylinder(_v(*centre), np.eye(3) if rot is None else rot, radius, length / 2)
    return Part(shape, material, sign, texture)


def shell_box(
    centre: tuple[float, float, float],
    size: tuple[float, float, float],
    wall: float,
    material: Material,
    rot: np.ndarray | None = None,
) -> list[Part]:
    """A closed hollow block: the outer solid and its cavity."""
    sx, sy, sz = (max(s - 2 * wall, 0.1) for s in size)
    inner = (sx, sy, sz)
    return [box(centre, size, material, rot), box(centre, inner, material, rot, sign=-1.0)]


def shell_cylinder(
    centre: tuple[float, float, float],
    radius: float,
    length: float,
    wall: float,
    material: Material,
    rot: np.ndarray | None = None,
    *,
    open_end: bool = False,
) -> list[Part]:
    """A hollow cylinder (closed can, or open at its +z end like a mug or pan)."""
    r = np.eye(3) if rot is None else rot
    inner_len = length - (wall if open_end else 2 * wall)
    shift = r @ _v(0, 0, wall / 2) if open_end else np.zeros(3)
    inner_centre = tuple(np.asarray(centre) + shift)
    return [
        cylinder(centre, radius, length, material, r),
        cylinder(inner_centre, radius - wall, inner_len, material, r, sign=-1.0),
    ]


def tube(points: np.ndarray, radius: float, material: Material, *, sign: float = 1.0) -> Part:
    """A tube of ``radius`` along the polyline ``points`` (N, 3), mm."""
    shape = Tube(np.zeros(3), np.eye(3), np.asarray(points, float), radius)
    return Part(shape, material, sign)


def plate(
    centre: tuple[float, float, float],
    outline: np.ndarray,
    thickness: float,
    material: Material,
    rot: np.ndarray | None = None,
    pitch: float = 1.0,
    *,
    sign: float = 1.0,
    texture: Texture | None = None,
) -> Part:
    """A flat extrusion of a 2-D ``outline`` (rows = local y) sampled every ``pitch`` mm."""
    shape = Plate(
        _v(*centre), np.eye(3) if rot is None else rot, outline.astype(np.float32), pitch, thickness
    )
    return Part(shape, material, sign, texture)


def polygon(
    points: np.ndarray, pitch: float = 1.0, holes: tuple[np.ndarray, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise a closed polygon (N, 2) of (x, y) mm, less the polygons ``holes`` inside it,
    into a coverage mask.

    Returns the mask (rows = y) and the (x, y) of its centre in the polygon's coordinates, so that
    a plate at that centre puts the polygon back where it was drawn.
    """
    pts = np.asarray(points, dtype=np.float64)
    lo = pts.min(axis=0) - pitch
    hi = pts.max(axis=0) + pitch
    w = math.ceil((hi[0] - lo[0]) / pitch)
    h = math.ceil((hi[1] - lo[1]) / pitch)
    sub = 2  # 2×2 supersampling gives the outline anti-aliased edges
    xs = lo[0] + (np.arange(w * sub) + 0.5) * pitch / sub
    ys = lo[1] + (np.arange(h * sub) + 0.5) * pitch / sub
    # Even-odd rule over every ring's edges: a hole's edges toggle its inside back off. A pixel
    # is inside when an odd number of edges cross its row to its right.
    rings = [pts, *(np.asarray(h, dtype=np.float64) for h in holes)]
    x0 = np.concatenate([r[:, 0] for r in rings])
    y0 = np.concatenate([r[:, 1] for r in rings])
    x1 = np.concatenate([np.roll(r[:, 0], -1) for r in rings])
    y1 = np.concatenate([np.roll(r[:, 1], -1) for r in rings])
    slanted = y0 != y1
    ax, ay, bx, by = x0[slanted], y0[slanted], x1[slanted], y1[slanted]
    crosses = (ys[:, None] >= np.minimum(ay, by)) & (ys[:, None] < np.maximum(ay, by))
    rows, edges = np.nonzero(crosses)
    a_x, a_y, b_x, b_y = ax[edges], ay[edges], bx[edges], by[edges]
    xcross = a_x + (ys[rows] - a_y) * (b_x - a_x) / (b_y - a_y)
    first_right = np.searchsorted(xs, xcross, side="left")  # pixels before it lie left
    n_cols = w * sub
    hits = np.bincount(rows * (n_cols + 1) + first_right, minlength=h * sub * (n_cols + 1))
    right_of = np.cumsum(hits.reshape(h * sub, n_cols + 1)[:, ::-1], axis=1)[:, ::-1]
    inside = (right_of[:, 1:] % 2).astype(bool)
    mask = inside.reshape(h, sub, w, sub).mean(axis=(1, 3)).astype(np.float32)
    centre = lo + np.array([w, h]) * pitch / 2
    return mask, centre


def union(
    *masks: tuple[np.ndarray, np.ndarray], pitch: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Union (max) of outline masks from :func:`polygon`, on a common grid."""
    los, his = [], []
    for m, c in masks:
        h, w = m.shape
        los.append(c - np.array([w, h]) * pitch / 2)
        his.append(c + np.array([w, h]) * pitch / 2)
    lo = np.min(los, axis=0)
    hi = np.max(his, axis=0)
    w = round((hi[0] - lo[0]) / pitch)
    h = round((hi[1] - lo[1]) / pitch)
    out = np.zeros((h, w), np.float32)
    for (m, _), l0 in zip(masks, los, strict=True):
        r0 = round((l0[1] - lo[1]) / pitch)
        c0 = round((l0[0] - lo[0]) / pitch)
        sub = out[r0 : r0 + m.shape[0], c0 : c0 + m.shape[1]]
        np.maximum(sub, m[: sub.shape[0], : sub.shape[1]], out=sub)
    return out, lo + np.array([w, h]) * pitch / 2


def ellipse_points(cx: float, cy: float, rx: float, ry: float, n: int = 24) -> np.ndarray:
    """Vertices of an ellipse, for :func:`polygon`."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def spline(control: np.ndarray, n: int = 60) -> np.ndarray:
    """A smooth Catmull–Rom curve through ``control`` points (K, 3), sampled at ``n`` points."""
    p = np.asarray(control, dtype=np.float64)
    p = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    segs = len(p) - 3
    t = np.linspace(0, segs, n, endpoint=False)
    i = np.minimum(t.astype(int), segs - 1)
    u = (t - i)[:, None]
    p0, p1, p2, p3 = p[i], p[i + 1], p[i + 2], p[i + 3]
    out = 0.5 * (
        2 * p1
        + (-p0 + p2) * u
        + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u**2
        + (-p0 + 3 * p1 - 3 * p2 + p3) * u**3
    )
    return np.vstack([out, p[-2]])


def outline_plate(
    points: np.ndarray,
    thickness: float,
    material: Material,
    *,
    z: float = 0.0,
    holes: tuple[np.ndarray, ...] = (),
    rot: np.ndarray | None = None,
    texture: Texture | None = None,
    sign: float = 1.0,
    pitch: float = 1.0,
) -> Part:
    """A plate of ``thickness`` cut to the polygon ``points`` (x, y mm in the item frame, less
    ``holes``), centred at height ``z``; ``rot`` turns it about the item's origin. The outline is
    sampled every ``pitch`` mm (coarser is cheaper for large, smooth outlines)."""
    mask, c = polygon(points, pitch=pitch, holes=holes)
    r = np.eye(3) if rot is None else rot
    centre = r @ _v(c[0], c[1], z)
    return plate(tuple(centre), mask, thickness, material, r, pitch, sign=sign, texture=texture)


def helix(
    start: tuple[float, float, float],
    length: float,
    coil_radius: float,
    turns: float,
    wire: float,
    material: Material,
    rot: np.ndarray | None = None,
) -> Part:
    """A coil spring along the local x axis from ``start``: ``turns`` turns of wire of radius
    ``wire`` on a coil of ``coil_radius``, ``length`` mm long."""
    t = np.linspace(0, 2 * np.pi * turns, max(int(turns * 14), 8))
    local = np.column_stack([t / t[-1] * length, coil_radius * np.cos(t), coil_radius * np.sin(t)])
    r = np.eye(3) if rot is None else rot
    return tube(local @ r.T + _v(*start), wire, material)
