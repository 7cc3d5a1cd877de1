"""``xadt train``: fit a detector on normal scans, calibrate it on held-out ones, save the model."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from xadt.cli.common import (
    ENGINES,
    AddressOption,
    CacheOption,
    DeviceOption,
    RayWorkersOption,
    RecursiveOption,
    SetOption,
    check_engine,
    progress_bar,
    registry,
    run_context,
    skipped_exit,
)
from xadt.config import config_to_json, read_options_file, to_toml, with_shorthands
from xadt.context import resolve_device
from xadt.defaults import DEFAULT_HOLDOUT, DEFAULT_TARGET_FPR
from xadt.errors import TrainingInterrupted, XadtError

if TYPE_CHECKING:
    from xadt.detector import Detector


def train_command(
    data: Annotated[
        str,
        typer.Argument(
            help="Folder of normal scans to learn from; with --engine ray also a glob, a "
            "manifest file of paths or URIs, or a URL (s3://, gs://).",
            metavar="DATA",
        ),
    ],
    plugin: Annotated[
        str,
        typer.Option(
            "--plugin",
            "-p",
            metavar="NAME",
            help="Detector to train (see 'xadt plugins').",
            show_default=False,
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
    sets: SetOption = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="Detector options from a TOML file (key = value, the keys of --set); --set wins.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the effective options and the data split; train nothing.",
        ),
    ] = False,
    cache: CacheOption = None,
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
    validation: Annotated[
        float | None,
        typer.Option(
            "--validation",
            help="Fraction held out for model selection (select=validation); default: the "
            "detector's own (0 for one that selects nothing, else 0.1).",
            show_default=False,
        ),
    ] = None,
    target_fpr: Annotated[
        float,
        typer.Option(
            "--target-fpr", help="False-alarm rate on held-out scans the threshold is set for."
        ),
    ] = DEFAULT_TARGET_FPR,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the held-out split and of training.")
    ] = 0,
    device: DeviceOption = "auto",
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            metavar="ENGINE",
            help="local (this process), ddp (torch DDP over --nproc processes, for detectors "
            "that train networks) or ray (a sharded fit on a Ray cluster; pip install "
            "'xadt\\[ray]').",
        ),
    ] = "local",
    nproc: Annotated[
        int | None,
        typer.Option(
            "--nproc",
            metavar="N",
            help="Training processes for --engine ddp (default: one per GPU; needed on CPU).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=0, help="Data-loading worker processes.")
    ] = 0,
    deterministic: Annotated[
        bool,
        typer.Option("--deterministic", help="Ask torch for deterministic algorithms."),
    ] = False,
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            metavar="DIR",
            help="Keep training checkpoints here (default: MODEL.checkpoints, removed once the "
            "model is saved).",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue an interrupted training run from its checkpoint."),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing model.")
    ] = False,
    recursive: RecursiveOption = False,
    address: AddressOption = None,
    ray_workers: RayWorkersOption = None,
) -> None:
    """Train a detector on normal scans and save the model.

    A fraction of the scans is held out of the fit; the threshold is set on their anomaly
    scores at the target false-alarm rate. No anomaly is used. Detectors that train networks
    checkpoint every epoch; Ctrl-C stops at the end of a step and prints how to resume.
    """
    from xadt import ddp
    from xadt.artifacts import store_path
    from xadt.workflows.train import train

    check_engine(engine, (*ENGINES, "ddp"), recursive=recursive)
    overrides = with_shorthands(
        sets or [], backbone=backbone, weights=weights and weights.absolute()
    )
    options = read_options_file(config) if config is not None else {}
    plugins = registry()
    if dry_run:
        typer.echo(
            dry_run_text(
                plugins.get_detector(plugin),
                overrides,
                options,
                str(config or "options"),
                data,
                recursive,
            ),
            nl=False,
        )
        return
    if launch_ranks(engine, nproc, device, plugins.get_detector(plugin)):
        return
    target = store_path(plugin) if output is None else output
    folder = checkpoints or target.with_name(target.name + ".checkpoints")
    with ddp.process_group(resolve_device(device)), progress_bar(show=ddp.is_main()) as progress:
        context = run_context(
            progress,
            plugins,
            device=device,
            seed=seed,
            workers=workers,
            deterministic=deterministic,
            checkpoint_dir=folder.absolute(),
            resume=resume,
            cache_dir=cache and cache.absolute(),
        )
        settings: dict[str, Any] = {
            "context": context,
            "output": output,
            "overrides": overrides,
            "options": options,
            "options_file": str(config or "options"),
            "holdout": holdout,
            "validation": validation,
            "target_fpr": target_fpr,
            "overwrite": overwrite,
        }
        try:
            if engine == "ray":
                from xadt.distributed.fitting import train_ray
                from xadt.distributed.scoring import RayOptions

                ray_options = RayOptions(address=address, workers=ray_workers)
                result = train_ray(plugin, data, ray_options=ray_options, **settings)
            else:
                result = train(plugin, data, recursive=recursive, **settings)
        except TrainingInterrupted as exc:
            interrupted(exc)
    if not ddp.is_main():  # rank 0 removes the checkpoints and reports
        if result.skipped:
            raise typer.Exit(1)
        return
    if checkpoints is None:
        shutil.rmtree(folder, ignore_errors=True)
    c = result.model.calibration
    assert c is not None
    Console().print(
        f"trained {result.model.name} on {result.n_fitted} scans; threshold {c.threshold:.4g} "
        f"(anomaly score) for {100 * c.target_fpr:g}% false alarms on {result.n_holdout} held-out "
        f"normal scans; model: {result.path}",
        highlight=False,
    )
    if c.warning():
        typer.echo(f"warning: {c.warning()}", err=True)
    if result.skipped:
        skipped_exit(
            result.summary, f"the model was trained on the rest and saved to {result.path}"
        )


def launch_ranks(engine: str, nproc: int | None, device: str, cls: type[Detector]) -> bool:
    """With ``--engine ddp`` outside a DDP rank, run this command as ``nproc`` ranks and exit
    with their code; False when this process trains itself (``local``, one process, a rank).

    Raises:
        XadtError: ``--nproc`` without ``ddp``, a bad ``--nproc``, or ``ddp`` for a detector
            that does not train through the engine.
    """
    import torch

    from xadt import ddp
    from xadt.engine import TrainableDetector

    if engine != "ddp":
        if nproc is not None:
            msg = "--nproc needs --engine ddp"
            raise XadtError(msg)
        return False
    if not issubclass(cls, TrainableDetector):
        msg = f"--engine ddp trains detectors that train networks; {cls.name} does not"
        raise XadtError(msg)
    if ddp.in_worker():
        return False
    where = resolve_device(device)
    if nproc is None:
        if where.type != "cuda":
            msg = "--engine ddp on CPU needs --nproc N, the number of training processes"
            raise XadtError(msg)
        nproc = torch.cuda.device_count()
    ddp.check_nproc(nproc, where)
    if nproc == 1:
        return False
    raise typer.Exit(ddp.launch(sys.argv[1:], nproc))


def interrupted(exc: TrainingInterrupted) -> None:
    """Print what was kept and the command that resumes, then exit 130 (as for SIGINT)."""
    from xadt import ddp

    if not ddp.is_main():
        raise typer.Exit(130)
    typer.echo(f"interrupted: {exc}", err=True)
    if exc.completed and exc.checkpoint is not None:
        argv = [a for a in sys.argv[1:] if a != "--resume"]
        command = shlex.join(["xadt", *argv, "--resume"])
        typer.echo(f"resume with: {command}", err=True)
    raise typer.Exit(130)


def dry_run_text(
    cls: type[Detector],
    overrides: list[str],
    options: dict[str, object],
    where: str,
    data: str,
    recursive: bool,
) -> str:
    """The effective options as TOML (the same form ``--config`` reads) and the scans found."""
    from xadt.scans import iter_scans
    from xadt.workflows.train import build_detector

    detector = build_detector(cls, overrides, options=options, where=where)
    folder = iter_scans(data, recursive=recursive)
    return (
        f"# {cls.name}: the options xadt train would use (TOML, as --config reads)\n"
        f"{to_toml(config_to_json(detector.config))}"
        f"# {len(folder)} scans in {folder.folder}; nothing was trained\n"
    )
