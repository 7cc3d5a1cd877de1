"""Argument handling shared by the kernel wrappers: numpy or CPU torch in, the same kind out."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np


def is_torch(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch when it is not loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def to_numpy(x: Any, name: str) -> np.ndarray:
    """View ``x`` (numpy array, CPU torch tensor or sequence) as a numpy array without copying.

    Raises ``ValueError`` naming the argument for a GPU tensor or non-numeric data.
    """
    if is_torch(x):
        if x.device.type != "cpu":
            msg = f"{name}: expected a CPU tensor, got one on {x.device}"
            raise ValueError(msg)
        x = x.detach().numpy()  # shares memory; strides are kept
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        msg = f"{name}: expected a numeric array, got dtype {arr.dtype}"
        raise ValueError(msg)
    return arr


def like(result: np.ndarray, template: Any) -> Any:
    """Return ``result`` as the same kind of object as ``template`` (torch tensor or numpy)."""
    if is_torch(template):
        import torch

        return torch.from_numpy(result)
    return result


def require_ndim(arr: np.ndarray, ndim: int, name: str, shape_text: str) -> None:
    """Raise ``ValueError`` unless ``arr`` has ``ndim`` dimensions (``shape_text``: "(N, D)")."""
    if arr.ndim != ndim:
        msg = f"{name}: expected a {ndim}-D array {shape_text}, got shape {arr.shape}"
        raise ValueError(msg)


def require_float(arr: np.ndarray, name: str) -> np.ndarray:
    """Accept float32/float64 as is; reject other dtypes with a message naming the argument."""
    if arr.dtype not in (np.float32, np.float64):
        msg = f"{name}: expected float32 or float64, got {arr.dtype}"
        raise ValueError(msg)
    return arr
