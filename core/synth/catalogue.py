"""The catalogue of normal parcel contents: clothing, books, electronics, bottles, toys, kitchen
goods, tools and benign metal, packing material and clutter.

Every generator draws one item's size, material and make-up from ``rng`` and returns it in its own
frame (x = length, z = thinnest side), centred on the origin.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from xadt.synth.materials import Material
from xadt.synth.parts import (
    ALONG_X,
    ALONG_Y,
    Item,
    Part,
    box,
    cylinder,
    ellipse_points,
    ellipsoid,
    helix,
    mat,
    outline_plate,
    plate,
    polygon,
    shell_box,
    shell_cylinder,
    spline,
    texture,
    tube,
    union,
)
from xadt.synth.shapes import rotation

Generator = Callable[[np.random.Generator], Item]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


# ---------------------------------------------------------------- clothing and shoes


def folded_clothes(rng: np.random.Generator) -> Item:
    """A folded garment: a stack of offset fabric layers with creases, sometimes with a zip."""
    fabric = _pick(rng, ("cotton", "cotton", "wool", "denim", "polyethylene"))
    m = mat(fabric, rng, 0.35)
    if fabric == "polyethylene":  # synthetic fleece: low-density polyester
        m = m.with_density(_u(rng, 0.15, 0.3))
    length, width = _u(rng, 200, 380), _u(rng, 150, 300)
    layers = int(rng.integers(2, 7))
    z = 0.0
    parts: list[Part] = []
    for _ in range(layers):
        t = _u(rng, 4, 16)
        rot = rotation(yaw=_u(rng, -0.08, 0.08))
        size = (length * _u(rng, 0.85, 1.0), width * _u(rng, 0.8, 1.0), t)
        c = (_u(rng, -12, 12), _u(rng, -12, 12), z + t / 2)
        kind = "weave" if rng.random() < 0.4 else "wrinkle"
        parts.append(box(c, size, m, rot, texture=texture(rng, kind, _u(rng, 0.15, 0.35))))
        # Seams and hems: doubled fabric along the folded edges and across the garment.
        for s in (-1, 1):
            edge = rot @ np.array([0, s * size[1] / 2 - 4 * s, 0]) + np.array(c)
            parts.append(box(tuple(edge), (size[0], 6, t * 0.5), m.with_density(m.rho * 2), rot))
        if rng.random() < 0.4:  # a pocket or a collar
            pc = rot @ np.array([_u(rng, -60, 60), _u(rng, -50, 50), 0]) + np.array(c)
            parts.append(box(tuple(pc), (_u(rng, 60, 120), _u(rng, 50, 100), 2), m, rot))
        z += t
    top = z
    if rng.random() < 0.4:
        zip_len = width * _u(rng, 0.5, 0.9)
        pts = np.array([[_u(rng, -60, 60), -zip_len / 2, top / 2], [0, zip_len / 2, top / 2]])
        parts.append(zipper(rng, pts, mat(_pick(rng, ("brass", "steel", "nylon")))))
    if fabric == "denim" and rng.random() < 0.7:  # jeans: copper rivets and a shank button
        for _ in range(int(rng.integers(4, 8))):
            at = (_u(rng, -length / 3, length / 3), _u(rng, -width / 3, width / 3), top * 0.6)
            parts.append(cylinder(at, 3, 3, mat("copper")))
        parts.append(cylinder((length * 0.35, 0, top * 0.6), 8, 4, mat("steel")))
    if rng.random() < 0.4:
        button = mat(_pick(rng, ("plastic", "brass", "steel")))
        for k in range(int(rng.integers(2, 7))):
            c = (length * 0.3, -width * 0.35 + k * 25, top * _u(rng, 0.2, 0.9))
            parts.append(cylinder(c, _u(rng, 5, 9), 2.5, button))
    return Item("folded clothes", "clothing", parts).centred()


def crumpled_clothes(rng: np.random.Generator) -> Item:
    """Clothes stuffed in loosely: a few overlapping soft lumps of fabric."""
    m = mat(_pick(rng, ("cotton", "wool", "denim")), rng, 0.3).with_density(_u(rng, 0.12, 0.3))
    parts = []
    for _ in range(int(rng.integers(2, 5))):
        size = (_u(rng, 120, 300), _u(rng, 100, 250), _u(rng, 40, 110))
        c = (_u(rng, -60, 60), _u(rng, -50, 50), _u(rng, -10, 10))
        rot = rotation(yaw=_u(rng, 0, math.pi))
        parts.append(ellipsoid(c, size, m, rot, texture=texture(rng, "wrinkle", 0.5)))
    return Item("clothes", "clothing", parts).centred()


def _sole_outline(length: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    x = length / 2 * np.cos(t)
    # wide forefoot, narrow waist, rounded heel
    w = width / 2 * (0.78 + 0.22 * np.cos(t) - 0.12 * np.sin(t) ** 2 * (np.cos(t) < 0))
    return polygon(np.stack([x, w * np.sin(t)], axis=1), pitch=1.5)


def shoes(rng: np.random.Generator) -> Item:
    """A pair (or one) of shoes: rubber soles, leather uppers, a steel shank, eyelets."""
    length, width = _u(rng, 230, 310), _u(rng, 80, 110)
    parts: list[Part] = []
    pair = rng.random() < 0.75
    for k in range(2 if pair else 1):
        yoff = (k - 0.5) * (width + 10) if pair else 0.0
        flip = rotation(yaw=math.pi) if k else np.eye(3)
        sole, c = _sole_outline(length, width)
        sole_t = _u(rng, 12, 30)
        sole_c = tuple(flip @ np.array([c[0], c[1], sole_t / 2]) + np.array([0, yoff, 0]))
        parts.append(plate(sole_c, sole, sole_t, mat("rubber", rng, 0.2), flip, pitch=1.5))
        upper_c = tuple(flip @ np.array([length * 0.08, 0, sole_t + 35]) + np.array([0, yoff, 0]))
        size = (length * 0.85, width * 0.95, 80)
        leather = mat(_pick(rng, ("leather", "nylon", "plastic")), rng, 0.2)
        inner = (size[0] - 6, size[1] - 6, size[2] - 6)
        parts += [
            ellipsoid(upper_c, size, leather, flip),
            ellipsoid(upper_c, inner, leather, flip, sign=-1.0),
        ]
        if rng.random() < 0.5:
            shank_c = tuple(
                flip @ np.array([-length * 0.12, 0, sole_t / 2]) + np.array([0, yoff, 0])
            )
            parts.append(box(shank_c, (90, 14, 1.5), mat("steel"), flip))
        if rng.random() < 0.4:
            for e in range(5):
                ec = flip @ np.array([length * 0.15 + e * 12, width * 0.25, sole_t + 55])
                parts.append(cylinder(tuple(ec + np.array([0, yoff, 0])), 2.5, 1.0, mat("brass")))
    return Item("shoes", "clothing", parts).centred()


# ---------------------------------------------------------------- books and paper


def books(rng: np.random.Generator) -> Item:
    """One to five books or magazines in a loose stack."""
    n = 1 if rng.random() < 0.6 else int(rng.integers(2, 6))
    parts = []
    z = 0.0
    for _ in range(n):
        length, width, t = _u(rng, 150, 300), _u(rng, 105, 230), _u(rng, 5, 55)
        rot = rotation(yaw=_u(rng, -0.3, 0.3))
        c = (_u(rng, -20, 20), _u(rng, -20, 20), z + t / 2)
        paper = mat("paper", rng, 0.25)
        parts.append(box(c, (length, width, t), paper, rot, texture=texture(rng, "grain", 0.05)))
        if rng.random() < 0.4:  # hard cover
            for s in (-1, 1):
                cc = (c[0], c[1], c[2] + s * (t / 2 + 1.2))
                parts.append(
                    box(cc, (length + 4, width + 4, 2.4), mat("cardboard").with_density(0.7), rot)
                )
            t += 5
        z += t
    return Item("books", "books", parts).centred()


def paper_stack(rng: np.random.Generator) -> Item:
    """Documents, envelopes or a ream of paper."""
    t = _u(rng, 1, 50)
    parts = [
        box((0, 0, 0), (297, 210, t), mat("paper", rng, 0.2), rotation(yaw=_u(rng, -0.2, 0.2)))
    ]
    if rng.random() < 0.3:  # a binder clip or staples
        parts.append(box((140, 90, 0), (30, 12, t + 4), mat("steel").with_density(2.0)))
    return Item("paper", "books", parts).centred()


# ---------------------------------------------------------------- electronics


def _components(rng: np.random.Generator, length: float, width: float, z: float) -> list[Part]:
    parts = []
    for _ in range(int(rng.integers(4, 18))):
        x, y = _u(rng, -length / 2.4, length / 2.4), _u(rng, -width / 2.4, width / 2.4)
        kind = rng.random()
        if kind < 0.4:  # IC: moulding compound with a silicon die and a lead frame
            s = _u(rng, 5, 22)
            parts.append(
                box((x, y, z + 1), (s, s * _u(rng, 0.5, 1), 2), mat("glass").with_density(1.9))
            )
            parts.append(box((x, y, z + 1), (s * 0.9, s * 0.3, 0.3), mat("copper")))
        elif kind < 0.65:  # electrolytic capacitor
            r, h = _u(rng, 2.5, 6), _u(rng, 6, 14)
            parts += shell_cylinder((x, y, z + h / 2), r, h, 0.3, mat("aluminium"))
            parts.append(
                cylinder((x, y, z + h / 2), r - 0.3, h - 1, mat("aluminium").with_density(1.4))
            )
        elif kind < 0.8:  # connector
            parts.append(
                box(
                    (x, y, z + 3),
                    (_u(rng, 6, 20), _u(rng, 5, 10), 6),
                    mat("steel").with_density(2.5),
                )
            )
        elif kind < 0.9:  # inductor
            r = _u(rng, 3, 8)
            parts.append(cylinder((x, y, z + r), r, r * 1.2, mat("ferrite"), ALONG_X))
            parts.append(
                cylinder((x, y, z + r), r * 1.1, r, mat("copper").with_density(3.0), ALONG_X)
            )
        else:  # screw through the board
            parts.append(cylinder((x, y, z), 1.5, 8, mat("steel")))
    return parts


def circuit_board(rng: np.random.Generator) -> Item:
    """A populated circuit board."""
    length, width = _u(rng, 50, 200), _u(rng, 40, 140)
    parts = [box((0, 0, 0), (length, width, 1.6), mat("fr4"))]
    parts += _components(rng, length, width, 0.8)
    return Item("circuit board", "electronics", parts).centred()


def battery(rng: np.random.Generator) -> Item:
    """Loose cells: AA/AAA, 18650 lithium, a 9 V block, or coin cells."""
    kind = _pick(rng, ("aa", "aa", "18650", "9v", "coin"))
    parts: list[Part] = []
    n = int(rng.integers(1, 5))
    for k in range(n):
        y = k * 16.0
        if kind == "aa":
            r, length = (7.25, 50.5) if rng.random() < 0.6 else (5.25, 44.5)
            parts += shell_cylinder((0, y, r), r, length, 0.3, mat("steel"), ALONG_X)
            parts.append(cylinder((0, y, r), r - 0.3, length - 1, mat("battery-alk"), ALONG_X))
            parts.append(
                cylinder((0, y, r), 1.0, length - 4, mat("brass"), ALONG_X)
            )  # collector pin
        elif kind == "18650":
            parts += shell_cylinder((0, y * 1.2, 9), 9, 65, 0.3, mat("steel"), ALONG_X)
            parts.append(cylinder((0, y * 1.2, 9), 8.7, 64, mat("battery-li"), ALONG_X))
        elif kind == "9v":
            parts += shell_box((0, y * 1.8, 8.5), (48.5, 26.5, 17.5), 0.4, mat("steel"))
            parts.append(box((0, y * 1.8, 8.5), (46, 25, 16), mat("battery-alk")))
        else:
            parts.append(cylinder((0, y * 1.6, 1.6), 10, 3.2, mat("stainless")))
    return Item("batteries", "electronics", parts).centred()


def cable(rng: np.random.Generator) -> Item:
    """A cable (copper core, PVC sheath) lying in loose loops, with plugs at its ends."""
    n = int(rng.integers(3, 8))
    span = _u(rng, 60, 260)
    ctrl = np.column_stack(
        [
            rng.uniform(-span, span, n),
            rng.uniform(-span * 0.6, span * 0.6, n),
            rng.uniform(0, 20, n),
        ]
    )
    if rng.random() < 0.35:  # coiled cable
        t = np.linspace(0, 2 * np.pi * _u(rng, 2, 5), 90)
        rad = _u(rng, 40, 90)
        ctrl = np.column_stack([rad * np.cos(t), rad * np.sin(t) * _u(rng, 0.6, 1), t * 1.5])
        pts = ctrl
    else:
        pts = spline(ctrl, 80)
    sheath = _u(rng, 1.5, 3.5)
    parts = [
        tube(pts, sheath, mat(_pick(rng, ("pvc", "pvc", "polyethylene")))),
        tube(pts, sheath * _u(rng, 0.25, 0.45), mat("copper")),
    ]
    for end in (pts[0], pts[-1]):
        if rng.random() < 0.7:
            parts.append(box(tuple(end), (_u(rng, 15, 35), _u(rng, 8, 16), 8), mat("plastic")))
            parts.append(box(tuple(end), (10, 6, 2), mat("steel")))
    return Item("cable", "electronics", parts).centred()


def charger(rng: np.random.Generator) -> Item:
    """A charger or power brick: plastic case, transformer with a coil, board, pins, cable."""
    length, width, height = _u(rng, 45, 150), _u(rng, 40, 80), _u(rng, 25, 40)
    parts = shell_box((0, 0, height / 2), (length, width, height), 2.0, mat("polycarbonate"))
    parts.append(box((0, 0, 3), (length - 6, width - 6, 1.6), mat("fr4")))
    core = min(width, length) * 0.45
    parts.append(
        box((length * 0.15, 0, height / 2), (core, core * 0.8, height * 0.6), mat("ferrite"))
    )
    parts += shell_cylinder(
        (length * 0.15, 0, height / 2), core * 0.45, height * 0.5, core * 0.15, mat("copper")
    )
    parts += _components(rng, length * 0.6, width * 0.8, 3.8)[:8]
    if rng.random() < 0.5:
        for s in (-1, 1):
            parts.append(box((-length / 2 - 8, s * 6, height / 2), (18, 2, 6), mat("brass")))
    item = Item("charger", "electronics", parts)
    if rng.random() < 0.5:
        lead = cable(rng)
        item.parts += lead.moved(np.eye(3), np.array([length / 2 + 60, 0, 0])).parts
    return item.centred()


def phone(rng: np.random.Generator) -> Item:
    """A phone or tablet: glass, aluminium frame, lithium pouch cell, board, camera, speaker."""
    tablet = rng.random() < 0.3
    length = _u(rng, 200, 280) if tablet else _u(rng, 120, 165)
    width = length * _u(rng, 0.45, 0.72)
    t = _u(rng, 6, 10)
    parts = shell_box((0, 0, t / 2), (length, width, t), 1.2, mat("aluminium"))
    parts.append(box((0, 0, t - 0.5), (length - 2, width - 2, 1.0), mat("glass")))
    parts.append(
        box((-length * 0.12, 0, t / 2), (length * 0.55, width * 0.8, t * 0.5), mat("battery-li"))
    )
    parts.append(box((length * 0.3, 0, t / 2), (length * 0.3, width * 0.7, 1.0), mat("fr4")))
    parts.append(box((length * 0.3, 0, t / 2), (length * 0.25, width * 0.5, 0.6), mat("copper")))
    parts.append(cylinder((length * 0.4, width * 0.3, t / 2), 4, t * 0.8, mat("steel")))
    parts.append(cylinder((-length * 0.45, 0, t / 2), 5, 2.5, mat("iron")))
    return Item("tablet" if tablet else "phone", "electronics", parts).centred()


def laptop(rng: np.random.Generator) -> Item:
    """A laptop: aluminium or plastic shell, battery cells, board, hinges, keyboard, screen."""
    length, width, t = _u(rng, 300, 380), _u(rng, 200, 260), _u(rng, 14, 24)
    shell = mat(_pick(rng, ("aluminium", "polycarbonate")))
    parts = shell_box((0, 0, t / 2), (length, width, t), 1.5, shell)
    parts.append(box((0, 0, t - 2), (length - 6, width - 6, 2.5), mat("glass").with_density(1.5)))
    parts.append(
        box((0, -width * 0.28, t * 0.35), (length * 0.7, width * 0.3, 5), mat("battery-li"))
    )
    parts.append(box((0, width * 0.15, t * 0.35), (length * 0.6, width * 0.35, 1.6), mat("fr4")))
    parts += _components(rng, length * 0.5, width * 0.3, t * 0.4)
    parts.append(
        box((length * 0.25, width * 0.2, t * 0.45), (60, 50, 8), mat("copper").with_density(3))
    )
    for s in (-1, 1):
        parts.append(
            cylinder((s * length * 0.35, width / 2 - 5, t / 2), 3.5, 30, mat("steel"), ALONG_X)
        )
    return Item("laptop", "electronics", parts).centred()


def headphones(rng: np.random.Generator) -> Item:
    """Headphones: a plastic band with a steel spring, ear cups with magnets, a cable."""
    rad = _u(rng, 70, 95)
    t = np.linspace(-0.1, math.pi + 0.1, 40)
    band = np.column_stack([rad * np.cos(t), rad * np.sin(t), np.zeros_like(t)])
    parts = [tube(band, _u(rng, 5, 9), mat("plastic")), tube(band, 1.2, mat("steel"))]
    for s in (-1, 1):
        c = (s * rad, -10, 0)
        parts += shell_cylinder(c, _u(rng, 30, 45), 30, 2.5, mat("plastic"), ALONG_Y)
        parts.append(cylinder(c, 10, 5, mat("iron"), ALONG_Y))
    return Item("headphones", "electronics", parts).centred()


def power_bank(rng: np.random.Generator) -> Item:
    """A power bank: 18650 cells side by side in a plastic case with a board."""
    n = int(rng.integers(1, 5))
    parts = shell_box((0, 0, 11), (72, n * 19 + 8, 23), 1.5, mat("polycarbonate"))
    for k in range(n):
        y = (k - (n - 1) / 2) * 19
        parts += shell_cylinder((-3, y, 11), 9, 65, 0.3, mat("steel"), ALONG_X)
        parts.append(cylinder((-3, y, 11), 8.7, 64, mat("battery-li"), ALONG_X))
    parts.append(box((33, 0, 11), (4, n * 19, 16), mat("fr4")))
    return Item("power bank", "electronics", parts).centred()


# ---------------------------------------------------------------- bottles and cosmetics


def bottle(rng: np.random.Generator) -> Item:
    """A plastic or glass bottle, partly filled, with a cap; lying on its side."""
    glass = rng.random() < 0.3
    radius = _u(rng, 25, 45) if glass else _u(rng, 20, 45)
    length = _u(rng, 150, 300)
    wall = _u(rng, 2.5, 5) if glass else _u(rng, 0.3, 0.6)
    shell = mat("glass" if glass else _pick(rng, ("pet", "polyethylene")))
    fill = _u(rng, 0.3, 1.0)
    liquid = mat(_pick(rng, ("water", "water", "shampoo", "oil", "cream")), rng, 0.05)
    parts = shell_cylinder((0, 0, 0), radius, length, wall, shell, ALONG_X)
    inner = length - 2 * wall
    parts.append(
        cylinder((-(1 - fill) * inner / 2, 0, 0), radius - wall, inner * fill, liquid, ALONG_X)
    )
    neck = radius * 0.4
    parts += shell_cylinder((length / 2 + 20, 0, 0), neck, 40, wall, shell, ALONG_X)
    cap = mat(_pick(rng, ("plastic", "plastic", "aluminium", "steel")))
    parts += shell_cylinder((length / 2 + 45, 0, 0), neck + 2, 16, 1.2, cap, ALONG_X)
    return Item("glass bottle" if glass else "bottle", "bottles", parts).centred()


def cosmetics(rng: np.random.Generator) -> Item:
    """Toiletries: jars, tubes, an aerosol, perfume or lipstick, in a small group."""
    parts: list[Part] = []
    for k in range(int(rng.integers(1, 6))):
        x, y = _u(rng, -60, 60), k * 35.0 - 60
        kind = rng.random()
        if kind < 0.25:  # aerosol can
            r, h = _u(rng, 20, 30), _u(rng, 120, 200)
            parts += shell_cylinder((x, y, r), r, h, 0.4, mat("aluminium"), ALONG_X)
            parts.append(
                cylinder((x, y, r), r - 0.4, h * 0.7, mat("shampoo").with_density(0.8), ALONG_X)
            )
            parts.append(cylinder((x + h / 2 + 4, y, r), 4, 8, mat("steel"), ALONG_X))
        elif kind < 0.5:  # jar of cream with a metal or plastic lid
            r, h = _u(rng, 20, 40), _u(rng, 20, 50)
            parts += shell_cylinder(
                (x, y, h / 2), r, h, _u(rng, 1, 4), mat(_pick(rng, ("glass", "plastic")))
            )
            parts.append(cylinder((x, y, h / 2), r - 3, h - 4, mat("cream")))
            parts.append(
                cylinder((x, y, h + 3), r + 1, 6, mat(_pick(rng, ("aluminium", "plastic"))))
            )
        elif kind < 0.75:  # squeeze tube
            parts.append(
                box(
                    (x, y, 10),
                    (_u(rng, 100, 180), _u(rng, 30, 50), 18),
                    mat("cream"),
                    texture=texture(rng, "blotch", 0.2),
                )
            )
            parts.append(cylinder((x - 80, y, 10), 8, 12, mat("plastic"), ALONG_X))
        elif kind < 0.9:  # perfume: thick glass, liquid, metal sprayer
            parts += shell_box((x, y, 20), (50, 50, 40), 6, mat("glass"))
            parts.append(box((x, y, 20), (36, 36, 20), mat("water").with_density(0.85)))
            parts.append(cylinder((x, y, 45), 7, 12, mat("brass")))
        else:  # lipstick
            parts += shell_cylinder((x, y, 10), 9, 75, 0.6, mat("brass"), ALONG_X)
            parts.append(cylinder((x, y, 10), 6, 50, mat("wax"), ALONG_X))
    return Item("toiletries", "bottles", parts).centred()


# ---------------------------------------------------------------- toys


def toy(rng: np.random.Generator) -> Item:
    """A toy: plush animal, plastic figure, toy car, building blocks, or a battery toy."""
    kind = _pick(rng, ("plush", "figure", "car", "blocks", "electronic"))
    parts: list[Part] = []
    if kind == "plush":
        fill = mat("foam").with_density(_u(rng, 0.03, 0.08))
        body = (_u(rng, 120, 250), _u(rng, 90, 180), _u(rng, 60, 110))
        parts.append(ellipsoid((0, 0, 0), body, fill, texture=texture(rng, "blotch", 0.3)))
        parts.append(
            ellipsoid((body[0] * 0.55, 0, 0), (body[1] * 0.7,) * 2 + (body[2] * 0.8,), fill)
        )
        for s in (-1, 1):
            parts.append(cylinder((body[0] * 0.75, s * 12, 10), 4, 4, mat("plastic")))
    elif kind == "figure":
        plastic = mat(_pick(rng, ("plastic", "pvc", "nylon")), rng, 0.1)
        for _ in range(int(rng.integers(3, 8))):
            c = (_u(rng, -50, 50), _u(rng, -30, 30), 0)
            size = (_u(rng, 15, 70), _u(rng, 10, 40), _u(rng, 10, 40))
            parts += [
                ellipsoid(c, size, plastic),
                ellipsoid(c, (size[0] - 4, size[1] - 4, size[2] - 4), plastic, sign=-1.0),
            ]
    elif kind == "car":
        length = _u(rng, 60, 200)
        parts += shell_box((0, 0, 25), (length, length * 0.45, 35), 2.5, mat("plastic"))
        for x in (-length * 0.32, length * 0.32):
            parts.append(cylinder((x, 0, 8), 1.2, length * 0.5, mat("steel"), ALONG_Y))
            for s in (-1, 1):
                parts.append(cylinder((x, s * length * 0.25, 8), 9, 8, mat("rubber"), ALONG_Y))
        if rng.random() < 0.4:  # die-cast body
            parts.append(box((0, 0, 25), (length * 0.9, length * 0.4, 4), mat("zinc")))
    elif kind == "blocks":
        m = mat(_pick(rng, ("wood", "plastic")), rng, 0.1)
        for _ in range(int(rng.integers(4, 16))):
            at = (_u(rng, -80, 80), _u(rng, -60, 60), _u(rng, 0, 40))
            side = _u(rng, 15, 40)
            size = (side, side * _u(rng, 0.5, 2), side)
            parts.append(box(at, size, m, rotation(yaw=_u(rng, 0, 3))))
    else:
        length = _u(rng, 100, 220)
        parts += shell_box((0, 0, 30), (length, length * 0.6, 60), 2.5, mat("plastic"))
        for k in range(2):
            parts += shell_cylinder(
                (-length * 0.25, (k - 0.5) * 15, 12), 7.25, 50.5, 0.3, mat("steel"), ALONG_X
            )
            parts.append(
                cylinder((-length * 0.25, (k - 0.5) * 15, 12), 7, 49, mat("battery-alk"), ALONG_X)
            )
        parts.append(cylinder((length * 0.2, 0, 15), 10, 25, mat("steel"), ALONG_X))
        parts.append(cylinder((length * 0.2, 0, 15), 8, 20, mat("copper").with_density(4), ALONG_X))
        parts.append(cylinder((0, length * 0.15, 50), 20, 6, mat("iron")))
        parts.append(box((0, -length * 0.1, 40), (length * 0.4, 40, 1.6), mat("fr4")))
    return Item(f"toy ({kind})", "toys", parts).centred()


# ---------------------------------------------------------------- kitchen goods


def _cutlery_outline(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    length = _u(rng, 150, 220)
    handle = polygon(np.array([[0, -5], [length * 0.6, -3.5], [length * 0.6, 3.5], [0, 5]]))
    if kind == "spoon":
        head = polygon(ellipse_points(length * 0.78, 0, length * 0.2, 19))
    elif kind == "fork":
        x0 = length * 0.6
        head_pts = [
            [x0, -3.5],
            [x0 + 20, -11],
            [length, -11],
            [length, 11],
            [x0 + 20, 11],
            [x0, 3.5],
        ]
        head = polygon(np.array(head_pts))
        # tines: cut the last 35 mm into four prongs by leaving gaps
        mask, c = head
        h, w = mask.shape
        cols = np.arange(w) + c[0] - w / 2
        rows = np.arange(h) + c[1] - h / 2
        gap = (np.abs((rows[:, None] + 11) % 5.5 - 4.6) < 0.9) & (cols[None, :] > length - 35)
        head = (mask * ~gap, c)
    else:  # table knife: rounded blade
        head = polygon(
            np.array([[length * 0.55, -8], [length, -5], [length + 4, 2], [length * 0.55, 9]])
        )
    return union(handle, head)


def cutlery(rng: np.random.Generator) -> Item:
    """A few pieces of stainless cutlery, loose or bundled."""
    parts = []
    for k in range(int(rng.integers(1, 7))):
        kind = _pick(rng, ("spoon", "fork", "knife"))
        outline, c = _cutlery_outline(kind, rng)
        rot = rotation(yaw=_u(rng, -0.25, 0.25))
        centre = rot @ np.array([c[0], c[1] + k * 25, k * 2.0])
        parts.append(plate(tuple(centre), outline, _u(rng, 1.5, 3), mat("stainless"), rot))
    return Item("cutlery", "kitchen", parts).centred()


def pan(rng: np.random.Generator) -> Item:
    """A frying pan or saucepan with a handle."""
    r, h = _u(rng, 80, 140), _u(rng, 35, 110)
    metal = mat(_pick(rng, ("aluminium", "steel", "iron")))
    wall = _u(rng, 1.5, 4.0)
    parts = shell_cylinder((0, 0, h / 2), r, h, wall, metal, open_end=True)
    parts.append(cylinder((0, 0, wall * 1.5), r - wall, wall, metal))  # thick base
    hl = _u(rng, 120, 200)
    handle = mat(_pick(rng, ("plastic", "wood", "steel")))
    parts.append(box((r + hl / 2, 0, h * 0.7), (hl, 25, 15), handle))
    parts.append(box((r + 15, 0, h * 0.7), (35, 18, 5), metal))
    return Item("pan", "kitchen", parts).centred()


def mug(rng: np.random.Generator) -> Item:
    """A ceramic mug, a glass, or a stack of plates."""
    if rng.random() < 0.35:
        r, n = _u(rng, 90, 140), int(rng.integers(1, 6))
        parts = [cylinder((0, 0, k * 9.0), r, 5, mat("porcelain")) for k in range(n)]
        return Item("plates", "kitchen", parts).centred()
    r, h = _u(rng, 35, 48), _u(rng, 80, 120)
    m = mat(_pick(rng, ("ceramic", "porcelain", "glass")))
    parts = shell_cylinder((0, 0, 0), r, h, _u(rng, 3, 6), m, ALONG_X, open_end=True)
    t = np.linspace(0.3, math.pi - 0.3, 16)
    loop = np.column_stack([h * 0.3 * np.cos(t) - 5, np.zeros_like(t), r + 22 * np.sin(t)])
    parts.append(tube(loop, 6, m))
    return Item("mug", "kitchen", parts).centred()


def food(rng: np.random.Generator) -> Item:
    """Food: a tin can, packets of rice or sugar, chocolate bars, a jar."""
    kind = _pick(rng, ("tin", "packet", "chocolate", "jar"))
    parts: list[Part] = []
    if kind == "tin":
        r, h = _u(rng, 30, 50), _u(rng, 50, 120)
        parts += shell_cylinder((0, 0, h / 2), r, h, 0.25, mat("steel"))
        parts.append(
            cylinder(
                (0, 0, h / 2),
                r - 0.3,
                h - 1,
                mat("food", rng, 0.2),
                texture=texture(rng, "blotch", 0.15),
            )
        )
    elif kind == "packet":
        size = (_u(rng, 100, 200), _u(rng, 70, 130), _u(rng, 30, 70))
        parts.append(
            box(
                (0, 0, 0),
                size,
                mat(_pick(rng, ("sugar", "food", "salt")), rng, 0.15),
                texture=texture(rng, "grain", 0.15),
            )
        )
    elif kind == "chocolate":
        for k in range(int(rng.integers(1, 5))):
            parts.append(
                box((0, k * 90.0, k * 10.0), (_u(rng, 150, 200), 80, 10), mat("chocolate"))
            )
            parts.append(box((0, k * 90.0, k * 10.0 + 5.2), (150, 80, 0.2), mat("aluminium")))
    else:
        r, h = _u(rng, 30, 45), _u(rng, 70, 120)
        parts += shell_cylinder((0, 0, 0), r, h, 3, mat("glass"), ALONG_X)
        parts.append(cylinder((0, 0, 0), r - 3, h - 10, mat("food", rng, 0.2), ALONG_X))
        parts.append(cylinder((h / 2 + 3, 0, 0), r + 1, 8, mat("steel").with_density(3), ALONG_X))
    return Item(kind, "kitchen", parts).centred()


# ---------------------------------------------------------------- tools and benign metal


def _key_outline(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    blade = _u(rng, 30, 45)
    bow = polygon(ellipse_points(-12, 0, _u(rng, 10, 15), _u(rng, 9, 13), 16))
    teeth = [[0, -4.5]]
    for k in range(6):
        teeth += [[k * blade / 6 + 2, -4.5 - _u(rng, 0, 3)], [(k + 1) * blade / 6, -4.5]]
    pts = np.array([*teeth, [blade, -4.5], [blade + 3, 0], [blade, 4.5], [0, 4.5]])
    return union(bow, polygon(pts))


def keys(rng: np.random.Generator) -> Item:
    """A bunch of keys on a steel ring."""
    n = int(rng.integers(1, 7))
    ring_r = _u(rng, 10, 16)
    t = np.linspace(0, 2 * np.pi, 24)
    parts = [
        tube(
            np.column_stack([ring_r * np.cos(t), ring_r * np.sin(t), np.zeros_like(t)]),
            1.0,
            mat("steel"),
        )
    ]
    for k in range(n):
        outline, c = _key_outline(rng)
        ang = k * 2 * math.pi / max(n, 1) + _u(rng, -0.3, 0.3)
        rot = rotation(yaw=ang, roll=_u(rng, -0.2, 0.2))
        centre = rot @ np.array([c[0] + ring_r + 20, c[1], 0]) + np.array([0, 0, k * 2.2])
        parts.append(
            plate(tuple(centre), outline, 2.0, mat(_pick(rng, ("brass", "nickel", "steel"))), rot)
        )
    return Item("keys", "metal", parts).centred()


def coins(rng: np.random.Generator) -> Item:
    """A handful of coins."""
    parts = []
    for _ in range(int(rng.integers(1, 12))):
        c = (_u(rng, -40, 40), _u(rng, -40, 40), _u(rng, 0, 10))
        tilt = rotation(pitch=_u(rng, -0.3, 0.3))
        metal = mat(_pick(rng, ("copper", "brass", "nickel", "steel")))
        parts.append(cylinder(c, _u(rng, 8, 14), _u(rng, 1.5, 2.5), metal, tilt))
    return Item("coins", "metal", parts).centred()


def hardware(rng: np.random.Generator) -> Item:
    """Hinges, screws and nails, brackets: small steel parts, loose or in a bag."""
    parts: list[Part] = []
    for _ in range(int(rng.integers(1, 25))):
        c = (_u(rng, -50, 50), _u(rng, -40, 40), _u(rng, 0, 15))
        rot = rotation(yaw=_u(rng, 0, math.pi), pitch=math.pi / 2 + _u(rng, -0.3, 0.3))
        kind = rng.random()
        if kind < 0.6:  # screw or nail
            parts.append(cylinder(c, _u(rng, 1.2, 3), _u(rng, 15, 70), mat("steel"), rot))
        elif kind < 0.8:  # hinge: two leaves and a pin
            lw, ll = _u(rng, 20, 40), _u(rng, 40, 90)
            flat = rotation(yaw=_u(rng, 0, math.pi))
            for s in (-1, 1):
                parts.append(
                    box(
                        tuple(np.add(c, flat @ np.array([0, s * lw / 2, 0]))),
                        (ll, lw, 1.5),
                        mat("steel"),
                        flat,
                    )
                )
            parts.append(cylinder(c, 2.5, ll, mat("steel"), flat @ ALONG_X))
        else:  # bracket
            parts.append(
                box(c, (_u(rng, 30, 80), 15, 2), mat("steel"), rotation(yaw=_u(rng, 0, 3)))
            )
    return Item("hardware", "metal", parts).centred()


def hand_tool(rng: np.random.Generator) -> Item:
    """A hand tool: screwdriver, spanner, pliers, hammer or tape measure."""
    kind = _pick(rng, ("screwdriver", "spanner", "pliers", "hammer", "tape"))
    parts: list[Part] = []
    if kind == "screwdriver":
        shaft = _u(rng, 60, 150)
        parts.append(cylinder((shaft / 2, 0, 0), _u(rng, 2, 3.5), shaft, mat("steel"), ALONG_X))
        parts.append(
            cylinder((-45, 0, 0), 14, 95, mat(_pick(rng, ("plastic", "polycarbonate"))), ALONG_X)
        )
    elif kind == "spanner":
        length = _u(rng, 120, 250)
        jaw = _u(rng, 12, 22)
        handle = polygon(
            np.array(
                [[0, -jaw * 0.35], [length, -jaw * 0.35], [length, jaw * 0.35], [0, jaw * 0.35]]
            )
        )
        head = polygon(ellipse_points(length, 0, jaw, jaw, 20))
        ring = polygon(ellipse_points(0, 0, jaw * 0.8, jaw * 0.8, 20))
        outline, c = union(handle, head, ring)
        h, w = outline.shape
        xs = np.arange(w) + c[0] - w / 2
        ys = np.arange(h) + c[1] - h / 2
        notch = (xs[None, :] > length - jaw * 0.2) & (np.abs(ys[:, None]) < jaw * 0.45)
        outline = outline * ~notch
        parts.append(plate((c[0], c[1], 0), outline, _u(rng, 4, 7), mat("steel")))
    elif kind == "pliers":
        length = _u(rng, 140, 220)
        for s in (-1, 1):
            leg = polygon(np.array([[0, -4], [length, -6 + s * 18], [length, 6 + s * 18], [0, 4]]))
            rot = rotation(yaw=s * 0.04)
            parts.append(plate((leg[1][0], leg[1][1], s * 4.0), leg[0], 7, mat("steel"), rot))
            parts.append(
                box((length * 0.7, s * 14, s * 4.0), (length * 0.55, 14, 12), mat("pvc"), rot)
            )
    elif kind == "hammer":
        length = _u(rng, 250, 330)
        parts.append(
            box((length / 2, 0, 0), (length, 30, 22), mat(_pick(rng, ("wood", "plastic"))))
        )
        parts.append(box((length - 10, 0, 0), (30, 110, 28), mat("steel")))
    else:
        parts += shell_box((0, 0, 20), (70, 70, 40), 2.5, mat("plastic"))
        parts += shell_cylinder((0, 0, 20), 30, 20, 8, mat("steel").with_density(3.5))
    return Item(kind, "tools", parts).centred()


def appliance(rng: np.random.Generator) -> Item:
    """A small appliance: a kettle (steel shell, heating ring), a hair dryer (motor, heating
    coil, fan), or an iron (steel soleplate, plastic body, water tank), with its cable."""
    kind = _pick(rng, ("kettle", "hair dryer", "iron"))
    parts: list[Part] = []
    if kind == "kettle":
        r, h = _u(rng, 70, 90), _u(rng, 150, 200)
        body = mat(_pick(rng, ("stainless", "plastic", "plastic")))
        parts += shell_cylinder((0, 0, 0), r, h, 0.8 if body.z > 20 else 2.5, body, ALONG_X)
        ring = np.linspace(0, 2 * np.pi, 30)
        loop = np.column_stack(
            [np.full_like(ring, -h / 2 + 8), 0.6 * r * np.cos(ring), 0.6 * r * np.sin(ring)]
        )
        parts.append(tube(loop, 4, mat("steel")))
        parts.append(cylinder((-h / 2 + 4, 0, 0), r - 2, 3, mat("stainless"), ALONG_X))
        handle = spline(np.array([[-h * 0.35, 0, r], [0, 0, r + 35], [h * 0.35, 0, r]]), 30)
        parts.append(tube(handle, 10, mat("plastic")))
        parts.append(box((-h * 0.3, 0, r + 10), (30, 12, 20), mat("fr4")))
    elif kind == "hair dryer":
        length, r = _u(rng, 150, 230), _u(rng, 35, 45)
        parts += shell_cylinder((0, 0, 0), r, length, 2.5, mat("plastic"), ALONG_X)
        parts.append(cylinder((-length * 0.3, 0, 0), 14, 30, mat("steel"), ALONG_X))
        parts.append(
            cylinder((-length * 0.3, 0, 0), 12, 24, mat("copper").with_density(4), ALONG_X)
        )
        parts.append(helix((-length * 0.05, 0, 0), length * 0.45, r * 0.6, 14, 0.4, mat("nickel")))
        parts.append(box((length * 0.1, 0, 0), (length * 0.45, r * 1.2, 1.2), mat("ceramic")))
        grip = rotation(yaw=-math.pi / 2 - 0.25)
        parts += shell_box(
            tuple(grip @ np.array([70, 0, 0]) + np.array([-length * 0.2, 0, 0])),
            (110, 32, 28),
            2.5,
            mat("plastic"),
            grip,
        )
    else:
        length = _u(rng, 220, 280)
        sole = np.array([[0, -45], [length * 0.7, -45], [length, 0], [length * 0.7, 45], [0, 45]])
        parts.append(outline_plate(sole, 4, mat(_pick(rng, ("aluminium", "stainless")))))
        parts.append(outline_plate(sole * 0.9, 3, mat("steel"), z=5))  # heating element
        parts += shell_box((length * 0.45, 0, 35), (length * 0.8, 80, 60), 2.5, mat("plastic"))
        parts.append(box((length * 0.45, 0, 30), (length * 0.5, 60, 30), mat("water")))
        parts.append(
            tube(
                spline(
                    np.array(
                        [[length * 0.2, 0, 70], [length * 0.5, 0, 100], [length * 0.8, 0, 70]]
                    ),
                    20,
                ),
                12,
                mat("plastic"),
            )
        )
    cord = cable(rng)
    parts += cord.moved(np.eye(3), np.array([0, 0, 60.0])).parts
    return Item(kind, "appliances", parts).centred()


def power_tool(rng: np.random.Generator) -> Item:
    """A cordless drill or driver: plastic housing with a pistol-like grip, a motor with copper
    windings and magnets, a steel gearbox and chuck, and a battery pack of lithium cells."""
    length = _u(rng, 160, 220)
    housing = mat(_pick(rng, ("plastic", "gf-nylon", "polycarbonate")))
    outline = np.array([[0, 0], [length, 5], [length, 60], [0, 65], [-10, 30]])
    parts = [outline_plate(outline, 55, housing, texture=texture(rng, "grain", 0.05))]
    parts.append(box((length * 0.45, 32, 0), (length * 0.7, 45, 45), housing, sign=-1.0))
    grip = rotation(yaw=-0.2)
    parts += shell_box(tuple(np.array([length * 0.3, -55, 0])), (42, 110, 40), 3, housing, grip)
    parts.append(cylinder((length * 0.3, 32, 0), 18, 50, mat("steel"), ALONG_X))
    parts.append(cylinder((length * 0.3, 32, 0), 15, 40, mat("copper").with_density(4.5), ALONG_X))
    parts.append(cylinder((length * 0.65, 32, 0), 17, 40, mat("steel").with_density(5), ALONG_X))
    parts.append(cylinder((length + 15, 32, 0), 12, 35, mat("steel"), ALONG_X))  # chuck
    parts.append(cylinder((length + 45, 32, 0), 3, 50, mat("steel"), ALONG_X))  # bit
    pack = np.array([length * 0.3 - 20, -120, 0])
    parts += shell_box(tuple(pack), (100, 30, 75), 2.5, housing)
    for k in range(int(rng.integers(2, 6))):
        parts.append(
            cylinder(
                tuple(pack + np.array([0, 0, (k - 2) * 19.0])), 9, 65, mat("battery-li"), ALONG_X
            )
        )
    return Item("power tool", "tools", parts).centred()


def umbrella(rng: np.random.Generator) -> Item:
    """A folded umbrella: steel shaft and ribs, nylon canopy wrapped round them, a handle."""
    length = _u(rng, 230, 330) if rng.random() < 0.6 else _u(rng, 600, 850)
    parts = [cylinder((0, 0, 0), 4.5, length, mat("steel"), ALONG_X)]
    for k in range(8):
        a = k * math.pi / 4
        y, z = 9 * math.cos(a), 9 * math.sin(a)
        rib = np.array([[-length * 0.4, y * 0.5, z * 0.5], [length * 0.45, y, z]])
        parts.append(tube(rib, 1.0, mat("steel")))
    parts.append(
        ellipsoid(
            (0, 0, 0),
            (length * 0.95, 36, 36),
            mat("nylon").with_density(0.5),
            texture=texture(rng, "wrinkle", 0.4),
        )
    )
    handle = mat(_pick(rng, ("plastic", "wood", "rubber")))
    parts.append(cylinder((-length / 2 - 40, 0, 0), 14, 80, handle, ALONG_X))
    return Item("umbrella", "clothing", parts).centred()


def accessories(rng: np.random.Generator) -> Item:
    """Accessories: a coiled belt with its buckle, a watch, glasses in a case, jewellery."""
    parts: list[Part] = []
    if rng.random() < 0.6:
        t = np.linspace(0, 2 * np.pi * _u(rng, 1.5, 3), 80)
        rad = 40 + t * 4
        coil = np.column_stack([rad * np.cos(t), rad * np.sin(t), np.zeros_like(t)])
        parts.append(tube(coil, _u(rng, 12, 18), mat("leather").with_density(0.5)))
        frame = np.array([[0, -25], [45, -25], [45, 25], [0, 25]])
        hole = np.array([[5, -20], [40, -20], [40, 20], [5, 20]])
        parts.append(
            outline_plate(
                frame + coil[0, :2] + np.array([0, 0]),
                4,
                mat(_pick(rng, ("zinc", "steel", "brass"))),
                holes=(hole + coil[0, :2],),
            )
        )
    if rng.random() < 0.5:
        x = _u(rng, -60, 60)
        parts.append(cylinder((x, 90, 5), 20, 10, mat("stainless")))
        parts.append(cylinder((x, 90, 5), 6, 11, mat("brass")))  # movement
        band = np.column_stack([np.full(12, x), np.linspace(50, 130, 12), np.zeros(12)])
        parts.append(tube(band, 6, mat(_pick(rng, ("leather", "stainless", "rubber")))))
    if rng.random() < 0.5:
        parts += shell_box(
            (0, -90, 15), (160, 60, 40), 1.5, mat(_pick(rng, ("aluminium", "plastic")))
        )
        for s in (-1, 1):
            lens = ellipse_points(s * 30, -90, 24, 18, 16)
            parts.append(outline_plate(lens, 3, mat("polycarbonate"), z=15))
        parts.append(box((0, -75, 15), (140, 2, 2), mat("nickel")))
    if not parts or rng.random() < 0.3:
        for _ in range(int(rng.integers(2, 8))):
            c = (_u(rng, -50, 50), _u(rng, -50, 50), _u(rng, 0, 10))
            t = np.linspace(0, 2 * np.pi, 20)
            r = _u(rng, 8, 30)
            ring = np.column_stack([c[0] + r * np.cos(t), c[1] + r * np.sin(t), np.full(20, c[2])])
            parts.append(tube(ring, _u(rng, 0.6, 2), mat(_pick(rng, ("brass", "nickel", "tin")))))
    return Item("accessories", "clothing", parts).centred()


def toiletry_bag(rng: np.random.Generator) -> Item:
    """A zipped soft bag (nylon, lining, a metal zip along its top) holding small items."""
    size = (_u(rng, 180, 300), _u(rng, 100, 180), _u(rng, 60, 110))
    parts = [
        ellipsoid(
            (0, 0, 0), size, mat("nylon").with_density(0.15), texture=texture(rng, "weave", 0.3)
        )
    ]
    zip_pts = np.array(
        [
            [-size[0] * 0.45, size[1] * 0.35, size[2] * 0.3],
            [size[0] * 0.45, size[1] * 0.35, size[2] * 0.3],
        ]
    )
    parts.append(zipper(rng, zip_pts, mat(_pick(rng, ("brass", "nickel", "nylon")))))
    parts.append(box(tuple(zip_pts[0]), (20, 10, 4), mat("zinc")))  # slider
    for _ in range(int(rng.integers(2, 5))):
        inner = draw_item(rng, ("toiletries", "batteries", "cable", "keys", "coins"))
        shift = np.array([_u(rng, -50, 50), _u(rng, -30, 30), _u(rng, -15, 15)])
        parts += inner.moved(rotation(yaw=_u(rng, 0, math.pi)), shift).parts
    return Item("toiletry bag", "bags", parts).centred()


def zipper(rng: np.random.Generator, points: np.ndarray, material: Material) -> Part:
    """A zip along the polyline ``points``: a chain of teeth, drawn as a tube whose density
    beads along it."""
    chain = tube(points, 2.2, material.with_density(material.rho * 0.55))
    return replace(chain, texture=texture(rng, "grain", 0.6))


# ---------------------------------------------------------------- packing and clutter


def bubble_wrap(rng: np.random.Generator) -> Item:
    """A sheet of bubble wrap or air pillows."""
    size = (_u(rng, 150, 450), _u(rng, 120, 350), _u(rng, 8, 40))
    m = mat("bubble-wrap").with_density(_u(rng, 0.02, 0.06))
    parts = [box((0, 0, 0), size, m, texture=texture(rng, "bubbles", 0.6))]
    return Item("bubble wrap", "packing", parts).centred()


def foam(rng: np.random.Generator) -> Item:
    """A block or sheet of foam, or a moulded insert."""
    size = (_u(rng, 100, 400), _u(rng, 80, 300), _u(rng, 10, 80))
    m = mat("foam").with_density(_u(rng, 0.02, 0.07))
    parts = [box((0, 0, 0), size, m, texture=texture(rng, "grain", 0.1))]
    if rng.random() < 0.4:  # moulded recess
        parts.append(
            box((0, 0, size[2] * 0.2), (size[0] * 0.6, size[1] * 0.6, size[2] * 0.6), m, sign=-1.0)
        )
    return Item("foam", "packing", parts).centred()


def crumpled_paper(rng: np.random.Generator) -> Item:
    """Crumpled paper or paper fill: low-density lumps with creases."""
    parts = []
    for _ in range(int(rng.integers(2, 8))):
        c = (_u(rng, -120, 120), _u(rng, -90, 90), _u(rng, -30, 30))
        size = (_u(rng, 60, 160), _u(rng, 60, 140), _u(rng, 40, 100))
        m = mat("paper").with_density(_u(rng, 0.04, 0.12))
        parts.append(
            ellipsoid(c, size, m, rotation(yaw=_u(rng, 0, 3)), texture=texture(rng, "wrinkle", 0.7))
        )
    return Item("crumpled paper", "packing", parts).centred()


def divider(rng: np.random.Generator) -> Item:
    """A cardboard insert or inner box."""
    size = (_u(rng, 100, 350), _u(rng, 80, 250), _u(rng, 40, 150))
    parts = shell_box(
        (0, 0, 0), size, _u(rng, 2, 5), mat("cardboard").with_density(_u(rng, 0.15, 0.5))
    )
    return Item("inner box", "packing", parts).centred()


_CLUTTER_MATERIALS = (
    "plastic",
    "plastic",
    "rubber",
    "wood",
    "paper",
    "leather",
    "nylon",
    "glass",
    "ceramic",
    "pvc",
    "aluminium",
    "food",
    "wax",
    "water",
    "steel",
    "brass",
)


def clutter(rng: np.random.Generator) -> Item:
    """An unnamed object: a random solid or hollow block, ball or rod of a random material."""
    m = mat(_pick(rng, _CLUTTER_MATERIALS), rng, 0.2)
    size = (_u(rng, 15, 160), _u(rng, 10, 120), _u(rng, 5, 60))
    rot = rotation(yaw=_u(rng, 0, math.pi))
    kind = rng.random()
    if kind < 0.35:
        parts = [box((0, 0, 0), size, m, rot)]
    elif kind < 0.55:
        parts = shell_box((0, 0, 0), size, min(size) * _u(rng, 0.05, 0.2), m, rot)
    elif kind < 0.8:
        parts = [ellipsoid((0, 0, 0), size, m, rot)]
    else:
        parts = [cylinder((0, 0, 0), size[2] / 2, size[0], m, rot @ ALONG_X)]
    return Item("object", "clutter", parts).centred()


CATALOGUE: dict[str, tuple[float, Generator]] = {
    "folded clothes": (12, folded_clothes),
    "clothes": (6, crumpled_clothes),
    "shoes": (5, shoes),
    "books": (8, books),
    "paper": (4, paper_stack),
    "circuit board": (3, circuit_board),
    "batteries": (2, battery),
    "cable": (5, cable),
    "charger": (4, charger),
    "phone": (3, phone),
    "laptop": (1.5, laptop),
    "headphones": (2, headphones),
    "power bank": (1.5, power_bank),
    "bottle": (5, bottle),
    "toiletries": (5, cosmetics),
    "toy": (5, toy),
    "cutlery": (2, cutlery),
    "pan": (1.5, pan),
    "mug": (3, mug),
    "food": (5, food),
    "keys": (2, keys),
    "coins": (2, coins),
    "hardware": (2, hardware),
    "hand tool": (2.5, hand_tool),
    "bubble wrap": (5, bubble_wrap),
    "foam": (4, foam),
    "crumpled paper": (5, crumpled_paper),
    "inner box": (3, divider),
    "clutter": (7, clutter),
    "appliance": (2, appliance),
    "power tool": (1.5, power_tool),
    "umbrella": (1.5, umbrella),
    "accessories": (3, accessories),
    "toiletry bag": (2.5, toiletry_bag),
}
"""Normal item generators by name, with their relative frequency in parcels."""

DENSE = (
    "laptop",
    "pan",
    "books",
    "power bank",
    "hand tool",
    "food",
    "charger",
    "hardware",
    "appliance",
    "power tool",
)
"""Items dense enough to hide something beneath them."""

METAL_HEAVY = ("laptop", "pan", "hand tool", "hardware", "power bank", "power tool")
"""The densest items, which can hide a threat almost completely."""

VOID_FILL = ("bubble wrap", "foam", "crumpled paper")
"""Packing that fills the space around the goods."""

FLAT_GOODS = ("paper", "phone", "cutlery", "keys", "coins", "circuit board")
"""Goods thin enough for any mailer."""


LUGGAGE_GOODS = {
    "folded clothes": 30,
    "clothes": 15,
    "shoes": 8,
    "toiletry bag": 5,
    "toiletries": 4,
    "books": 4,
    "phone": 2,
    "charger": 2,
    "cable": 2,
    "umbrella": 2,
    "accessories": 4,
    "laptop": 1.5,
    "bottle": 2,
    "food": 2,
    "headphones": 1.5,
    "power bank": 1,
    "toy": 1,
}
"""What people pack in a holdall or suitcase, with its own frequencies: mostly clothes."""


def draw_item(
    rng: np.random.Generator,
    names: tuple[str, ...] | None = None,
    weights: dict[str, float] | None = None,
) -> Item:
    """One normal item, its kind drawn by catalogue frequency (from ``names`` if given), or by
    ``weights`` (name → relative frequency) if given."""
    if weights is not None:
        keys = tuple(weights)
        w = np.array(list(weights.values()), dtype=np.float64)
    else:
        keys = tuple(CATALOGUE) if names is None else names
        w = np.array([CATALOGUE[k][0] for k in keys], dtype=np.float64)
    name = keys[int(rng.choice(len(keys), p=w / w.sum()))]
    item = CATALOGUE[name][1](rng)
    # Nothing real is a uniform slab: density and thickness wander over an item. One pattern for
    # all its plain parts, so a cavity cancels its shell exactly where they overlap.
    wander = texture(rng, "blotch", _u(rng, 0.05, 0.2))
    item.parts = [p if p.texture is not None else replace(p, texture=wander) for p in item.parts]
    return item
