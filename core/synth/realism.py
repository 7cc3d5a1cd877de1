"""Realism checks of the simulator: global baseline features, the Fréchet distance to real X-ray
window statistics, and how firearm-like the threats look to the ImageNet backbone.

``python -m xadt.synth.realism`` (or ``xadt synth OUT --check-realism``) prints the Fréchet
distance of simulated parcels to ``real-benign-lite0-windows.npz``, following the protocol of
that file's README exactly: Pillow grey air crop, 224-px tiling, at most 12 windows per image,
``(x − 127) / 128`` into EfficientNet-Lite0, 600-window samples, mean of 5 draws.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from xadt.crop import EmptyScanError, crop_air
from xadt.errors import XadtError
from xadt.features import FEATURES, global_features
from xadt.synth.dataset import MANIFEST, generate, scan_rng
from xadt.synth.parcel import make_parcel

REFERENCE = Path("..", "shared", "data", "xray-reference", "real-benign-lite0-windows.npz")
"""Where the real X-ray window statistics live, relative to a checkout (the default)."""
FLOOR = 38.0
"""Real-vs-real Fréchet distance of the reference README (600 windows, mean of 5 draws)."""
WINDOW = 224
"""Window side, px."""
MAX_STRIDE = 112
"""Largest step between windows, px."""
PER_IMAGE = 12
"""Most windows kept per image."""
SAMPLE = 600
"""Windows per Fréchet sample."""
DRAWS = 5
"""Samples averaged."""
MIN_IMAGES = 50
"""Fewest images a Fréchet sample may come from."""
FIREARMS = ("pistol", "revolver", "rifle")
"""The threat kinds that are firearms."""


def crop(view: np.ndarray) -> np.ndarray:
    """The view cut to its parcel by :func:`xadt.crop.crop_air` (the whole view if all air)."""
    try:
        return crop_air(view).apply(view)
    except EmptyScanError:
        return view


def scan_features(views: list[np.ndarray]) -> dict[str, float]:
    """Global features (size, attenuation, busyness) of one scan's air-cropped views."""
    return global_features([crop(v) for v in views])


def baseline_aurocs(
    n_normal: int, n_threat: int, *, seed: int = 0, scale: float = 0.25
) -> dict[str, float]:
    """AUROC (threat = positive) of each global feature on a generated test set.

    Uses the test splits of the data set with ``seed``; ``max(a, 1 - a)`` of each value is how
    well that feature alone would separate the classes.
    """
    rows = []
    labels = []
    for split, count, label in (("test-normal", n_normal, 0), ("test-threat", n_threat, 1)):
        for i in range(count):
            scan = generate(seed, split, i, scale=scale)
            rows.append(scan_features(scan.views))
            labels.append(label)
    y = np.array(labels)
    return {f: float(roc_auc_score(y, [r[f] for r in rows])) for f in FEATURES}


# ---------------------------------------------------------------- the reference protocol


def protocol_crop(rgb: np.ndarray) -> np.ndarray:
    """Step 2 of the reference protocol: the RGB image cut to its non-air components.

    Grey is Pillow's ``convert("L")``; mask grey < 240, opened with a 5×5 square; 8-connected
    components of at least 1% of the image area; their union's bounding box (whole image if none).
    """
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    mask = ndimage.binary_opening(grey < 240, structure=np.ones((5, 5), bool))
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return rgb
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = np.flatnonzero(sizes >= 0.01 * grey.size)
    keep = keep[keep > 0]
    if keep.size == 0:
        return rgb
    rows, cols = np.nonzero(np.isin(labels, keep))
    return rgb[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _offsets(length: int) -> list[int]:
    if length <= WINDOW:
        return [0]
    n = math.ceil((length - WINDOW) / MAX_STRIDE) + 1
    return [round(k * (length - WINDOW) / (n - 1)) for k in range(n)]


def protocol_windows(rgb: np.ndarray, image_index: int | None) -> np.ndarray:
    """Step 3: (N, 224, 224, 3) uint8 windows of an air-cropped image.

    A side shorter than 224 is padded with white, centred. With ``image_index`` at most 12
    windows are kept, chosen by ``default_rng(image_index)`` as the README says; None keeps all.
    """
    h, w = rgb.shape[:2]
    ph, pw = max(WINDOW - h, 0), max(WINDOW - w, 0)
    if ph or pw:
        pad = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0))
        rgb = np.pad(rgb, pad, constant_values=255)
    boxes = [(y, x) for y in _offsets(rgb.shape[0]) for x in _offsets(rgb.shape[1])]
    if image_index is not None and len(boxes) > PER_IMAGE:
        chosen = np.random.default_rng(image_index).choice(len(boxes), PER_IMAGE, replace=False)
        boxes = [boxes[i] for i in sorted(chosen)]
    return np.stack([rgb[y : y + WINDOW, x : x + WINDOW] for y, x in boxes])


class WindowNet:
    """Step 4: EfficientNet-Lite0 (ImageNet weights) on windows: pooled features and logits."""

    def __init__(self, batch: int = 32) -> None:
        import torch  # lazy: the global-feature checks above need no torch

        from xadt.backbones import create_backbone
        from xadt.host import load_registry

        self._torch = torch
        self.net = create_backbone("efficientnet_lite0", registry=load_registry())
        self.batch = batch

    def __call__(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 1280) float64 pooled features and (N, 1000) float32 logits of uint8 windows."""
        torch = self._torch
        pooled, logits = [], []
        for start in range(0, len(windows), self.batch):
            chunk = torch.from_numpy(windows[start : start + self.batch]).permute(0, 3, 1, 2)
            x = (chunk.float() - 127.0) / 128.0
            out = self.net(x.contiguous())
            pooled.append(out.pooled.double().numpy())
            logits.append(out.logits.numpy())
        return np.concatenate(pooled), np.concatenate(logits)


@dataclass(frozen=True)
class Reference:
    """Mean and covariance of the real windows, with the covariance's symmetric square root."""

    mean: np.ndarray
    cov: np.ndarray
    cov_sqrt: np.ndarray

    @classmethod
    def load(cls, path: Path | str = REFERENCE) -> Reference:
        """Read the reference ``.npz``.

        Raises:
            XadtError: the file is absent (it lives outside the repository, beside it).
        """
        path = Path(path)
        if not path.is_file():
            msg = (
                f"no real X-ray reference statistics at {path}; the realism check needs "
                "real-benign-lite0-windows.npz (see ../shared/data/xray-reference/README.md)"
            )
            raise XadtError(msg)
        with np.load(path) as data:
            mean = data["mean"].astype(np.float64)
            cov = data["cov"].astype(np.float64)
        return cls(mean, cov, _sqrt_psd(cov))


def _sqrt_psd(c: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((c + c.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


@dataclass(frozen=True)
class FrechetTerms:
    """The two parts of a Fréchet distance: how far apart the means are, |m₁ − m₂|², and how
    differently the features vary, tr(C₁ + C₂ − 2 (C₁ C₂)^½). The second is 0 only when the
    covariances are equal; it grows when the sets vary by different amounts or along different
    directions."""

    means: float
    covariances: float

    @property
    def total(self) -> float:
        """The Fréchet distance."""
        return self.means + self.covariances


def frechet_terms(features: np.ndarray, ref: Reference) -> FrechetTerms:
    """The mean and covariance terms of the Fréchet distance between ``features`` (N, D) and
    ``ref``.

    tr (C₁ C₂)^½ is computed as the sum of square roots of the eigenvalues of the symmetric
    S C₁ S with S = C₂^½, which has the same spectrum as C₁ C₂ and no complex round-off.
    """
    m = features.mean(axis=0)
    c = np.cov(features, rowvar=False)
    vals = np.linalg.eigvalsh(ref.cov_sqrt @ c @ ref.cov_sqrt)
    tr_sqrt = float(np.sqrt(np.clip(vals, 0, None)).sum())
    return FrechetTerms(
        float(((m - ref.mean) ** 2).sum()), float(np.trace(c) + np.trace(ref.cov) - 2 * tr_sqrt)
    )


def frechet_distance(features: np.ndarray, ref: Reference) -> float:
    """FD = |m₁ − m₂|² + tr(C₁ + C₂ − 2 (C₁ C₂)^½) between ``features`` (N, D) and ``ref``."""
    return frechet_terms(features, ref).total


def image_windows(images: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Steps 2–3 for a sequence of RGB images (one view per parcel): each image's windows."""
    for index, rgb in enumerate(images):
        yield protocol_windows(protocol_crop(rgb), index)


@dataclass(frozen=True)
class FrechetResult:
    """Fréchet distance to the reference: the mean over draws, each draw, the counts, and the
    mean over draws of its part from the means (the rest is from the covariances)."""

    mean: float
    draws: tuple[float, ...]
    n_images: int
    n_windows: int
    means_term: float


def frechet_to_reference(
    images: Iterable[np.ndarray],
    ref: Reference,
    net: WindowNet | None = None,
    *,
    sample: int = SAMPLE,
    draws: int = DRAWS,
) -> FrechetResult:
    """Step 5: FD of ``draws`` random ``sample``-window samples (draw k uses
    ``default_rng(k)``) of the images' windows to ``ref``, and their mean.

    Raises:
        XadtError: fewer than 50 images, or fewer windows than ``sample``.
    """
    net = net or WindowNet()
    feats = []
    n_images = 0
    for windows in image_windows(images):
        feats.append(net(windows)[0])
        n_images += 1
    pooled = np.concatenate(feats) if feats else np.zeros((0, 1280))
    if n_images < MIN_IMAGES or len(pooled) < sample:
        msg = (
            f"the realism check needs windows from at least {MIN_IMAGES} images and {sample} "
            f"windows; got {n_images} images and {len(pooled)} windows"
        )
        raise XadtError(msg)
    terms = [
        frechet_terms(pooled[np.random.default_rng(k).choice(len(pooled), sample, False)], ref)
        for k in range(draws)
    ]
    values = tuple(t.total for t in terms)
    means = float(np.mean([t.means for t in terms]))
    return FrechetResult(float(np.mean(values)), values, n_images, len(pooled), means)


def firearm_logits(views: Sequence[np.ndarray], net: WindowNet) -> list[float]:
    """Per view, the max over the windows of its air-cropped image of the largest ImageNet
    firearm logit ('assault rifle', 'revolver', 'rifle')."""
    from xadt.backbones.classes import gun_indices

    guns = gun_indices()
    return [
        float(net(protocol_windows(protocol_crop(view), None))[1][:, guns].max()) for view in views
    ]


def firearm_auroc(
    normal: Iterable[Sequence[np.ndarray]],
    threat: Iterable[Sequence[np.ndarray]],
    net: WindowNet | None = None,
) -> dict[str, float]:
    """AUROC (firearm scans positive) of the firearm logit of :func:`firearm_logits` on the top
    view alone (``"top view"``: one view per image, as the real reference's protocol) and its max
    over both views (``"both views"``)."""
    net = net or WindowNet()
    neg = [firearm_logits(v, net) for v in normal]
    pos = [firearm_logits(v, net) for v in threat]
    labels = [0] * len(neg) + [1] * len(pos)
    return {
        "top view": float(roc_auc_score(labels, [s[0] for s in neg + pos])),
        "both views": float(roc_auc_score(labels, [max(s) for s in neg + pos])),
    }


def firearm_scans(seed: int, count: int, *, scale: float = 1.0) -> Iterator[list[np.ndarray]]:
    """Views of ``count`` firearm threat scans (pistol, revolver, rifle in turn) of ``seed``."""
    for i in range(count):
        rng = scan_rng(seed, "test-threat", i)
        yield make_parcel(rng, threat=FIREARMS[i % len(FIREARMS)], scale=scale).views


def dataset_views(out: Path | str) -> Iterator[np.ndarray]:
    """Top views (``_v0``) of the normal scans of an ``xadt synth`` folder, in manifest order."""
    out = Path(out)
    manifest = json.loads((out / MANIFEST).read_text())
    for entry in manifest["scans"]:
        if entry["label"] == "normal":
            top = next(f for f in entry["files"] if f.endswith("_v0.png"))
            yield np.asarray(Image.open(out / top).convert("RGB"))


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: print the Fréchet distance (and optionally the firearm AUROC)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=5, help="seed of the generated parcels")
    parser.add_argument("--count", type=int, default=100, help="normal parcels to measure")
    parser.add_argument("--split", default="train-normal", help="split the parcels come from")
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="reference .npz")
    parser.add_argument(
        "--firearms", type=int, default=0, help="also the firearm-logit AUROC on N + N scans"
    )
    args = parser.parse_args(argv)
    try:
        ref = Reference.load(args.reference)
    except XadtError as err:
        print(f"realism check skipped: {err}")
        return 0
    net = WindowNet()
    views = (generate(args.seed, args.split, i).views[0] for i in range(args.count))
    result = frechet_to_reference(views, ref, net)
    print(report(result))
    if args.firearms:
        normal = (generate(args.seed, "test-normal", i).views for i in range(args.firearms))
        auc = firearm_auroc(normal, firearm_scans(args.seed, args.firearms), net)
        print(
            f"firearm-logit AUROC ({args.firearms} firearm vs {args.firearms} normal): "
            f"{auc['top view']:.3f} on the top view, {auc['both views']:.3f} on both views"
        )
    return 0


def report(result: FrechetResult) -> str:
    """One line: the Fréchet distance, its draws, its parts, and the real-vs-real floor."""
    draws = ", ".join(f"{d:.1f}" for d in result.draws)
    return (
        f"Fréchet distance to real X-ray windows: {result.mean:.1f} (draws {draws}; "
        f"{result.means_term:.1f} from the means, {result.mean - result.means_term:.1f} from the "
        f"covariances; {result.n_windows} windows of {result.n_images} images; "
        f"real-vs-real floor {FLOOR})"
    )


if __name__ == "__main__":
    raise SystemExit(main())
