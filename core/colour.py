"""The false-colour convention of dual-energy X-ray scans, shared by the scan readers and the
simulator.

A material is summarised by its effective atomic number Z. Its mass attenuation comes from a
two-term model: Compton scattering (Klein–Nishina, per electron, nearly independent of Z) plus
photoelectric absorption per electron ∝ Z^3.5 / E^3. The ratio of low- to high-energy attenuation
then rises with Z, which is what separates organic (orange), inorganic (green) and metal (blue).
:func:`false_colour` renders a pair of high/low transmission images with that convention; reading
a user's dual-energy scan uses it without importing the simulator.
"""

from __future__ import annotations

import functools

import numpy as np

E_LOW = 60.0
"""Effective energy of the low-energy image, keV."""
E_HIGH = 110.0
"""Effective energy of the high-energy image, keV."""

_AVOGADRO = 6.02214076e23
_R_E2 = 7.9407877e-26  # classical electron radius squared, cm²
# Photoelectric constant (cm² keV³ per electron, times Z^-3.5), chosen so that iron (Z 26)
# has the tabulated ~1.05 cm²/g photoelectric coefficient at 60 keV.
_PHOTO = 5.43 / _AVOGADRO
_PHOTO_EXPONENT = 3.5


def klein_nishina(energy_kev: float) -> float:
    """Total Klein–Nishina cross-section per electron (cm²) at ``energy_kev``."""
    k = energy_kev / 511.0
    a = (1 + k) / k**2 * (2 * (1 + k) / (1 + 2 * k) - np.log(1 + 2 * k) / k)
    b = np.log(1 + 2 * k) / (2 * k) - (1 + 3 * k) / (1 + 2 * k) ** 2
    return float(2 * np.pi * _R_E2 * (a + b))


def z_over_a(z: float | np.ndarray) -> float | np.ndarray:
    """Electrons per nucleon: ~0.55 for hydrogen-rich organics, 0.5 at Z ≈ 8, ~0.4 for lead."""
    z = np.asarray(z, dtype=np.float64)
    out = np.where(z < 8, 0.5 + 0.025 * (8 - z), 0.5 - 0.0014 * (z - 8))
    return float(out) if out.ndim == 0 else out


def mass_attenuation(z: float | np.ndarray, energy_kev: float) -> float | np.ndarray:
    """Mass attenuation μ/ρ (cm²/g) of effective atomic number ``z`` at ``energy_kev``."""
    z = np.asarray(z, dtype=np.float64)
    per_electron = klein_nishina(energy_kev) + _PHOTO * z**_PHOTO_EXPONENT / energy_kev**3
    out = _AVOGADRO * z_over_a(z) * per_electron
    return float(out) if out.ndim == 0 else out


def attenuation_ratio(z: float | np.ndarray) -> float | np.ndarray:
    """Low- over high-energy attenuation, log(T_low)/log(T_high), of a single material."""
    return mass_attenuation(z, E_LOW) / mass_attenuation(z, E_HIGH)


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
