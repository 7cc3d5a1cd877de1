"""``xadt localize``: per-view heat-map overlays (PNG) and anomaly maps (.npy) of scans."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from xadt.cli.common import (
    DeviceOption,
    MaxPixelsOption,
    MaxScanBytesOption,
    ModelOption,
    PluginOption,
    RecursiveOption,
    ScansArgument,
    SetOption,
    progress_bar,
    registry,
    run_context,
    scan_inputs,
    skipped_exit,
    the_others,
)


def localize_command(
    scans: ScansArgument,
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
        bool,
        typer.Option("--overwrite", help="Replace existing overlays, maps and gallery."),
    ] = False,
    html: Annotated[
        bool,
        typer.Option(
            "--html",
            help="Also write OUT/index.html: a gallery of the most anomalous scans, ranked.",
        ),
    ] = False,
    recursive: RecursiveOption = False,
    max_pixels: MaxPixelsOption = None,
    max_scan_bytes: MaxScanBytesOption = None,
    top: Annotated[
        int,
        typer.Option("--top", min=1, metavar="N", help="Scans shown in the --html gallery."),
    ] = 50,
    smooth: Annotated[
        float,
        typer.Option(
            "--smooth",
            min=0.0,
            metavar="PX",
            help="Smooth the maps in the overlays by a Gaussian of this SD in pixels (the .npy "
            "maps stay as the detector made them).",
        ),
    ] = 0.0,
) -> None:
    """Localise anomalies: an overlay and a float32 map per view, on the model's fixed scale.

    The colour scale is the same for every scan of a model (set from normal scans at training),
    so equal colours mean equal anomaly scores; the colour bar reads as the percentile among
    normal patches, with the patch-level threshold marked. Pixels with no score get no colour.
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
            scan_inputs(
                scans, recursive=recursive, max_pixels=max_pixels, max_bytes=max_scan_bytes
            ),
            output,
            context=context,
            overwrite=overwrite,
            progress=lambda d, t: progress.update(d),
            gallery=top if html else None,
            smooth=smooth,
        )
    console = Console()
    console.print(
        f"wrote {len(run.files) // 2} overlays and maps of {run.n_scans} scans to {output} "
        f"(colour scale {scale.low:.4g} to {scale.high:.4g}, fixed for this model)",
        highlight=False,
        soft_wrap=True,
    )
    worst = run.rows[0]
    console.print(
        f"most anomalous: {worst.id} ({worst.caption}): {output / (worst.id + '_v0.png')}",
        highlight=False,
        soft_wrap=True,
    )
    if run.gallery is not None:
        console.print(f"gallery: {run.gallery}", highlight=False, soft_wrap=True)
    if run.skipped:
        skipped_exit(run.summary, the_others(run.n_scans, "localised"))
