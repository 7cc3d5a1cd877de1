"""``xadt score``: anomaly scores and flags of scans, as a table and CSV or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from xadt.cli.common import (
    AddressOption,
    CacheOption,
    DeviceOption,
    EngineOption,
    MaxPixelsOption,
    MaxScanBytesOption,
    ModelOption,
    PluginOption,
    RayWorkersOption,
    RecursiveOption,
    ScansArgument,
    SetOption,
    check_engine,
    progress_bar,
    registry,
    run_context,
    scan_inputs,
    skipped_exit,
    the_others,
)

if TYPE_CHECKING:
    from xadt.model import Model
    from xadt.workflows.score import ScoreRun


def score_command(
    scans: ScansArgument,
    plugin: PluginOption = None,
    model: ModelOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Also write the scores to a .csv, .json or .parquet file.",
            show_default=False,
        ),
    ] = None,
    sets: SetOption = None,
    device: DeviceOption = "auto",
    cache: CacheOption = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing results file.")
    ] = False,
    recursive: RecursiveOption = False,
    max_pixels: MaxPixelsOption = None,
    max_scan_bytes: MaxScanBytesOption = None,
    engine: EngineOption = "local",
    address: AddressOption = None,
    ray_workers: RayWorkersOption = None,
    num_gpus_per_worker: Annotated[
        float | None,
        typer.Option(
            "--num-gpus-per-worker",
            min=0.0,
            help="With --engine ray: GPUs per scoring actor (default: 1 where the cluster has "
            "GPUs, else 0).",
            show_default=False,
        ),
    ] = None,
    batch_scans: Annotated[
        int,
        typer.Option("--batch-scans", min=1, help="With --engine ray: scans per scoring call."),
    ] = 32,
    partition_scans: Annotated[
        int,
        typer.Option(
            "--partition-scans",
            min=1,
            help="With --engine ray: scans per results partition (FILE.parts/), the unit a "
            "re-run skips.",
        ),
    ] = 256,
) -> None:
    """Score scans with a trained model and flag those over its threshold.

    Shows each scan's anomaly score (higher = more anomalous), its partial scores, its flag from
    the model's own threshold and how many patches were scored.
    """
    from xadt.workflows.score import (
        check_results_path,
        load_scoring_model,
        score_folder,
        write_results,
    )

    check_engine(engine, recursive=recursive, max_pixels=max_pixels, max_scan_bytes=max_scan_bytes)
    if output is not None:
        check_results_path(output, overwrite=overwrite)
    plugins = registry()
    loaded = load_scoring_model(plugin, model, registry=plugins, overrides=sets or [])
    with progress_bar() as progress:
        context = run_context(progress, plugins, device=device, cache_dir=cache)
        progress.stage("scoring")
        if engine == "ray":
            from xadt.distributed.scoring import RayOptions, score_ray

            options = RayOptions(
                address=address,
                workers=ray_workers,
                num_gpus_per_worker=num_gpus_per_worker,
                batch_scans=batch_scans,
                partition_scans=partition_scans,
            )
            run = score_ray(
                loaded,
                scans,
                context=context,
                overrides=sets or [],
                options=options,
                parts=None if output is None else output.with_name(output.name + ".parts"),
                progress=lambda d, t: progress.update(d),
            )
        else:
            run = score_folder(
                loaded,
                scan_inputs(
                    scans, recursive=recursive, max_pixels=max_pixels, max_bytes=max_scan_bytes
                ),
                context=context,
                progress=lambda d, t: progress.update(d),
            )
    console = Console()
    console.print(_table(run, loaded, saved=output is not None))
    if output is not None:
        write_results(run.rows, output, overwrite=overwrite, model=loaded, skipped=run.skipped)
        console.print(f"wrote {output}", highlight=False)
    if run.skipped:
        skipped_exit(run.summary, the_others(len(run.rows), "scored"))


TABLE_ROWS = 100
"""Scans a score table shows at most: beyond it, the most anomalous (every score goes to -o)."""


def _table(run: ScoreRun, model: Model, *, saved: bool) -> Table:
    """The results as a table: every scan in id order, or the :data:`TABLE_ROWS` most anomalous
    of a large run (a 10,000-row table helps nobody, and rich holds all of it in memory)."""
    from xadt.workflows.score import ranked

    calibration = model.calibration
    threshold = "no threshold" if calibration is None else f"threshold {calibration.threshold:.4g}"
    flagged = sum(bool(r.flag) for r in run.rows)
    caption = (
        "score: anomaly score, higher = more anomalous; normal %: share of held-out normal scans "
        "scoring lower"
    )
    rows = run.rows
    if len(rows) > TABLE_ROWS:
        rows = ranked(rows, TABLE_ROWS)
        every = "every score is in the -o file" if saved else "pass -o FILE for every score"
        caption = f"the {TABLE_ROWS} most anomalous of {len(run.rows)} scans; {every}. {caption}"
    table = Table(
        title=f"{model.name} ({model.path}): {len(run.rows)} scans, {flagged} flagged; {threshold}",
        caption=caption,
    )
    names = run.partial_names()
    table.add_column("id")
    table.add_column("score", justify="right")
    table.add_column("normal %", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("flag")
    table.add_column("patches", justify="right")
    warned = any(row.warning for row in rows)
    if warned:
        table.add_column("warning", style="yellow")
    for row in rows:
        partial = [f"{row.partial[n]:.4g}" if n in row.partial else "—" for n in names]
        flag = (
            Text("—")
            if row.flag is None
            else Text("FLAG", style="bold red")
            if row.flag
            else Text("")
        )
        score = Text(row.note, style="bold") if row.note else Text(f"{row.score:.4g}")
        quantile = "—" if row.normal_quantile is None else f"{100 * row.normal_quantile:.1f}"
        cells = [row.id, score, quantile, *partial, flag, str(row.patches)]
        table.add_row(*cells, *([row.warning] if warned else []))
    return table
