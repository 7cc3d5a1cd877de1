"""``xadt bench``: the throughput suite (kernels and detectors) as a table, and as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from xadt.bench import BenchReport, PrecisionCheck


def bench_command(
    device: Annotated[
        str,
        typer.Option("--device", metavar="DEVICE", help="cpu, or cuda (needs a GPU)."),
    ] = "cpu",
    plugin: Annotated[
        list[str] | None,
        typer.Option(
            "--plugin",
            "-p",
            metavar="NAME",
            help="Benchmark this detector; repeatable [default: every installed detector].",
            show_default=False,
        ),
    ] = None,
    scans: Annotated[
        int, typer.Option("--scans", min=1, metavar="N", help="Parcels each detector scores.")
    ] = 2,
    repeats: Annotated[
        int,
        typer.Option("--repeats", min=1, metavar="N", help="Timed repeats; the median is shown."),
    ] = 3,
    scale: Annotated[
        float,
        typer.Option(
            "--scale", min=0.05, max=2.0, metavar="F", help="Parcel size (1 = 764 px high)."
        ),
    ] = 1.0,
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Tiny kernel inputs: checks the suite runs; no figures."),
    ] = False,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="A detector option for every benchmarked detector (e.g. precision=bfloat16, "
            "batch_size=64); repeatable. Name one detector with --plugin.",
            show_default=False,
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            metavar="P",
            help="Instead of the suite: score synthetic parcels with and without threats with "
            "gaussian's backbone in bfloat16 or float16 and in float32, and report the largest "
            "relative score difference and both AUROCs.",
            show_default=False,
        ),
    ] = None,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", metavar="OUT", help="Also write the figures to this JSON file."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing --json file.")
    ] = False,
) -> None:
    """Time each kernel against its reference and each detector end to end on synthetic parcels.

    Kernels run at the sizes of benches/ (one 764 px view tiled into 36 windows, 4096 × 1280
    Mahalanobis rows, 1024 × 1000 top-n rows); detectors are fitted on 2 parcels with quick
    options (see the notes under the table) and their scoring of --scans parcels is timed.
    Every figure is the median of --repeats runs after a warm-up; CPU time counts all threads.
    With --precision, gaussian (fitted in float32 on 8 half-size parcels) scores --scans normal
    parcels and --scans with a threat in both precisions instead.
    """
    from xadt.bench import QUICK_SIZES, KernelSizes, PrecisionCheck, check_precision, run_bench
    from xadt.errors import XadtError
    from xadt.outputs import check_output_file, write_bytes_atomic

    if precision is not None and plugin not in (None, ["gaussian"]):
        msg = "--precision compares gaussian's scores; drop --plugin or pass --plugin gaussian"
        raise XadtError(msg)
    if json_out is not None:
        check_output_file(json_out, overwrite=overwrite, what="--json file")
    console = Console(stderr=True)
    with console.status("benchmarking") as status:
        if precision is not None:
            status.update(f"gaussian in float32 and {precision}")
            result: BenchReport | PrecisionCheck = check_precision(
                precision, device=device, normal=scans, threats=scans, overrides=sets or []
            )
        else:
            result = run_bench(
                device=device,
                plugins=plugin,
                scans=scans,
                scale=scale,
                sizes=QUICK_SIZES if quick else KernelSizes(),
                repeats=repeats,
                overrides=sets or [],
                progress=lambda what: status.update(f"benchmarking {what}"),
            )
    if isinstance(result, PrecisionCheck):
        Console(highlight=False).print(_precision_table(result))
    else:
        Console(highlight=False).print(_table(result))
    if json_out is not None:
        data = json.dumps(result.to_json(), indent=2, ensure_ascii=False).encode() + b"\n"
        write_bytes_atomic(json_out, data, overwrite=overwrite, what="--json file")


def _precision_table(check: PrecisionCheck) -> Table:
    full, half = check.timing_float32, check.timing_half
    table = Table(
        "precision",
        "AUROC",
        "scoring time",
        *(f"max rel diff {key}" for key in check.max_rel_diff),
        title=f"gaussian: float32 against {check.precision} on {check.device}",
        caption=f"{check.normal} normal and {check.threats} threat parcels (half size), scored "
        "by one float32-fitted model; time: wall (CPU of all threads)",
    )
    table.add_row(
        "float32",
        f"{check.auroc_float32:.4f}",
        f"{_seconds(full.wall)} ({_seconds(full.cpu)})",
        *("reference" for _ in check.max_rel_diff),
    )
    table.add_row(
        check.precision,
        f"{check.auroc_half:.4f}",
        f"{_seconds(half.wall)} ({_seconds(half.cpu)})",
        *(f"{v:.2e}" for v in check.max_rel_diff.values()),
    )
    return table


def _rate(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _seconds(value: float) -> str:
    return f"{value * 1e3:.3g} ms" if value < 1 else f"{value:.3g} s"


def _table(report: BenchReport) -> Table:
    v = report.versions
    caption = (
        f"xadt {v['xadt']}, torch {v['torch']}, Python {v['python']}; {v['cpu']}, "
        f"{v['cpus']} CPUs, {v['torch_threads']} torch threads"
        + (f"; GPU {v['gpu']}, CUDA {v['cuda']}" if "gpu" in v else "")
        + (f"; load average {v['load_average'][0]:.1f}" if v.get("load_average") else "")
        + f"; {v['time_utc']}. Times: median per call after a warm-up, wall (CPU of all threads)."
    )
    notes = [f"{row.what}: {row.note}" for row in report.rows if row.note]
    table = Table(
        "what",
        "size",
        "time",
        "patches/s",
        "scans/s",
        "reference",
        "speed-up",
        "max rel diff",
        "device",
        title="xadt bench",
        caption="\n".join([caption, *notes]),
    )
    for row in report.rows:
        t, ref = row.timing, row.reference_timing
        agree = "" if row.agrees is None else f"{row.max_rel_diff:.1e}"
        table.add_row(
            row.what,
            row.size,
            f"{_seconds(t.wall)} ({_seconds(t.cpu)})",
            _rate(row.patches_per_s),
            _rate(row.scans_per_s),
            "" if ref is None else f"{row.reference}: {_seconds(ref.wall)} ({_seconds(ref.cpu)})",
            "" if row.speedup is None else f"{row.speedup:.3g}×",
            agree if row.agrees in (None, True) else f"{agree} DISAGREES",
            row.device,
        )
    return table
