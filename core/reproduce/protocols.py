"""The two protocols of ``xadt reproduce``: ``full`` (the papers' own, for a GPU) and ``reduced``
(a seeded budget that runs one class in minutes on 2 CPU cores, scoring included).

Every image is one 32×32 scan whose one patch is the whole image: the patch options below turn
air-cropping, tiling and downscaling off. The detectors' own defaults are the papers' networks
and optimisers (methods.md §2.6, §3.5, §4.5, §5.3); the protocols set only what differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xadt.errors import XadtError
from xadt.reproduce.datasets import SIDE, Convention, MnistFit

__all__ = [
    "CONVENTION",
    "MNIST_FIT",
    "PLUGINS",
    "PROTOCOLS",
    "REDUCED_DIRICHLET_IMAGES",
    "REDUCED_GAN_EPOCHS",
    "REDUCED_TEST_IMAGES",
    "REDUCED_TRAIN_IMAGES",
    "Protocol",
    "protocol",
]

PLUGINS = ("ganomaly", "skipganomaly", "dsagan", "geom")
"""The detectors with a paper protocol on MNIST and CIFAR-10."""

PROTOCOLS = ("reduced", "full")

CONVENTION: dict[str, Convention] = {
    "ganomaly": "anomaly",
    "skipganomaly": "anomaly",
    "dsagan": "anomaly",
    "geom": "normal",
}
"""Whether the chosen class is the anomaly (GAN family) or the normal class (GeoTrans)."""

MNIST_FIT: dict[str, MnistFit] = {
    "ganomaly": "resize",
    "skipganomaly": "resize",
    "dsagan": "resize",
    "geom": "pad",
}
"""MNIST to 32×32: GANomaly resizes (§3.2; its successors follow it), GeoTrans zero-pads
Fashion-MNIST (§5.5) and we treat MNIST the same way."""

ONE_PATCH: dict[str, Any] = {"patch": SIDE, "stride": SIDE, "downscale": 1.0, "crop": False}
"""Patch options that make each 32×32 image exactly one patch."""

FULL: dict[str, dict[str, Any]] = {
    # GANomaly (§3.5, GA-3, GA-5) and Skip-GANomaly (§4.5, S-3): batch 64, Adam 2e-4, 15 epochs.
    "ganomaly": {"epochs": 15, "batch_size": 64},
    "skipganomaly": {"epochs": 15, "batch_size": 64},
    # dsagan (§2.6, Z-6): lr 8e-3 (the plugin's default), batch 64, 20 epochs.
    "dsagan": {"epochs": 20, "batch_size": 64},
    # GeoTrans (§5.3): WRN-10-4 (the reported numbers' net), full72, ceil(200/72) = 3 epochs,
    # the Dirichlet fitted on every training image.
    "geom": {
        "depth": 10,
        "widen": 4,
        "transforms": "full72",
        "dirichlet_patches": 1_000_000,
        "score_batch": 16,
    },
}

REDUCED_TRAIN_IMAGES = {"ganomaly": 2000, "skipganomaly": 1200, "dsagan": 600, "geom": 300}
"""Training images per class in ``reduced`` (a seeded sample, stratified by class), sized by each
network's measured cost per image so that a class takes a few minutes on 2 shared CPU cores
(dsagan's UNet++ is the dearest GAN; docs/results.md gives the timings)."""

REDUCED_TEST_IMAGES = 2000
"""Test images per class in ``reduced``: a seeded sample stratified by class, so the share of
anomalies is the paper's (CIFAR-10, GAN family: 1,200 normal + 800 anomalous)."""

REDUCED_DIRICHLET_IMAGES = 1000
"""At most this many training images fit the GeoTrans Dirichlet in ``reduced``."""

REDUCED_GAN_EPOCHS = 2
"""Epochs of the GAN family in ``reduced`` (the papers: 15, dsagan 20)."""

REDUCED: dict[str, dict[str, Any]] = {
    "ganomaly": {"epochs": REDUCED_GAN_EPOCHS, "batch_size": 64},
    "skipganomaly": {"epochs": REDUCED_GAN_EPOCHS, "batch_size": 64},
    "dsagan": {"epochs": REDUCED_GAN_EPOCHS, "batch_size": 64},
    # Scoring 2,000 images under all 72 transformations and training on 72 copies of each image
    # are what cost: full72 is kept, on WRN-10-1 (about a sixteenth of WRN-10-4's multiply-adds)
    # for one epoch, about 72 of the paper's 200 epoch-equivalents.
    "geom": {
        "depth": 10,
        "widen": 1,
        "transforms": "full72",
        "epochs": 1,
        "dirichlet_patches": REDUCED_DIRICHLET_IMAGES,
        "score_batch": 16,
    },
}


@dataclass(frozen=True)
class Protocol:
    """What one reproduction run trains and tests on, and with which detector options.

    Attributes:
        name: ``reduced`` or ``full``.
        train_images: training images kept (a stratified seeded sample), None = all.
        test_images: test images kept (a stratified seeded sample), None = all.
        options: the detector's options (``xadt plugins NAME``), patch options included.
    """

    name: str
    train_images: int | None
    test_images: int | None
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the results table: the budget, e.g. ``reduced: 4500 train, 2000 test,
        5 epochs``."""
        train = "all" if self.train_images is None else str(self.train_images)
        test = "all" if self.test_images is None else str(self.test_images)
        epochs = self.options.get("epochs")
        parts = [f"{train} train", f"{test} test"]
        parts.append(
            "the paper's epochs" if epochs is None else f"{epochs} epoch" + "s" * (epochs > 1)
        )
        if "widen" in self.options:
            parts.append(f"WRN-{self.options['depth']}-{self.options['widen']}")
        return f"{self.name}: " + ", ".join(parts)


def protocol(name: str, plugin: str, *, epochs: int | None = None) -> Protocol:
    """The protocol ``name`` for ``plugin``; ``epochs`` overrides its number of epochs.

    Raises:
        XadtError: an unknown protocol or plugin, or ``epochs`` < 1.
    """
    if name not in PROTOCOLS:
        msg = f"--protocol must be one of {', '.join(PROTOCOLS)}; got {name!r}"
        raise XadtError(msg)
    if plugin not in PLUGINS:
        msg = f"xadt reproduce has no protocol for {plugin!r}; plugins: {', '.join(PLUGINS)}"
        raise XadtError(msg)
    if epochs is not None and epochs < 1:
        msg = f"--epochs must be an integer >= 1; got {epochs}"
        raise XadtError(msg)
    table = FULL if name == "full" else REDUCED
    options = {**ONE_PATCH, **table[plugin]}
    if epochs is not None:
        options["epochs"] = epochs
    if name == "full":
        return Protocol(name, None, None, options)
    return Protocol(name, REDUCED_TRAIN_IMAGES[plugin], REDUCED_TEST_IMAGES, options)
