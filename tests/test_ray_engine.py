"""``--engine ray`` on a local Ray with 2 CPUs: scoring and the sharded gaussian fit give the
single-process results, a killed actor loses or doubles no scan, and a re-run skips the
partitions already written. Skipped where Ray is not installed (``pip install 'xadt[ray]'``)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.test_gaussian_detector import TinyGaussian
from tests.test_workflows import Hotspot, HotspotConfig, registry_with, write_scans
from xadt.artifacts import load_model
from xadt.cli.app import app
from xadt.context import RunContext
from xadt.detector import ScanResult
from xadt.distributed import import_ray, ray_session
from xadt.distributed.fitting import train_ray
from xadt.distributed.listing import list_scans
from xadt.distributed.scoring import RayOptions, score_ray
from xadt.errors import XadtError
from xadt.plugins.baseline import BaselineDetector
from xadt.plugins.gaussian import GaussianConfig
from xadt.scans import Scan
from xadt.testing import normal_scans
from xadt.workflows.score import ScoreRun, score_folder, write_results
from xadt.workflows.train import train

pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::xadt.scans.ScanSkippedWarning"),
]


@dataclasses.dataclass
class FragileConfig(HotspotConfig):
    """Hotspot's options, and a file whose absence makes the first scoring call kill its
    process (creating the file first, so that the retry lives)."""

    die_once: str = ""


class Fragile(Hotspot):
    """Hotspot, whose worker process dies by SIGKILL at its first ``score`` while ``die_once``
    names a file that does not exist yet."""

    name: ClassVar[str] = "fragile"
    Config: ClassVar[type] = FragileConfig
    config: FragileConfig

    def score(self, scans: Iterable[Scan], context: RunContext | None = None) -> list[ScanResult]:
        marker = Path(self.config.die_once) if self.config.die_once else None
        if marker is not None and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().score(scans, context)


@dataclasses.dataclass
class FragileGaussianConfig(GaussianConfig):
    """The gaussian options, and ``die_once`` as :class:`FragileConfig` has it."""

    die_once: str = ""


class FragileGaussian(TinyGaussian):
    """TinyGaussian, whose shard worker dies by SIGKILL in its first round while ``die_once``
    names a file that does not exist yet."""

    name: ClassVar[str] = "fragile_gaussian"
    Config: ClassVar[type] = FragileGaussianConfig
    config: FragileGaussianConfig

    def fit_shard(self, scans: Iterable[Scan], context: RunContext) -> Any:
        marker = Path(self.config.die_once) if self.config.die_once else None
        if marker is not None and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().fit_shard(scans, context)


REGISTRY = registry_with(BaselineDetector, Hotspot, Fragile, TinyGaussian, FragileGaussian)
CONTEXT = RunContext(registry=REGISTRY)
OPTIONS = RayOptions(workers=2, batch_scans=4, partition_scans=8)


@pytest.fixture(scope="module")
def ray() -> Iterator[ModuleType]:
    """One local Ray with 2 CPUs for the module's tests, shut down after them."""
    with ray_session(num_cpus=2) as session:
        yield session


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 readable scans (some dual-view) and one damaged file, in one folder."""
    folder = write_scans(tmp_path_factory.mktemp("scans") / "scans", 26, seed=3)
    write_scans(folder, 4, prefix="dual", views=2, seed=5)
    (folder / "s13b.png").write_bytes(b"not an image")
    return folder


def _model(tmp_path: Path, plugin: str, *overrides: str) -> Path:
    data = write_scans(tmp_path / "normal", 12)
    out = tmp_path / "-".join(["model", plugin, *overrides]).replace("/", "_")
    train(plugin, data, context=CONTEXT, output=out, overrides=overrides, holdout=0.3)
    return out


def _rows(run: ScoreRun, tmp_path: Path, name: str) -> str:
    path = write_results(run.rows, tmp_path / f"{name}.csv", skipped=run.skipped)
    return path.read_text()


def test_scores_equal_the_single_process_scan_for_scan(
    ray: ModuleType, scans: Path, tmp_path: Path
) -> None:
    model = load_model(_model(tmp_path, "baseline"), registry=REGISTRY)
    local = score_folder(model, scans, context=CONTEXT)
    parts = tmp_path / "parts"
    distributed = score_ray(model, str(scans), context=CONTEXT, options=OPTIONS, parts=parts)
    assert distributed.rows == local.rows
    assert distributed.skipped == local.skipped
    assert [file.name for file, _ in local.skipped] == ["s13b.png"]
    assert distributed.summary == local.summary
    assert _rows(distributed, tmp_path, "ray") == _rows(local, tmp_path, "local")
    assert len(list(parts.glob("part-*.parquet"))) == 4  # 31 scans, 8 per partition


def test_a_rerun_skips_done_partitions_and_another_model_does_not(
    ray: ModuleType, scans: Path, tmp_path: Path
) -> None:
    model = load_model(_model(tmp_path, "hotspot"), registry=REGISTRY)
    parts = tmp_path / "parts"
    first = score_ray(model, str(scans), context=CONTEXT, options=OPTIONS, parts=parts)
    files = sorted(parts.glob("part-*.parquet"))
    lost, kept = files[1], [f for f in files if f != files[1]]
    stamps = {f: f.stat().st_mtime_ns for f in kept}
    lost.unlink()
    again = score_ray(model, str(scans), context=CONTEXT, options=OPTIONS, parts=parts)
    assert again.rows == first.rows
    assert lost.is_file()
    assert {f: f.stat().st_mtime_ns for f in kept} == stamps
    brighter = load_model(_model(tmp_path, "hotspot", "gain=2"), registry=REGISTRY)
    other = score_ray(brighter, str(scans), context=CONTEXT, options=OPTIONS, parts=parts)
    assert len(list(parts.glob("part-*.parquet"))) == 8  # four more: none was taken as done
    assert [r.score for r in other.rows] == pytest.approx([2 * r.score for r in first.rows])


def test_a_killed_actor_loses_and_doubles_no_scan(
    ray: ModuleType, scans: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "killed"
    marker.touch()  # no death while training, in this process
    model = load_model(_model(tmp_path, "fragile", f"die_once={marker}"), registry=REGISTRY)
    marker.unlink()
    run = score_ray(model, str(scans), context=CONTEXT, options=OPTIONS, parts=tmp_path / "p")
    assert marker.exists()  # an actor did die
    local = score_folder(model, scans, context=CONTEXT)
    assert run.rows == local.rows
    assert len({r.id for r in run.rows}) == 30


def test_listing_takes_a_glob_and_a_manifest(scans: Path, tmp_path: Path) -> None:
    folder = list_scans(str(scans))
    assert [s.id for s in list_scans(str(scans / "dual*.png"))] == [
        f"dual{k:02d}" for k in range(4)
    ]
    manifest = tmp_path / "scans.txt"
    lines = ["# two scans", str(scans / "s00.png"), "", str(scans / "dual01_v0.png")]
    manifest.write_text("\n".join([*lines, str(scans / "dual01_v1.png")]) + "\n")
    assert list_scans(str(manifest)) == [folder[1], folder[4]]  # dual01, s00
    assert list_scans([str(scans / "s00.png"), str(scans / "s01.png")]) == folder[4:6]
    with pytest.raises(XadtError, match="nowhere: no such folder, glob or manifest file"):
        list_scans(str(tmp_path / "nowhere"))


def test_the_sharded_gaussian_fit_on_ray_equals_the_single_process_fit_though_a_worker_dies(
    ray: ModuleType, tmp_path: Path
) -> None:
    data = tmp_path / "normal"
    data.mkdir()
    for scan in normal_scans(24, seed=1, prefix="n"):
        Image.fromarray(scan.views[0]).save(data / f"{scan.id}.png")
    settings: dict[str, Any] = {"context": CONTEXT, "holdout": 0.2}
    local = train(
        "gaussian", data, output=tmp_path / "local", overrides=["backbone=tiny"], **settings
    )
    marker = tmp_path / "killed"
    sharded = train_ray(
        "fragile_gaussian",
        str(data),
        output=tmp_path / "ray",
        ray_options=OPTIONS,
        overrides=["backbone=tiny", f"die_once={marker}"],
        **settings,
    )
    assert marker.exists()  # a shard worker did die
    assert (sharded.n_fitted, sharded.n_holdout) == (local.n_fitted, local.n_holdout)
    one, other = local.model.detector.state(), sharded.model.detector.state()
    for name, tensor in one.tensors.items():
        np.testing.assert_allclose(other.tensors[name], tensor, rtol=1e-9, atol=1e-12, err_msg=name)
    assert sharded.model.threshold_ == pytest.approx(local.model.threshold_, rel=1e-9)


def test_a_detector_without_a_sharded_fit_is_one_line(tmp_path: Path) -> None:
    data = write_scans(tmp_path / "normal", 6)
    with pytest.raises(XadtError, match=r"train hotspot in one process, or with --engine ddp"):
        train_ray("hotspot", str(data), context=CONTEXT)


def test_without_ray_the_engine_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray looks like
    with pytest.raises(XadtError, match=r"^--engine ray needs Ray: pip install 'xadt\[ray\]'$"):
        import_ray()


def test_xadt_and_its_commands_never_import_ray() -> None:
    code = (
        "import sys, xadt, xadt.cli.app, xadt.distributed, xadt.workflows.score; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'pyarrow', 'fsspec')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_commands_take_engine_ray(ray: ModuleType, scans: Path, tmp_path: Path) -> None:
    model, out = tmp_path / "model", tmp_path / "results.parquet"
    normal = write_scans(tmp_path / "normal", 12)
    args = ["train", "-p", "baseline", normal, "-o", model, "--holdout", "0.3", "--engine", "ray"]
    trained = CliRunner().invoke(app, [str(a) for a in args])
    assert trained.exit_code == 0, trained.output
    local = load_model(_model(tmp_path, "baseline"), registry=REGISTRY).detector.state().tensors
    for name, tensor in load_model(model, registry=REGISTRY).detector.state().tensors.items():
        np.testing.assert_allclose(tensor, local[name], rtol=1e-9, err_msg=name)
    args = ["score", "-m", model, scans, "-o", out, "--engine", "ray", "--ray-workers", "1"]
    scored = CliRunner().invoke(app, [str(a) for a in [*args, "--partition-scans", "16"]])
    assert scored.exit_code == 1, scored.output  # one file was skipped; the rest was scored
    assert scored.stderr.startswith("error: 1 of 31 scans skipped: s13b.png: ")
    table = pq.read_table(out).to_pylist()
    assert [r["id"] for r in table[-2:]] == ["s25", "s13b.png"]
    assert table[-1]["score"] is None
    assert table[-1]["error"] == "not a PNG, JPEG, BMP or TIFF image"
    assert sorted(p.name[:11] for p in (tmp_path / "results.parquet.parts").iterdir()) == [
        "part-000000",
        "part-000001",
    ]
    refused = CliRunner().invoke(app, ["train", "-p", "ganomaly", str(scans), "--engine", "ray"])
    assert refused.exit_code == 1
    assert refused.stderr.count("\n") == 1
    assert "--engine ddp" in refused.stderr


def test_a_folder_of_only_bad_scans_is_one_error(ray: ModuleType, tmp_path: Path) -> None:
    model = load_model(_model(tmp_path, "baseline"), registry=REGISTRY)
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("a.png", "b.png"):
        (bad / name).write_bytes(b"no image")
    with pytest.raises(
        XadtError, match=r"bad: no scan could be read \(2 of 2 scans skipped: a\.png"
    ):
        score_ray(model, str(bad), context=CONTEXT, options=OPTIONS)


def test_options_only_the_local_engine_reads_are_refused_with_ray(tmp_path: Path) -> None:
    args = ["score", "-m", str(tmp_path), str(tmp_path), "--engine", "ray", "--recursive"]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 1
    assert refused.stderr == (
        "error: --recursive: not read by --engine ray yet; name the files with a glob or a "
        "manifest instead\n"
    )
