"""Detector options: typed ``Config`` dataclasses, ``--set key=value`` overrides and validation.

A field states its help, its constraint and whether it is a runtime option in its metadata with
:func:`option`, so the Python API, the CLI and ``--set`` all report a bad value with the same
sentence, and ``xadt plugins NAME`` can list every option. A runtime option (a cache folder, a
batch size) changes how a model runs, never what it computes: it may differ between training and
scoring, and ``--set`` accepts it when scoring.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import numbers
import os
import tomllib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from xadt.errors import XadtError

Check = tuple[Callable[[Any], bool], str]


def option(default: Any, *, help: str, check: Check | None = None, runtime: bool = False) -> Any:
    """A ``Config`` field with a one-line help text and an optional ``(predicate, wording)`` check.

    The wording completes "must be ...", e.g. ``(lambda v: v > 0, "a float > 0")``. ``runtime``
    marks an option that does not change what a fitted model computes (see the module docstring).
    """
    return dataclasses.field(
        default=default, metadata={"help": help, "check": check, "runtime": runtime}
    )


@dataclasses.dataclass(frozen=True)
class OptionInfo:
    """One option of a detector, as ``xadt plugins NAME`` lists it.

    Attributes:
        name: the field name (the ``--set`` key).
        type: the accepted values in words (``"an integer"``, ``"one of 'a', 'b'"``).
        default: the default value.
        help: the help text.
        runtime: whether it may change after fitting (and be ``--set`` when scoring).
    """

    name: str
    type: str
    default: Any
    help: str
    runtime: bool


def options(config_cls: type) -> list[OptionInfo]:
    """Every option of a ``Config`` dataclass with its type, default, help and runtime flag."""
    hints = typing.get_type_hints(config_cls)
    found = []
    for f in dataclasses.fields(config_cls):
        wanted = _describe(_base_type(config_cls, f.name))
        if type(None) in typing.get_args(hints[f.name]):
            wanted += ", or None"
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
        found.append(
            OptionInfo(
                f.name,
                wanted,
                default,
                str(f.metadata.get("help", "")),
                bool(f.metadata.get("runtime", False)),
            )
        )
    return found


def runtime_options(config_cls: type) -> frozenset[str]:
    """Names of the runtime options of a ``Config`` dataclass."""
    return frozenset(o.name for o in options(config_cls) if o.runtime)


def with_shorthands(overrides: Iterable[str], **shorthands: Any) -> list[str]:
    """``--set`` pairs with command-line shorthands (``--backbone NAME``) added as ``key=value``.

    A shorthand left as None is not used. Raises ``XadtError`` when an option is given both as a
    shorthand and in ``overrides``.
    """
    pairs = [f"{key}={value}" for key, value in shorthands.items() if value is not None]
    for pair in overrides:
        key = pair.partition("=")[0].strip()
        if shorthands.get(key) is not None:
            msg = f"--{key} and --set {key}=... both set {key!r}; pass only one"
            raise XadtError(msg)
        pairs.append(pair)
    return pairs


def check_runtime_overrides(detector: str, config_cls: type, pairs: Iterable[str]) -> None:
    """Raise ``XadtError`` when a ``--set`` pair names an option that is not a runtime option.

    Used when scoring: a fitted model's other options are part of what it learned.
    """
    allowed = runtime_options(config_cls)
    for key in parse_overrides(detector, config_cls, pairs):
        if key not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            msg = (
                f"--set {key}: {detector} fixes {key!r} when it is trained; when scoring only its "
                f"runtime options can be set ({names})"
            )
            raise XadtError(msg)


def _base_type(config_cls: type, name: str) -> Any:
    hint = typing.get_type_hints(config_cls)[name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = options[0] if len(options) == 1 else str
    return hint


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(tp))
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def is_int(value: object) -> bool:
    """Whether ``value`` is an integer (numpy integers too), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """Whether ``value`` is a real number (numpy numbers too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def require(ok: bool, owner: str, name: str, wanted: str, value: object) -> None:
    """Raise the one-sentence option error unless ``ok``: "The 'name' option of owner must be
    wanted. Got value instead." (the same sentence a detector's ``--set`` gives)."""
    if not ok:
        raise _bad_value(owner, name, wanted, value)


def _bad_value(detector: str, name: str, wanted: str, value: Any) -> XadtError:
    return XadtError(f"The {name!r} option of {detector} must be {wanted}. Got {value!r} instead.")


def _convert(detector: str, name: str, tp: Any, text: str) -> Any:
    if text.lower() in {"none", "null"}:
        return None
    if typing.get_origin(tp) is typing.Literal:
        for choice in typing.get_args(tp):
            if str(choice) == text:
                return choice
        raise _bad_value(detector, name, _describe(tp), text)
    if tp is bool:
        lowered = text.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise _bad_value(detector, name, "a boolean", text)
    if tp in (int, float):
        try:
            return tp(text)
        except ValueError:
            raise _bad_value(detector, name, _describe(tp), text) from None
    return text


def parse_overrides(detector: str, config_cls: type, pairs: Iterable[str]) -> dict[str, Any]:
    """Turn ``["key=value", ...]`` into typed keyword arguments for ``config_cls``.

    An unknown key is rejected with the list of valid keys and the nearest match.
    """
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            msg = f"--set: expected key=value, got {pair!r}"
            raise XadtError(msg)
        check_option_names(detector, config_cls, [key], "--set")
        values[key] = _convert(detector, key, _base_type(config_cls, key), text.strip())
    return values


def validate_config(detector: str, config: Any) -> None:
    """Check every field of ``config`` against its type and its ``option`` check."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        tp = _base_type(type(config), field.name)
        optional = value is None and type(None) in typing.get_args(hints[field.name])
        if not optional and not _matches(tp, value):
            raise _bad_value(detector, field.name, _describe(tp), value)
        check: Check | None = field.metadata.get("check")
        if check is not None and value is not None and not check[0](value):
            raise _bad_value(detector, field.name, check[1], value)


def _matches(tp: Any, value: Any) -> bool:
    if typing.get_origin(tp) is typing.Literal:
        return value in typing.get_args(tp)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def config_to_json(config: Any) -> dict[str, Any]:
    """The config as a JSON-ready dict (as recorded in ``model.json``)."""
    return dataclasses.asdict(config)


def config_from_json(detector: str, config_cls: type, data: Mapping[str, Any]) -> Any:
    """Rebuild and validate a config from ``model.json``; unknown keys are an error."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        msg = f"{detector}: model config has unknown options {unknown}; valid: {sorted(names)}"
        raise XadtError(msg)
    config = config_cls(**data)
    validate_config(detector, config)
    return config


def read_options_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Detector options from a TOML file of ``key = value`` lines, the keys of ``--set``.

    Raises:
        XadtError: the file is missing or not TOML, or a value is not a string, number or
            boolean; the message names the file.
    """
    file = Path(path)
    if file.suffix.lower() in {".yaml", ".yml"}:
        msg = f"{file}: YAML option files are not read; write TOML instead (key = value lines)"
        raise XadtError(msg)
    try:
        values = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"{file}: no such option file"
        raise XadtError(msg) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        msg = f"{file}: not a TOML option file ({exc})"
        raise XadtError(msg) from None
    for key, value in values.items():
        if not isinstance(value, str | int | float | bool):
            msg = f"{file}: option {key!r} must be a string, number or boolean, got {value!r}"
            raise XadtError(msg)
    return values


def check_option_names(detector: str, config_cls: type, names: Iterable[str], where: str) -> None:
    """Raise ``XadtError`` naming ``where`` and the nearest option for an unknown option name."""
    known = [f.name for f in dataclasses.fields(config_cls)]
    for name in names:
        if name not in known:
            near = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            msg = f"{where}: {detector} has no option {name!r}; {hint}options: {', '.join(known)}"
            raise XadtError(msg)


def to_toml(values: Mapping[str, Any]) -> str:
    """``key = value`` lines for scalar options (None values are written as comments)."""
    lines = []
    for key, value in values.items():
        if value is None:
            lines.append(f"# {key} = (none)")
        elif isinstance(value, bool):
            lines.append(f"{key} = {str(value).lower()}")
        elif isinstance(value, int | float):
            lines.append(f"{key} = {value!r}")
        else:
            lines.append(f"{key} = {json.dumps(str(value))}")
    return "\n".join(lines) + "\n"
