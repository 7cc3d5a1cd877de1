"""``xadt demo``: synthesise parcels, train, score, localise and evaluate, end to end."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from xadt.cli.common import progress_bar, registry, run_context
from xadt.cli.eval import _table as eval_table
from xadt.workflows.demo import DEFAULT_PLUGIN, DEFAULT_SCALE, DemoSize, run_demo


def demo_command(
    out: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="Folder for the demo's data and outputs.")
    ] = Path("xadt-demo"),
    scale: Annotated[
        float,
        typer.Option(
            "--scale", min=0.05, max=2.0, help="Parcel image size relative to full (764 px high)."
        ),
    ] = DEFAULT_SCALE,
    plugin: Annotated[
        str,
        typer.Option(
            "--plugin", "-p", metavar="NAME", help="Detector to train (see 'xadt plugins')."
        ),
    ] = DEFAULT_PLUGIN,
    train_scans: Annotated[
        int, typer.Option("--train", min=10, help="Normal training scans to synthesise.")
    ] = DemoSize.train,
    test_scans: Annotated[
        int,
        typer.Option("--test", min=2, help="Normal and threat test scans to synthesise, each."),
    ] = DemoSize.test_normal,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Set a detector option, as in 'xadt train'; repeatable.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the data set.")] = 0,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace a previous demo in a non-empty DIR."),
    ] = False,
) -> None:
    """Run xadt end to end on synthetic parcels and print the evaluation.

    Synthesises normal parcels to train on and a test set of normal and threat parcels, trains
    the detector, then scores, localises and evaluates the test set. The default detector,
    ganomaly, gets the demo's quick options (patch=32 downscale=0.125 stride=32 epochs=15)
    before any --set.
    """
    start = time.perf_counter()
    size = DemoSize(train=train_scans, test_normal=test_scans, threat=test_scans)
    plugins = registry()
    with progress_bar() as progress:
        result = run_demo(
            out,
            plugin=plugin,
            scale=scale,
            size=size,
            overrides=sets or [],
            seed=seed,
            overwrite=overwrite,
            context=run_context(progress, plugins, seed=seed),
        )
    console = Console(highlight=False, soft_wrap=True)
    if result.most_anomalous is not None and result.gallery is not None:
        console.print(f"most anomalous test parcel: {result.most_anomalous}")
        console.print(f"gallery, most anomalous first: {result.gallery}")
    t = result.training
    console.print(
        f"trained {t.model.name} on {t.n_fitted} synthetic normal parcels; threshold "
        f"{t.model.calibration.threshold:.4g} set on {t.n_holdout} held-out normal parcels"
    )
    console.print(eval_table(result.report, result.data / "test"))
    for note in [*result.report.notes, *result.notes]:
        console.print(f"note: {note}")
    console.print(f"data:     {result.data}")
    console.print(f"model:    {result.model}")
    console.print(f"scores:   {result.scores}")
    if result.overlays is not None:
        console.print(f"overlays: {result.overlays}")
    console.print(f"report:   {result.report_path}")
    console.print(f"done in {time.perf_counter() - start:.0f} s")
