"""``xadt reproduce``: the benchmark readers, the papers' splits, the seeded stratified subsets,
the published figures, the protocols, and the command end to end on a few hundred tiny images
written here in the formats of ``../shared/data``."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner, Result

from xadt.cli.app import app
from xadt.errors import XadtError
from xadt.host import load_registry
from xadt.patchstore import PatchSettings, scan_patches
from xadt.reproduce.datasets import (
    CIFAR10_CLASSES,
    class_index,
    load_benchmark,
    one_class_split,
    scans,
    subsample,
)
from xadt.reproduce.papers import PAPER_MEANS, paper_figure
from xadt.reproduce.protocols import PLUGINS, REDUCED_TEST_IMAGES, protocol
from xadt.scans import Scan
from xadt.workflows.train import build_detector

runner = CliRunner()
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

MNIST_TRAIN, MNIST_TEST = 20, 6  # images per digit
CIFAR_TRAIN, CIFAR_TEST = 8, 3  # images per class


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("XADT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XADT_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data folder with a tiny ``mnist.npz`` and ``cifar10-jpg.tar.gz`` (labels in pixels)."""
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)

    def digits(per_class: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat(np.arange(10, dtype=np.uint8), per_class)
        x = rng.integers(0, 40, (len(y), 28, 28), dtype=np.uint8)
        for i, label in enumerate(y):  # a bright bar whose row says the digit
            x[i, 2 + 2 * label : 4 + 2 * label, 4:24] = 255
        return x, y

    x_train, y_train = digits(MNIST_TRAIN)
    x_test, y_test = digits(MNIST_TEST)
    np.savez(
        folder / "mnist.npz",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        classes=np.array(list("0123456789")),
    )
    with tarfile.open(folder / "cifar10-jpg.tar.gz", "w:gz") as archive:
        for part, count in (("train", CIFAR_TRAIN), ("test", CIFAR_TEST)):
            for label, name in enumerate(CIFAR10_CLASSES):
                for k in range(count):
                    pixels = np.full((32, 32, 3), 25 * label, dtype=np.uint8)
                    pixels += rng.integers(0, 20, pixels.shape, dtype=np.uint8)
                    buffer = io.BytesIO()
                    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
                    info = tarfile.TarInfo(f"{part}/{name}/{k:04d}.jpg")
                    info.size = buffer.tell()
                    buffer.seek(0)
                    archive.addfile(info, buffer)
    return folder


def xadt(*args: object) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


# --- reading and splitting ----------------------------------------------------------------------


def test_both_formats_are_read_with_their_classes_and_parts(data: Path) -> None:
    mnist = load_benchmark("mnist", data)
    assert mnist.images.shape == (10 * (MNIST_TRAIN + MNIST_TEST), 28, 28, 1)
    assert mnist.test.sum() == 10 * MNIST_TEST
    cifar = load_benchmark("cifar10", data)
    assert cifar.images.shape == (10 * (CIFAR_TRAIN + CIFAR_TEST), 32, 32, 3)
    assert cifar.test.sum() == 10 * CIFAR_TEST
    for label in range(10):  # the folder name is the label: its pixels say so
        grey = cifar.images[cifar.labels == label].mean()
        assert abs(grey - (25 * label + 9.5)) < 3


def test_gan_split_trains_on_the_other_classes_and_tests_on_all_of_the_anomaly(
    data: Path,
) -> None:
    mnist = load_benchmark("mnist", data)
    split = one_class_split(mnist, 3, "anomaly")
    assert not np.any(mnist.labels[split.train] == 3)
    assert not np.any(mnist.test[split.train])
    assert len(split.train) == 9 * MNIST_TRAIN
    # the normal classes' test images plus every image (train and test) of the anomaly
    assert len(split.test) == 9 * MNIST_TEST + MNIST_TRAIN + MNIST_TEST
    np.testing.assert_array_equal(split.anomalous, mnist.labels[split.test] == 3)
    assert np.all(mnist.test[split.test][split.anomalous == 0])
    assert not set(split.train) & set(split.test)


def test_geom_split_trains_on_the_class_and_tests_on_the_whole_test_set(data: Path) -> None:
    cifar = load_benchmark("cifar10", data)
    split = one_class_split(cifar, class_index("cifar10", "cat"), "normal")
    assert np.all(cifar.labels[split.train] == 3)
    assert len(split.train) == CIFAR_TRAIN
    np.testing.assert_array_equal(split.test, np.flatnonzero(cifar.test))
    np.testing.assert_array_equal(split.anomalous, cifar.labels[split.test] != 3)


def test_subsets_are_seeded_stratified_and_keep_the_share_of_anomalies() -> None:
    labels = np.repeat(np.arange(10), 100)
    test = np.arange(1000)
    anomalous = (labels == 4).astype(np.int64)
    from xadt.reproduce.datasets import Split

    whole = Split(np.arange(1000), test, anomalous)
    one = subsample(whole, labels, train=300, test=200, seed=0)
    assert len(one.train) == 300
    assert len(one.test) == 200
    assert np.all(np.bincount(labels[one.test]) == 20)  # every class its share
    assert one.anomalous.sum() == 20
    np.testing.assert_array_equal(one.anomalous, anomalous[one.test])
    again = subsample(whole, labels, train=300, test=200, seed=0)
    np.testing.assert_array_equal(one.test, again.test)
    other = subsample(whole, labels, train=300, test=200, seed=1)
    assert not np.array_equal(one.test, other.test)
    kept = subsample(whole, labels, train=None, test=5000, seed=0)
    np.testing.assert_array_equal(kept.test, test)


def test_mnist_is_resized_or_zero_padded_to_32(data: Path) -> None:
    mnist = load_benchmark("mnist", data)
    resized, padded = scans(mnist, np.array([5]), "resize")[0], scans(mnist, [5], "pad")[0]
    assert resized.views[0].shape == padded.views[0].shape == (32, 32, 1)
    assert resized.encoding == "grey"
    np.testing.assert_array_equal(padded.views[0][2:30, 2:30], mnist.images[5])
    assert not padded.views[0][:2].any()


def test_classes_by_name_or_index_and_a_clear_error_otherwise() -> None:
    assert class_index("cifar10", "ship") == class_index("cifar10", "8") == 8
    assert class_index("mnist", "7") == 7
    with pytest.raises(XadtError, match="cifar10 has no class 'kitten'; classes: 0 airplane"):
        class_index("cifar10", "kitten")
    with pytest.raises(XadtError, match="--dataset must be one of mnist, cifar10"):
        class_index("svhn", "1")


# --- figures and protocols ------------------------------------------------------------------------


def test_paper_figures_are_the_tables_and_mnist_has_none() -> None:
    assert paper_figure("ganomaly", "cifar10", "bird").auroc == 0.510  # type: ignore[union-attr]
    assert paper_figure("skipganomaly", "cifar10", "automobile").auroc == 0.953  # type: ignore[union-attr]
    dsagan = paper_figure("dsagan", "cifar10", "truck")
    assert dsagan is not None
    assert dsagan.auroc == 0.974
    assert dsagan.source == "seed 001 Table 1"
    geom = paper_figure("geom", "cifar10", "airplane")
    assert geom is not None
    assert (geom.auroc, geom.spread) == (0.747, 0.004)
    for plugin in PLUGINS:
        assert paper_figure(plugin, "mnist", "3") is None
        row = [paper_figure(plugin, "cifar10", c) for c in CIFAR10_CLASSES]
        mean = np.mean([f.auroc for f in row if f is not None])
        assert abs(mean - PAPER_MEANS[(plugin, "cifar10")]) < 6e-4  # the tables' own means


def test_protocols_make_one_patch_per_image_and_reduced_tests_2000() -> None:
    for plugin in PLUGINS:
        reduced, full = protocol("reduced", plugin), protocol("full", plugin)
        assert reduced.test_images == REDUCED_TEST_IMAGES >= 2000
        assert full.train_images is None
        assert full.test_images is None
        for chosen in (reduced, full):
            assert chosen.options["crop"] is False
            assert chosen.options["patch"] == 32
    assert protocol("full", "ganomaly").options["epochs"] == 15
    assert protocol("full", "dsagan").options["epochs"] == 20
    assert "epochs" not in protocol("full", "geom").options  # the paper's rule, ceil(200/72)
    assert protocol("reduced", "geom", epochs=2).options["epochs"] == 2
    for plugin in PLUGINS:  # every protocol's options are valid options of its detector
        for name in ("reduced", "full"):
            cls = load_registry().get_detector(plugin)
            assert build_detector(cls, options=protocol(name, plugin).options).config.crop is False
    with pytest.raises(XadtError, match="no protocol for 'gaussian'; plugins: ganomaly"):
        protocol("reduced", "gaussian")
    with pytest.raises(XadtError, match="--protocol must be one of reduced, full"):
        protocol("paper", "geom")


def test_crop_off_keeps_the_whole_image_as_one_patch() -> None:
    image = np.full((32, 32, 3), 255, dtype=np.uint8)
    image[10:20, 10:20] = 0  # a dark object on white, which cropping would cut to
    scan = Scan("white", [image])
    whole = scan_patches(scan, PatchSettings(patch=32, stride=32, crop=False))
    np.testing.assert_array_equal(whole.boxes, [[0, 0, 32, 32]])
    np.testing.assert_array_equal(whole.patches[0].transpose(1, 2, 0), image)
    cropped = scan_patches(scan, PatchSettings(patch=32, stride=32, opening=1))
    assert cropped.views[0].crop is not None
    assert cropped.views[0].crop.height == 10


# --- the command --------------------------------------------------------------------------------


def test_reproduce_a_gan_on_tiny_mnist_writes_the_table_and_json(
    data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.json"
    args = ["reproduce", "ganomaly", "--dataset", "mnist", "--class", "3", "--epochs", "2"]
    result = xadt(*args, "--data", data, "--json", out, "--device", "cpu", "--optimistic")
    assert result.exit_code == 0, result.output
    assert "n/a" in result.output
    assert "reduced" in result.output
    (entry,) = json.loads(out.read_text())["results"]
    run = entry["runs"][0]
    assert (entry["class"], entry["convention"], entry["paper"]) == ("3", "anomaly", None)
    assert run["n_train"] == 9 * MNIST_TRAIN
    assert (run["n_test"], run["n_anomalous"]) == (80, MNIST_TRAIN + MNIST_TEST)
    assert len(run["epoch_aurocs"]) == 2
    assert run["auroc"] == run["epoch_aurocs"][-1]
    assert 0 <= entry["auroc_mean"] <= 1
    assert entry["optimistic_best_epoch_auroc"] == max(run["epoch_aurocs"])
    refused = xadt(*args, "--data", data, "--json", out, "--device", "cpu")
    assert refused.exit_code == 1
    assert "already exists" in refused.output


def test_reproduce_geom_on_tiny_cifar_over_two_seeds(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "geom.json"
    result = xadt(
        "reproduce", "geom", "-d", "cifar10", "-c", "cat", "--seeds", "0,5",
        "--data", data, "--json", out, "--device", "cpu",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "0.724" in result.output  # the paper's figure for cat, beside ours
    (entry,) = json.loads(out.read_text())["results"]
    assert [r["seed"] for r in entry["runs"]] == [0, 5]
    assert entry["paper"] == {"auroc": 0.724, "spread": 0.005, "source": "seed 004 Table 1"}
    assert entry["auroc_sd"] is not None
    assert all(r["n_train"] == CIFAR_TRAIN and r["n_test"] == 30 for r in entry["runs"])


def test_reproduce_the_full_protocol_uses_every_image(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "full.json"
    result = xadt(
        "reproduce", "skipganomaly", "-d", "cifar10", "-c", "bird", "--protocol", "full",
        "--epochs", "1", "--data", data, "--json", out, "--device", "cpu",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "0.448" in result.output  # seed 003 Table I, Skip-GANomaly, bird
    (entry,) = json.loads(out.read_text())["results"]
    assert entry["protocol"] == "full"
    assert entry["options"]["batch_size"] == 64
    (run,) = entry["runs"]
    assert run["n_train"] == 9 * CIFAR_TRAIN
    assert (run["n_test"], run["n_anomalous"]) == (9 * CIFAR_TEST + CIFAR_TRAIN + CIFAR_TEST, 11)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gaussian", "-d", "mnist", "-c", "1"], "no protocol for 'gaussian'"),
        (["geom", "-d", "mnist", "-c", "eleven"], "mnist has no class 'eleven'"),
        (["geom", "-d", "imagenet", "-c", "1"], "--dataset must be one of mnist, cifar10"),
        (["geom", "-d", "mnist", "-c", "1", "--seeds", "0,0"], "--seeds must be"),
        (["geom", "-d", "mnist", "-c", "1", "--protocol", "paper"], "--protocol must be one of"),
        (["ganomaly", "-d", "mnist", "-c", "1", "--data", "nowhere"], "no data folder at nowhere"),
    ],
)
def test_reproduce_user_errors_are_one_line(args: list[str], message: str) -> None:
    result = xadt("reproduce", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_optimistic_is_refused_for_geom(data: Path) -> None:
    result = xadt("reproduce", "geom", "-d", "mnist", "-c", "1", "--data", data, "--optimistic")
    assert result.exit_code == 1
    assert "--optimistic applies to the GAN family only" in result.output


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent")
def test_the_shared_cifar10_split_has_the_papers_counts() -> None:
    cifar = load_benchmark("cifar10", SHARED)
    split = one_class_split(cifar, class_index("cifar10", "bird"), "anomaly")
    assert (len(split.train), len(split.test), split.anomalous.sum()) == (45000, 15000, 6000)
    geom = one_class_split(cifar, class_index("cifar10", "bird"), "normal")
    assert (len(geom.train), len(geom.test), geom.anomalous.sum()) == (5000, 10000, 9000)
