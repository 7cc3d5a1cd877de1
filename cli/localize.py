"""``xadt localize``: per-view heat-map overlays (PNG) and anomaly maps (.npy) of a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from xadt.cli.common import (
    DeviceOption,
    ModelOption,
    PluginOption,
    SetOption,
    progress_bar,
    registry,
    run_context,
    skipped_exit,
)


def localize_command(
    scans: Annotated[Path, typer.Argument(help="Folder of scans to localise.", metavar="SCANS")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="OUT",
            help="Folder for <scan>_v<k>.png overlays and <scan>_v<k>.npy maps.",
            show_default=False,
        ),
    ],
    model: ModelOption = None,
    plugin: PluginOption = None,
    sets: SetOption = None,
    device: DeviceOption = "auto",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing overlays and maps.", metavar="")
    ] = False,
) -> None:
    """Localise anomalies: an overlay and a float32 map per view, on the model's fixed scale.

    The colour scale is the same for every scan of a model (set from normal scans at training),
    so equal colours mean equal anomaly scores; pixels with no score get no colour.
    """
    from xadt.workflows.localize import localize_folder, map_scale
    from xadt.workflows.score import load_scoring_model

    plugins = registry()
    loaded = load_scoring_model(plugin, model, registry=plugins, overrides=sets or [])
    scale = map_scale(loaded)
    with progress_bar() as progress:
        context = run_context(progress, plugins, device=device)
        progress.stage("localising")
        run = localize_folder(
            loaded,
            scans,
            output,
            context=context,
            overwrite=overwrite,
            progress=lambda d, t: progress.update(d),
        )
    Console().print(
        f"wrote {len(run.files) // 2} overlays and maps of {run.n_scans} scans to {output} "
        f"(colour scale {scale.low:.4g} to {scale.high:.4g}, fixed for this model)",
        highlight=False,
    )
    if run.skipped:
        skipped_exit(run.summary, f"the other {run.n_scans} were localised")
