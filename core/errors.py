"""The one exception type for user mistakes; the CLI prints its message and exits 1."""

from __future__ import annotations


class XadtError(Exception):
    """A mistake the user can fix (bad file, option or model), with a one-sentence message.

    The message names the file or option at fault. Anything else raised inside xadt is a bug.
    """


class NotFittedError(XadtError):
    """A detector was asked to score before it was fitted or loaded."""
