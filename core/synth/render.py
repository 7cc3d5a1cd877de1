"""Image formation: Beer–Lambert projection, photon noise, detector blur and false colour.

:func:`false_colour` is the xadt false-colour convention for dual-energy scans; the scan readers
use it to render user high/low transmission images the same way the simulator does.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable

import numpy as np
from scipy import ndimage, special

from xadt.synth.materials import attenuation_ratio
from xadt.synth.parts import Part
from xadt.synth.shapes import View

DOSE_LOW = 12000.0
"""Photons per pixel reaching the detector through air at dose 1, low energy (at scale 1)."""
DOSE_HIGH = 25000.0
"""Photons per pixel through air at dose 1, high energy (at scale 1)."""

_TEX = 512


@functools.cache
def _texture_bank() -> np.ndarray:
    """Zero-mean, unit-SD patterns (1 mm per pixel, tileable) for :data:`TEXTURE_KINDS`."""
    rng = np.random.default_rng(20240917)  # fixed: the bank is part of the simulator, not a draw
    white = rng.standard_normal((4, _TEX, _TEX))
    blotch = ndimage.gaussian_filter(white[0], 7, mode="wrap")
    grain = ndimage.gaussian_filter(white[1], 1.0, mode="wrap")
    band = ndimage.gaussian_filter(white[2], 5, mode="wrap") - ndimage.gaussian_filter(
        white[2], 14, mode="wrap"
    )
    wrinkle = -np.abs(band / band.std())  # ridged noise: thin creases where the band crosses 0
    yy, xx = np.mgrid[0:_TEX, 0:_TEX].astype(np.float64)
    pitch = _TEX / 16  # bubbles on a hexagonal lattice, 32 mm apart
    row = np.floor(yy / (pitch * 0.866))
    cy = (row + 0.5) * pitch * 0.866
    cx = (np.floor(xx / pitch - (row % 2) / 2) + 0.5 + (row % 2) / 2) * pitch
    dist = np.hypot(yy - cy, xx - cx) / (pitch / 2)
    bubbles = np.clip(1.2 - dist, 0, 0.4)
    bank = np.stack([blotch, grain, wrinkle, bubbles]).astype(np.float32)
    bank -= bank.mean(axis=(1, 2), keepdims=True)
    bank /= bank.std(axis=(1, 2), keepdims=True)
    return bank


def _textured(
    length: np.ndarray, spec: tuple[int, float, int, int], rows: slice, cols: slice, pitch: float
) -> np.ndarray:
    kind, amplitude, oy, ox = spec
    bank = _texture_bank()[kind]
    ri = (oy + np.arange(rows.start, rows.stop) * pitch).astype(np.int64) % _TEX
    ci = (ox + np.arange(cols.start, cols.stop) * pitch).astype(np.int64) % _TEX
    factor = bank[np.ix_(ri, ci)] * np.float32(amplitude)
    factor += 1
    np.maximum(factor, 0.05, out=factor)
    return length * factor


@functools.cache
def _mu(z: float, rho: float) -> tuple[np.float32, np.float32]:
    from xadt.synth.materials import Material

    lo, hi = Material("", z, rho).mu
    return np.float32(lo), np.float32(hi)


def project(parts: Iterable[Part], view: View) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Line integrals Σ μ·ℓ of ``parts`` in ``view``: (low, high, high-energy share of threats).

    All three are float32 (H, W) maps of attenuation (natural-log units); cavities subtract.
    """
    low = np.zeros(view.shape, np.float32)
    high = np.zeros(view.shape, np.float32)
    threat = np.zeros(view.shape, np.float32)
    for part in parts:
        fp = part.shape.footprint(view)
        if fp is None:
            continue
        rows, cols, length = fp
        if part.texture is not None:
            length = _textured(length, part.texture, rows, cols, view.pitch)
        mu_lo, mu_hi = _mu(part.material.z, part.material.rho)
        if part.sign < 0:
            mu_lo, mu_hi = -mu_lo, -mu_hi
        low[rows, cols] += mu_lo * length
        att = mu_hi * length
        high[rows, cols] += att
        if part.threat:
            threat[rows, cols] += att
    np.maximum(low, 0, out=low)
    np.maximum(high, 0, out=high)
    np.maximum(threat, 0, out=threat)
    return low, high, threat


@functools.cache
def _normal_quantiles() -> np.ndarray:
    return special.ndtri((np.arange(65536) + 0.5) / 65536).astype(np.float32)


def standard_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal float32 noise from 16 random bits per value (quantiles of N(0, 1)).

    About twice as fast as ``rng.standard_normal``; the 65536 levels and the ±4.3 SD tails are
    far finer than photon noise needs.
    """
    n = math.prod(shape)
    bits = np.frombuffer(rng.bytes(2 * n), dtype=np.uint16).astype(np.int32)
    return np.take(_normal_quantiles(), bits).reshape(shape)


def expose(
    attenuation: np.ndarray,
    photons: float,
    rng: np.random.Generator,
    blur: float,
) -> np.ndarray:
    """Transmission (float32, (0, 1]) through ``attenuation``, with ``photons`` per air pixel.

    Detector blur (Gaussian, ``blur`` px SD) acts on the transmitted intensity; counts are
    Poisson, drawn exactly where fewer than 30 photons are expected and from the normal
    approximation elsewhere (indistinguishable there, and several times faster).
    """
    t = np.exp(-attenuation)
    if blur > 0.3:
        # Blurring air changes nothing, so only the box around the parcel is filtered.
        pad = math.ceil(3 * blur) + 1
        rows = np.flatnonzero(attenuation.any(axis=1))
        cols = np.flatnonzero(attenuation.any(axis=0))
        if rows.size:
            r0, r1 = max(rows[0] - pad, 0), rows[-1] + pad + 1
            c0, c1 = max(cols[0] - pad, 0), cols[-1] + pad + 1
            t[r0:r1, c0:c1] = ndimage.gaussian_filter(
                t[r0:r1, c0:c1], blur, mode="nearest", truncate=3.0
            )
    counts = t * np.float32(photons)
    noise = standard_normal(rng, counts.shape)
    noise *= np.sqrt(counts)
    noisy = counts + noise
    few = counts < 30
    if few.any():
        noisy[few] = rng.poisson(counts[few])
    noisy *= np.float32(1 / photons)
    np.clip(noisy, np.float32(0.5 / photons), 1, out=noisy)
    return noisy


# The LUT is indexed by high-energy transmission (brightness) and by the low/high
# log-attenuation ratio (material); both are quantised finely enough that steps stay invisible.
_N_T = 1024
_N_R = 96
_R_MIN, _R_MAX = 1.0, 4.6
_Z_ANCHORS = np.array([1.0, 7.5, 9.0, 10.5, 12.0, 16.0, 18.5, 22.0, 30.0, 90.0])
_RGB_ANCHORS = np.array(
    [
        [1.00, 0.55, 0.10],  # organic: orange
        [1.00, 0.55, 0.10],
        [0.95, 0.65, 0.10],
        [0.55, 0.75, 0.15],
        [0.25, 0.70, 0.20],  # inorganic: green
        [0.20, 0.65, 0.35],
        [0.15, 0.50, 0.75],
        [0.10, 0.35, 0.90],  # metal: blue
        [0.08, 0.25, 0.85],
        [0.05, 0.15, 0.60],
    ]
)


def colour_of_z(z: np.ndarray) -> np.ndarray:
    """Fully saturated false colour (float RGB in [0, 1]) of effective atomic number ``z``."""
    z = np.asarray(z, dtype=np.float64)
    return np.stack([np.interp(z, _Z_ANCHORS, _RGB_ANCHORS[:, c]) for c in range(3)], axis=-1)


@functools.cache
def _lut() -> np.ndarray:
    t = (np.arange(_N_T) + 0.5) / _N_T
    att = -np.log(t)[:, None]
    ratio = _R_MIN + (np.arange(_N_R) + 0.5) / _N_R * (_R_MAX - _R_MIN)
    zs = np.linspace(1, 90, 2000)
    z = np.interp(ratio, attenuation_ratio(zs), zs)
    base = colour_of_z(z)[None, :, :]
    # Thin material tints lightly, thicker material saturates, and brightness falls with the
    # total attenuation; air (att ≈ 0) stays white whatever the noisy ratio says.
    sat = (1 - np.exp(-np.maximum(att - 0.01, 0) / 0.22))[..., None]
    bright = np.exp(-0.42 * att)[..., None]
    rgb = (1 - sat + sat * base) * bright
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8).reshape(_N_T * _N_R, 3)


def false_colour(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Render dual-energy transmission images as the xadt false-colour RGB image.

    Args:
        high: (H, W) float transmission I/I0 at the high energy, in (0, 1].
        low: (H, W) float transmission at the low energy, same shape.

    Returns:
        (H, W, 3) uint8 RGB. Hue encodes the material from the ratio of log-attenuations
        log(low)/log(high): organic (Z_eff < ~10) orange, inorganic (~10–18) green, metal
        (> ~18) blue. Brightness falls with the high-energy attenuation; air (transmission 1)
        is white, and thin material is pale, so air stays at grey ≥ 240/255.
    """
    high = np.asarray(high)
    low = np.asarray(low)
    if high.shape != low.shape or high.ndim != 2:
        msg = (
            f"false_colour: expected two (H, W) images of one shape, "
            f"got {high.shape} and {low.shape}"
        )
        raise ValueError(msg)
    th = np.clip(high, 1e-6, 1).astype(np.float32, copy=False)
    tl = np.clip(low, 1e-6, 1).astype(np.float32, copy=False)
    a_hi = -np.log(th)
    a_lo = -np.log(tl)
    ratio = a_lo / np.maximum(a_hi, np.float32(0.02))
    ir = (ratio - np.float32(_R_MIN)) * np.float32(_N_R / (_R_MAX - _R_MIN))
    np.clip(ir, 0, _N_R - 1, out=ir)
    it = th * np.float32(_N_T)
    np.clip(it, 0, _N_T - 1, out=it)
    index = it.astype(np.int32) * _N_R + ir.astype(np.int32)
    return np.take(_lut(), index, axis=0)
