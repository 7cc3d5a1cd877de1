"""Options of the ``gaussian`` detector and its named presets (methods.md §1, §7 G-entries)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from xadt.config import option, runtime_options

__all__ = ["PRESETS", "GaussianConfig", "griffin2019", "griffin2019_resnet152"]


@dataclass
class GaussianConfig:
    """Options of the ``gaussian`` detector; every field has a default and a checked range.

    ``None`` means "choose from the training data" for ``binarize`` (G-5), ``ridge`` (G-7) and
    ``shrinkage`` (Ledoit–Wolf), and "all" for ``top_n``. After fitting, only ``mode`` and the
    runtime options (``weights``, a path whose hash is checked; ``batch_size``, ``precision``,
    ``channels_last``, ``compile``, ``backend`` and ``cache``) may change.
    """

    mode: Literal["appearance", "semantic", "combined"] = option(
        "combined",
        help="the scan score: the appearance or semantic detector alone, or their "
        "inverse-variance weighted sum",
    )
    backbone: str = option(
        "efficientnet_lite0",
        help="registered backbone name (see 'xadt plugins'); its pooled vector is the appearance "
        "feature and its logits the semantic one",
        check=(lambda v: bool(v.strip()), "a non-empty backbone name"),
    )
    weights: str | None = option(
        None,
        help="weights file of the backbone; None = the backbone's built-in weights",
        check=(lambda v: bool(v.strip()), "a path to a weights file, or None"),
        runtime=True,
    )
    window: int = option(
        224,
        help="side of the square patches, in pixels (the paper: 224)",
        check=(lambda v: v >= 16, "an integer >= 16"),
    )
    max_stride: int = option(
        112,
        help="largest step between neighbouring patches, in pixels, at most window "
        "(the paper: 112, i.e. >= 50% overlap)",
        check=(lambda v: v >= 1, "an integer >= 1"),
    )
    air_level: float = option(
        240 / 255,
        help="air cropping: fraction of white at and above which a pixel is air (G-1)",
        check=(lambda v: 0 < v <= 1, "a float in (0, 1]"),
    )
    opening: int = option(
        5,
        help="air cropping: side of the square opening that removes speckle, in pixels; 1 = off",
        check=(lambda v: v >= 1, "an integer >= 1"),
    )
    min_area: float = option(
        0.01,
        help="air cropping: smallest object kept, as a fraction of the view's area",
        check=(lambda v: 0 <= v < 1, "a float in [0, 1)"),
    )
    batch_size: int = option(
        32,
        help="patches per backbone call (patches of several scans share a call)",
        check=(lambda v: v >= 1, "an integer >= 1"),
        runtime=True,
    )
    precision: Literal["float32", "bfloat16", "float16"] = option(
        "float32",
        help="precision of the backbone's forward: float32 (exact), bfloat16 (autocast, CPU or "
        "CUDA) or float16 (autocast, CUDA only); half precision moved scores by up to 8% in "
        "a CPU bfloat16 check (benches/README.md)",
        runtime=True,
    )
    channels_last: bool = option(
        False,
        help="run the backbone's convolutions on channels-last (NHWC) tensors",
        runtime=True,
    )
    compile: bool = option(
        False,
        help="compile the backbone with torch.compile (inductor) at the first batch (tens of "
        "seconds), for faster batches after it",
        runtime=True,
    )
    backend: Literal["torch", "onnxruntime"] = option(
        "torch",
        help="what runs the backbone: torch, or ONNX Runtime on the CPU in float32 (exported "
        "once per process; pip install 'xadt[onnx]')",
        runtime=True,
    )
    cache: str | None = option(
        None,
        help="folder for cached backbone features, reused by later fits and by scoring; None = "
        "the run's cache folder (xadt train --cache), else a temporary folder during fit only",
        check=(lambda v: bool(v.strip()), "a folder path, or None"),
        runtime=True,
    )
    binarize: float | None = option(
        None,
        help="binarisation threshold t of the pooled activations; None = choose t on the "
        "training patches by the least extreme binary splits (G-5; the paper's 0.065 was "
        "tuned for the Wolfram net)",
        check=(lambda v: v > 0, "a float > 0, or None to choose it"),
    )
    variance: Literal["adjusted", "naive"] = option(
        "adjusted",
        help="appearance variance of each binary dimension: adjusted (p - 1/2) / ln(p / (1 - p)) "
        "or the naive p(1 - p) (ablation)",
    )
    covariance: Literal["full", "diagonal"] = option(
        "full",
        help="appearance covariance: full (phi correlations) or diagonal (ablation)",
    )
    ridge: float | None = option(
        1e-3,
        help="delta of Sigma + delta * mean(diag Sigma) * I, the appearance ridge (G-7); None = "
        "pick from 1e-4, 1e-3, 1e-2, 1e-1 by the likelihood of 10% held-out normal scans",
        check=(lambda v: v >= 0, "a float >= 0, or None to choose it"),
    )
    semantic_dims: Literal["plausible", "all"] = option(
        "plausible",
        help="logits of the semantic vector: the parcel-plausible ImageNet classes (G-8) or all "
        "(ablation)",
    )
    semantic_variance: Literal["fitted", "sample"] = option(
        "fitted",
        help="semantic SD per dimension: from the fitted mean-to-log-SD line or the sample SD "
        "(ablation)",
    )
    semantic_covariance: Literal["full", "diagonal"] = option(
        "full",
        help="semantic correlation: full (shrunk towards the identity) or diagonal (ablation)",
    )
    top_n: int | None = option(
        12,
        help="largest signed z-excursions kept in the semantic score (the paper: 12); None = "
        "all excursions (ablation)",
        check=(lambda v: v >= 1, "an integer >= 1, or None for all"),
    )
    shrinkage: float | None = option(
        None,
        help="weight of the identity in the semantic correlation (1 - w) R + w I; None = "
        "Ledoit-Wolf, chosen from the training scans",
        check=(lambda v: 0 <= v <= 1, "a float in [0, 1], or None for Ledoit-Wolf"),
    )
    weighting: Literal["in-sample", "out-of-fold"] = option(
        "in-sample",
        help="training scores the inverse-variance combination weights come from: in-sample "
        "(the paper) or 5-fold out-of-fold (less optimistic)",
    )
    seed: int = option(
        0,
        help="seed of the hash splits of the training scans (ridge hold-out, out-of-fold folds)",
        check=(lambda v: v >= 0, "an integer >= 0"),
    )


FREE_AFTER_FIT = runtime_options(GaussianConfig) | {"mode"}
"""Options that may differ between fitting and scoring: the runtime options (a weights path is
checked by its hash) and, from Python, ``mode``; every other one is part of the model."""


griffin2019 = GaussianConfig(
    mode="combined",
    backbone="efficientnet_lite0",
    window=224,
    max_stride=112,
    binarize=None,
    variance="adjusted",
    covariance="full",
    ridge=1e-3,
    semantic_dims="plausible",
    semantic_variance="fitted",
    semantic_covariance="full",
    top_n=12,
    weighting="in-sample",
)
"""Griffin et al. (2019), the main schemes of methods.md §1.10 table A (Figs. 9–11).

224 px patches at stride <= 112 over both views; appearance: binarised pool vector, adjusted
variance, full covariance (92.5% AUC in the paper); semantic: parcel-plausible logits, fitted
variance, top-12 excursions, full covariance (88.2%); combined by in-sample inverse-variance
weights (93.4%). The paper's t = 0.065 belongs to the Wolfram net, so t is chosen by the paper's
own criterion instead (G-5), and the backbone is EfficientNet-Lite0 (G-3): no paper anchor.
"""

griffin2019_resnet152 = dataclasses.replace(griffin2019, backbone="resnet152")
""":data:`griffin2019` on ResNet-152 (ImageNet), the paper's table III (methods.md §1.10 E):
appearance 91.8%, semantic 79.7% AUC. Needs ``weights=FILE`` (a torchvision state dict)."""

PRESETS: dict[str, GaussianConfig] = {
    "griffin2019": griffin2019,
    "griffin2019_resnet152": griffin2019_resnet152,
}
"""Named configurations, ``gaussian.<name>`` in the spirit of timm's ``arch.tag``."""
