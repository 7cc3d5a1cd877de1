"""The ``xadt`` typer app: wires the command modules together and turns user errors into exit 1."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperOption

import xadt
from xadt.cli.bench import bench_command
from xadt.cli.demo import demo_command
from xadt.cli.eval import eval_command
from xadt.cli.localize import localize_command
from xadt.cli.plugins import plugins
from xadt.cli.reproduce import reproduce_command
from xadt.cli.score import score_command
from xadt.cli.synth import synth
from xadt.cli.train import train_command
from xadt.errors import XadtError


def _flag_type(option: TyperOption, ctx: Any) -> str | None:
    """Type column of an option in ``--help``: nothing for an on/off flag (typer writes
    ``<bool>``, as if the flag took a value)."""
    return None if option.is_flag else _option_type(option, ctx)


_option_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]

app = typer.Typer(
    name="xadt",
    help="Anomaly detection in X-ray security images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def command(name: str, func: Callable[..., Any]) -> None:
    """Register ``func`` as command ``name``; an ``XadtError`` it raises becomes
    ``error: <message>`` on stderr and exit code 1, Ctrl-C one line and exit code 130, with no
    traceback."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except XadtError as exc:
            if _speaks():
                typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            # Outputs are written atomically, so an interrupted command leaves no half file.
            if _speaks():
                typer.echo("interrupted; no file was half written", err=True)
            raise typer.Exit(130) from None

    app.command(name, help=unwrapped_help(func.__doc__ or ""))(run)


def unwrapped_help(doc: str) -> str:
    """A docstring as help text whose paragraphs the terminal wraps: the line breaks inside a
    paragraph are joined (typer keeps them after the first paragraph, which cuts lines short in
    a wide terminal and breaks them twice in a narrow one); list items keep their lines."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(
        p if p.lstrip().startswith(("-", "\b")) else " ".join(p.split("\n")) for p in paragraphs
    )


def _speaks() -> bool:
    """Whether this process reports errors: not a DDP rank other than 0 (rank 0 reports)."""
    return os.environ.get("RANK", "0") == "0"


command("plugins", plugins)
command("eval", eval_command)
command("synth", synth)
command("train", train_command)
command("score", score_command)
command("localize", localize_command)
command("demo", demo_command)
command("bench", bench_command)
command("reproduce", reproduce_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"xadt {xadt.__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Anomaly detection in X-ray security images."""


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # ``python -m xadt.cli.app``: torchrun and the DDP launcher
    main()
