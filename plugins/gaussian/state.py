"""Pack the states of several fitted pieces into one ``DetectorState`` and unpack them again."""

from __future__ import annotations

from collections.abc import Mapping

from xadt.detector import DetectorState
from xadt.errors import NotFittedError

__all__ = ["nest_states", "sub_state"]


def nest_states(parts: Mapping[str, DetectorState]) -> DetectorState:
    """One state from named parts: tensors as ``"<name>.<key>"``, meta as ``meta[name] = {...}``.

    Names must be non-empty and contain no ``"."``.
    """
    out = DetectorState()
    for name, part in parts.items():
        if not name or "." in name:
            msg = f"nest_states: part names must be non-empty without '.', got {name!r}"
            raise ValueError(msg)
        out.tensors.update({f"{name}.{k}": v for k, v in part.tensors.items()})
        out.meta[name] = dict(part.meta)
    return out


def sub_state(state: DetectorState, name: str) -> DetectorState:
    """The part ``name`` of a :func:`nest_states` result; ``NotFittedError`` when absent."""
    prefix = f"{name}."
    meta = state.meta.get(name)
    if not isinstance(meta, dict):
        msg = f"the model state has no {name!r} part; it was not written by the gaussian models"
        raise NotFittedError(msg)
    tensors = {k[len(prefix) :]: v for k, v in state.tensors.items() if k.startswith(prefix)}
    return DetectorState(tensors=tensors, meta=dict(meta))
