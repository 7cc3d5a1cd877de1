"""The CUDA side of the kernels: arguments of CUDA tensors checked and handed to the compiled
CUDA kernels as device pointers on torch's current stream.

:mod:`xadt.kernels` calls these when the input lives on a GPU. Outputs are allocated by torch on
the input's device; nothing is copied back to the host except what an error check needs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from xadt import _kernels

if TYPE_CHECKING:
    import torch

__all__ = [
    "check_scores",
    "check_view",
    "extract_patches",
    "is_cuda",
    "mahalanobis",
    "topn_excursion",
    "window_map",
]

_VIEW_DTYPES = ("uint8", "uint16", "float32")  # the order of the kernel's dtype codes
_SCALES = (255.0, 65535.0, 1.0)


def is_cuda(x: Any) -> bool:
    """Whether ``x`` is a torch tensor on a CUDA device (without importing torch otherwise)."""
    from xadt.kernels._arrays import is_torch

    return is_torch(x) and x.device.type == "cuda"


def _require_cuda_build(fn: str, name: str, device: Any) -> None:
    if not _kernels.cuda_compiled:
        msg = (
            f"{fn}: {name} is on {device} but xadt was built without its CUDA kernels "
            "(no nvcc, or XADT_CUDA=OFF); move it to the CPU or reinstall xadt where nvcc is found"
        )
        raise ValueError(msg)


def _stream(device: torch.device) -> int:
    import torch

    return int(torch.cuda.current_stream(device).cuda_stream)


def _on(value: Any, device: torch.device, dtype: torch.dtype, fn: str, name: str) -> torch.Tensor:
    """``value`` (array, tensor or sequence) as a contiguous tensor of ``dtype`` on ``device``."""
    import torch

    tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    if not (tensor.is_floating_point() or dtype == torch.int64):
        msg = f"{fn}: {name}: expected a floating-point array, got dtype {tensor.dtype}"
        raise ValueError(msg)
    return tensor.to(device=device, dtype=dtype).contiguous()


def _require_finite(tensor: torch.Tensor, fn: str, name: str) -> None:
    import torch

    if not bool(torch.isfinite(tensor).all()):
        msg = f"{fn}: {name} has a non-finite entry"
        raise ValueError(msg)


def _square(tensor: torch.Tensor, d: int, fn: str, name: str) -> None:
    if tensor.ndim != 2 or tensor.shape[0] != tensor.shape[1]:
        msg = f"{fn}: {name} must be square, got shape {tuple(tensor.shape)}"
        raise ValueError(msg)
    if tensor.shape[0] != d:
        msg = f"{fn}: x has {d} columns but {name} is {tensor.shape[0]}x{tensor.shape[1]}"
        raise ValueError(msg)


def _vector(tensor: torch.Tensor, d: int, fn: str, name: str) -> None:
    if tensor.ndim != 1 or tensor.shape[0] != d:
        msg = f"{fn}: x has {d} columns but {name} has shape {tuple(tensor.shape)}"
        raise ValueError(msg)


def _rows(x: torch.Tensor, fn: str) -> torch.Tensor:
    """x as a contiguous float32/float64 (N, D) tensor with D >= 1."""
    import torch

    if x.dtype not in (torch.float32, torch.float64):
        msg = f"{fn}: x: expected float32 or float64, got {x.dtype}"
        raise ValueError(msg)
    if x.ndim != 2:
        msg = f"{fn}: x: expected a 2-D array (N, D), got shape {tuple(x.shape)}"
        raise ValueError(msg)
    if x.shape[1] < 1:
        msg = f"{fn}: x has no columns; expected shape (N, D) with D >= 1"
        raise ValueError(msg)
    return x.contiguous()


def _finite_scores(out: torch.Tensor, fn: str, why: str) -> torch.Tensor:
    import torch

    bad = torch.nonzero(~torch.isfinite(out))
    if bad.numel():
        msg = f"{fn}: the score of row {int(bad[0, 0])} is not finite ({why})"
        raise ValueError(msg)
    return out


def check_view(view: torch.Tensor) -> int:
    """Check a CUDA view's shape and dtype (as the CPU path does); returns its channels."""
    if view.ndim != 3:
        msg = f"view: expected a 3-D array (H, W, C), got shape {tuple(view.shape)}"
        raise ValueError(msg)
    name = str(view.dtype).removeprefix("torch.")
    if name not in _VIEW_DTYPES:
        msg = f"view: expected dtype uint8, uint16 or float32, got {name}"
        raise ValueError(msg)
    return int(view.shape[2])


def check_scores(scores: torch.Tensor) -> torch.Tensor:
    """Check that CUDA window scores are float32 or float64; returns them."""
    import torch

    if scores.dtype not in (torch.float32, torch.float64):
        msg = f"scores: expected float32 or float64, got {scores.dtype}"
        raise ValueError(msg)
    return scores


def extract_patches(
    view: torch.Tensor,
    boxes: np.ndarray,
    size: int,
    mean: np.ndarray,
    std: np.ndarray,
    pad_value: float,
) -> torch.Tensor:
    """:func:`xadt.kernels.extract_patches` of a CUDA ``view``; ``boxes``, ``mean`` and ``std``
    arrive validated (numpy, float64 per channel)."""
    import torch

    _require_cuda_build("extract_patches", "view", view.device)
    code = _VIEW_DTYPES.index(str(view.dtype).removeprefix("torch."))
    scale = _SCALES[code]
    height, width, channels = view.shape
    # As the CPU kernel computes them, in float64: 1 / (scale·std), -mean / std, the padded value.
    norm = np.stack([1.0 / (scale * std), -mean / std, (pad_value / scale - mean) / std])
    device = view.device
    norm_t = torch.from_numpy(np.ascontiguousarray(norm)).to(device)
    boxes_t = torch.from_numpy(boxes).to(device)
    out = torch.empty((len(boxes), channels, size, size), dtype=torch.float32, device=device)
    with torch.cuda.device(device):
        _kernels.cuda_extract_patches(
            view.data_ptr(),
            code,
            height,
            width,
            channels,
            *view.stride(),
            boxes_t.data_ptr(),
            len(boxes),
            size,
            norm_t.data_ptr(),
            out.data_ptr(),
            _stream(device),
        )
    return out


def window_map(boxes: np.ndarray, scores: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """:func:`xadt.kernels.window_map` of CUDA ``scores``; ``boxes`` arrive validated (numpy)."""
    import torch

    _require_cuda_build("window_map", "scores", scores.device)
    device = scores.device
    scores64 = scores.to(torch.float64).contiguous()
    finite = torch.where(torch.isfinite(scores64), scores64.abs(), 0.0)
    max_abs = float(finite.max()) if finite.numel() else 0.0
    # Finite scores are summed scaled by a power of two (exact), as on the CPU, so no sum of
    # them overflows.
    exponent = math.frexp(max_abs)[1] if max_abs > 0 else 0
    boxes_t = torch.from_numpy(boxes).to(device)
    out = torch.empty((height, width), dtype=torch.float32, device=device)
    with torch.cuda.device(device):
        _kernels.cuda_window_map(
            boxes_t.data_ptr(),
            scores64.data_ptr(),
            len(boxes),
            height,
            width,
            exponent,
            out.data_ptr(),
            _stream(device),
        )
    return out


def mahalanobis(x: torch.Tensor, mean: Any, precision: Any) -> torch.Tensor:
    """:func:`xadt.kernels.mahalanobis` of a CUDA ``x``; ``mean`` and ``precision`` are moved to
    its device and dtype."""
    import torch

    fn = "mahalanobis"
    _require_cuda_build(fn, "x", x.device)
    x = _rows(x, fn)
    n, d = x.shape
    mean_t = _on(mean, x.device, x.dtype, fn, "mean")
    prec_t = _on(precision, x.device, x.dtype, fn, "precision")
    _vector(mean_t, d, fn, "mean")
    _square(prec_t, d, fn, "precision")
    for tensor, name in ((x, "x"), (mean_t, "mean"), (prec_t, "precision")):
        _require_finite(tensor, fn, name)
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    with torch.cuda.device(x.device):
        _kernels.cuda_mahalanobis(
            x.data_ptr(),
            mean_t.data_ptr(),
            prec_t.data_ptr(),
            out.data_ptr(),
            n,
            d,
            x.dtype == torch.float64,
            _stream(x.device),
        )
    return _finite_scores(out, fn, f"it overflows {x.dtype}; rescale the inputs")


def topn_excursion(x: torch.Tensor, mean: Any, std: Any, inv_corr: Any, n: int) -> torch.Tensor:
    """:func:`xadt.kernels.topn_excursion` of a CUDA ``x``; ``n`` arrives validated, the
    parameters are moved to its device and dtype."""
    import torch

    fn = "topn_excursion"
    _require_cuda_build(fn, "x", x.device)
    x = _rows(x, fn)
    rows, d = x.shape
    mean_t = _on(mean, x.device, x.dtype, fn, "mean")
    std_t = _on(std, x.device, x.dtype, fn, "std")
    corr_t = _on(inv_corr, x.device, x.dtype, fn, "inv_corr")
    _vector(mean_t, d, fn, "mean")
    _vector(std_t, d, fn, "std")
    _square(corr_t, d, fn, "inv_corr")
    _require_finite(x, fn, "x")
    _require_finite(mean_t, fn, "mean")
    if not bool((torch.isfinite(std_t) & (std_t > 0)).all()):
        msg = f"{fn}: std must be positive and finite"
        raise ValueError(msg)
    out = torch.empty(rows, dtype=x.dtype, device=x.device)
    with torch.cuda.device(x.device):
        _kernels.cuda_topn_excursion(
            x.data_ptr(),
            mean_t.data_ptr(),
            std_t.data_ptr(),
            corr_t.data_ptr(),
            out.data_ptr(),
            rows,
            d,
            min(n, d),
            x.dtype == torch.float64,
            _stream(x.device),
        )
    why = f"a z-score overflows float64, inv_corr has a non-finite entry, or it overflows {x.dtype}"
    return _finite_scores(out, fn, why)
