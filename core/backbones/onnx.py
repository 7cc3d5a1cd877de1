"""A backbone's forward in ONNX Runtime (the optional ``xadt[onnx]`` extra), for
``Execution(backend="onnxruntime")``.

The backbone is exported once per process (torch's dynamo ONNX exporter, batch size dynamic,
input size fixed) and run by ONNX Runtime's CPU provider with torch's thread count.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
import weakref
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from xadt.backbones.base import Backbone
from xadt.errors import XadtError

__all__ = ["onnx_forward"]

OnnxForward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

_SESSIONS: weakref.WeakKeyDictionary[Backbone, OnnxForward] = weakref.WeakKeyDictionary()


class _PooledAndLogits(nn.Module):
    """The layers of ``Backbone.forward`` with plain tensor outputs, for the exporter."""

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        last, _ = self.backbone._trunk(x, frozenset())
        pooled = last.mean(dim=(2, 3))
        return pooled, self.backbone.classifier(pooled)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's own notices (deprecations inside torch, "torchvision is not installed"
    for operators a backbone never uses) are not the user's to act on."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logger.setLevel(level)


def onnx_forward(backbone: Backbone) -> OnnxForward:
    """``backbone``'s forward in ONNX Runtime: float32 (N, 3, S, S) normalised patches, S its
    input size, to float32 (pooled, logits); exported at the first call for this backbone.

    Raises:
        XadtError: ONNX Runtime or the exporter's packages are not installed.
    """
    if backbone in _SESSIONS:
        return _SESSIONS[backbone]
    try:
        import onnxruntime
        import onnxscript  # noqa: F401 - the exporter needs it; fail here, with the fix
    except ImportError as exc:
        msg = (
            f"The 'backend' option onnxruntime needs ONNX Runtime and the ONNX exporter "
            f"({exc.name} is missing); pip install 'xadt[onnx]'"
        )
        raise XadtError(msg) from None
    size = backbone.input_size
    example = torch.zeros(2, 3, size, size)
    batch = torch.export.Dim("batch", min=1, max=65536)
    with _quiet_exporter():
        program = torch.onnx.export(
            _PooledAndLogits(backbone).eval(),
            (example,),
            input_names=["x"],
            output_names=["pooled", "logits"],
            dynamic_shapes=({0: batch},),
            dynamo=True,
            verbose=False,
        )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        program.model_proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )

    def forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pooled, logits = session.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})
        return pooled, logits

    _SESSIONS[backbone] = forward
    return forward
