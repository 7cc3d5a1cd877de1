"""Creating a backbone by name from the factories plugins register (hook ``xadt_backbones``)."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from xadt.allocator import keep_freed_memory
from xadt.backbones.base import Backbone
from xadt.errors import XadtError

if TYPE_CHECKING:
    from xadt.host import Registry

__all__ = ["DEFAULT_BACKBONE", "create_backbone"]

DEFAULT_BACKBONE = "efficientnet_lite0"
"""The backbone used when none is named: its ImageNet weights ship with xadt."""


def create_backbone(
    name: str = DEFAULT_BACKBONE,
    *,
    weights: str | os.PathLike[str] | None = None,
    registry: Registry | Mapping[str, Callable[..., Any]],
) -> Backbone:
    """Build a registered backbone, frozen and in eval mode.

    Args:
        name: a registered name: ``'efficientnet_lite0'`` (the default; its ImageNet weights ship
            with xadt), ``'resnet18'``, ``'resnet34'``, ``'resnet50'``, ``'resnet101'``,
            ``'resnet152'`` (these need ``weights``), or one a third-party plugin adds.
        weights: a weights file, passed to the factory as ``weights=``; None means the factory's
            default (an error for backbones without built-in weights).
        registry: the plugin host's :class:`xadt.host.Registry` (built once by the caller), or a
            plain mapping of factories by name.

    Returns:
        The backbone.

    Raises:
        XadtError: for an unknown name (naming the nearest match and what is installed), a name
            two plugins claim, or weights that are missing or do not fit.
    """
    keep_freed_memory()  # forwards reuse freed activations instead of faulting them in again
    factory = _lookup(name, registry)
    backbone = factory(weights=weights) if weights is not None else factory()
    if not isinstance(backbone, Backbone):
        msg = (
            f"the factory registered as backbone {name!r} returned a {type(backbone).__name__}, "
            "not an xadt.backbones.Backbone"
        )
        raise TypeError(msg)
    return backbone


def _lookup(name: str, registry: Registry | Mapping[str, Callable[..., Any]]) -> Callable[..., Any]:
    """The factory registered as ``name``."""
    if not isinstance(registry, Mapping):
        return registry.get_backbone(name)
    if name in registry:
        return registry[name]
    installed = sorted(registry)
    near = difflib.get_close_matches(name, installed, n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    msg = f"unknown backbone {name!r}; {hint}installed: {', '.join(installed) or 'none'}"
    raise XadtError(msg)
