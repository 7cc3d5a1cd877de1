"""``xadt reproduce``: a paper's MNIST / CIFAR-10 protocol for one plugin, ours beside theirs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xadt.cli.common import DeviceOption, progress_bar, registry, run_context
from xadt.errors import XadtError

if TYPE_CHECKING:
    from xadt.reproduce.runner import ClassResult

DEFAULT_DATA = Path("../shared/data")
"""Where the benchmark files live beside a project checkout (its README gives the formats)."""


def reproduce_command(
    plugin: Annotated[
        str, typer.Argument(metavar="PLUGIN", help="ganomaly, skipganomaly, dsagan or geom.")
    ],
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", metavar="NAME", help="mnist or cifar10.")
    ],
    classes: Annotated[
        list[str],
        typer.Option(
            "--class",
            "-c",
            metavar="C",
            help="Class by name or index (cat, 3); repeatable. The anomaly for the GAN family, "
            "the normal class for geom.",
        ),
    ],
    protocol: Annotated[
        str | None,
        typer.Option(
            "--protocol",
            metavar="NAME",
            help="reduced (a CPU budget) or full (the paper's; for a GPU). Default: full when "
            "CUDA is present, else reduced.",
            show_default=False,
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option("--epochs", metavar="E", help="Override the protocol's epochs."),
    ] = None,
    seeds: Annotated[
        str,
        typer.Option("--seeds", metavar="S", help="A number of seeds (0..S-1) or a list: 0,3,7."),
    ] = "1",
    data: Annotated[
        Path,
        typer.Option("--data", metavar="DIR", help="Folder with mnist.npz, cifar10-jpg.tar.gz."),
    ] = DEFAULT_DATA,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", metavar="OUT", help="Write the results as JSON (atomically)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --json.")] = (
        False
    ),
    optimistic: Annotated[
        bool,
        typer.Option(
            "--optimistic",
            help="GAN family: also score after every epoch and show the best test AUROC (the "
            "official code's selection; never the result).",
        ),
    ] = False,
    device: DeviceOption = "auto",
) -> None:
    """Reproduce a paper's one-class protocol on MNIST or CIFAR-10 and print ours beside theirs."""
    from xadt.context import resolve_device
    from xadt.outputs import check_output_file, write_bytes_atomic
    from xadt.reproduce.datasets import class_index, load_benchmark
    from xadt.reproduce.protocols import protocol as make_protocol
    from xadt.reproduce.runner import reproduce_class

    if protocol is None:
        protocol = "full" if resolve_device(device).type == "cuda" else "reduced"
    chosen = make_protocol(protocol, plugin, epochs=epochs)
    labels = [class_index(dataset, c) for c in classes]
    seed_list = parse_seeds(seeds)
    if json_out is not None:
        check_output_file(json_out, overwrite=overwrite, what="results file")
    plugins = registry()
    detector_cls = plugins.get_detector(plugin)
    benchmark = load_benchmark(dataset, data)
    results = []
    with progress_bar() as progress:
        context = run_context(progress, plugins, device=device)
        for label in labels:
            results.append(
                reproduce_class(
                    detector_cls,
                    benchmark,
                    label,
                    chosen,
                    seeds=seed_list,
                    context=context,
                    optimistic=optimistic,
                )
            )
    _print_table(results)
    if json_out is not None:
        text = json.dumps({"results": [r.to_json() for r in results]}, indent=2)
        write_bytes_atomic(json_out, text.encode(), overwrite=overwrite, what="results file")


def parse_seeds(text: str) -> tuple[int, ...]:
    """``3`` → seeds 0, 1, 2; ``0,3,7`` → those seeds.

    Raises:
        XadtError: not a positive count or a list of distinct integers >= 0.
    """
    parts = [p.strip() for p in text.split(",")]
    if all(p.isdigit() for p in parts):
        values = [int(p) for p in parts]
        if len(values) == 1 and values[0] >= 1:
            return tuple(range(values[0]))
        if len(values) > 1 and len(set(values)) == len(values):
            return tuple(values)
    msg = f"--seeds must be a number of seeds >= 1 or distinct seeds (0,3,7); got {text!r}"
    raise XadtError(msg)


def _print_table(results: list[ClassResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    from xadt.reproduce.protocols import CONVENTION

    first = results[0]
    anomaly = CONVENTION[first.plugin] == "anomaly"
    table = Table(
        title=f"{first.plugin} on {first.dataset} ({first.protocol.describe()})",
        caption="the class is the anomaly, the other nine normal"
        if anomaly
        else "the class is normal, the other nine anomalous",
    )
    table.add_column("anomalous class" if anomaly else "normal class")
    table.add_column("AUROC (ours, final epoch)", justify="right")
    optimistic = any(r.optimistic is not None for r in results)
    if optimistic:
        table.add_column("best epoch on test (optimistic)", justify="right")
    table.add_column("paper", justify="right")
    table.add_column("protocol")
    table.add_column("s / seed", justify="right")
    for r in results:
        ours = f"{r.mean:.3f}" + ("" if r.sd is None else f" ± {r.sd:.3f}")
        ours += f" ({len(r.runs)} seed{'s' if len(r.runs) > 1 else ''})"
        paper = "n/a"
        if r.paper is not None:
            spread = "" if r.paper.spread is None else f" ± {r.paper.spread:.3f}"
            paper = f"{r.paper.auroc:.3f}{spread} ({r.paper.source})"
        row = [r.class_name, ours]
        if optimistic:
            row.append("n/a" if r.optimistic is None else f"{r.optimistic:.3f}")
        seconds = sum(run.seconds for run in r.runs) / len(r.runs)
        row += [paper, r.protocol.name, f"{seconds:.0f}"]
        table.add_row(*row)
    Console().print(table)
