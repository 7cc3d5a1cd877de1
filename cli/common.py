"""What the commands share: options, the run context, progress on stderr and exits."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xadt.context import RunContext

if TYPE_CHECKING:
    from xadt.host import Registry

PluginOption = Annotated[
    str | None,
    typer.Option(
        "--plugin",
        "-p",
        metavar="NAME",
        help="Use this detector's model from the model store.",
        show_default=False,
    ),
]
ModelOption = Annotated[
    Path | None,
    typer.Option(
        "--model", "-m", metavar="DIR", help="Use this model directory.", show_default=False
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Set a detector option, e.g. --set batch_size=64; repeatable. When scoring, only "
        "runtime options (see 'xadt plugins NAME').",
        show_default=False,
    ),
]
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        metavar="DEVICE",
        help="auto (CUDA when present), cpu, cuda or cuda:N.",
        show_default=True,
    ),
]
CacheOption = Annotated[
    Path | None,
    typer.Option(
        "--cache",
        metavar="DIR",
        help="Folder for caches that outlive the run (backbone features, patch stores).",
        show_default=False,
    ),
]


def registry() -> Registry:
    """The plugin registry, built once per command; plugin warnings print once, here."""
    from xadt import host

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", host.XadtPluginWarning)
        found = host.load_registry()
    for warning in caught:
        typer.echo(f"warning: {warning.message}", err=True)
    return found


class RichProgress:
    """A :class:`xadt.context.ProgressReporter` drawing one rich bar on stderr.

    Stages and epochs replace the bar's description; running values (losses) show beside it.
    The bar is drawn only on a terminal, so redirected stderr holds nothing but messages.
    """

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.task = bar.add_task("starting", total=None, values="")
        self.label = "starting"

    def stage(self, name: str, total: int | None = None) -> None:
        """Start a stage: a new description and total."""
        self.label = name
        self.bar.update(self.task, description=name, completed=0, total=total, values="")

    def epoch(self, index: int, total: int, steps: int | None = None) -> None:
        """Start a training epoch of ``steps`` steps."""
        self.stage(f"epoch {index}/{total}", steps)

    def update(self, done: int, **values: float) -> None:
        """Move the bar to ``done`` and show ``values``."""
        text = "  ".join(f"{k} {v:.4g}" for k, v in values.items())
        self.bar.update(self.task, completed=done, values=text)


@contextlib.contextmanager
def progress_bar(*, show: bool = True) -> Iterator[RichProgress]:
    """A transient rich progress bar on stderr, as a progress reporter (drawn on a terminal
    when ``show``: the DDP ranks other than 0 draw none).

    Skipped-scan warnings are held back while it runs: each command lists them once at the end.
    """
    from xadt.scans import ScanSkippedWarning

    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[values]}"),
    )
    drawn = show and console.is_terminal
    bar = Progress(*columns, console=console, transient=True, disable=not drawn)
    with bar, warnings.catch_warnings():
        warnings.simplefilter("ignore", ScanSkippedWarning)
        yield RichProgress(bar)


def run_context(progress: RichProgress, plugins: Registry, **settings: object) -> RunContext:
    """The run context of a command: its progress bar, registry and options."""
    return RunContext(progress=progress, registry=plugins, **settings)  # type: ignore[arg-type]


def skipped_exit(summary: str, done: str) -> None:
    """Print ``error: <summary>; <done>`` on stderr and exit 1: some scans could not be read."""
    typer.echo(f"error: {summary}; {done}", err=True)
    raise typer.Exit(1)
