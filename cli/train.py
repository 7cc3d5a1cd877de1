"""``xadt train``: fit a detector on normal scans, calibrate it on held-out ones, save the model."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xadt.errors import XadtError
from xadt.scans import ScanSkippedWarning
from xadt.training import DEFAULT_HOLDOUT, DEFAULT_TARGET_FPR, train
from xadt.training import Progress as StageProgress


@contextlib.contextmanager
def stage_progress() -> Iterator[StageProgress]:
    """A transient rich progress bar on stderr, driven as ``progress(stage, done, total)``.

    Skipped-scan warnings are held back while it runs: each command lists them once at the end.
    The bar is only drawn on a terminal, so redirected stderr holds nothing but messages.
    """
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    console = Console(stderr=True)
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as bar:
        task = bar.add_task("starting", total=None)

        def update(stage: str, done: int, total: int | None) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ScanSkippedWarning)
            yield update


def skipped_exit(summary: str, done: str) -> None:
    """Print ``error: <summary>; <done>`` on stderr and exit 1: some scans could not be read."""
    typer.echo(f"error: {summary}; {done}", err=True)
    raise typer.Exit(1)


def train_command(
    data: Annotated[
        Path,
        typer.Argument(help="Folder of normal scans to learn from.", metavar="DATA"),
    ],
    plugin: Annotated[
        str,
        typer.Option(
            "--plugin", "-p", help="Detector to train (see 'xadt plugins').", show_default=False
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="MODEL",
            help="Model directory to write (default: the model store, $XADT_HOME/models/PLUGIN).",
            show_default=False,
        ),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Set a detector option, e.g. --set ridge=0.01; repeatable.",
            show_default=False,
        ),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache",
            metavar="DIR",
            help="Feature cache folder, for detectors with a 'cache' option.",
            show_default=False,
        ),
    ] = None,
    backbone: Annotated[
        str | None,
        typer.Option(
            "--backbone",
            metavar="NAME",
            help="Backbone, for detectors with a 'backbone' option (--set backbone=NAME).",
            show_default=False,
        ),
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="Backbone weights file, e.g. a torchvision ResNet state dict "
            "(--set weights=FILE).",
            show_default=False,
        ),
    ] = None,
    holdout: Annotated[
        float,
        typer.Option("--holdout", help="Fraction of the scans held out of the fit to calibrate."),
    ] = DEFAULT_HOLDOUT,
    target_fpr: Annotated[
        float,
        typer.Option(
            "--target-fpr", help="False-alarm rate on held-out scans the threshold is set for."
        ),
    ] = DEFAULT_TARGET_FPR,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the held-out split.")] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing model.")
    ] = False,
) -> None:
    """Train a detector on normal scans and save the model.

    A fraction of the scans is held out of the fit; the threshold is set on their anomaly
    scores at the target false-alarm rate. No anomaly is used.
    """
    shorthands = {"backbone": backbone, "weights": weights and weights.absolute()}
    overrides = [f"{key}={value}" for key, value in shorthands.items() if value is not None]
    for pair in sets or []:
        key = pair.partition("=")[0].strip()
        if shorthands.get(key) is not None:
            msg = f"--{key} and --set {key}=... both set {key!r}; pass only one"
            raise XadtError(msg)
        overrides.append(pair)
    with stage_progress() as progress:
        result = train(
            plugin,
            data,
            output=output,
            overrides=overrides,
            cache=cache,
            holdout=holdout,
            target_fpr=target_fpr,
            seed=seed,
            overwrite=overwrite,
            progress=progress,
        )
    c = result.calibration
    Console().print(
        f"trained {result.detector.name} on {result.n_fitted} scans; threshold {c.threshold:.4g} "
        f"(anomaly score) for {100 * c.target_fpr:g}% false alarms on {result.n_holdout} held-out "
        f"normal scans; model: {result.path}",
        highlight=False,
    )
    if result.skipped:
        skipped_exit(
            result.summary, f"the model was trained on the rest and saved to {result.path}"
        )
