"""``xadt eval``: score a labelled folder with a model and report AUROC, operating points and
localisation metrics with bootstrap confidence intervals."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from xadt.cli.common import (
    CacheOption,
    DeviceOption,
    ModelOption,
    PluginOption,
    SetOption,
    progress_bar,
    registry,
    run_context,
)

if TYPE_CHECKING:
    from xadt.workflows.evaluate import EvalReport


def eval_command(
    data: Annotated[
        Path | None,
        typer.Argument(
            help="Labelled folder with normal/ and anomalous/ scans and optional masks/ "
            "(or use --normal and --anomalous).",
            metavar="[DATA]",
            show_default=False,
        ),
    ] = None,
    model: ModelOption = None,
    plugin: PluginOption = None,
    normal: Annotated[
        Path | None,
        typer.Option("--normal", metavar="DIR", help="Folder of normal scans.", show_default=False),
    ] = None,
    anomalous: Annotated[
        Path | None,
        typer.Option(
            "--anomalous", metavar="DIR", help="Folder of anomalous scans.", show_default=False
        ),
    ] = None,
    masks: Annotated[
        Path | None,
        typer.Option(
            "--masks",
            metavar="DIR",
            help="Ground-truth masks of the anomalous scans, named like them.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also write the report, with every score, as JSON."),
    ] = None,
    sets: SetOption = None,
    device: DeviceOption = "auto",
    cache: CacheOption = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing JSON report.")
    ] = False,
) -> None:
    """Evaluate a model on labelled scans: AUROC with 95% CIs, operating points, localisation.

    Scores are anomaly scores, higher = more anomalous. Flag rates use the model's own threshold.
    """
    from xadt.workflows.evaluate import check_report_path, evaluate, open_eval_data, write_report
    from xadt.workflows.score import load_scoring_model

    if output is not None:
        check_report_path(output, overwrite=overwrite)
    labelled = open_eval_data(data, normal=normal, anomalous=anomalous, masks=masks)
    plugins = registry()
    loaded = load_scoring_model(plugin, model, registry=plugins, overrides=sets or [])
    with progress_bar() as progress:
        context = run_context(progress, plugins, device=device, cache_dir=cache)
        progress.stage("scoring")
        report = evaluate(
            loaded, labelled, context=context, progress=lambda done, _total: progress.update(done)
        )
    report = dataclasses.replace(report, model=str(loaded.path))
    console = Console()
    console.print(_table(report, labelled.root))
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    if output is not None:
        write_report(report, output, overwrite=overwrite)
        console.print(f"wrote {output}", highlight=False)
    if report.skipped:
        shown = "; ".join(f"{file}: {reason}" for file, reason in report.skipped[:3])
        more = f"; and {len(report.skipped) - 3} more" if len(report.skipped) > 3 else ""
        typer.echo(
            f"error: {len(report.skipped)} unreadable scan(s) skipped; the metrics cover the "
            f"rest: {shown}{more}",
            err=True,
        )
        raise typer.Exit(1)


def _table(report: EvalReport, data: Path) -> Table:
    level = f"{100 * report.settings.level:g}% CI"
    table = Table(
        title=(
            f"{report.detector} on {data}: {report.n_normal} normal, "
            f"{report.n_anomalous} anomalous scans"
        )
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column(level, justify="right")
    for label, estimate in report.rows():
        interval = (
            "—"
            if estimate.low is None or estimate.high is None
            else f"{estimate.low:.3f} – {estimate.high:.3f}"
        )
        table.add_row(label, f"{estimate.value:.3f}", interval)
    return table
