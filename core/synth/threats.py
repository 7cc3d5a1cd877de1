"""Threat items as assemblies of parts with their own materials: pistols, revolvers, rifle and
shotgun parts, knives and improvised devices.

Built like the normal catalogue (own frame, x = length, y = height of the side profile, z =
thinnest side), so a threat differs from normal contents by its shape and make-up, not by a
rendering trick: a pistol is a hollow steel slide over a barrel with a bore and a recoil spring,
on a lighter polymer or steel frame with a trigger group and pins, and a magazine of brass cases
and lead bullets in the grip; a knife's blade tapers to its edge and its tang runs between scales
held by rivets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from xadt.synth.catalogue import _pick, _u
from xadt.synth.parts import (
    ALONG_X,
    Item,
    Part,
    box,
    cylinder,
    ellipsoid,
    helix,
    mat,
    outline_plate,
    shell_box,
    shell_cylinder,
    spline,
    texture,
    tube,
)
from xadt.synth.shapes import rotation

THREATS = ("pistol", "revolver", "rifle", "knife", "ied")
"""Threat kinds that :func:`make_threat` builds."""

PISTOL_STYLES = ("polymer", "polymer", "steel", "steel", "alloy", "compact")
"""Frame styles of pistols, drawn uniformly: moulded glass-filled nylon (a hollow shell), steel,
aluminium alloy, and compact (a shorter slide on a polymer or steel frame)."""


def _arc(cx: float, cy: float, r: float, a0: float, a1: float, n: int = 10) -> np.ndarray:
    t = np.linspace(a0, a1, n)
    return np.column_stack([cx + r * np.cos(t), cy + r * np.sin(t)])


def cartridge(
    base: tuple[float, float, float],
    calibre: float,
    case_len: float,
    bullet_len: float,
    rot: np.ndarray,
    *,
    loaded: bool = True,
) -> list[Part]:
    """A cartridge from ``base`` along ``rot``'s x: brass case with powder, lead bullet; a spent
    case (``loaded`` False) is the empty brass tube."""
    r = calibre / 2
    axis = rot @ np.array([1.0, 0, 0])
    b = np.asarray(base, float)
    along = rot @ ALONG_X
    parts = [
        cylinder(tuple(b + axis * case_len / 2), r + 0.4, case_len, mat("brass"), along),
        cylinder(
            tuple(b + axis * case_len / 2), r - 0.2, case_len - 1.5, mat("brass"), along, sign=-1.0
        ),
    ]
    if loaded:
        parts.append(
            cylinder(tuple(b + axis * case_len / 2), r - 0.25, case_len - 2, mat("powder"), along)
        )
        tip = b + axis * (case_len + bullet_len * 0.3)
        parts.append(ellipsoid(tuple(tip), (bullet_len * 1.3, calibre, calibre), mat("lead"), rot))
    return parts


def _shifted(parts: list[Part], offset: np.ndarray) -> list[Part]:
    return [replace(p, shape=p.shape.moved(np.eye(3), offset)) for p in parts]


def _magazine(
    top: np.ndarray, grip_rot: np.ndarray, length: float, calibre: float, rounds: int
) -> list[Part]:
    """A box magazine hanging from ``top`` along the grip's −y: thin steel body, follower, spring
    and a staggered column of ``rounds`` cartridges lying along x."""
    down = grip_rot @ np.array([0.0, -1, 0])
    width = calibre * 1.9 + 3
    depth = calibre * 1.7 + 2
    centre = top + down * length / 2
    parts = shell_box(tuple(centre), (depth + 14, length, width), 0.8, mat("steel"), grip_rot)
    pitch = calibre * 0.85
    for k in range(rounds):
        side = (k % 2 - 0.5) * calibre * 0.9
        base = top + down * (5 + k * pitch) + grip_rot @ np.array([-depth / 2, 0, side])
        parts += cartridge(tuple(base), calibre, calibre * 2.0, calibre * 1.4, grip_rot)
    spring_top = top + down * (8 + rounds * pitch)
    coil = grip_rot @ rotation(yaw=-math.pi / 2)
    room = max(length - 10 - rounds * pitch, 6.0)
    parts.append(
        helix(tuple(spring_top), room, depth * 0.35, max(room / 6, 2), 0.6, mat("steel"), coil)
    )
    parts.append(
        box(tuple(top + down * (length - 3)), (depth + 14, 6, width), mat("plastic"), grip_rot)
    )
    return parts


def pistol(rng: np.random.Generator, disassembled: bool = False) -> Item:
    """A semi-automatic pistol: hollow steel slide with ejection port and sights over a barrel
    with its bore and a recoil spring on a guide rod; a polymer (or steel) frame with dust cover,
    trigger guard and angled grip; trigger, trigger bar, pins; a magazine in the grip, loaded or
    not, or lying beside the gun.

    Disassembled, the slide with its barrel and spring, or the frame with the magazine.
    """
    ls = _u(rng, 150, 205)  # slide length
    hs = _u(rng, 26, 34)  # slide height
    ts = _u(rng, 21, 29)  # slide width (thickness in z)
    style = _pick(rng, PISTOL_STYLES)
    if style == "compact":
        ls *= 0.8
        style = _pick(rng, ("polymer", "steel"))
    if style == "polymer":
        frame_m = mat("gf-nylon", rng, 0.05)
    else:
        frame_m = mat("steel" if style == "steel" else "aluminium")
    calibre = _pick(rng, ("9", "9", "45", "22"))
    cal = {"9": 9.0, "45": 11.4, "22": 5.6}[calibre]
    y_slide = hs / 2
    # Slide: profile with a bevelled muzzle and a sloped rear, cut hollow inside.
    front_bevel = _u(rng, 3, 10)
    slide_pts = np.array(
        [[0, 0], [ls, 0], [ls, hs - front_bevel], [ls - front_bevel, hs], [8, hs], [0, hs - 5]]
    )
    slide: list[Part] = [outline_plate(slide_pts, ts, mat("steel"))]
    slide.append(
        box((ls * 0.5, hs * 0.45, 0), (ls * 0.8, hs * 0.55, ts - 7), mat("steel"), sign=-1.0)
    )
    port = (ls * 0.55, hs * 0.7, ts * 0.3)
    slide.append(box(port, (ls * 0.22, hs * 0.45, ts * 0.45), mat("steel"), sign=-1.0))
    for x in (ls - 10, 10):  # sights
        slide.append(box((x, hs + 2.5, 0), (7, 5, 4 if x > 20 else 9), mat("steel")))
    n_serr = int(rng.integers(5, 11))
    for k in range(n_serr):  # rear cocking serrations
        slide.append(
            box(
                (14 + k * 2.6, hs * 0.5, ts / 2 - 0.6),
                (1.2, hs * 0.7, 1.2),
                mat("steel"),
                sign=-1.0,
            )
        )
    barrel_r = cal / 2 + 3.2
    bl = ls * 0.92
    slide += shell_cylinder(
        (ls - bl / 2 - 1, y_slide + 2, 0), barrel_r, bl, barrel_r - cal / 2, mat("steel"), ALONG_X
    )
    slide.append(box((ls - bl + 14, y_slide + 4, 0), (22, 12, 14), mat("steel")))  # chamber
    rod_y = y_slide - barrel_r - 3.5
    slide.append(cylinder((ls * 0.55, rod_y, 0), 2.2, ls * 0.6, mat("steel"), ALONG_X))
    slide.append(helix((ls * 0.25, rod_y, 0), ls * 0.6, 4.2, _u(rng, 11, 17), 0.55, mat("steel")))
    # Frame: dust cover under the slide, trigger guard, grip (angled back), one outline.
    angle = _u(rng, 0.2, 0.33)
    grip_len = _u(rng, 95, 125) * (0.8 if style == "compact" else 1.0)
    grip_w = _u(rng, 30, 36)
    gx0 = _u(rng, 2, 10)  # rear of the grip at the top
    down = np.array([-math.sin(angle), -math.cos(angle)])
    back = np.array([-math.cos(angle), math.sin(angle)]) * -1  # across the grip, forwards
    g0 = np.array([gx0, 0.0])
    g1 = g0 + back * grip_w
    frame_pts = np.array(
        [
            [ls * 0.86, 0],
            [ls * 0.86, -9],
            [g1[0] + 42, -9],
            [g1[0] + 40, -32],  # front of trigger guard
            [g1[0] + 30, -36],
            g1 + down * 25,
            g1 + down * grip_len,
            g0 + down * (grip_len + 3),
            g0 + down * 20,
            [gx0 - 8, -4],
            [gx0 - 4, 0],
        ]
    )
    guard_hole = np.array(
        [[g1[0] + 4, -12], [g1[0] + 35, -12], [g1[0] + 34, -29], [g1[0] + 5, -30]]
    )
    frame: list[Part] = [
        outline_plate(
            frame_pts, ts + 1, frame_m, holes=(guard_hole,), texture=texture(rng, "grain", 0.04)
        )
    ]
    if style == "polymer":
        # A moulded shell: the X-rays cross its two side walls, not a solid block of nylon.
        wall = _u(rng, 3.0, 4.0)
        inner = replace(frame[0].shape, thickness=ts + 1 - 2 * wall)
        frame.append(replace(frame[0], shape=inner, sign=-1.0))
    frame.append(box((ls * 0.45, -3, 0), (ls * 0.65, 4, 3), mat("steel")))  # rails / chassis
    frame.append(box((g1[0] + 14, -20, 0), (4, 16, 6), mat("steel"), rotation(yaw=0.25)))
    frame.append(box((g1[0] + 30, -7, 0), (40, 2.5, 3), mat("steel")))  # trigger bar
    for px, py in ((g1[0] + 10, -5), (g1[0] + 36, -4), (gx0 + 4, -3)):  # frame pins
        frame.append(cylinder((px, py, 0), 1.6, ts + 2, mat("steel")))
    grip_rot = rotation(yaw=-angle)
    mag_top = np.array([*(g0 + back * grip_w / 2 + down * 4), 0.0])
    rounds = int(rng.integers(0, 11)) if rng.random() < 0.8 else 0
    mag_len = grip_len + (12 if rng.random() < 0.3 else 0)
    magazine = _magazine(mag_top, grip_rot, mag_len, cal, rounds)
    if style != "polymer":  # the magazine well of a solid metal frame
        frame.append(
            box(
                tuple(mag_top + grip_rot @ np.array([0, -grip_len / 2, 0])),
                (grip_w - 8, grip_len - 8, ts - 9),
                frame_m,
                grip_rot,
                sign=-1.0,
            )
        )
    if disassembled:
        if rng.random() < 0.5:
            return Item("pistol slide", "threat", slide).centred()
        return Item("pistol frame", "threat", frame + magazine).centred()
    if rng.random() < 0.2:  # magazine out, lying beside the gun
        beside = np.array([ls * 0.5, -grip_len * 0.4, ts + 6]) - mag_top
        magazine = _shifted(magazine, beside)
    name = "pistol" if rounds else "pistol (unloaded)"
    return Item(name, "threat", slide + frame + magazine).centred()


def revolver(rng: np.random.Generator, disassembled: bool = False) -> Item:
    """A revolver: steel frame with a window for the cylinder, a barrel with bore and ejector rod
    in line with the top chamber, a five- or six-chamber cylinder with cartridges, hammer spur,
    trigger and guard, a grip frame around the mainspring between wooden or rubber grip panels
    held by a screw, the grip swept down and back under the hammer.

    Disassembled, the barrel, or the loaded cylinder.
    """
    barrel = _u(rng, 50, 150)
    chambers = 5 if rng.random() < 0.3 else 6
    cal = _u(rng, 9, 11.5)
    drum_r = cal * 1.75 + 1.5
    drum_l = _u(rng, 36, 42)
    t = drum_r * 2 + 1
    bore_y = drum_r * 0.55  # the barrel lines up with the top chamber, not the cylinder's axis
    barrel_r = cal / 2 + 4.5
    # Side profile, origin at the cylinder's axis, x forwards.
    muzzle_x = drum_l / 2 + 8 + barrel / 2
    front: list[Part] = []
    front += shell_cylinder((muzzle_x, bore_y, 0), barrel_r, barrel, 4.5, mat("steel"), ALONG_X)
    front.append(box((muzzle_x, bore_y + barrel_r, 0), (barrel, 5, 6), mat("steel")))  # rib
    front.append(
        box((muzzle_x + barrel / 2 - 5, bore_y + barrel_r + 4, 0), (8, 6, 3), mat("steel"))
    )
    rod_y = bore_y - barrel_r - 2.6
    front.append(
        cylinder((muzzle_x - barrel * 0.1, rod_y, 0), 2.6, barrel * 0.8, mat("steel"), ALONG_X)
    )
    drum: list[Part] = [cylinder((0, 0, 0), drum_r, drum_l, mat("steel"), ALONG_X)]
    loaded = rng.random() < 0.85
    spent = int(rng.integers(0, chambers)) if rng.random() < 0.2 else 0
    for k in range(chambers):
        a = math.pi / 2 + k * 2 * math.pi / chambers
        c = (0.0, drum_r * 0.55 * math.sin(a), drum_r * 0.55 * math.cos(a))
        drum.append(cylinder(c, cal / 2 + 0.3, drum_l + 1, mat("steel"), ALONG_X, sign=-1.0))
        if loaded:
            drum += cartridge(
                (-drum_l / 2 - 1, c[1], c[2]),
                cal,
                drum_l * 0.85,
                cal * 1.2,
                np.eye(3),
                loaded=k >= spent,
            )
    drum.append(cylinder((0, 0, 0), 2.5, drum_l + 10, mat("steel"), ALONG_X))  # crane pin
    if disassembled:
        if rng.random() < 0.5:
            return Item("revolver barrel", "threat", front).centred()
        return Item("revolver cylinder", "threat", drum).centred()
    w = drum_l / 2 + 4
    top = bore_y + barrel_r + 3
    frame_pts = np.array(
        [
            [w + 10, top],
            [w + 10, rod_y - 4],
            [w + 2, -drum_r - 3],
            [w - 6, -drum_r - 8],
            [-w + 4, -drum_r - 8],
            [-w - 18, -drum_r - 6],
            [-w - 20, drum_r - 4],
            [-w - 12, top],
        ]
    )
    window = np.array(
        [[-w + 3, drum_r + 1], [w - 1, drum_r + 1], [w - 1, -drum_r - 1], [-w + 3, -drum_r - 1]]
    )
    body: list[Part] = [outline_plate(frame_pts, t, mat("steel"), holes=(window,))]
    # The grip frame follows the grip's outline (front strap, back strap, butt) around the
    # mainspring; the grip panels cover it on both sides. Grip coordinates: x forwards, y down
    # the grip, which is swept back by the grip angle.
    grip_rot = rotation(yaw=-_u(rng, 0.3, 0.5))
    grip_len = _u(rng, 85, 110)
    gtop = np.array([-w - 6, -drum_r - 6, 0])
    panel = np.array(
        [
            [-13, 4],
            [12, 4],
            [16, -grip_len * 0.6],
            [13, -grip_len],
            [-4, -grip_len - 5],
            [-15, -grip_len * 0.75],
        ]
    )
    strap = np.array(
        [[-7, -4], [6, -4], [9, -grip_len * 0.6], [6, -grip_len + 6], [-8, -grip_len * 0.7]]
    )
    grip: list[Part] = [outline_plate(panel, 12, mat("steel"), holes=(strap,), rot=grip_rot)]
    spring = grip_rot @ np.array([-3.0, -grip_len * 0.45, 0])
    grip.append(box(tuple(spring), (2.5, grip_len * 0.7, 8), mat("steel"), grip_rot))
    panel_m = mat(_pick(rng, ("wood", "rubber", "wood")), rng, 0.1)
    for s in (-1, 1):
        grip.append(
            outline_plate(
                panel, 8, panel_m, z=s * 10, rot=grip_rot, texture=texture(rng, "grain", 0.1)
            )
        )
    screw = grip_rot @ np.array([0, -grip_len * 0.45, 0])
    grip.append(cylinder(tuple(screw), 2.5, t + 4, mat("steel")))
    body += _shifted(grip, gtop)
    guard = _arc(-w + 16, -drum_r - 8, 13, math.pi, 2 * math.pi, 16)
    body.append(tube(np.column_stack([guard, np.zeros(len(guard))]), 2.6, mat("steel")))
    body.append(box((-w + 14, -drum_r - 15, 0), (4, 16, 5), mat("steel"), rotation(yaw=0.35)))
    body.append(box((-w - 20, top + 2, 0), (18, 8, 8), mat("steel"), rotation(yaw=-0.5)))  # spur
    return Item("revolver", "threat", front + body + drum).centred()


def _stock(length: float, drop: float, material_name: str, rng: np.random.Generator) -> Part:
    pts = np.array(
        [
            [0, 8],
            [-length, 8 - drop * 0.4],
            [-length, -38 - drop],
            [-length * 0.6, -34 - drop * 0.7],
            [-20, -30],
            [0, -20],
        ]
    )
    return outline_plate(
        pts, _u(rng, 34, 42), mat(material_name, rng, 0.1), texture=texture(rng, "grain", 0.12)
    )


def rifle_part(
    rng: np.random.Generator, max_length: float = 600.0, disassembled: bool = False
) -> Item:
    """A long gun, whole or in parts: a rifle barrel, receiver with bolt, trigger group and box
    magazine, a wooden or polymer stock; or a shotgun with one or two barrels and shells.

    Disassembled, a barrel section, a bolt, or a loaded magazine.
    """
    if disassembled:
        pick = rng.random()
        if pick < 0.35:
            length = _u(rng, 150, 320)
            r = _u(rng, 9, 12)
            barrel = shell_cylinder((0, 0, 0), r, length, r - 3.2, mat("steel"), ALONG_X)
            return Item("rifle barrel section", "threat", barrel).centred()
        if pick < 0.7:
            bolt = [cylinder((0, 0, 0), 9, _u(rng, 90, 130), mat("steel"), ALONG_X)]
            bolt.append(cylinder((-20, 15, 0), 4, 35, mat("steel")))
            bolt.append(ellipsoid((-20, 32, 0), (14, 14, 14), mat("steel")))
            bolt.append(helix((-60, 0, 0), 50, 6, 8, 0.7, mat("steel")))
            return Item("rifle bolt", "threat", bolt).centred()
        mag = _magazine(
            np.zeros(3), rotation(yaw=0.15), _u(rng, 100, 180), 5.7, int(rng.integers(5, 20))
        )
        return Item("rifle magazine", "threat", mag).centred()
    shotgun = rng.random() < 0.35
    parts: list[Part] = []
    recv_len = _u(rng, 150, 230)
    recv_h = _u(rng, 40, 55)
    recv_t = _u(rng, 26, 34)
    parts += shell_box((recv_len / 2, 0, 0), (recv_len, recv_h, recv_t), 3.0, mat("steel"))
    parts.append(
        box((recv_len * 0.55, recv_h * 0.5 + 4, 0), (recv_len * 0.8, 8, 18), mat("aluminium"))
    )  # rail / scope mount
    parts.append(cylinder((recv_len * 0.45, 6, 0), 8, recv_len * 0.6, mat("steel"), ALONG_X))
    guard = _arc(recv_len * 0.3, -recv_h / 2 - 2, 18, math.pi, 2 * math.pi, 16)
    parts.append(tube(np.column_stack([guard, np.zeros(len(guard))]), 2.5, mat("steel")))
    parts.append(box((recv_len * 0.3, -recv_h / 2 - 8, 0), (4, 16, 6), mat("steel")))
    for px in (recv_len * 0.2, recv_len * 0.4):
        parts.append(cylinder((px, -recv_h * 0.3, 0), 1.8, recv_t + 2, mat("steel")))
    room = max(max_length - recv_len, 200.0)
    length = min(_u(rng, 300, 560), room)
    if shotgun:
        for k in range(2 if rng.random() < 0.6 else 1):
            parts += shell_cylinder(
                (recv_len + length / 2, 4 + k * 19, 0), 10, length, 1.8, mat("steel"), ALONG_X
            )
        for k in range(int(rng.integers(0, 4))):  # shells: plastic hull, brass head, lead shot
            y = -recv_h / 2 - 20 - k * 24
            parts.append(cylinder((recv_len * 0.7, y, 0), 9.5, 50, mat("plastic"), ALONG_X))
            parts.append(cylinder((recv_len * 0.7 - 20, y, 0), 10, 10, mat("brass"), ALONG_X))
            parts.append(
                cylinder(
                    (recv_len * 0.7 + 6, y, 0),
                    8.5,
                    22,
                    mat("lead").with_density(6.5),
                    ALONG_X,
                    texture=texture(rng, "grain", 0.3),
                )
            )
        name = "shotgun"
    else:
        r = _u(rng, 9, 12.5)
        parts += shell_cylinder(
            (recv_len + length / 2, 4, 0), r, length, r - 3, mat("steel"), ALONG_X
        )
        parts.append(box((recv_len + length - 15, 4 + r + 6, 0), (12, 12, 8), mat("steel")))
        if rng.random() < 0.5:  # gas block and tube
            parts.append(cylinder((recv_len + length * 0.45, 4, 0), 15, 25, mat("steel"), ALONG_X))
            parts.append(
                cylinder(
                    (recv_len + length * 0.25, 4 + r + 4, 0),
                    3,
                    length * 0.45,
                    mat("steel"),
                    ALONG_X,
                )
            )
        if rng.random() < 0.6:  # handguard
            parts += shell_box(
                (recv_len + length * 0.22, 4, 0),
                (length * 0.4, 2 * r + 16, r * 2 + 16),
                2.5,
                mat(_pick(rng, ("aluminium", "gf-nylon", "wood"))),
            )
        mag_rot = rotation(yaw=_u(rng, 0.0, 0.25))
        mag_top = np.array([recv_len * 0.65, -recv_h / 2 + 4, 0])
        parts += _magazine(mag_top, mag_rot, _u(rng, 90, 170), 5.7, int(rng.integers(0, 20)))
        name = "rifle"
    stock = rng.random()
    if stock < 0.6:
        parts.append(
            _stock(_u(rng, 220, 330), _u(rng, 5, 25), _pick(rng, ("wood", "gf-nylon")), rng)
        )
        name += " with stock"
    elif stock < 0.8:  # pistol grip only
        grip = np.array([[0, 0], [16, 0], [4, -70], [-14, -70]])
        parts.append(outline_plate(grip, 30, mat("gf-nylon"), rot=rotation(yaw=0.3)))
    return Item(name, "threat", parts).centred()


def _blade(
    length: float, width: float, tip_drop: float, edge_belly: float
) -> tuple[np.ndarray, np.ndarray]:
    """Outline of a blade from the handle (x = 0) to the tip, spine at y = width/2, and the
    inner (spine-side) band that stays thick while the bevel thins towards the edge."""
    x = np.linspace(0, length, 20)
    u = x / length
    spine = width / 2 - tip_drop * np.clip((u - 0.7) / 0.3, 0, 1) ** 1.5 * width
    edge = -width / 2 + edge_belly * width * np.clip((u - 0.55) / 0.45, 0, 1) ** 2
    tip_y = (spine[-1] + edge[-1]) / 2
    outer = np.vstack(
        [np.column_stack([x, edge])[:-1], [[length, tip_y]], np.column_stack([x, spine])[-2::-1]]
    )
    mid = edge + (spine - edge) * 0.45
    inner = np.vstack(
        [np.column_stack([x[:-3], mid[:-3]]), np.column_stack([x[:-3], spine[:-3]])[::-1]]
    )
    return outer, inner


def knife(rng: np.random.Generator, disassembled: bool = False) -> Item:
    """A knife: kitchen (thin blade, full tang between riveted scales), folding (blade on a
    pivot between steel liners and scales, a clip), combat (thick clipped blade, guard, tang
    through a handle, pommel) or ceramic (zirconia blade in a plastic handle).

    Every steel blade tapers from a thick spine band to a thin edge. Disassembled, the bare blade.
    """
    kind = _pick(rng, ("kitchen", "kitchen", "folding", "combat", "ceramic"))
    length = {
        "kitchen": _u(rng, 110, 230),
        "folding": _u(rng, 65, 100),
        "combat": _u(rng, 140, 220),
        "ceramic": _u(rng, 90, 160),
    }[kind]
    width = {
        "kitchen": _u(rng, 20, 48),
        "folding": _u(rng, 18, 28),
        "combat": _u(rng, 28, 40),
        "ceramic": _u(rng, 20, 40),
    }[kind]
    spine_t = {
        "kitchen": _u(rng, 1.6, 2.5),
        "folding": _u(rng, 2.5, 3.5),
        "combat": _u(rng, 4.5, 6.5),
        "ceramic": _u(rng, 2.0, 2.8),
    }[kind]
    metal = mat("zirconia") if kind == "ceramic" else mat("stainless")
    outer, inner = _blade(length, width, _u(rng, 0.2, 0.6), _u(rng, 0.05, 0.35))
    blade = [
        outline_plate(outer, spine_t * 0.45, metal),
        outline_plate(inner, spine_t * 0.55, metal),
    ]
    if kind == "combat" and rng.random() < 0.5:  # fuller: a groove along the spine band
        groove = np.array(
            [
                [8, width * 0.05],
                [length * 0.55, width * 0.05],
                [length * 0.55, width * 0.2],
                [8, width * 0.2],
            ]
        )
        blade.append(outline_plate(groove, spine_t * 0.3, metal, sign=-1.0))
    if disassembled:
        return Item("knife blade", "threat", blade).centred()
    hl = {
        "kitchen": _u(rng, 100, 130),
        "folding": length + 8,
        "combat": _u(rng, 110, 135),
        "ceramic": _u(rng, 95, 120),
    }[kind]
    hw = width * 0.75 if kind != "folding" else width * 1.1
    parts = list(blade)
    handle_pts = np.array(
        [
            [0, -hw / 2],
            [-hl * 0.3, -hw * 0.55],
            [-hl, -hw * 0.45],
            [-hl - 4, 0],
            [-hl, hw * 0.5],
            [0, hw / 2],
        ]
    )
    if kind == "kitchen":
        tang = np.array([[2, -hw * 0.4], [-hl + 6, -hw * 0.35], [-hl + 6, hw * 0.4], [2, hw * 0.4]])
        parts.append(outline_plate(tang, spine_t, mat("stainless")))
        scale_m = mat(_pick(rng, ("wood", "plastic", "pvc")), rng, 0.1)
        for s in (-1, 1):
            parts.append(
                outline_plate(
                    handle_pts,
                    6,
                    scale_m,
                    z=s * (spine_t / 2 + 3),
                    texture=texture(rng, "grain", 0.08),
                )
            )
        for k in range(3):
            parts.append(cylinder((-hl * (0.2 + 0.3 * k), 0, 0), 2.2, spine_t + 12, mat("brass")))
        parts.append(box((-1, 0, 0), (8, hw * 1.1, spine_t + 10), mat("stainless")))  # bolster
    elif kind == "folding":
        for s in (-1, 1):
            parts.append(outline_plate(handle_pts, 1.2, mat("stainless"), z=s * 3.5))
            parts.append(
                outline_plate(
                    handle_pts, 3, mat(_pick(rng, ("gf-nylon", "aluminium", "wood"))), z=s * 6
                )
            )
        parts.append(cylinder((-6, 0, 0), 4, 16, mat("steel")))  # pivot
        parts.append(cylinder((-hl + 10, hw * 0.3, 0), 2, 16, mat("steel")))  # stop pin
        clip = np.array(
            [
                [-hl * 0.2, hw * 0.55],
                [-hl + 4, hw * 0.55],
                [-hl + 4, hw * 0.55 + 8],
                [-hl * 0.2, hw * 0.55 + 8],
            ]
        )
        parts.append(outline_plate(clip, 1.0, mat("steel"), z=8))
    else:
        tang_w = hw * (0.35 if kind == "combat" else 0.25)
        parts.append(box((-hl * 0.45, 0, 0), (hl * 0.9, tang_w, spine_t), metal))
        handle_m = mat(_pick(rng, ("rubber", "gf-nylon", "leather", "plastic")), rng, 0.1)
        thick = 22 if kind == "combat" else 16
        parts.append(
            ellipsoid(
                (-hl / 2, 0, 0),
                (hl, hw * 1.15, thick),
                handle_m,
                texture=texture(rng, "grain", 0.1),
            )
        )
        if kind == "combat":
            parts.append(box((-2, 0, 0), (6, width * 1.8, 10), mat("steel")))  # guard
            parts.append(ellipsoid((-hl - 4, 0, 0), (14, hw * 0.9, 18), mat("steel")))  # pommel
    return Item(f"{kind} knife", "threat", parts).centred()


def ied(rng: np.random.Generator, disassembled: bool = False) -> Item:
    """An improvised device: a taped organic block or a capped steel pipe filled with powder;
    a detonator, cells in a holder, a toggle switch, a timer board with a display, and wires
    joining them.

    Disassembled, the charge with its detonator and wires, without power or timer.
    """
    parts: list[Part] = []
    if rng.random() < 0.35:  # pipe bomb
        length, r = _u(rng, 120, 260), _u(rng, 18, 32)
        parts += shell_cylinder((0, 0, 0), r, length, _u(rng, 3, 5), mat("steel"), ALONG_X)
        parts.append(
            cylinder(
                (0, 0, 0),
                r - 5,
                length - 12,
                mat("powder", rng, 0.1),
                ALONG_X,
                texture=texture(rng, "grain", 0.15),
            )
        )
        for s in (-1, 1):
            parts.append(cylinder((s * (length / 2 + 6), 0, 0), r + 5, 16, mat("iron"), ALONG_X))
        size = (length + 24, 2 * r + 10, 2 * r + 10)
        name = "pipe bomb"
    else:
        size = (_u(rng, 80, 200), _u(rng, 50, 120), _u(rng, 25, 60))
        parts.append(
            box((0, 0, 0), size, mat("explosive", rng, 0.1), texture=texture(rng, "blotch", 0.06))
        )
        wrapped = (size[0] + 1.2, size[1] + 1.2, size[2] + 1.2)
        parts += shell_box((0, 0, 0), wrapped, 0.6, mat("pvc"))  # tape
        for k in range(int(rng.integers(1, 4))):  # tape bands
            parts.append(
                box(
                    ((k - 1) * size[0] * 0.3, 0, 0),
                    (20, size[1] + 2, size[2] + 2),
                    mat("pvc").with_density(0.6),
                )
            )
        name = "improvised device"
    det = (size[0] * 0.2, size[1] * 0.15, 0)
    parts.append(cylinder(det, 3.5, 45, mat(_pick(rng, ("aluminium", "copper"))), ALONG_X))
    parts.append(cylinder((det[0] + 8, det[1], 0), 2.5, 12, mat("lead")))
    ends = [np.array([det[0] - 22, det[1], 2.0])]
    bx = -size[0] / 2 - 50
    if not disassembled:
        holder_n = int(rng.integers(2, 5))
        parts += shell_box((bx, 0, 0), (56, holder_n * 15 + 4, 17), 1.2, mat("plastic"))
        for k in range(holder_n):
            y = (k - (holder_n - 1) / 2) * 15.0
            parts += shell_cylinder((bx, y, 0), 7.25, 50.5, 0.3, mat("steel"), ALONG_X)
            parts.append(cylinder((bx, y, 0), 7.0, 49, mat("battery-alk"), ALONG_X))
            parts.append(cylinder((bx, y, 0), 1.0, 45, mat("brass"), ALONG_X))
        for s in (-1, 1):
            parts.append(box((bx + s * 27, 0, 0), (1, holder_n * 14, 10), mat("steel")))
        ends.append(np.array([bx + 28, 0, 4.0]))
        board = np.array([bx + 5, size[1] / 2 + 40, 0])
        parts.append(box(tuple(board), (60, 40, 1.6), mat("fr4")))
        parts.append(
            box(tuple(board + np.array([0, 6, 2.5])), (40, 18, 3), mat("glass"))
        )  # display
        for _ in range(int(rng.integers(3, 8))):
            at = board + np.array([_u(rng, -25, 25), _u(rng, -16, 0), 1.5])
            parts.append(
                box(
                    tuple(at),
                    (_u(rng, 4, 12), _u(rng, 3, 8), 2),
                    mat("glass").with_density(1.9),
                )
            )
        parts.append(
            cylinder(tuple(board + np.array([20, -12, 2])), 10, 3.2, mat("stainless"))
        )  # coin cell
        switch = board + np.array([-45, 0, 0])
        parts += shell_box(tuple(switch), (20, 12, 12), 1.0, mat("plastic"))
        parts.append(cylinder(tuple(switch + np.array([0, 0, 10])), 1.5, 14, mat("steel")))
        ends += [board + np.array([-28, 0, 3.0]), switch + np.array([8, 0, 0])]
    for k in range(len(ends)):
        a = ends[k]
        b = ends[(k + 1) % len(ends)]
        mid = (a + b) / 2 + np.array([_u(rng, -30, 30), _u(rng, 10, 50), _u(rng, 0, 15)])
        pts = spline(np.array([a, mid, b]), 40)
        colour = _pick(rng, ("pvc", "pvc", "polyethylene"))
        parts.append(tube(pts, 1.3, mat(colour)))
        parts.append(tube(pts, 0.5, mat("copper")))
    return Item(name, "threat", parts).centred()


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
