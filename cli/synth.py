"""``xadt synth``: write a synthetic dual-view parcel data set with ground truth."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from xadt.errors import XadtError


def _positive_scale(value: float) -> float:
    if not 0.05 <= value <= 2.0:
        msg = f"must be between 0.05 and 2 (1 = full size, 764 px high); got {value}"
        raise typer.BadParameter(msg)
    return value


@contextlib.contextmanager
def _resumable(out: Path) -> Iterator[None]:
    """On Ctrl-C, say how many scans were kept and how to finish, then exit 130."""
    from xadt.synth.dataset import interrupted_progress

    try:
        yield
    except KeyboardInterrupt:
        partial = interrupted_progress(out)
        if partial is None:
            typer.echo("interrupted: no scan was written", err=True)
        else:
            typer.echo(f"interrupted: {partial[0]} of {partial[1]} scans were written", err=True)
        args = [a for a in sys.argv[1:] if a not in ("--resume", "--overwrite")]
        typer.echo(f"resume with: {shlex.join(['xadt', *args, '--resume'])}", err=True)
        raise typer.Exit(130) from None


def synth(
    out: Annotated[
        Path,
        typer.Argument(help="Folder to write the data set to.", metavar="OUT", show_default=False),
    ],
    normal: Annotated[
        int, typer.Option("--normal", min=0, help="Normal training scans (train/normal).")
    ] = 200,
    test_normal: Annotated[
        int, typer.Option("--test-normal", min=0, help="Normal test scans (test/normal).")
    ] = 50,
    threat: Annotated[
        int,
        typer.Option("--threat", min=0, help="Threat test scans (test/anomalous, test/masks)."),
    ] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the data set.")] = 0,
    energies: Annotated[
        bool,
        typer.Option("--energies", help="Also write 16-bit high/low transmission PNGs."),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace the data set in a non-empty OUT."),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Finish an interrupted run in OUT (same options): make only the missing scans.",
        ),
    ] = False,
    scale: Annotated[
        float,
        typer.Option(
            "--scale", callback=_positive_scale, help="Image size relative to full (764 px high)."
        ),
    ] = 1.0,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            show_default=False,
            help="Processes generating scans (default: one per CPU core).",
        ),
    ] = None,
    line_scan: Annotated[
        bool,
        typer.Option(
            "--line-scan", help="Fan-beam (line-scan) geometry: magnification across the belt."
        ),
    ] = False,
    lossless: Annotated[
        bool,
        typer.Option(
            "--lossless",
            help="Write the views as the detector gives them: no console sharpening, no JPEG "
            "compression (see docs/synth.md).",
        ),
    ] = False,
    check_realism: Annotated[
        bool,
        typer.Option(
            "--check-realism",
            help="Then measure the Fréchet distance of the normal scans' top views to real X-ray "
            "window statistics (needs 50+ normal scans).",
        ),
    ] = False,
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference",
            help="Real X-ray statistics for --check-realism (default: "
            "../shared/data/xray-reference/real-benign-lite0-windows.npz).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Generate synthetic dual-view X-ray parcels: normal scans to train on, and a test set of
    normal and threat scans with threat masks and a manifest."""
    from xadt.synth.dataset import write_dataset
    from xadt.synth.realism import REFERENCE, Reference, dataset_views, frechet_to_reference, report

    reference = reference or REFERENCE
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    columns = (
        TextColumn("generating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    console = Console(stderr=True)
    with Progress(*columns, console=console, transient=True) as bar, _resumable(out):
        task = bar.add_task("scans", total=normal + test_normal + threat)
        manifest = write_dataset(
            out,
            normal=normal,
            test_normal=test_normal,
            threat=threat,
            seed=seed,
            energies=energies,
            overwrite=overwrite,
            scale=scale,
            workers=n_workers,
            line_scan=line_scan,
            lossless=lossless,
            resume=resume,
            progress=lambda done, _total: bar.update(task, completed=done),
        )
    d = manifest["difficulty"]
    Console().print(
        f"wrote {normal} + {test_normal} normal and {threat} threat scans to {out} "
        f"(threats easy {d['easy']}, difficult {d['difficult']}, "
        f"unrecognisable {d['unrecognisable']}); manifest: {out / 'manifest.json'}",
        highlight=False,
    )

    if check_realism:
        try:
            ref = Reference.load(reference)
        except XadtError as err:
            Console().print(f"realism check skipped: {err}", highlight=False)
            return
        result = frechet_to_reference(dataset_views(out), ref)
        Console().print(report(result), highlight=False)
