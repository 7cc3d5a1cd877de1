"""Fast kernels for patch extraction, Mahalanobis and top-n excursion scoring, and window maps.

Each function takes numpy arrays or torch tensors (contiguous or not), validates them, runs the
compiled kernel from ``xadt._kernels`` and returns the same kind of object it was given. Inputs
on a CUDA device run the CUDA kernels (:mod:`xadt.kernels.cuda`) and give CUDA tensors.
"""

from __future__ import annotations

from xadt.kernels.patches import extract_patches, tile_boxes, window_map
from xadt.kernels.scoring import mahalanobis, topn_excursion

__all__ = ["extract_patches", "mahalanobis", "tile_boxes", "topn_excursion", "window_map"]
