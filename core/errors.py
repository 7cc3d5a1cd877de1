"""The one exception type for user mistakes; the CLI prints its message and exits 1."""

from __future__ import annotations

from pathlib import Path


class XadtError(Exception):
    """A mistake the user can fix (bad file, option or model), with a one-sentence message.

    The message names the file or option at fault. Anything else raised inside xadt is a bug.
    """


class NotFittedError(XadtError):
    """A detector was asked to score before it was fitted or loaded."""


class TrainingInterrupted(XadtError):
    """Training stopped at the end of a step on Ctrl-C; the last good checkpoint is kept.

    Attributes:
        epoch: the epoch that was running.
        checkpoint: the folder holding the last complete epoch's checkpoint (None without one).
        completed: the last completed epoch (0 when none completed).
    """

    def __init__(self, epoch: int, checkpoint: Path | None, completed: int) -> None:
        where = (
            f"the last good checkpoint (epoch {completed}) is in {checkpoint}"
            if checkpoint is not None and completed
            else "no epoch was completed, so there is nothing to resume"
        )
        super().__init__(f"training interrupted in epoch {epoch}; {where}")
        self.epoch, self.checkpoint, self.completed = epoch, checkpoint, completed
