"""Image formation: polychromatic Beer–Lambert projection with beam hardening, a scatter veil,
detector blur, per-row gain and photon noise.

The false colour of the rendered dual-energy pair is :func:`xadt.colour.false_colour`, the same
convention the scan readers apply to a user's high/low transmission images.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, special

from xadt.colour import E_HIGH, klein_nishina, mass_attenuation, z_over_a
from xadt.synth.parts import Part, Texture
from xadt.synth.shapes import Trace, View

try:
    from xadt import _kernels
except ImportError:  # a source tree without the compiled extension: numpy only
    _kernels = None  # type: ignore[assignment]

DOSE_LOW = 120000.0
"""Photons per pixel reaching the detector through air at dose 1, low energy (at scale 1): noise
of 0.3% in air, rising to a few percent behind dense goods, as in a scanner's calibrated image."""
DOSE_HIGH = 250000.0
"""Photons per pixel through air at dose 1, high energy (at scale 1)."""

_TEX = 512
_COEFFICIENTS = 16  # coefficients per trace in the kernel's record table


@functools.cache
def _texture_bank() -> np.ndarray:
    """Zero-mean, unit-SD patterns (1 mm per pixel, tileable) for :data:`TEXTURE_KINDS`."""
    rng = np.random.default_rng(20240917)  # fixed: the bank is part of the simulator, not a draw
    white = rng.standard_normal((6, _TEX, _TEX))
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
    # Woven fabric: threads about 2 mm apart both ways, with uneven yarn.
    yarn = ndimage.gaussian_filter(white[3], 0.8, mode="wrap")
    weave = np.sin(2 * np.pi * yy / 2.0 + 0.3 * yarn) * np.sin(2 * np.pi * xx / 2.0) + 0.5 * yarn
    # Corrugated board: flutes about 4 mm apart, walls denser than the air between.
    flutes = (
        np.abs(
            np.sin(np.pi * (yy + 1.5 * ndimage.gaussian_filter(white[4], 20, mode="wrap")) / 4.0)
        )
        ** 4
    )
    # Layered sheets (pages, plies, windings): thin lines at uneven spacing along rows.
    lines = ndimage.gaussian_filter1d(
        white[5][:, :1] * np.ones((1, _TEX)), 0.7, axis=0, mode="wrap"
    )
    lines += 0.3 * ndimage.gaussian_filter(white[5], 2, mode="wrap")
    bank = np.stack([blotch, grain, wrinkle, bubbles, weave, flutes, lines]).astype(np.float32)
    bank -= bank.mean(axis=(1, 2), keepdims=True)
    bank /= bank.std(axis=(1, 2), keepdims=True)
    return bank


@functools.cache
def _tiled_bank() -> np.ndarray:
    """The texture bank tiled 2 × 2, so that any window of up to 512 × 512 is one slice."""
    return np.tile(_texture_bank(), (1, 2, 2))


def _textured(
    length: np.ndarray, spec: tuple[int, float, int, int], rows: slice, cols: slice, pitch: float
) -> np.ndarray:
    kind, amplitude, oy, ox = spec
    n_rows, n_cols = rows.stop - rows.start, cols.stop - cols.start
    if pitch == 1.0 and n_rows <= _TEX and n_cols <= _TEX:
        # At full scale the indices run on by one and wrap once at most: a slice of the pattern
        # tiled 2 × 2 holds the same values as the gather below, without the gather's cost.
        r0, c0 = (oy + rows.start) % _TEX, (ox + cols.start) % _TEX
        patch = _tiled_bank()[kind, r0 : r0 + n_rows, c0 : c0 + n_cols]
    else:
        ri = (oy + np.arange(rows.start, rows.stop) * pitch).astype(np.int64) % _TEX
        ci = (ox + np.arange(cols.start, cols.stop) * pitch).astype(np.int64) % _TEX
        patch = _texture_bank()[kind][np.ix_(ri, ci)]
    factor = patch * np.float32(amplitude)
    factor += 1
    np.maximum(factor, 0.05, out=factor)
    return length * factor


@functools.cache
def _basis(z: float, rho: float) -> tuple[np.float32, np.float32]:
    """Compton and photoelectric coefficients (c, p) of a material, 1/mm: μ(E) = c·σ_KN(E) + p/E³.

    Read off the two-term model of :mod:`xadt.colour` at E_HIGH (any energy gives the same).
    """
    electrons = _AVOGADRO * float(z_over_a(z)) * rho / 10.0
    kn = klein_nishina(E_HIGH)
    photo = (float(mass_attenuation(z, E_HIGH)) * rho / 10.0 - electrons * kn) * E_HIGH**3
    return np.float32(electrons), np.float32(photo)


@dataclass(frozen=True)
class Spectrum:
    """A detector channel's effective spectrum: energies (keV) and their shares of the signal."""

    energies: tuple[float, ...]
    weights: tuple[float, ...]


SPECTRUM_LOW = Spectrum((35.0, 45.0, 55.0, 65.0, 80.0, 100.0), (0.06, 0.2, 0.3, 0.24, 0.14, 0.06))
"""Low-energy channel (front detector layer behind a ~140 kVp tube): mean about 61 keV."""
SPECTRUM_HIGH = Spectrum(
    (60.0, 80.0, 100.0, 120.0, 140.0, 160.0), (0.08, 0.2, 0.28, 0.24, 0.14, 0.06)
)
"""High-energy channel (rear layer, behind a copper filter): mean about 106 keV."""


@dataclass(frozen=True)
class Projection:
    """Line integrals of one view: Compton and photoelectric basis (float32 (H, W) maps, so
    that Σ μ(E)·ℓ = compton·σ_KN(E) + photo/E³) and the high-energy attenuation of the threat."""

    compton: np.ndarray
    photo: np.ndarray
    threat: np.ndarray

    def attenuation(self, energy: float) -> np.ndarray:
        """Monochromatic line integral Σ μ(E)·ℓ at ``energy`` keV (natural-log units)."""
        kn = np.float32(klein_nishina(energy))
        return self.compton * kn + self.photo * np.float32(1 / energy**3)

    def transmission(self, spectrum: Spectrum) -> np.ndarray:
        """Polychromatic transmission Σ wᵢ exp(−Σ μ(Eᵢ)·ℓ): thick objects harden the beam, so
        their attenuation grows more slowly than their thickness."""
        rows = np.flatnonzero(self.compton.any(axis=1))
        cols = np.flatnonzero(self.compton.any(axis=0))
        out = np.ones(self.compton.shape, np.float32)
        if rows.size == 0:
            return out
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        c, p = self.compton[box], self.photo[box]
        total = sum(spectrum.weights)
        acc = np.zeros(c.shape, np.float32)
        att, photo = np.empty_like(c), np.empty_like(c)
        for energy, weight in zip(spectrum.energies, spectrum.weights, strict=True):
            # exp(−(c·σ + p/E³)), its signs folded into the (exactly negated) coefficients.
            np.multiply(c, -np.float32(klein_nishina(energy)), out=att)
            np.multiply(p, -np.float32(1 / energy**3), out=photo)
            att += photo
            np.exp(att, out=att)
            att *= np.float32(weight / total)
            acc += att
        out[box] = acc
        return out


_AVOGADRO = 6.02214076e23


def project(
    parts: Iterable[Part], view: View, source_mm: float | None = None, *, kernel: bool | None = None
) -> Projection:
    """Line integrals of ``parts`` in ``view`` (cavities subtract), as a :class:`Projection`.

    With ``source_mm``, a line-scan fan beam from a source that far from the parcel's middle
    (along the rays) magnifies each part across the belt (along rows, about the central row) by
    ``source_mm / (source_mm + depth)``, its centre's depth measured from the middle of all the
    parts; the belt axis is not magnified.

    ``kernel`` picks how each part's :class:`~xadt.synth.shapes.Trace` is evaluated and added:
    by the compiled kernel in one pass (True; the default where ``xadt._kernels`` is built) or
    with numpy, step by step (False: the reference, equal to float32 rounding).
    """
    kernel = _use_kernel(kernel, "project")
    parts = list(parts)
    compton = np.zeros(view.shape, np.float32)
    photo = np.zeros(view.shape, np.float32)
    threat = np.zeros(view.shape, np.float32)
    kn_high = np.float32(klein_nishina(E_HIGH))
    inv_high = np.float32(1 / E_HIGH**3)
    magnifications: list[float | None] = [None] * len(parts)
    if source_mm is not None and parts:
        depths = np.array([view.to_view(part.shape.centre)[2] for part in parts])
        middle = float(np.median(depths))
        magnifications = [source_mm / max(source_mm + d - middle, 0.2 * source_mm) for d in depths]
    records: list[list[float]] = []
    arrays: list[np.ndarray] = []
    for part, magnification in zip(parts, magnifications, strict=True):
        trace = part.shape.trace(view)
        if trace is None:
            continue
        c, p = _basis(part.material.z, part.material.rho)
        if part.sign < 0:
            c, p = -c, -p
        t = c * kn_high + p * inv_high if part.threat else None
        if kernel:
            records.append(_record(trace, (c, p, t), part.texture, magnification, arrays))
            continue
        rows, cols, length = trace.rows, trace.cols, trace.lengths()
        if part.texture is not None:
            length = _textured(length, part.texture, rows, cols, view.pitch)
        if magnification is not None:
            rows, length = _magnify_rows(rows, length, magnification, view.shape[0])
            if length.size == 0:
                continue
        compton[rows, cols] += c * length
        photo[rows, cols] += p * length
        if t is not None:
            threat[rows, cols] += t * length
    if records:
        assert _kernels is not None
        table = np.array(records, dtype=np.float64)
        _kernels.project_traces(compton, photo, threat, table, arrays, _texture_bank())
    np.maximum(compton, 0, out=compton)
    np.maximum(photo, 0, out=photo)
    np.maximum(threat, 0, out=threat)
    return Projection(compton, photo, threat)


def _use_kernel(kernel: bool | None, caller: str) -> bool:
    """Whether ``caller`` runs its compiled kernel: by default where it is built."""
    if kernel is None:
        return _kernels is not None
    if kernel and _kernels is None:
        msg = f"{caller}: kernel=True but the compiled extension xadt._kernels is not built"
        raise RuntimeError(msg)
    return kernel


def _record(
    trace: Trace,
    basis: tuple[np.float32, np.float32, np.float32 | None],
    texture: Texture | None,
    magnification: float | None,
    arrays: list[np.ndarray],
) -> list[float]:
    """One row of the kernel's record table (csrc/projection.cpp, ``Field``); a plate's outline
    or a tube's samples go to ``arrays``, which the row indexes."""
    index = -1
    if trace.array is not None:
        index = len(arrays)
        arrays.append(np.ascontiguousarray(trace.array))
    c, p, t = basis
    return [
        trace.kind,
        trace.rows.start,
        trace.rows.stop,
        trace.cols.start,
        trace.cols.stop,
        trace.u,
        trace.v,
        trace.pitch,
        *trace.coef,
        *(0.0,) * (_COEFFICIENTS - len(trace.coef)),
        index,
        c,
        p,
        0.0 if t is None else t,
        *(texture if texture is not None else (-1, 0.0, 0, 0)),
        0.0 if magnification is None else magnification,
    ]


def _magnify_rows(
    rows: slice, length: np.ndarray, magnification: float, height: int
) -> tuple[slice, np.ndarray]:
    """A footprint stretched along rows by ``magnification`` about the image's central row."""
    centre = (height - 1) / 2
    r0 = max(math.floor(centre + (rows.start - centre) * magnification), 0)
    r1 = min(math.ceil(centre + (rows.stop - 1 - centre) * magnification) + 1, height)
    if r1 <= r0:
        return slice(0, 0), length[:0]
    src = centre + (np.arange(r0, r1) - centre) / magnification - rows.start
    lo = np.floor(src).astype(np.int64)
    w = (src - lo).astype(np.float32)[:, None]
    n = length.shape[0]
    padded = np.concatenate([length, np.zeros((1, length.shape[1]), np.float32)])
    a = padded[np.where((lo >= 0) & (lo < n), lo, n)]
    b = padded[np.where((lo + 1 >= 0) & (lo + 1 < n), lo + 1, n)]
    return slice(r0, r1), a * (1 - w) + b * w


def scatter_veil(
    t: np.ndarray, fraction: float, sigma: float, *, kernel: bool | None = None
) -> np.ndarray:
    """``t`` plus scattered photons: ``fraction`` of the beam the object removes, spread as a
    Gaussian of ``sigma`` px (a low-frequency veil that lifts dense regions; air stays at 1).

    ``kernel``: interpolate the veil to full size and add it in one compiled pass (True; the
    default where ``xadt._kernels`` is built) or with numpy (False); both give the same bits.
    """
    kernel = _use_kernel(kernel, "scatter_veil")
    if fraction <= 0:
        return t
    step = max(int(sigma // 4), 1)  # the veil is smooth: filter a subsampled copy
    small = 1 - t[::step, ::step]
    veil = ndimage.gaussian_filter(small, sigma / step, mode="constant", truncate=2.5)
    veil *= np.float32(fraction)
    if kernel:
        assert _kernels is not None
        return _kernels.add_veil(np.ascontiguousarray(t, dtype=np.float32), veil, step)
    # Linear interpolation back to full size, one axis at a time: two taps per pixel, and no
    # BLAS, whose threads stall each other when the cores are busy.
    lo, hi, w = _upsampler(t.shape[1], small.shape[1], step)
    veil = veil[:, lo] * (1 - w) + veil[:, hi] * w
    lo, hi, w = _upsampler(t.shape[0], small.shape[0], step)
    out = veil[lo] * (1 - w)[:, None] + veil[hi] * w[:, None]
    out += t
    np.minimum(out, 1, out=out)
    return out


@functools.cache
def _upsampler(n: int, m: int, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation from samples at 0, step, 2·step, … to 0 … n − 1: for each output,
    the samples below and above it and the float32 weight of the one above."""
    pos = np.minimum(np.arange(n) / step, m - 1)
    lo = np.minimum(pos.astype(np.int64), m - 1)
    hi = np.minimum(lo + 1, m - 1)
    return lo, hi, (pos - lo).astype(np.float32)


@functools.cache
def _normal_quantiles() -> np.ndarray:
    return special.ndtri((np.arange(65536) + 0.5) / 65536).astype(np.float32)


def standard_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal float32 noise from 16 random bits per value (quantiles of N(0, 1)).

    About twice as fast as ``rng.standard_normal``; the 65536 levels and the ±4.3 SD tails are
    far finer than photon noise needs.
    """
    return np.take(_normal_quantiles(), _normal_bits(rng, math.prod(shape))).reshape(shape)


def _normal_bits(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random uint16, indexes into :func:`_normal_quantiles` (as is: no widened copy)."""
    return np.frombuffer(rng.bytes(2 * n), dtype=np.uint16)


def expose(
    transmission: np.ndarray,
    photons: float,
    rng: np.random.Generator,
    blur: float,
    gain: np.ndarray | None = None,
    *,
    kernel: bool | None = None,
) -> np.ndarray:
    """Measured transmission (float32, (0, 1]) of ``transmission``, with ``photons`` per air pixel.

    Detector blur (Gaussian, ``blur`` px SD) acts on the transmitted intensity; ``gain`` (one
    factor per detector row, left after calibration) multiplies it; counts are Poisson, drawn
    exactly where fewer than 30 photons are expected and from the normal approximation elsewhere
    (indistinguishable there, and several times faster). ``kernel``: draw the normal noise in one
    compiled pass (True; the default where ``xadt._kernels`` is built) or step by step with numpy
    (False); both give the same bits.
    """
    kernel = _use_kernel(kernel, "expose")
    t = np.array(transmission, dtype=np.float32)
    if blur > 0.3:
        # Blurring air changes nothing, so only the box around the parcel is filtered.
        pad = math.ceil(3 * blur) + 1
        solid = t < 1
        rows = np.flatnonzero(solid.any(axis=1))
        cols = np.flatnonzero(solid.any(axis=0))
        if rows.size:
            r0, r1 = max(rows[0] - pad, 0), rows[-1] + pad + 1
            c0, c1 = max(cols[0] - pad, 0), cols[-1] + pad + 1
            t[r0:r1, c0:c1] = ndimage.gaussian_filter(
                t[r0:r1, c0:c1], blur, mode="nearest", truncate=3.0
            )
    if gain is not None:
        t *= gain.astype(np.float32)[:, None]
    bits = _normal_bits(rng, t.size)
    scale, low = np.float32(1 / photons), np.float32(0.5 / photons)
    if kernel:
        assert _kernels is not None
        noisy, few_any = _kernels.photon_noise(t, photons, bits, _normal_quantiles())
    else:
        counts = t * np.float32(photons)
        noise = np.take(_normal_quantiles(), bits).reshape(t.shape)
        noise *= np.sqrt(counts)
        noisy = counts + noise
        noisy *= scale
        np.clip(noisy, low, 1, out=noisy)
        few_any = bool((counts < 30).any())
    if few_any:
        counts = t * np.float32(photons)
        few = counts < 30
        noisy[few] = np.clip(rng.poisson(counts[few]).astype(np.float32) * scale, low, 1)
    return noisy


__all__ = [
    "DOSE_HIGH",
    "DOSE_LOW",
    "SPECTRUM_HIGH",
    "SPECTRUM_LOW",
    "Projection",
    "Spectrum",
    "expose",
    "project",
    "scatter_veil",
    "standard_normal",
]
