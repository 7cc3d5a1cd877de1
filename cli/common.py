"""What the commands share: options, the run context, progress on stderr and exits."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xadt.context import RunContext

if TYPE_CHECKING:
    from xadt.host import Registry
    from xadt.scans import ScanFolder

ScansArgument = Annotated[
    list[str],
    typer.Argument(
        help="Scan folders, files or glob patterns (quote a pattern: 'scans/*.png').",
        metavar="SCANS",
        show_default=False,
    ),
]
RecursiveOption = Annotated[
    bool,
    typer.Option(
        "--recursive",
        "-r",
        help="Also read subfolders; a scan's id is then its path in the folder (day1/bag17).",
    ),
]
MaxPixelsOption = Annotated[
    int | None,
    typer.Option(
        "--max-pixels",
        min=1,
        metavar="N",
        help="Skip an image larger than N pixels a view or page [default: 100,000,000].",
        show_default=False,
    ),
]
MaxScanBytesOption = Annotated[
    int | None,
    typer.Option(
        "--max-scan-bytes",
        min=1,
        metavar="N",
        help="Skip a scan that would decode to more than N bytes [default: 536,870,912].",
        show_default=False,
    ),
]
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

EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        metavar="ENGINE",
        help="local (this process) or ray (a Ray cluster; pip install 'xadt\\[ray]').",
        show_default=True,
    ),
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        metavar="ADDR",
        help="With --engine ray: the Ray cluster (auto, ray://head:10001); default: a local Ray.",
        show_default=False,
    ),
]
RayWorkersOption = Annotated[
    int | None,
    typer.Option(
        "--ray-workers",
        min=1,
        metavar="N",
        help="With --engine ray: Ray actors (default: one per CPU, or per GPU with GPUs).",
        show_default=False,
    ),
]

ENGINES = ("local", "ray")


def check_engine(engine: str, engines: tuple[str, ...] = ENGINES, **local_only: object) -> None:
    """Raise ``XadtError`` unless ``engine`` is one of the ``engines`` this command runs, or when
    an option that only the local engine reads (given as ``name=value``, falsy when unset) is set
    with Ray."""
    from xadt.errors import XadtError

    if engine not in engines:
        msg = f"--engine must be {', '.join(engines[:-1])} or {engines[-1]}; got {engine!r}"
        raise XadtError(msg)
    used = [f"--{k.replace('_', '-')}" for k, v in local_only.items() if v]
    if engine == "ray" and used:
        msg = (
            f"{', '.join(used)}: not read by --engine ray yet; name the files with a glob or a "
            "manifest instead"
        )
        raise XadtError(msg)


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

    def within(self, item: str, done: int, total: int) -> None:
        """Show how far the current large scan is, beside the bar."""
        text = "" if done >= total else f"{item}: {done}/{total} windows"
        self.bar.update(self.task, values=text)


@contextlib.contextmanager
def progress_bar(*, show: bool = True) -> Iterator[RichProgress]:
    """A transient rich progress bar on stderr, as a progress reporter (drawn on a terminal
    when ``show``: the DDP ranks other than 0 draw none).

    Skipped-scan warnings are held back while it runs: each command lists them once at the end.
    Warnings of the run (a huge scan) print at once, above the bar, as ``warning: <message>``.
    """
    from xadt.scans import ScanSkippedWarning
    from xadt.workflows.score import LargeScanWarning

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
        warnings.simplefilter("always", LargeScanWarning)
        shown = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], *args: Any) -> None:
            if issubclass(category, LargeScanWarning):
                console.print(f"warning: {message}", highlight=False, soft_wrap=True)
            else:
                shown(message, category, *args)

        warnings.showwarning = show
        yield RichProgress(bar)


def scan_inputs(
    scans: list[str], *, recursive: bool, max_pixels: int | None, max_bytes: int | None
) -> ScanFolder:
    """The scans of the command's inputs, with its read options."""
    from xadt.scans import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, ScanFolder

    return ScanFolder(
        [Path(s) for s in scans],
        recursive=recursive,
        max_pixels=max_pixels or DEFAULT_MAX_PIXELS,
        max_bytes=max_bytes or DEFAULT_MAX_BYTES,
    )


def run_context(progress: RichProgress, plugins: Registry, **settings: object) -> RunContext:
    """The run context of a command: its progress bar, registry and options."""
    return RunContext(progress=progress, registry=plugins, **settings)  # type: ignore[arg-type]


def skipped_exit(summary: str, done: str) -> None:
    """Print ``error: <summary>; <done>`` on stderr and exit 1: some scans could not be read."""
    typer.echo(f"error: {summary}; {done}", err=True)
    raise typer.Exit(1)


def the_others(n: int, verb: str) -> str:
    """``"the other 3 were scored"``, or ``"the other 1 was scored"``."""
    return f"the other {n} {'was' if n == 1 else 'were'} {verb}"
