"""Threat items: pistol, revolver, rifle part, knife and an improvised device.

Built like the normal catalogue (own frame, x = length, z = thinnest side) from steel boxes,
cylinders, plates and wires, so a threat differs from normal contents by its shape and make-up,
not by a rendering trick.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from xadt.synth.catalogue import _pick, _u
from xadt.synth.parts import (
    ALONG_X,
    ALONG_Y,
    Item,
    Part,
    box,
    cylinder,
    ellipsoid,
    mat,
    plate,
    polygon,
    shell_box,
    shell_cylinder,
    spline,
    tube,
)
from xadt.synth.shapes import rotation

THREATS = ("pistol", "revolver", "rifle", "knife", "ied")
"""Threat kinds that :func:`make_threat` builds."""


def _trigger_guard(x: float, y: float, size: float, material_name: str) -> Part:
    t = np.linspace(math.pi, 2 * math.pi, 18)
    pts = np.column_stack([x + size * np.cos(t), y + size * 0.8 * np.sin(t), np.zeros_like(t)])
    return tube(pts, 2.5, mat(material_name))


def pistol(rng: np.random.Generator, disassembled: bool = False) -> Item:
    """A semi-automatic pistol: slide, barrel, frame, angled grip with a loaded magazine.

    Disassembled, only the slide with its barrel, or only the frame with grip and magazine.
    """
    ls, hs, ts = _u(rng, 150, 200), _u(rng, 27, 34), _u(rng, 22, 30)
    polymer = rng.random() < 0.6
    frame = "nylon" if polymer else "steel"
    slide = shell_box((0, 0, 0), (ls, hs, ts), 3.5, mat("steel"))
    slide += shell_cylinder((ls * 0.05, 0, 0), 7, ls * 0.9, 2.5, mat("steel"), ALONG_X)
    lower = [box((-ls * 0.05, -hs / 2 - 7, 0), (ls * 0.8, 14, ts - 4), mat(frame))]
    angle = _u(rng, 0.2, 0.35)
    grip_len = _u(rng, 95, 125)
    grip_rot = rotation(yaw=angle)
    gc = np.array([-ls * 0.33, -hs / 2 - grip_len / 2, 0])
    gc[0] -= math.sin(angle) * grip_len / 2
    lower.append(box(tuple(gc), (_u(rng, 30, 36), grip_len, ts + 2), mat(frame), grip_rot))
    lower += shell_box(tuple(gc), (24, grip_len * 0.95, ts - 8), 1.0, mat("steel"), grip_rot)
    lower.append(box(tuple(gc), (20, grip_len * 0.8, 9), mat("brass").with_density(4.5), grip_rot))
    lower.append(_trigger_guard(-ls * 0.05, -hs / 2 - 12, 20, frame))
    lower.append(box((-ls * 0.08, -hs / 2 - 18, 0), (5, 16, 6), mat("steel"), rotation(yaw=0.3)))
    if not disassembled:
        return Item("pistol", "threat", slide + lower).centred()
    if rng.random() < 0.5:
        return Item("pistol slide", "threat", slide).centred()
    return Item("pistol frame", "threat", lower).centred()


def revolver(rng: np.random.Generator, disassembled: bool = False) -> Item:
    """A revolver: barrel, frame, a six-chamber cylinder with cartridges, wooden grip.

    Disassembled, only the barrel, or only the loaded cylinder.
    """
    barrel = _u(rng, 55, 150)
    front = shell_cylinder((barrel / 2 + 20, 0, 0), 9, barrel, 5, mat("steel"), ALONG_X)
    front.append(box((barrel * 0.5 + 20, 10, 0), (barrel, 6, 6), mat("steel")))  # rib
    drum_r = _u(rng, 17, 20)
    drum = [cylinder((-5, -2, 0), drum_r, 38, mat("steel"), ALONG_X)]
    for k in range(6):
        a = k * math.pi / 3
        c = (-5, -2 + drum_r * 0.55 * math.cos(a), drum_r * 0.55 * math.sin(a))
        drum.append(cylinder(c, 4.8, 38, mat("steel"), ALONG_X, sign=-1.0))
        if rng.random() < 0.8:
            drum.append(cylinder(c, 4.6, 30, mat("brass"), ALONG_X))
            drum.append(cylinder((c[0] + 15, c[1], c[2]), 4.4, 10, mat("lead"), ALONG_X))
    if disassembled:
        if rng.random() < 0.5:
            return Item("revolver barrel", "threat", front).centred()
        return Item("revolver cylinder", "threat", drum).centred()
    body = shell_box((-5, -2, 0), (70, 50, 34), 6, mat("steel"))
    rot = rotation(yaw=0.45)
    body.append(box((-55, -50, 0), (36, 90, 34), mat("wood"), rot))
    body.append(box((-52, -42, 0), (14, 80, 8), mat("steel"), rot))
    body.append(_trigger_guard(-10, -28, 18, "steel"))
    body.append(box((-40, 22, 0), (20, 10, 8), mat("steel"), rotation(yaw=-0.4)))
    return Item("revolver", "threat", front + body + drum).centred()


def rifle_part(
    rng: np.random.Generator, max_length: float = 600.0, disassembled: bool = False
) -> Item:
    """A rifle barrel, a receiver with its bolt, or both: a firearm partly taken apart.

    Disassembled further, a short barrel section or the bolt alone.
    """
    if disassembled:
        if rng.random() < 0.5:
            length = _u(rng, 150, 280)
            barrel = shell_cylinder((0, 0, 0), _u(rng, 9, 12), length, 6, mat("steel"), ALONG_X)
            return Item("rifle barrel section", "threat", barrel).centred()
        bolt = [cylinder((0, 0, 0), 9, _u(rng, 90, 130), mat("steel"), ALONG_X)]
        bolt.append(cylinder((-20, 15, 0), 4, 35, mat("steel"), ALONG_Y))
        bolt.append(ellipsoid((-20, 32, 0), (14, 14, 14), mat("steel")))
        return Item("rifle bolt", "threat", bolt).centred()
    kind = _pick(rng, ("barrel", "receiver", "barrel+receiver"))
    parts: list[Part] = []
    x = 0.0
    if "receiver" in kind:
        length = _u(rng, 150, 230)
        size = (length, _u(rng, 40, 55), _u(rng, 28, 36))
        parts += shell_box((length / 2, 0, 0), size, 3.0, mat("steel"))
        parts.append(cylinder((length * 0.45, 5, 0), 9, length * 0.6, mat("steel"), ALONG_X))
        parts.append(box((length * 0.4, -30, 0), (30, 25, 20), mat("steel")))  # trigger group
        mag_well = (length * 0.65, -40, 0)
        parts.append(box(mag_well, (30, 60, 22), mat("steel").with_density(3)))
        x = length
    if "barrel" in kind:
        room = max(max_length - x, 200.0)
        length = min(_u(rng, 300, 520), room)
        radius = _u(rng, 9, 13)
        parts += shell_cylinder((x + length / 2, 0, 0), radius, length, 6, mat("steel"), ALONG_X)
        parts.append(box((x + length - 20, 12, 0), (12, 12, 8), mat("steel")))  # front sight
        if rng.random() < 0.5:  # gas block
            parts.append(cylinder((x + length * 0.45, 0, 0), 15, 25, mat("steel"), ALONG_X))
    return Item(f"rifle {kind}", "threat", parts).centred()


def _blade_outline(
    rng: np.random.Generator, length: float, width: float
) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(0, length, 16)
    belly = np.where(
        x < 0.6 * length, 0.0, width * 0.8 * ((x - 0.6 * length) / (0.4 * length)) ** 2
    )
    edge = np.column_stack([x, belly])
    spine_drop = _u(rng, 0.0, 0.3) * width
    spine = np.array([[length, width * 0.8], [length * 0.7, width - spine_drop], [0, width]])
    return polygon(np.vstack([edge, spine]) - np.array([0, width / 2]))


def knife(rng: np.random.Generator, disassembled: bool = False) -> Item:
    """A fixed-blade or folding knife: pointed steel blade, handle with a tang or liners.

    Disassembled, the bare blade.
    """
    folding = rng.random() < 0.3
    blade_len = _u(rng, 70, 110) if folding else _u(rng, 100, 220)
    width = _u(rng, 18, 40)
    outline, c = _blade_outline(rng, blade_len, width)
    t = _u(rng, 2.0, 4.5)
    parts = [plate((c[0], c[1], 0), outline, t, mat("stainless"))]
    if disassembled:
        return Item("knife blade", "threat", parts).centred()
    handle_len = _u(rng, 90, 130)
    handle = mat(_pick(rng, ("wood", "plastic", "rubber", "nylon")))
    hw = width * 0.9
    if folding:
        parts.append(box((-handle_len / 2, 0, 0), (handle_len, hw, 12), handle))
        for s in (-1, 1):
            parts.append(
                box((-handle_len / 2, 0, s * 4.0), (handle_len, hw * 0.9, 1.2), mat("steel"))
            )
        parts.append(cylinder((-3, 0, 0), 3, 14, mat("steel")))
    else:
        parts.append(ellipsoid((-handle_len / 2, 0, 0), (handle_len, hw, 22), handle))
        parts.append(
            box((-handle_len / 2, 0, 0), (handle_len * 0.9, width * 0.35, t), mat("stainless"))
        )
        if rng.random() < 0.6:
            parts.append(box((-2, 0, 0), (5, width * 1.5, 10), mat("brass")))  # guard
    return Item("knife", "threat", parts).centred()


def ied(rng: np.random.Generator, disassembled: bool = False) -> Item:
    """An improvised device: dense organic block, battery, wires, detonator and a switch board.

    Disassembled, the block with its detonator and wires, without the battery.
    """
    size = (_u(rng, 80, 200), _u(rng, 50, 120), _u(rng, 25, 60))
    parts = [box((0, 0, 0), size, mat("explosive", rng, 0.1))]
    wrapped = (size[0] + 1.2, size[1] + 1.2, size[2] + 1.2)
    parts += shell_box((0, 0, 0), wrapped, 0.6, mat("pvc"))  # tape
    det = (size[0] * 0.2, size[1] * 0.2, 0)
    parts.append(cylinder(det, 3.5, 45, mat(_pick(rng, ("aluminium", "copper"))), ALONG_X))
    parts.append(cylinder((det[0] + 8, det[1], 0), 2.5, 12, mat("lead")))
    bx = -size[0] / 2 - 45
    if not disassembled:
        if rng.random() < 0.5:
            parts += shell_box((bx, 0, 0), (48.5, 26.5, 17.5), 0.4, mat("steel"))
            parts.append(box((bx, 0, 0), (46, 25, 16), mat("battery-alk")))
        else:
            for k in range(int(rng.integers(2, 5))):
                y = (k - 1) * 15.0
                parts += shell_cylinder((bx, y, 0), 7.25, 50.5, 0.3, mat("steel"), ALONG_X)
                parts.append(cylinder((bx, y, 0), 7.0, 49, mat("battery-alk"), ALONG_X))
    board = (bx + 10, size[1] / 2 + 30, 0)
    parts.append(box(board, (45, 30, 1.6), mat("fr4")))
    parts.append(box(board, (12, 12, 4), mat("glass").with_density(1.9)))
    for k in range(int(rng.integers(2, 5))):
        a = np.array([bx + 20, (k - 1.5) * 6, 5])
        b = np.array([det[0] + 22, det[1] + (k - 1.5) * 3, 2])
        mid = np.array([_u(rng, bx, det[0]), size[1] / 2 + _u(rng, 10, 60), _u(rng, 0, 20)])
        pts = spline(np.array([a, np.array([board[0], board[1], 3]), mid, b]), 50)
        parts.append(tube(pts, 1.3, mat("pvc")))
        parts.append(tube(pts, 0.5, mat("copper")))
    return Item("improvised device", "threat", parts).centred()


_BUILDERS: dict[str, Callable[[np.random.Generator, bool], Item]] = {
    "pistol": pistol,
    "revolver": revolver,
    "knife": knife,
    "ied": ied,
}


def make_threat(
    rng: np.random.Generator,
    kind: str,
    max_length: float = 600.0,
    *,
    disassembled: bool = False,
) -> Item:
    """Build a threat of ``kind`` (one of :data:`THREATS`), at most about ``max_length`` mm long;
    ``disassembled`` leaves only one part of it (a slide, a cylinder, a blade, a bolt)."""
    if kind == "rifle":
        return rifle_part(rng, max_length, disassembled).as_threat()
    return _BUILDERS[kind](rng, disassembled).as_threat()
