"""Synthetic dual-energy, dual-view X-ray parcels with ground truth, deterministic by seed.

``make_parcel`` builds one scan in memory; ``write_dataset`` writes a train/test folder with
masks and a manifest (``xadt synth``). The false-colour convention is :mod:`xadt.colour`.
"""

from __future__ import annotations

from xadt.synth.dataset import generate, iter_split, scan_rng, write_dataset
from xadt.synth.parcel import SynthScan, make_parcel
from xadt.synth.threats import THREATS

__all__ = [
    "THREATS",
    "SynthScan",
    "generate",
    "iter_split",
    "make_parcel",
    "scan_rng",
    "write_dataset",
]
