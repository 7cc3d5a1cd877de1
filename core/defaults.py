"""Defaults the command line shows in its help, importable without numpy or torch, so that
``xadt --help`` starts fast; the workflows use the same values."""

from __future__ import annotations

DEFAULT_HOLDOUT = 0.1
"""Fraction of the normal training scans held out of the fit to calibrate the threshold."""

DEFAULT_TARGET_FPR = 0.05
"""False-alarm rate on held-out normal scans that the threshold is set for."""
