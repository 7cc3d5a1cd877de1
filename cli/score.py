"""``xadt score``: anomaly scores and flags of a folder of scans, as a table and CSV or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from xadt.cli.train import skipped_exit, stage_progress
from xadt.detector import Detector
from xadt.scoring import (
    ScoreRun,
    check_results_path,
    load_scoring_model,
    score_folder,
    write_results,
)

PluginOption = Annotated[
    str | None,
    typer.Option(
        "--plugin",
        "-p",
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


def score_command(
    scans: Annotated[Path, typer.Argument(help="Folder of scans to score.", metavar="SCANS")],
    plugin: PluginOption = None,
    model: ModelOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Also write the scores to a .csv or .json file.",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing results file.")
    ] = False,
) -> None:
    """Score scans with a trained model and flag those over its threshold.

    Shows each scan's anomaly score (higher = more anomalous), its partial scores, its flag from
    the model's own threshold and how many patches were scored.
    """
    if output is not None:
        check_results_path(output, overwrite=overwrite)
    detector, path = load_scoring_model(plugin, model)
    with stage_progress() as progress:
        run = score_folder(detector, scans, progress=lambda d, t: progress("scoring", d, t))
    console = Console()
    console.print(_table(run, detector, path))
    if output is not None:
        write_results(run.rows, output, overwrite=overwrite, detector=detector, model=path)
        console.print(f"wrote {output}", highlight=False)
    if run.skipped:
        skipped_exit(run.summary, f"the other {len(run.rows)} were scored")


def _table(run: ScoreRun, detector: Detector, model: Path) -> Table:
    calibration = detector.calibration
    threshold = "no threshold" if calibration is None else f"threshold {calibration.threshold:.4g}"
    flagged = sum(bool(r.flag) for r in run.rows)
    table = Table(
        title=f"{detector.name} ({model}): {len(run.rows)} scans, {flagged} flagged; {threshold}"
    )
    names = run.partial_names()
    table.add_column("id")
    table.add_column("score", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("flag")
    table.add_column("patches", justify="right")
    for row in run.rows:
        partial = [f"{row.partial[n]:.4g}" if n in row.partial else "—" for n in names]
        flag = (
            Text("—")
            if row.flag is None
            else Text("FLAG", style="bold red")
            if row.flag
            else Text("")
        )
        table.add_row(row.id, f"{row.score:.4g}", *partial, flag, str(row.patches))
    return table
