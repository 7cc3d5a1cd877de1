"""Tamper with a saved model in every way issue 9 lists, load each variant in a child process and
print a table of outcomes (issue 9).

    python tools/tamper_models.py --out /tmp/tamper [--timeout 30] [--cli 12]

A small ``baseline`` model is fitted on synthetic scans and saved; each variant is a copy of its
directory with one thing changed: a field of ``model.json`` (deleted, of a wrong type, NaN,
infinite, huge, negative, empty, nested garbage), the file as text, the tensor file (cut, bit
flips, rebuilt with wrong dtypes, shapes or arrays, crafted safetensors headers, pickles, a zip
bomb), non-regular files and permissions. Edits to checksummed content come twice: as they are,
and *resealed*, with the tensor and content checksums recomputed as a careless tool or an editor
who knows the format would, so that only validation stands between the edit and a score.

Each variant is loaded with ``xadt.artifacts.load_model`` in a forked child (as user ``nobody``
when run as root, so permissions count) that then scores a few probe scans. Outcomes: *refused*
(a one-line ``XadtError`` on load), *refused when scoring* (loaded, then a one-line
``XadtError``), *identical* (same config, calibration, scores, flags and quantiles as the
original), *accepted as edited* (a resealed edit to values that validation finds consistent: a
checksum is not a signature, so such an edit is a different valid model), *silently changed*
(an edit that was not resealed loaded and any of those differ), *traceback* (any other exception
or a multi-line message), *hang* (killed after the timeout), *crash* (the child died). ``--cli N``
also runs ``xadt score -m VARIANT`` on the probe scans for N variants spread over the categories.
Run it from the repository root.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy
from hostile_corpus import outcome_table, run_in_child
from PIL import Image

from xadt import artifacts
from xadt.api import fit
from xadt.artifacts import MODEL_JSON, TENSORS, load_model, save_model
from xadt.errors import XadtError
from xadt.host import load_registry
from xadt.model import Model
from xadt.testing import anomalous_scan, normal_scans

Mutate = Callable[[Path], None]

RAW = "\x00raw\x00"
"""A placeholder value whose JSON text is replaced by a literal json.dumps cannot write."""

GARBAGE = {"a": [{"b": [1, "x", None, {"c": {}}]}], "": -0.0}
"""Nested garbage put in place of a field."""

FIELD_EDITS: dict[str, Any] = {
    "deleted": None,  # handled apart: the key is removed
    "null": None,
    "string": "x",
    "empty string": "",
    "true": True,
    "NaN": math.nan,
    "Infinity": math.inf,
    "-Infinity": -math.inf,
    "1e308": 1e308,
    "1e999 (text)": (RAW, "1e999"),
    "5000-digit int (text)": (RAW, "9" * 5000),
    "-1": -1,
    "0": 0,
    "empty list": [],
    "nested garbage": GARBAGE,
}
"""What each field of ``model.json`` is replaced with."""

SEALED_SECTIONS = ("plugin", "config", "meta", "calibration", "tensors")
"""The sections of ``model.json`` that ``content_sha256`` covers (edits to them are resealed)."""


@dataclass
class Variant:
    """One tampered copy of the model: its folder name, category and what makes it."""

    name: str
    category: str
    mutate: Mutate
    resealed: bool = False


# --- the original model -----------------------------------------------------------------------


def _probes() -> list[Any]:
    return [*normal_scans(6, seed=123, prefix="probe"), anomalous_scan(seed=5)]


def _fingerprint(model: Model) -> dict[str, Any]:
    """What must not change: config, calibration, each probe's score, partials, flag, quantile."""
    results = model.score(_probes())
    return {
        "plugin": model.name,
        "config": repr(model.detector.config),
        "calibration": repr(model.calibration),
        "results": [(r.scan_id, r.score, r.partial, r.flag, r.normal_quantile) for r in results],
    }


def _original(folder: Path) -> Path:
    model = fit("baseline", normal_scans(48, seed=1), holdout=0.5)
    return save_model(folder / "original", model)


# --- editing helpers --------------------------------------------------------------------------


def _reseal(root: Path, document: dict[str, Any]) -> None:
    """Recompute the tensor and content checksums as a writer of this format would."""
    tensors = root / TENSORS
    if tensors.is_file() and not tensors.is_symlink() and isinstance(document.get("tensors"), dict):
        document["tensors"]["sha256"] = hashlib.sha256(tensors.read_bytes()).hexdigest()
    # NaN or an odd section: no checksum a writer could compute, and the loader must refuse it
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        document["content_sha256"] = artifacts._content_digest(document)


def _dump(document: Any) -> str:
    """``document`` as JSON text, NaN and infinities included, ``(RAW, text)`` pairs inlined."""
    raws: list[str] = []

    def swap(value: Any) -> Any:
        if isinstance(value, tuple) and len(value) == 2 and value[0] == RAW:
            raws.append(value[1])
            return f"{RAW}{len(raws) - 1}"
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    text = json.dumps(swap(document), indent=2)
    for k, raw in enumerate(raws):
        text = text.replace(json.dumps(f"{RAW}{k}"), raw)
    return text


def _edit_document(edit: Callable[[dict[str, Any]], None], *, reseal: bool) -> Mutate:
    def mutate(root: Path) -> None:
        file = root / MODEL_JSON
        document = json.loads(file.read_text())
        edit(document)
        if reseal:
            _reseal(root, document)
        file.write_text(_dump(document))

    return mutate


def _document_variant(
    name: str, category: str, edit: Callable[[dict[str, Any]], None], *, reseal: bool
) -> Variant:
    """A variant that applies ``edit`` to model.json; resealed (checksums recomputed), its name
    and category say so."""
    mutate = _edit_document(edit, reseal=reseal)
    if not reseal:
        return Variant(name, category, mutate)
    return Variant(f"{name} resealed", f"{category}, resealed", mutate, resealed=True)


def _set(path: tuple[str, ...], value: Any, *, delete: bool = False) -> Callable[[dict], None]:
    def edit(document: dict[str, Any]) -> None:
        *parents, key = path
        node = document
        for part in parents:
            node = node[part]
        if delete:
            del node[key]
        else:
            node[key] = value

    return edit


def _write_text(text: str | bytes) -> Mutate:
    def mutate(root: Path) -> None:
        data = text.encode() if isinstance(text, str) else text
        (root / MODEL_JSON).write_bytes(data)

    return mutate


def _transform_json(change: Callable[[bytes], bytes]) -> Mutate:
    def mutate(root: Path) -> None:
        file = root / MODEL_JSON
        file.write_bytes(change(file.read_bytes()))

    return mutate


def _tensor_bytes(change: Callable[[bytes], bytes], *, reseal: bool) -> Mutate:
    def mutate(root: Path) -> None:
        file = root / TENSORS
        file.write_bytes(change(file.read_bytes()))
        if reseal:
            _edit_document(lambda d: None, reseal=True)(root)

    return mutate


def _tensors(change: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]) -> Mutate:
    """Rebuild the tensor file from changed arrays, with every checksum resealed."""

    def mutate(root: Path) -> None:
        file = root / TENSORS
        arrays = dict(safetensors.numpy.load(file.read_bytes()))
        file.write_bytes(safetensors.numpy.save(change(arrays)))
        _edit_document(lambda d: None, reseal=True)(root)

    return mutate


def _safetensors(header: dict[str, Any] | bytes, data: bytes, length: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    size = len(text) if length is None else length
    return size.to_bytes(8, "little") + text + data


def _crafted(header: dict[str, Any] | bytes, data: bytes, length: int | None = None) -> Mutate:
    return _tensor_bytes(lambda _: _safetensors(header, data, length), reseal=True)


def _entry(name: str, make: Callable[[Path], None]) -> Mutate:
    """Replace the file ``name`` of the model with what ``make`` creates at its path."""

    def mutate(root: Path) -> None:
        path = root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        make(path)

    return mutate


def _chmod(name: str, mode: int) -> Mutate:
    return lambda root: (root / name if name else root).chmod(mode)


# --- the variants -----------------------------------------------------------------------------


def _leaf_paths(document: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path of ``document`` (sections and the fields inside them)."""
    paths = []
    for key, value in document.items():
        paths.append((*prefix, key))
        if isinstance(value, dict):
            paths += _leaf_paths(value, (*prefix, key))
    return paths


def _field_variants(document: dict[str, Any]) -> list[Variant]:
    variants = []
    for path in _leaf_paths(document):
        sealed = path[0] in SEALED_SECTIONS
        for label, value in FIELD_EDITS.items():
            edit = _set(path, value, delete=label == "deleted")
            name = f"{'.'.join(path)}={label}"
            variants.append(_document_variant(name, "model.json field", edit, reseal=False))
            if sealed:
                variants.append(_document_variant(name, "model.json field", edit, reseal=True))
    return variants


def _value_variants(document: dict[str, Any]) -> list[Variant]:
    """Values of the right type that mean something else, resealed (and once not)."""
    calibration = document["calibration"]
    top = max(calibration["normal_scores"])
    edits: dict[str, Callable[[dict], None]] = {
        "format_version=0": _set(("format_version",), 0),
        "format_version=-1": _set(("format_version",), -1),
        "format_version=3": _set(("format_version",), 3),
        "format_version=1.5": _set(("format_version",), 1.5),
        "format_version='2'": _set(("format_version",), "2"),
        "format_version=1 (checksum kept)": _set(("format_version",), 1),
        "plugin=gaussian": _set(("plugin", "name"), "gaussian"),
        "plugin=nope": _set(("plugin", "name"), "nope"),
        "plugin=''": _set(("plugin", "name"), ""),
        "plugin=BASELINE": _set(("plugin", "name"), "BASELINE"),
        "config.cache=/tmp/evil": _set(("config", "cache"), "/tmp/evil"),
        "config.unknown=1": _set(("config", "unknown"), 1),
        "config.feature=size": _set(("config", "feature"), "size"),
        "config.ridge=1e-3": _set(("config", "ridge"), 1e-3),
        "config.ridge=-1": _set(("config", "ridge"), -1.0),
        "config={}": _set(("config",), {}),
        "meta.features=['size']": _set(("meta", "features"), ["size"]),
        "meta.features=reversed": _set(("meta", "features"), ["busyness", "attenuation", "size"]),
        "meta.n_train_scans=10**30": _set(("meta", "n_train_scans"), 10**30),
        "meta.extra=1": _set(("meta", "extra"), 1),
        "calibration.threshold=0": _set(("calibration", "threshold"), 0.0),
        "calibration.threshold=-1e308": _set(("calibration", "threshold"), -1e308),
        "calibration.threshold=1e308": _set(("calibration", "threshold"), 1e308),
        "calibration.threshold=max normal*10": _set(("calibration", "threshold"), top * 10),
        "calibration.target_fpr=0": _set(("calibration", "target_fpr"), 0.0),
        "calibration.target_fpr=1": _set(("calibration", "target_fpr"), 1.0),
        "calibration.target_fpr=0.5": _set(("calibration", "target_fpr"), 0.5),
        "calibration.n_holdout=1e9": _set(("calibration", "n_holdout"), 10**9),
        "calibration.normal_std=-1": _set(("calibration", "normal_std"), -1.0),
        "calibration.normal_quantiles=3 values": _set(
            ("calibration", "normal_quantiles"), calibration["normal_quantiles"][:3]
        ),
        "calibration.normal_scores=[]": _set(("calibration", "normal_scores"), []),
        "calibration.normal_scores=zeros": _set(
            ("calibration", "normal_scores"), [0.0] * len(calibration["normal_scores"])
        ),
        "calibration.normal_scores=[[1,2]]": _set(("calibration", "normal_scores"), [[1, 2]]),
        "calibration.map_ticks=[[1,2,3]]": _set(("calibration", "map_ticks"), [[1, 2, 3]]),
        "calibration.map_ticks=['ab']": _set(("calibration", "map_ticks"), ["ab"]),
        "calibration.map_low>map_high": _set(("calibration", "map_low"), 1e300),
        "calibration=null": _set(("calibration",), None),
        "tensors.file=../original/tensors.safetensors": _set(
            ("tensors", "file"), "../original/tensors.safetensors"
        ),
        "tensors.shapes=garbage": _set(("tensors", "shapes"), GARBAGE),
    }
    return [
        _document_variant(label, "values", edit, reseal=reseal)
        for label, edit in edits.items()
        for reseal in (False, True)
    ]


def _checksum_variants(document: dict[str, Any]) -> list[Variant]:
    good = document["content_sha256"]
    edits: dict[str, Any] = {
        "random hex": hashlib.sha256(b"x").hexdigest(),
        "upper case": good.upper(),
        "cut short": good[:32],
        "one digit changed": ("0" if good[0] != "0" else "1") + good[1:],
        "an int": 12345,
        "null": None,
        "a list": [good],
    }
    variants = [
        Variant(
            f"content_sha256={label}",
            "content_sha256",
            _edit_document(_set(("content_sha256",), v), reseal=False),
        )
        for label, v in edits.items()
    ]
    tensor_sha = document["tensors"]["sha256"]
    variants.append(
        Variant(
            "tensors.sha256 changed, content resealed",
            "content_sha256",
            _edit_document(_set(("tensors", "sha256"), tensor_sha[::-1]), reseal=False),
        )
    )
    return variants


def _text_variants(size: int) -> list[Variant]:
    cuts = sorted({1, 10, size // 4, size // 2, size - 2, size - 1})
    variants = [
        Variant(
            f"model.json cut at {cut}", "model.json text", _transform_json(lambda b, c=cut: b[:c])
        )
        for cut in cuts
    ]
    texts: dict[str, str | bytes] = {
        "empty": "",
        "whitespace": " \n\t ",
        "null": "null",
        "a list": "[]",
        "a string": '"model"',
        "a number": "2",
        "invalid UTF-8": b'{"format_version": 2, "x": "\xff\xfe"}',
        "100,000-deep list": "[" * 100_000 + "]" * 100_000,
        "100,000-deep object": '{"a":' * 100_000 + "1" + "}" * 100_000,
    }
    variants += [
        Variant(f"model.json {k}", "model.json text", _write_text(t)) for k, t in texts.items()
    ]
    changes: dict[str, Callable[[bytes], bytes]] = {
        "UTF-8 BOM": lambda b: b"\xef\xbb\xbf" + b,
        "UTF-16": lambda b: b.decode().encode("utf-16"),
        "trailing garbage": lambda b: b + b"}garbage",
        "a comment": lambda b: b"// model\n" + b,
        "64 MiB of spaces": lambda b: b[:-1] + b" " * 2**26 + b[-1:],
        "duplicate calibration key": lambda b: b[:1] + b'"calibration": null,' + b[1:],
        "bit flip": lambda b: (
            b[: len(b) // 3] + bytes([b[len(b) // 3] ^ 0x04]) + b[len(b) // 3 + 1 :]
        ),
    }
    variants += [
        Variant(f"model.json {k}", "model.json text", _transform_json(c))
        for k, c in changes.items()
    ]
    return variants


def _tensor_variants(blob: bytes) -> list[Variant]:
    header_len = int.from_bytes(blob[:8], "little")
    cuts = sorted(
        {
            0,
            4,
            8,
            8 + header_len // 2,
            8 + header_len,
            (8 + header_len + len(blob)) // 2,
            len(blob) - 1,
        }
    )
    rng = random.Random(0)
    variants = []
    for cut in cuts:
        for reseal in (False, True):
            suffix = " resealed" if reseal else ""
            variants.append(
                Variant(
                    f"tensors cut at {cut}{suffix}",
                    "tensor file bytes",
                    _tensor_bytes(lambda b, c=cut: b[:c], reseal=reseal),
                    resealed=reseal,
                )
            )

    def flip(offset: int) -> Callable[[bytes], bytes]:
        return lambda b: b[:offset] + bytes([b[offset] ^ (1 << rng.randrange(8))]) + b[offset + 1 :]

    for where, lo, hi in (
        ("length", 0, 8),
        ("header", 8, 8 + header_len),
        ("data", 8 + header_len, len(blob)),
    ):
        for k in range(4):
            offset = rng.randrange(lo, hi)
            for reseal in (False, True):
                suffix = " resealed" if reseal else ""
                variants.append(
                    Variant(
                        f"tensors bit flip in {where} #{k}{suffix}",
                        "tensor file bytes",
                        _tensor_bytes(flip(offset), reseal=reseal),
                        resealed=reseal,
                    )
                )
    variants.append(
        Variant(
            "tensors + 1 MiB appended",
            "tensor file bytes",
            _tensor_bytes(lambda b: b + bytes(2**20), reseal=False),
        )
    )
    variants.append(
        Variant(
            "tensors + 1 MiB appended resealed",
            "tensor file bytes",
            _tensor_bytes(lambda b: b + bytes(2**20), reseal=True),
            resealed=True,
        )
    )
    return variants


def _array_variants() -> list[Variant]:
    def cast(name: str, dtype: Any) -> Callable[[dict], dict]:
        return lambda a: {**a, name: a[name].astype(dtype)}

    def put(name: str, value: Any) -> Callable[[dict], dict]:
        return lambda a: {**a, name: np.asarray(value)}

    def poke(name: str, index: tuple[int, ...], value: float) -> Callable[[dict], dict]:
        def change(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            arr = a[name].copy()
            arr[index] = value
            return {**a, name: arr}

        return change

    changes: dict[str, Callable[[dict], dict]] = {
        "mean as float32": cast("mean", np.float32),
        "mean as float16": cast("mean", np.float16),
        "mean as int64": cast("mean", np.int64),
        "mean as uint8": cast("mean", np.uint8),
        "mean as bool": cast("mean", np.bool_),
        "covariance as float32": cast("covariance", np.float32),
        "mean shape (2,)": lambda a: {**a, "mean": a["mean"][:2]},
        "mean shape (3, 1)": lambda a: {**a, "mean": a["mean"][:, None]},
        "mean shape ()": put("mean", 1.0),
        "mean shape (0,)": put("mean", np.zeros(0)),
        "covariance shape (3,)": lambda a: {**a, "covariance": np.diag(a["covariance"]).copy()},
        "covariance shape (3, 3, 1)": lambda a: {
            **a,
            "covariance": a["covariance"][..., None].copy(),
        },
        "covariance shape (4, 4)": put("covariance", np.eye(4)),
        "mean missing": lambda a: {"covariance": a["covariance"]},
        "covariance missing": lambda a: {"mean": a["mean"]},
        "no arrays": lambda a: {},
        "extra array": lambda a: {**a, "extra": np.zeros(3)},
        "mean renamed": lambda a: {"Mean": a["mean"], "covariance": a["covariance"]},
        "NaN in mean": poke("mean", (0,), math.nan),
        "inf in mean": poke("mean", (1,), math.inf),
        "NaN in covariance": poke("covariance", (0, 0), math.nan),
        "inf in covariance": poke("covariance", (1, 1), math.inf),
        "1e308 in covariance": poke("covariance", (2, 2), 1e308),
        "covariance all zero (singular)": put("covariance", np.zeros((3, 3))),
        "covariance rank 1": put("covariance", np.ones((3, 3))),
        "covariance negative definite": lambda a: {**a, "covariance": -a["covariance"]},
        "covariance not symmetric": poke("covariance", (0, 1), 5.0),
        "covariance 1e-300 (underflow)": put("covariance", np.eye(3) * 1e-300),
        "mean 1e308": put("mean", np.full(3, 1e308)),
    }
    return [
        Variant(f"tensors: {k}", "tensor arrays, resealed", _tensors(c), resealed=True)
        for k, c in changes.items()
    ]


def _crafted_variants(blob: bytes) -> list[Variant]:
    f64 = np.arange(3, dtype=np.float64).tobytes()
    good = {"mean": {"dtype": "F64", "shape": [3], "data_offsets": [0, 24]}}
    variants = [
        Variant("header length 2**63", "crafted tensor file", _crafted(good, f64, 2**63)),
        Variant("header length 2**40", "crafted tensor file", _crafted(good, f64, 2**40)),
        Variant("header length 0", "crafted tensor file", _crafted(good, f64, 0)),
        Variant("header not JSON", "crafted tensor file", _crafted(b"{not json", f64)),
        Variant("header a list", "crafted tensor file", _crafted(b"[1, 2]", f64)),
        Variant(
            "header 100,000-deep",
            "crafted tensor file",
            _crafted(b"[" * 100_000 + b"]" * 100_000, b""),
        ),
        Variant(
            "offsets past the end",
            "crafted tensor file",
            _crafted({"mean": {"dtype": "F64", "shape": [3], "data_offsets": [0, 2**40]}}, f64),
        ),
        Variant(
            "offsets overlap",
            "crafted tensor file",
            _crafted(
                {
                    "mean": {"dtype": "F64", "shape": [3], "data_offsets": [0, 24]},
                    "covariance": {"dtype": "F64", "shape": [3, 3], "data_offsets": [0, 72]},
                },
                np.zeros(9).tobytes(),
            ),
        ),
        Variant(
            "shape disagrees with bytes",
            "crafted tensor file",
            _crafted(
                {"mean": {"dtype": "F64", "shape": [1000, 1000], "data_offsets": [0, 24]}}, f64
            ),
        ),
        Variant(
            "shape 2**62 x 2**62",
            "crafted tensor file",
            _crafted(
                {"mean": {"dtype": "F64", "shape": [2**62, 2**62], "data_offsets": [0, 24]}}, f64
            ),
        ),
        Variant(
            "negative shape",
            "crafted tensor file",
            _crafted({"mean": {"dtype": "F64", "shape": [-3], "data_offsets": [0, 24]}}, f64),
        ),
        Variant(
            "unknown dtype",
            "crafted tensor file",
            _crafted({"mean": {"dtype": "OBJ", "shape": [3], "data_offsets": [0, 24]}}, f64),
        ),
        Variant(
            "metadata garbage",
            "crafted tensor file",
            _crafted({**good, "__metadata__": GARBAGE}, f64),
        ),
        Variant(
            "pickled object array (.npy)",
            "crafted tensor file",
            _tensor_bytes(lambda _: _pickled_npy(), reseal=True),
        ),
        Variant(
            "pickled object array (.npy) unsealed",
            "crafted tensor file",
            _tensor_bytes(lambda _: _pickled_npy(), reseal=False),
        ),
        Variant(
            "zip bomb (.npz, 800 MB inflated)",
            "crafted tensor file",
            _tensor_bytes(lambda _: _zip_bomb(), reseal=True),
        ),
        Variant(
            "real tensors after a zip bomb prefix",
            "crafted tensor file",
            _tensor_bytes(lambda b: _zip_bomb() + b, reseal=True),
        ),
    ]
    return variants


def _pickled_npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": "os.system"}, 1], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("mean.npy", "w", force_zip64=True) as member,
    ):
        for _ in range(800):
            member.write(bytes(2**20))
    return buffer.getvalue()


def _entry_variants(original: Path) -> list[Variant]:
    def fifo(p: Path) -> None:
        os.mkfifo(p)

    def loop(p: Path) -> None:
        p.symlink_to(p.name)

    def dangling(p: Path) -> None:
        p.symlink_to("nowhere")

    def folder(p: Path) -> None:
        p.mkdir()

    def to(target: str) -> Callable[[Path], None]:
        return lambda p: p.symlink_to(target)

    def whole(make: Callable[[Path], None]) -> Mutate:
        def mutate(root: Path) -> None:
            shutil.rmtree(root)
            make(root)

        return mutate

    variants = []
    for name in (MODEL_JSON, TENSORS):
        variants += [
            Variant(f"{name} a FIFO", "non-regular file", _entry(name, fifo)),
            Variant(f"{name} a symlink loop", "non-regular file", _entry(name, loop)),
            Variant(f"{name} a dangling symlink", "non-regular file", _entry(name, dangling)),
            Variant(f"{name} a folder", "non-regular file", _entry(name, folder)),
            Variant(f"{name} -> /dev/zero", "non-regular file", _entry(name, to("/dev/zero"))),
            Variant(f"{name} -> /dev/null", "non-regular file", _entry(name, to("/dev/null"))),
            Variant(f"{name} missing", "non-regular file", _entry(name, lambda p: None)),
            Variant(
                f"{name} -> the original's (a symlink to a good file)",
                "non-regular file",
                _entry(name, to(str(original / name))),
            ),
        ]
    variants += [
        Variant("model dir a symlink loop", "non-regular file", whole(loop)),
        Variant(
            "model dir a regular file", "non-regular file", whole(lambda p: p.write_text("{}"))
        ),
        Variant("model dir empty", "non-regular file", whole(folder)),
        Variant("model dir a FIFO", "non-regular file", whole(fifo)),
    ]
    variants += [
        Variant("model.json mode 000", "permissions", _chmod(MODEL_JSON, 0)),
        Variant("tensors mode 000", "permissions", _chmod(TENSORS, 0)),
        Variant("model.json write-only", "permissions", _chmod(MODEL_JSON, 0o200)),
        Variant("model dir mode 000", "permissions", _chmod("", 0)),
        Variant("model dir mode 111 (no listing)", "permissions", _chmod("", 0o111)),
        Variant("model dir mode 444 (no search)", "permissions", _chmod("", 0o444)),
    ]
    return variants


# --- loading each variant in a child ----------------------------------------------------------


def _child(path: str, expected: dict[str, Any], limit: int, conn: Any) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if os.geteuid() == 0:  # as root every permission variant would load
        os.setgid(65534)
        os.setuid(65534)
    stage = "load"
    try:
        model = load_model(path, registry=load_registry())
        stage = "score"
        same = _fingerprint(model) == expected
        outcome, detail = ("identical" if same else "silently changed"), ""
    except XadtError as exc:
        text = str(exc)
        refused = "refused" if stage == "load" else "refused when scoring"
        outcome, detail = (refused, text) if "\n" not in text else ("traceback", text)
    except BaseException as exc:  # the point is to see every failure
        outcome = "traceback"
        detail = "".join(traceback.format_exception_only(exc)).strip().splitlines()[-1]
        detail += " @ " + traceback.extract_tb(exc.__traceback__)[-1].name
    conn.send((outcome, detail))


@dataclass
class Result:
    """What loading one variant did."""

    name: str
    category: str
    outcome: str
    detail: str
    seconds: float


def _run(
    variant: Variant, path: Path, expected: dict[str, Any], timeout: float, limit: int
) -> Result:
    reply, failure, seconds = run_in_child(_child, (str(path), expected, limit), timeout)
    if failure is not None:
        return Result(variant.name, variant.category, *failure, seconds)
    outcome, detail = reply
    if outcome == "silently changed" and variant.resealed:
        outcome = "accepted as edited"
    return Result(variant.name, variant.category, outcome, detail, seconds)


COLUMNS = (
    "refused",
    "refused when scoring",
    "identical",
    "accepted as edited",
    "silently changed",
    "traceback",
    "hang",
    "crash",
)


def _table(results: list[Result]) -> str:
    return outcome_table(results, COLUMNS)


def _cli_sample(results: list[Result], folder: Path, out: Path, n: int) -> list[str]:
    """Run ``xadt score -m`` on up to ``n`` variants, one per category in turn."""
    probes = out / "probes"
    probes.mkdir()
    for scan in _probes():
        Image.fromarray(scan.views[0]).save(probes / f"{scan.id}.png")
    by_category: dict[str, list[Result]] = {}
    for r in results:
        by_category.setdefault(r.category, []).append(r)
    picked: list[Result] = []
    while len(picked) < n and any(by_category.values()):
        for group in by_category.values():
            if group and len(picked) < n:
                picked.append(group.pop(len(group) // 2))
    xadt = Path(sys.executable).with_name("xadt")
    lines = []
    for r in picked:
        proc = subprocess.run(
            [str(xadt), "score", "-m", str(folder / _slug(f"{r.category} {r.name}")), str(probes)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "COLUMNS": "200"},
        )
        err = proc.stderr.strip().splitlines()
        clean = "Traceback" not in proc.stdout + proc.stderr and (
            proc.returncode == 0 or (len(err) == 1 and err[0].startswith("error: "))
        )
        lines.append(
            f"- {r.name} ({r.outcome} on load): exit {proc.returncode}, "
            f"{'clean' if clean else 'NOT CLEAN'}: {err[0] if err else '(nothing on stderr)'}"
        )
    return lines


def _slug(name: str) -> str:
    return (
        "".join(c if c.isalnum() or c in "-_.=" else "_" for c in name)[:120]
        + "-"
        + hashlib.sha1(name.encode()).hexdigest()[:6]
    )


def main() -> None:
    """Build the variants under ``--out``, load every one, print the table, save the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the variants (new)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per variant")
    parser.add_argument("--memory-limit-gb", type=float, default=4.0, help="RLIMIT_AS per child")
    parser.add_argument("--cli", type=int, default=0, help="also run xadt score -m on N variants")
    args = parser.parse_args()
    os.environ.setdefault("XADT_DISABLE_PLUGIN_AUTOLOAD", "1")
    args.out.mkdir(parents=True)
    args.out.chmod(0o755)
    original = _original(args.out)
    original.chmod(0o755)
    expected = _fingerprint(load_model(original, registry=load_registry()))
    document = json.loads((original / MODEL_JSON).read_text())
    blob = (original / TENSORS).read_bytes()
    variants = [Variant("untouched copy", "control", lambda root: None)]
    variants += _field_variants(document) + _value_variants(document) + _checksum_variants(document)
    variants += _text_variants(len((original / MODEL_JSON).read_bytes()))
    variants += _tensor_variants(blob) + _array_variants() + _crafted_variants(blob)
    variants += _entry_variants(original)
    folder = args.out / "variants"
    folder.mkdir()
    print(f"{len(variants)} variants in {folder}", flush=True)
    limit = int(args.memory_limit_gb * 2**30)
    results = []
    for k, variant in enumerate(variants, 1):
        path = folder / _slug(f"{variant.category} {variant.name}")
        shutil.copytree(original, path)
        path.chmod(0o755)  # save_model's private 0700, opened to the child running as nobody
        variant.mutate(path)
        results.append(_run(variant, path, expected, args.timeout, limit))
        if k % 200 == 0:
            print(f"  {k} loaded", flush=True)
    (args.out / "results.json").write_text(json.dumps([r.__dict__ for r in results], indent=1))
    print(_table(results))
    for r in results:
        if r.outcome in ("traceback", "hang", "crash", "silently changed", "accepted as edited"):
            print(f"{r.outcome}: {r.name} ({r.category}): {r.detail}")
    slowest = max(results, key=lambda r: r.seconds)
    print(f"slowest: {slowest.name} {slowest.seconds:.1f} s ({slowest.outcome})")
    if args.cli:
        print("xadt score -m on a sample:")
        print("\n".join(_cli_sample(results, folder, args.out, args.cli)))


if __name__ == "__main__":
    main()
