"""The benchmark images of the paper reproductions, and the papers' one-class splits.

MNIST comes from ``mnist.npz`` (``x_train``, ``y_train``, ``x_test``, ``y_test``), CIFAR-10 from
``cifar10-jpg.tar.gz`` (``train|test/<class>/NNNN.jpg``, read with :mod:`tarfile` without
unpacking). Both are held as one array of all images with their class and original part
(train or test); a :class:`Split` indexes into it.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from xadt.errors import XadtError
from xadt.scans import Scan

__all__ = [
    "CIFAR10_CLASSES",
    "DATASETS",
    "FILES",
    "MNIST_CLASSES",
    "SIDE",
    "Benchmark",
    "Split",
    "class_index",
    "load_benchmark",
    "one_class_split",
    "scans",
    "subsample",
]

DATASETS = ("mnist", "cifar10")
"""The data sets ``xadt reproduce`` knows."""

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
"""CIFAR-10's classes in their standard label order (the tarball's folder names)."""

MNIST_CLASSES = tuple("0123456789")
"""MNIST's classes: the digits."""

FILES = {"mnist": "mnist.npz", "cifar10": "cifar10-jpg.tar.gz"}
"""The file of each data set in the data folder (its README gives the formats)."""

SIDE = 32
"""Side of every image the detectors see: the papers work on 32×32 (MNIST resized or padded)."""

Convention = Literal["anomaly", "normal"]
"""What the chosen class is: the *anomaly* (the GAN family; the other nine are normal) or the
*normal* class (``geom``; the other nine are anomalies)."""

MnistFit = Literal["resize", "pad"]
"""How 28×28 MNIST digits become 32×32: resized (GANomaly, methods.md §3.2) or zero-padded
(GeoTrans's Fashion-MNIST, §5.5)."""


@dataclass(frozen=True)
class Benchmark:
    """Every image of a data set, in its native size.

    Attributes:
        name: ``mnist`` or ``cifar10``.
        classes: class names in label order.
        images: (N, H, W, C) uint8 images (28×28×1 for MNIST, 32×32×3 for CIFAR-10).
        labels: (N,) int64 class of each image.
        test: (N,) bool, True where the image is in the data set's original test part.
    """

    name: str
    classes: tuple[str, ...]
    images: np.ndarray
    labels: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class Split:
    """A one-class task: indices into a :class:`Benchmark` to train and to test on.

    Attributes:
        train: indices of the (normal) training images, ascending.
        test: indices of the test images, ascending.
        anomalous: (len(test),) int64 label of each test image, 1 = anomalous.
    """

    train: np.ndarray
    test: np.ndarray
    anomalous: np.ndarray


def class_index(dataset: str, value: str) -> int:
    """The label of class ``value`` of ``dataset``, given by name or index (``cat``, ``3``).

    Raises:
        XadtError: ``value`` names no class of ``dataset``; the message lists them.
    """
    classes = _classes(dataset)
    if value in classes:
        return classes.index(value)
    if value.isdigit() and int(value) < len(classes):
        return int(value)
    listed = ", ".join(f"{i} {name}" if name != str(i) else name for i, name in enumerate(classes))
    msg = f"--class: {dataset} has no class {value!r}; classes: {listed}"
    raise XadtError(msg)


def load_benchmark(dataset: str, folder: Path) -> Benchmark:
    """Read every image of ``dataset`` from its file in ``folder`` (see :data:`FILES`).

    Raises:
        XadtError: an unknown data set, or the folder or file is missing or unreadable.
    """
    _classes(dataset)
    if not folder.is_dir():
        msg = (
            f"--data: no data folder at {folder}; pass --data DIR, the folder holding "
            f"{' and '.join(FILES.values())}"
        )
        raise XadtError(msg)
    file = folder / FILES[dataset]
    if not file.is_file():
        msg = f"--data: {file} not found; {folder} must hold {FILES[dataset]}"
        raise XadtError(msg)
    try:
        return _read_mnist(file) if dataset == "mnist" else _read_cifar10(file)
    except (OSError, KeyError, ValueError, tarfile.TarError) as exc:
        msg = f"{file}: cannot read {dataset} ({exc})"
        raise XadtError(msg) from None


def one_class_split(benchmark: Benchmark, label: int, convention: Convention) -> Split:
    """The papers' split for class ``label`` (methods.md §3.7, §4.7, §5.5).

    ``anomaly`` (GANomaly, Skip-GANomaly, dsagan): train on the original training images of the
    other classes; test on their original test images plus *every* image of class ``label``
    (CIFAR-10: 45,000 train; 9,000 normal + 6,000 anomalous test images). ``normal`` (GeoTrans):
    train on the original training images of class ``label``; test on the whole original test
    set, the other classes anomalous.
    """
    mine = benchmark.labels == label
    if convention == "anomaly":
        train = ~benchmark.test & ~mine
        test = (benchmark.test & ~mine) | mine
        anomalous = mine
    else:
        train = ~benchmark.test & mine
        test = benchmark.test
        anomalous = ~mine
    chosen = np.flatnonzero(test)
    return Split(np.flatnonzero(train), chosen, anomalous[chosen].astype(np.int64))


def subsample(
    split: Split, labels: np.ndarray, *, train: int | None, test: int | None, seed: int
) -> Split:
    """A seeded subset of ``split``, stratified by class (``labels`` of the whole benchmark).

    Each class keeps its share of the training and of the test images (largest remainders), so
    the test subset keeps the normal-to-anomalous ratio. None keeps a part whole.
    """
    rng = np.random.default_rng([seed, 14])
    keep_train = _stratified(split.train, labels[split.train], train, rng)
    # Positions in the test part rather than indices, so that the test labels follow.
    positions = _stratified(np.arange(len(split.test)), labels[split.test], test, rng)
    return Split(keep_train, split.test[positions], split.anomalous[positions])


def scans(benchmark: Benchmark, indices: np.ndarray, fit: MnistFit) -> list[Scan]:
    """The images at ``indices`` as one-view scans of :data:`SIDE` × :data:`SIDE` pixels.

    Ids are ``<dataset>-<index>``; MNIST digits are resized or zero-padded to 32 by ``fit``.
    """
    encoding = "grey" if benchmark.images.shape[3] == 1 else "rgb"
    return [
        Scan(
            f"{benchmark.name}-{i:05d}",
            [_to_side(benchmark.images[i], fit)],
            encoding=encoding,
        )
        for i in indices
    ]


def _classes(dataset: str) -> tuple[str, ...]:
    if dataset == "mnist":
        return MNIST_CLASSES
    if dataset == "cifar10":
        return CIFAR10_CLASSES
    msg = f"--dataset must be one of {', '.join(DATASETS)}; got {dataset!r}"
    raise XadtError(msg)


def _stratified(
    items: np.ndarray, strata: np.ndarray, n: int | None, rng: np.random.Generator
) -> np.ndarray:
    """``n`` of ``items`` drawn without replacement, each stratum in proportion; sorted."""
    if n is None or n >= len(items):
        return np.sort(items)
    values, counts = np.unique(strata, return_counts=True)
    exact = counts * n / len(items)
    quota = np.floor(exact).astype(np.int64)
    extra = np.argsort(-(exact - quota), kind="stable")[: n - int(quota.sum())]
    quota[extra] += 1
    chosen = [
        rng.choice(items[strata == value], size=int(k), replace=False)
        for value, k in zip(values, quota, strict=True)
    ]
    return np.sort(np.concatenate(chosen))


def _to_side(image: np.ndarray, fit: MnistFit) -> np.ndarray:
    height = image.shape[0]
    if height == SIDE:
        return image
    if fit == "pad":
        pad = (SIDE - height) // 2
        return np.pad(image, ((pad, SIDE - height - pad), (pad, SIDE - height - pad), (0, 0)))
    # torchvision's Resize, which the GANomaly code applies to MNIST, is bilinear.
    resized = Image.fromarray(image[:, :, 0]).resize((SIDE, SIDE), Image.Resampling.BILINEAR)
    return np.asarray(resized)[:, :, None]


def _read_mnist(file: Path) -> Benchmark:
    with np.load(file) as data:
        x = np.concatenate([data["x_train"], data["x_test"]])
        y = np.concatenate([data["y_train"], data["y_test"]]).astype(np.int64)
        test = np.repeat([False, True], [len(data["y_train"]), len(data["y_test"])])
    return Benchmark("mnist", MNIST_CLASSES, x[:, :, :, None].astype(np.uint8), y, test)


def _read_cifar10(file: Path) -> Benchmark:
    images, labels, test = [], [], []
    with tarfile.open(file) as archive:
        for member in archive:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 3 or not parts[-1].endswith(".jpg"):
                continue
            part, name = parts[-3], parts[-2]
            if part not in ("train", "test") or name not in CIFAR10_CLASSES:
                continue
            handle = archive.extractfile(member)
            assert handle is not None
            with Image.open(io.BytesIO(handle.read())) as image:
                images.append(np.asarray(image.convert("RGB")))
            labels.append(CIFAR10_CLASSES.index(name))
            test.append(part == "test")
    if not images:
        msg = "no train/<class>/*.jpg or test/<class>/*.jpg images in the archive"
        raise ValueError(msg)
    return Benchmark(
        "cifar10",
        CIFAR10_CLASSES,
        np.stack(images),
        np.array(labels, dtype=np.int64),
        np.array(test, dtype=bool),
    )
