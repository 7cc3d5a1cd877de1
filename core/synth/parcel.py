"""One synthetic parcel: a box of catalogue items (and maybe a threat) scanned in two views.

Geometry is drawn first and in millimetres, so the same generator state gives the same parcel at
every ``scale``; photon noise is drawn last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from xadt.colour import E_HIGH, false_colour
from xadt.scans import Scan
from xadt.synth.catalogue import (
    DENSE,
    FLAT_GOODS,
    LUGGAGE_GOODS,
    METAL_HEAVY,
    VOID_FILL,
    draw_item,
    zipper,
)
from xadt.synth.console import console
from xadt.synth.materials import Material
from xadt.synth.parts import (
    ALONG_X,
    ALONG_Y,
    Item,
    Part,
    box,
    cylinder,
    mat,
    outline_plate,
    shell_box,
    shell_cylinder,
    spline,
    texture,
    tube,
)
from xadt.synth.render import (
    DOSE_HIGH,
    DOSE_LOW,
    SPECTRUM_HIGH,
    SPECTRUM_LOW,
    expose,
    project,
    scatter_veil,
    standard_normal,
)
from xadt.synth.shapes import View, random_rotation, rotation
from xadt.synth.threats import THREATS, make_threat

HEIGHT = 764
"""Image height (detector rows) at scale 1; one pixel is 1 mm."""
WIDTH_MEDIAN = 676.0
"""Median image width (belt direction) at scale 1, px, as in stream-of-commerce parcels."""
WIDTH_SIGMA = 0.43
"""Log-SD of the width: the inter-quartile range is then about 507–906 px."""
WIDTH_RANGE = (300, 1500)
"""Widths are clipped to this range, px at scale 1."""
BLUR_MM = 0.8
"""Detector blur, Gaussian SD in mm (about one 0.8 mm detector element)."""
SCATTER = 0.04
"""Scattered photons reaching the detector, as a share of the photons the object removes."""
SCATTER_MM = 60.0
"""Spread (Gaussian SD, mm) of the scatter veil."""
SOURCE_MM = 700.0
"""With ``line_scan``: distance from the X-ray source to the middle of the parcel, mm."""
ROW_GAIN_SD = 0.002
"""Relative SD of the gain left on each detector row after calibration."""
MASK_ATTENUATION = 0.01
"""A pixel belongs to the threat mask where the threat alone removes at least 1% of the beam."""

DIFFICULTY_P = {"easy": 0.81, "difficult": 0.16, "unrecognisable": 0.03}
"""How often a threat is placed to be easy, difficult or unrecognisable (methods.md §1.11)."""
DISASSEMBLED_P = {"easy": 0.05, "difficult": 0.35, "unrecognisable": 0.7}
"""How often a threat of each difficulty is only one part of the weapon."""

ITEM_VOLUME = 1.0e6
"""Room one packed item takes, mm³ (goods lie flat, squash and overlap, so less than their
bounding boxes): a box full to the brim holds its volume over this."""
MAX_ITEMS = 60
"""Most goods in one parcel."""
PADDED_P = 0.6
"""How often the space left in a parcel is padded with void fill."""
FILL_A, FILL_B = 3.5, 1.5
"""Beta parameters of how full a parcel is packed (mean 0.7)."""


@dataclass
class SynthScan:
    """A generated dual-view scan with its ground truth.

    Attributes:
        views: one (H, W, 3) uint8 false-colour image per view.
        high: per view, (H, W) uint16 high-energy transmission (65535 = air), or None.
        low: per view, (H, W) uint16 low-energy transmission, or None.
        masks: per view, an (H, W) bool threat mask, or None for a normal parcel.
        threat: the threat kind (one of :data:`THREATS`), or None.
        visibility: for a threat, the share of the beam's attenuation that the threat causes
            over its mask, in its clearer view (0 hidden … 1 alone), else None.
        contents: JSON-ready description of the parcel and what is in it.
    """

    views: list[np.ndarray]
    high: list[np.ndarray] | None = None
    low: list[np.ndarray] | None = None
    masks: list[np.ndarray] | None = None
    threat: str | None = None
    visibility: float | None = None
    contents: dict[str, Any] = field(default_factory=dict)

    def to_scan(self, scan_id: str) -> Scan:
        """This scan as an :class:`xadt.Scan` of false-colour views, with its masks."""
        return Scan(id=scan_id, views=self.views, encoding="rgb", masks=self.masks)


def _views(rng: np.random.Generator, width_mm: float, pitch: float) -> list[View]:
    height_px = round(HEIGHT / pitch)
    width_px = round(width_mm / pitch)
    centre = np.array([0.0, HEIGHT / 2, HEIGHT / 2])
    # Rows, columns and ray of the top view (down the z axis) and the side view (along y).
    bases = (
        np.array([[0.0, 1, 0], [1, 0, 0], [0, 0, -1]]),
        np.array([[0.0, 0, -1], [1, 0, 0], [0, -1, 0]]),
    )
    views = []
    for k, base in enumerate(bases):
        tilt = rotation(
            roll=math.radians(float(rng.uniform(-2, 2) if k == 0 else rng.uniform(-5, 5)))
        )
        rot = base @ tilt
        origin = centre - rot.T @ np.array([HEIGHT / 2, 0.0, 0.0])
        views.append(View(rot, origin, pitch, (height_px, width_px)))
    return views


def _orientation(rng: np.random.Generator, pose: str) -> np.ndarray:
    yaw = rotation(yaw=float(rng.uniform(0, 2 * math.pi)))
    wobble = rotation(pitch=float(rng.normal(0, 0.08)), roll=float(rng.normal(0, 0.08)))
    if pose == "flat":
        return yaw @ wobble
    if pose == "edge":
        return yaw @ rotation(roll=math.pi / 2) @ wobble
    if pose == "end":  # long axis vertical, thin side across the belt
        return yaw @ rotation(pitch=-math.pi / 2) @ rotation(roll=math.pi / 2) @ wobble
    return random_rotation(rng)


def _fit(
    rng: np.random.Generator,
    item: Item,
    half: np.ndarray,
    poses: tuple[str, ...],
    p: tuple[float, ...],
) -> tuple[Item, str] | None:
    for _ in range(4):
        pose = poses[int(rng.choice(len(poses), p=p))]
        moved = item.moved(_orientation(rng, pose), np.zeros(3))
        lo, hi = moved.bounds()
        ext = (hi - lo) / 2
        if np.all(ext <= half * 1.02):
            room = np.maximum(half - ext, 0)
            offset = rng.uniform(-room, room) - (lo + hi) / 2
            return moved.moved(np.eye(3), offset), pose
    return None


@dataclass
class _Layout:
    items: list[Item]
    box_rot: np.ndarray
    box_centre: np.ndarray
    half: np.ndarray
    description: dict[str, Any]


PARCEL_KINDS = {"box": 0.4, "mailer": 0.15, "holdall": 0.25, "suitcase": 0.2}
"""How often each kind of container is sent: a cardboard box, a padded mailer, a soft holdall or
backpack, a suitcase with a trolley handle."""


def _layout(rng: np.random.Generator, width_mm: float) -> _Layout:
    kind = list(PARCEL_KINDS)[int(rng.choice(len(PARCEL_KINDS), p=list(PARCEL_KINDS.values())))]
    margin = rng.uniform(10, 45, size=2)
    yaw = float(rng.uniform(-0.06, 0.06))
    lx = max(width_mm - margin.sum() - 700 * abs(math.sin(yaw)), 150.0)
    if kind == "mailer":  # flat, and only as wide as what is in it
        ly = float(np.clip(lx * rng.uniform(0.35, 0.75), 100, 500))
        lz = float(rng.uniform(30, 120))
    elif kind == "box":
        ly = float(np.clip(lx * rng.uniform(0.4, 1.0), 120, 680))
        lz = float(np.clip(min(lx, ly) * rng.uniform(0.25, 0.85), 60, 520))
    else:  # luggage lies flat on the belt: long, fairly deep, not very tall
        ly = float(np.clip(lx * rng.uniform(0.5, 0.8), 200, 600))
        lz = float(np.clip(min(lx, ly) * rng.uniform(0.3, 0.55), 120, 330))
    belt = float(rng.uniform(15, 40))
    centre = np.array(
        [
            margin[0] + lx / 2 + 350 * abs(math.sin(yaw)),
            rng.uniform(ly / 2 + 20, HEIGHT - ly / 2 - 20),
            belt + lz / 2,
        ]
    )
    box_rot = rotation(yaw=yaw)
    size = (lx, ly, lz)
    if kind == "mailer":
        skin = mat("bubble-wrap").with_density(float(rng.uniform(0.03, 0.08)))
        wall = 4.0
        outline = _bag_outline(rng, lx, ly, 6.0, 0.02)  # a pillowy envelope
        name, shell = "padded mailer", _soft_shell(outline, size, wall, skin)
    elif kind == "box":
        wall = float(rng.uniform(3, 7))
        name = "cardboard box"
        outer, cavity = shell_box((0, 0, 0), size, wall, mat("cardboard", rng, 0.3))
        # Flutes on the walls: outer solid and cavity share the pattern, so it cancels inside.
        flutes = texture(rng, "flutes", 0.15)
        shell = [replace(outer, texture=flutes), replace(cavity, texture=flutes)]
    else:
        name, shell, wall = _luggage(rng, kind, size)
    items = [Item(name, "parcel", shell).moved(box_rot, centre)]
    half = np.array(size) / 2 - wall
    if kind != "box":  # keep the goods inside the rounded outline
        half[:2] *= 0.85
    return _Layout(
        items,
        box_rot,
        centre,
        half,
        {"kind": kind, "size_mm": [round(lx), round(ly), round(lz)]},
    )


def _luggage(
    rng: np.random.Generator, kind: str, size: tuple[float, float, float]
) -> tuple[str, list[Part], float]:
    """The shell of a holdall or suitcase: fabric or plastic walls, zips round the edges,
    handles and buckles; a suitcase adds its trolley tubes, wheels and corner guards."""
    lx, ly, lz = size
    if kind == "suitcase":
        wall = float(rng.uniform(2.5, 4))
        skin = mat(str(rng.choice(["polycarbonate", "nylon", "plastic"])), rng, 0.1)
    else:
        wall = float(rng.uniform(1.5, 3))
        skin = mat(str(rng.choice(["nylon", "polyethylene", "leather"])), rng, 0.1)
        skin = skin.with_density(skin.rho * 0.6)
    # Bags have rounded corners, a soft one bulges unevenly: the outline is a superellipse
    # (squarer for a hard case) with a few low-frequency bumps.
    power = float(rng.uniform(4, 7)) if kind == "suitcase" else float(rng.uniform(2.2, 3.5))
    bumps = 0.0 if kind == "suitcase" else 0.04
    outline = _bag_outline(rng, lx, ly, power, bumps)
    weave = texture(rng, "weave", 0.2)
    parts = [replace(p, texture=weave) for p in _soft_shell(outline, size, wall, skin)]
    zip_metal = mat(str(rng.choice(["nickel", "brass", "nylon"])))
    x, y, z = lx / 2 - 4, ly / 2 - 4, lz * float(rng.uniform(0.15, 0.4))
    ring = outline[::3] * (1 - 8 / np.array([lx, ly]))  # the zip runs round the rim
    rim = np.column_stack([ring, np.full(len(ring), z)])
    rim = np.vstack([rim, rim[:1]])
    parts.append(zipper(rng, rim, zip_metal))
    for _ in range(int(rng.integers(0, 3))):  # pocket zips
        y0 = float(rng.uniform(-y, y))
        line = np.array([[-x * 0.7, y0, lz / 2 - 3], [x * 0.7, y0, lz / 2 - 3]])
        parts.append(zipper(rng, line, zip_metal))
    handle = spline(np.array([[-60, 0, lz / 2], [0, 0, lz / 2 + 25], [60, 0, lz / 2]]), 20)
    parts.append(tube(handle, 9, mat("plastic") if kind == "suitcase" else skin.with_density(1.0)))
    for sx in (-1, 1):  # buckles or handle mounts
        parts.append(
            box((sx * 70, 0, lz / 2), (22, 30, 6), mat(str(rng.choice(["zinc", "plastic"]))))
        )
    if kind == "suitcase":
        tube_r = float(rng.uniform(7, 10))
        for sy in (-1, 1):  # trolley: two aluminium tubes inside the back panel, a steel base
            at = (0, sy * ly * 0.3, -lz / 2 + wall + tube_r)
            parts += shell_cylinder(at, tube_r, lx * 0.85, 1.2, mat("aluminium"), ALONG_X)
        parts.append(box((-lx * 0.4, 0, -lz / 2 + 8), (40, ly * 0.65, 3), mat("steel")))
        for sy in (-1, 1):
            for sx in (-1, 1) if rng.random() < 0.5 else (-1,):
                at = (sx * (lx * 0.4 - 25), sy * (ly * 0.4 - 25), -lz / 2 + 20)  # inside the rim
                parts.append(cylinder(at, 22, 18, mat("rubber"), ALONG_Y))
                parts.append(cylinder(at, 4, 30, mat("steel"), ALONG_Y))
                parts.append(box(at, (50, 40, 40), mat("plastic")))
    else:
        strap = np.array(
            [[-lx / 2, -ly * 0.3, lz / 2], [0, -ly * 0.1, lz / 2 + 10], [lx / 2, -ly * 0.3, lz / 2]]
        )
        parts.append(tube(spline(strap, 30), 12, mat("nylon").with_density(0.9)))
    return ("suitcase" if kind == "suitcase" else "holdall"), parts, wall


_BAG_PITCH = 2.0
"""Sampling of a bag's outline, mm: its curves are smooth, and its walls are a few mm thick."""


def _soft_shell(
    outline: np.ndarray, size: tuple[float, float, float], wall: float, skin: Material
) -> list[Part]:
    """A closed bag of ``outline`` (from :func:`_bag_outline`) seen from above, ``size[2]`` tall,
    with walls ``wall`` thick: the outer plate and its cavity, as :func:`shell_box` for a box."""
    lx, ly, lz = size
    inset = outline * (1 - 2 * wall / np.array([lx, ly]))
    return [
        outline_plate(outline, lz, skin, pitch=_BAG_PITCH),
        outline_plate(inset, lz - 2 * wall, skin, sign=-1.0, pitch=_BAG_PITCH),
    ]


def _bag_outline(
    rng: np.random.Generator, lx: float, ly: float, power: float, bumps: float
) -> np.ndarray:
    """(N, 2) x, y mm of a bag seen from above: a superellipse of half sizes lx/2, ly/2 with
    exponent ``power``, its radius varied by up to about ``bumps`` (relative) in low-frequency
    bulges, kept inside the lx × ly box."""
    t = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    x = np.sign(c) * np.abs(c) ** (2 / power) * lx / 2
    y = np.sign(s) * np.abs(s) ** (2 / power) * ly / 2
    wobble = np.ones_like(t)
    for k in (2, 3, 5):
        wobble += bumps / k * float(rng.normal()) * np.cos(k * t + float(rng.uniform(0, 6.3)))
    wobble /= max(float(wobble.max()), 1.0)
    return np.stack([x * wobble, y * wobble], axis=1)


def _fill(
    rng: np.random.Generator,
    layout: _Layout,
    count: int,
    names: tuple[str, ...] | None = None,
    weights: dict[str, float] | None = None,
) -> list[str]:
    placed_names: list[str] = []
    tries = 0
    while len(placed_names) < count and tries < max(3 * count, 10):
        tries += 1
        item = draw_item(rng, names, weights)
        placed = _fit(rng, item, layout.half, ("flat", "edge", "any"), (0.72, 0.2, 0.08))
        if placed is None:
            continue
        layout.items.append(placed[0].moved(layout.box_rot, layout.box_centre))
        placed_names.append(item.name)
    return placed_names


def _item_counts(rng: np.random.Generator, half: np.ndarray) -> tuple[int, int]:
    """Goods and void-fill items for a box of half sizes ``half``."""
    # Senders fill a box to suit what they send: most parcels are well filled, few nearly empty
    # (fill ~ Beta(FILL_A, FILL_B): P(fill < 0.3) is about 3%). The count follows the volume, so
    # big boxes are not just small boxes with more air; most then pad the space left.
    capacity = float(np.prod(2 * half)) / ITEM_VOLUME
    fill = float(rng.beta(FILL_A, FILL_B))
    goods = int(np.clip(round(fill * capacity), 2, MAX_ITEMS))
    padding = 0
    if rng.random() < PADDED_P:
        padding = int(np.clip(round((1 - fill) * capacity * rng.uniform(0.2, 0.6)), 1, 8))
    return goods, padding


OCCLUDERS = {"easy": (), "difficult": (0, 1), "unrecognisable": (0, 0, 0, 1, 1, 1)}
"""Dense items laid over a threat, per difficulty: 0 above or below it, 1 beside it."""

EASY_TRIES = 6
"""Places tried for an easy threat; it goes to the one where the goods hide it least."""

_SURVEY_MM = 8.0  # pixel pitch of the coarse projections that compare those places


def _clearest(options: list[Item], layout: _Layout, views: list[View]) -> int:
    """Index of the placed threat in ``options`` that the goods of ``layout`` hide least: the
    largest share of the attenuation over its footprint, in its clearer view, from coarse
    projections (``_visibility``'s share, without its cut-off where the beam hardly reaches)."""
    goods = [part for item in layout.items for part in item.parts]
    surveys = [
        View(
            v.rotation,
            v.origin,
            _SURVEY_MM,
            (
                math.ceil(v.shape[0] * v.pitch / _SURVEY_MM),
                math.ceil(v.shape[1] * v.pitch / _SURVEY_MM),
            ),
        )
        for v in views
    ]
    clutter = [project(goods, s).attenuation(E_HIGH) for s in surveys]
    shares = []
    for option in options:
        share = 0.0
        for survey, behind in zip(surveys, clutter, strict=True):
            own = project(option.parts, survey).attenuation(E_HIGH)
            on = own > MASK_ATTENUATION
            if on.any():
                share = max(share, float((own[on] / (own[on] + behind[on])).mean()))
        shares.append(share)
    return int(np.argmax(shares))  # the first of equals, as the options were drawn


def _place_threat(
    rng: np.random.Generator, layout: _Layout, kind: str, difficulty: str, views: list[View]
) -> tuple[Item, dict[str, Any], list[str]]:
    poses: tuple[str, ...]
    p: tuple[float, ...]
    if difficulty == "easy":
        poses, p = ("flat", "edge", "any"), (0.6, 0.25, 0.15)
    elif difficulty == "difficult":
        poses, p = ("edge", "any", "end"), (0.35, 0.4, 0.25)
    else:
        poses, p = ("end", "any"), (0.6, 0.4)
    # The paper's firearms were "sometimes partly disassembled": a lone part is harder to see.
    disassembled = bool(rng.random() < DISASSEMBLED_P[difficulty])
    diag = float(np.hypot(layout.half[0], layout.half[1])) * 1.9
    placed = None
    for _ in range(6):
        threat = make_threat(rng, kind, max_length=diag, disassembled=disassembled)
        placed = _fit(rng, threat, layout.half, poses, p)
        if placed is None:  # too long for the box in those poses: try lying flat
            placed = _fit(rng, threat, layout.half, ("flat",), (1.0,))
        if placed is not None:
            break
    if placed is None:  # the box is too small for this threat: it pokes out, centred
        placed = (make_threat(rng, kind, max_length=diag, disassembled=disassembled), "flat")
    elif difficulty == "easy":
        # The paper's easy threats were plain to see: of a few places the threat fits, it goes
        # where the goods hide it least.
        tries = [_fit(rng, threat, layout.half, poses, p) for _ in range(EASY_TRIES - 1)]
        options = [placed] + [t for t in tries if t is not None]
        placed = options[
            _clearest(
                [o.moved(layout.box_rot, layout.box_centre) for o, _ in options], layout, views
            )
        ]
    item, pose = placed
    # Dense items over the threat in each view: same (x, y) above or below it hides it from
    # the top view, same (x, z) beside it from the side view.
    occluders = OCCLUDERS[difficulty]
    names = DENSE if difficulty == "difficult" else METAL_HEAVY
    lo, hi = item.bounds()
    centre = (lo + hi) / 2
    added = []
    for k in occluders:
        for _ in range(4):
            occ = draw_item(rng, names)
            occ = occ.moved(_orientation(rng, "flat" if k == 0 else "edge"), np.zeros(3))
            olo, ohi = occ.bounds()
            ext = (ohi - olo) / 2
            if np.all(ext <= layout.half * 1.02):
                break
        else:
            continue  # nothing dense fits this parcel
        target = centre.copy()
        axis = 2 if k == 0 else 1
        side = 1 if centre[axis] < 0 else -1
        target[axis] = side * rng.uniform(0, 1) * (layout.half[axis] - ext[axis])
        target = np.clip(target, -layout.half + ext, layout.half - ext)
        occ = occ.moved(np.eye(3), target - (olo + ohi) / 2)
        layout.items.append(occ.moved(layout.box_rot, layout.box_centre))
        added.append(occ.name)
    info = {
        "kind": kind,
        "name": item.name,
        "pose": pose,
        "difficulty": difficulty,
        "disassembled": disassembled,
    }
    return item.moved(layout.box_rot, layout.box_centre), info, added


def make_parcel(
    rng: np.random.Generator,
    *,
    threat: str | None = None,
    scale: float = 1.0,
    energies: bool = False,
    dose: float = 1.0,
    line_scan: bool = False,
    lossless: bool = False,
) -> SynthScan:
    """Generate one dual-view parcel scan.

    Args:
        rng: the generator every draw comes from; the same state gives the same scan.
        threat: None for a normal parcel, or a threat kind from :data:`THREATS`
            (``"pistol"``, ``"revolver"``, ``"rifle"``, ``"knife"``, ``"ied"``).
        scale: image size relative to full size (764 px high); 0.25 gives 191 px high scans
            of the same parcel.
        energies: also return the uint16 high- and low-energy transmission images.
        dose: photon dose relative to the default; noise SD scales as 1/sqrt(dose).
        line_scan: project with a fan beam from a source :data:`SOURCE_MM` from the parcel's
            middle, magnifying across the belt what lies nearer the source, instead of parallel
            rays.
        lossless: keep the detector's false-colour image; by default the views are sharpened and
            stored as JPEG, as a scanner's console does (:mod:`xadt.synth.console`).

    Returns:
        The scan, its ground truth and a JSON-ready description.
    """
    if threat is not None and threat not in THREATS:
        msg = f"unknown threat {threat!r}; choose one of {', '.join(THREATS)}"
        raise ValueError(msg)
    if not 0.05 <= scale <= 2.0:
        msg = f"scale must be in [0.05, 2], got {scale}"
        raise ValueError(msg)
    width = float(np.clip(rng.lognormal(math.log(WIDTH_MEDIAN), WIDTH_SIGMA), *WIDTH_RANGE))
    pitch = 1.0 / scale
    views = _views(rng, width, pitch)
    layout = _layout(rng, width)
    count, padding = _item_counts(rng, layout.half)
    # Drawn for every parcel, so that a threat parcel is the normal parcel of the same state
    # with the threat added: same box, same goods (less those hiding the threat).
    u = float(rng.random())
    difficulty = None
    if threat is not None:
        edges = np.cumsum(list(DIFFICULTY_P.values()))
        difficulty = list(DIFFICULTY_P)[min(int(np.searchsorted(edges, u)), len(edges) - 1)]
        # The threat is added to a parcel packed as normal ones are; the dense items laid over
        # a hidden threat take the place of goods, so hiding it adds no clutter of its own.
        count = max(count - len(OCCLUDERS[difficulty]), 1)
    luggage = layout.description["kind"] in ("holdall", "suitcase")
    names = _fill(rng, layout, count, weights=LUGGAGE_GOODS if luggage else None)
    if not names:  # nothing drawn fitted (a flat mailer): send something flat instead
        names = _fill(rng, layout, 1, FLAT_GOODS)
    if not luggage:  # clothes are the padding in a bag
        names += _fill(rng, layout, padding, VOID_FILL)
    threat_info = None
    if threat is not None and difficulty is not None:
        item, threat_info, occluders = _place_threat(rng, layout, threat, difficulty, views)
        layout.items.append(item)
        names += occluders
    parts = [part for item in layout.items for part in item.parts]

    photons_low = DOSE_LOW * dose / scale**2
    photons_high = DOSE_HIGH * dose / scale**2
    blur = BLUR_MM * scale
    out = SynthScan(views=[], threat=threat)
    if energies:
        out.high, out.low = [], []
    masks: list[np.ndarray] = []
    visibility = []
    for view in views:
        proj = project(parts, view, SOURCE_MM if line_scan else None)
        # Calibration leaves each detector row a slightly different gain: faint streaks along
        # the belt, the same in both channels of one row.
        gain = 1 + ROW_GAIN_SD * standard_normal(rng, (view.shape[0],))
        t_hi, t_lo = (
            expose(
                scatter_veil(proj.transmission(spectrum), SCATTER, SCATTER_MM / view.pitch),
                photons,
                rng,
                blur,
                gain,
            )
            for spectrum, photons in ((SPECTRUM_HIGH, photons_high), (SPECTRUM_LOW, photons_low))
        )
        out.views.append(console(false_colour(t_hi, t_lo), view.pitch, lossless=lossless))
        if out.high is not None and out.low is not None:
            out.high.append(np.rint(t_hi * 65535).astype(np.uint16))
            out.low.append(np.rint(t_lo * 65535).astype(np.uint16))
        if threat is not None:
            mask = proj.threat > MASK_ATTENUATION
            masks.append(mask)
            total = proj.attenuation(E_HIGH)
            visibility.append(_visibility(proj.threat[mask], total[mask]))
    if threat is not None and threat_info is not None:
        out.masks = masks
        out.visibility = max(visibility)
        threat_info["visibility"] = round(out.visibility, 3)
    out.contents = {
        "parcel": layout.description,
        "width_mm": round(width),
        "items": names,
        "threat": threat_info,
    }
    return out


def _visibility(threat: np.ndarray, total: np.ndarray) -> float:
    """Share of the attenuation the threat causes over its mask, ignoring pixels the beam
    hardly reaches (there nothing is seen, threat or not)."""
    if threat.size == 0:
        return 0.0
    seen = total < 4.0
    share = np.where(seen, threat / np.maximum(total, 1e-6), 0.0)
    return float(share.mean())
