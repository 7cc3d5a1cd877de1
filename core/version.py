"""The installed xadt version, in a module of its own so that any module can name it without
importing the package (and everything it exposes)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("xadt")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"
