"""Type stubs of the compiled module ``xadt._kernels``; use the wrappers in ``xadt.kernels``."""

import numpy as np
import numpy.typing as npt

cuda_compiled: bool
"""Whether the extension was built with its CUDA sources (nvcc found, XADT_CUDA not OFF)."""

def extract_patches(
    view: np.ndarray,
    boxes: np.ndarray,
    size: int,
    mean: np.ndarray,
    std: np.ndarray,
    pad_value: float,
) -> npt.NDArray[np.float32]:
    """Normalised float32 (N, C, size, size) patches of an (H, W, C) uint8/uint16/float32 view."""

def window_map(
    boxes: np.ndarray, scores: np.ndarray, height: int, width: int
) -> npt.NDArray[np.float32]:
    """float32 (height, width) map of the mean score of the covering windows (NaN where none)."""

def mahalanobis(x: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each row of x (N, D): direct blocked OpenMP kernel."""

def mahalanobis_centre(x: np.ndarray, mean: np.ndarray, out: np.ndarray) -> None:
    """out = x - mean (out C-contiguous, shaped like x); rejects non-finite input."""

def mahalanobis_require_finite(a: np.ndarray, fn: str, name: str) -> None:
    """Raise ValueError naming the first non-finite entry of the 2-D array a."""

def mahalanobis_sym_blocks(
    precision: np.ndarray, block: int, fn: str = "mahalanobis", name: str = "precision"
) -> np.ndarray:
    """Block-upper-triangular symmetrised precision for the GEMM path."""

def mahalanobis_block_row_dots(
    acc: npt.NDArray[np.float64], t: np.ndarray, y: np.ndarray, block: int
) -> None:
    """acc[i] = sum over column blocks J of T_J[i, :] . y[i, J]."""

def mahalanobis_row_dot_add(out: npt.NDArray[np.float64], a: np.ndarray, b: np.ndarray) -> None:
    """out[i] += sum_k a[i, k] * b[i, k], accumulated in float64."""

def topn_excursion(
    x: np.ndarray, mean: np.ndarray, std: np.ndarray, inv_corr: np.ndarray, n: int
) -> np.ndarray:
    """Top-n excursion score of each row of x (N, D): O(D + n^2) per row."""

def topn_dense(x: np.ndarray, mean: np.ndarray, std: np.ndarray, n: int) -> np.ndarray:
    """The zeroed z-scores (N, D): the n largest signed z of each row kept, the rest 0."""

def project_traces(
    compton: npt.NDArray[np.float32],
    photo: npt.NDArray[np.float32],
    threat: npt.NDArray[np.float32],
    records: npt.NDArray[np.float64],
    arrays: list[np.ndarray],
    bank: npt.NDArray[np.float32],
) -> None:
    """Add shape traces (records (N, 33)), textured from bank (K, S, S), to the maps in place."""

def add_veil(
    t: npt.NDArray[np.float32], veil: npt.NDArray[np.float32], step: int
) -> npt.NDArray[np.float32]:
    """min(t + veil (sampled every step pixels) interpolated to t's size, 1), float32."""

def photon_noise(
    t: npt.NDArray[np.float32], photons: float, bits: np.ndarray, quantiles: np.ndarray
) -> tuple[npt.NDArray[np.float32], bool]:
    """Noisy float32 transmission of t and whether any pixel expects < 30 photons."""

# Only where cuda_compiled: the CUDA launchers, taking device pointers and a cudaStream_t as ints.
def cuda_extract_patches(
    view: int,
    dtype: int,
    height: int,
    width: int,
    channels: int,
    sy: int,
    sx: int,
    sc: int,
    boxes: int,
    n_boxes: int,
    size: int,
    norm: int,
    out: int,
    stream: int,
) -> None:
    """Queue patch extraction of a device (H, W, C) view into a float32 (N, C, size, size)."""

def cuda_window_map(
    boxes: int, scores: int, n: int, height: int, width: int, exponent: int, out: int, stream: int
) -> None:
    """Queue the window map of float64 scores into a float32 (height, width) device buffer."""

def cuda_mahalanobis(
    x: int, mean: int, precision: int, out: int, rows: int, dim: int, is_double: bool, stream: int
) -> None:
    """Queue squared Mahalanobis distances of contiguous device rows."""

def cuda_topn_excursion(
    x: int,
    mean: int,
    std: int,
    inv_corr: int,
    out: int,
    rows: int,
    dim: int,
    keep: int,
    is_double: bool,
    stream: int,
) -> None:
    """Queue top-n excursion scores of contiguous device rows (NaN where a z is not finite)."""
