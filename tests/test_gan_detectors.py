"""The GAN detectors on the engine: the papers' defaults, option errors, evaluation-mode scoring,
grey and dual-energy scans, model selection on held-out normal patches and the discriminator
re-initialisation rule."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch

from xadt.engine import Step
from xadt.errors import XadtError
from xadt.plugins.dsagan.detector import DsaganDetector
from xadt.plugins.gan_common.detector import GanDetector
from xadt.plugins.ganomaly.detector import GanomalyDetector
from xadt.plugins.skipganomaly.detector import SkipGanomalyDetector
from xadt.scans import Scan
from xadt.testing import anomalous_scan, normal_scans
from xadt.training_data import TrainingData

TINY: dict[type[GanDetector], dict[str, Any]] = {
    GanomalyDetector: {"width": 8, "latent": 16},
    SkipGanomalyDetector: {"width": 8},
    DsaganDetector: {"width": 4, "levels": 3, "d_width": 16, "lr": 2e-4},
}
PATCHES = {"patch": 32, "stride": 16, "downscale": 0.5, "epochs": 2, "batch_size": 16}
DETECTORS = list(TINY)


def tiny(cls: type[GanDetector], **overrides: Any) -> GanDetector:
    return cls(cls.Config(**{**PATCHES, **TINY[cls], **overrides}))


def test_defaults_are_the_papers() -> None:
    g, s, d = GanomalyDetector.Config(), SkipGanomalyDetector.Config(), DsaganDetector.Config()
    for c in (g, s, d):
        assert (c.beta1, c.beta2, c.batch_size, c.patch, c.reinit_d) == (0.5, 0.999, 64, 64, False)
        assert c.select == "final"
    assert (g.w_adv, g.w_con, g.w_enc, g.latent, g.lr, g.epochs) == (1, 50, 1, 100, 2e-4, 15)
    assert g.score == "l2"  # the official code's mean squared latent difference
    assert (s.w_adv, s.w_con, s.w_lat, s.lam, s.lr, s.epochs) == (1, 40, 1, 0.9, 2e-4, 15)
    assert s.score == "paper"
    assert (d.w_adv, d.w_con, d.w_lat, d.eta, d.lr, d.epochs) == (1, 40, 1, 0.9, 8e-3, 20)
    assert (d.latent_loss, d.width, d.levels, d.heads, d.attention_size) == ("l1", 32, 5, 4, 4)


@pytest.mark.parametrize("cls", DETECTORS)
def test_patch_must_be_a_power_of_two_from_32(cls: type[GanDetector]) -> None:
    for patch in (16, 48):
        with pytest.raises(
            XadtError, match=rf"^The 'patch' option of {cls.name} must be a power of two >= 32"
        ):
            cls(patch=patch, stride=16).validate()


def test_dsagan_checks_its_architecture_options() -> None:
    with pytest.raises(XadtError, match=r"^The 'levels' option of dsagan must leave"):
        DsaganDetector(patch=32, levels=6).validate()
    with pytest.raises(XadtError, match=r"^The 'attention_size' option of dsagan must be"):
        DsaganDetector(patch=32, attention_size=32).validate()
    with pytest.raises(XadtError, match=r"^The 'heads' option of dsagan must divide"):
        DsaganDetector(heads=3).validate()
    with pytest.raises(XadtError, match=r"^The 'attention_size' option of dsagan must be a power"):
        DsaganDetector(attention_size=6).validate()


def _patches(seed: int, n: int) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cls", DETECTORS)
def test_scores_use_running_statistics_not_the_batch(cls: type[GanDetector]) -> None:
    detector = tiny(cls).fit(TrainingData.from_scans(normal_scans(6, seed=1)))
    batch = _patches(0, 8)
    with detector.inference():
        together, together_maps = detector.score_patches(batch)
        alone = torch.cat([detector.score_patches(batch[k : k + 1])[0] for k in range(8)])
        mixed = detector.score_patches(torch.cat([batch[:1], _patches(1, 15) * 0.2]))[0][0]
        again = detector.score_patches(batch)[0]
    torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(mixed, together[0], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(again, together, rtol=0, atol=0)  # no state moves while scoring
    assert (together_maps is None) == (cls is GanomalyDetector)
    if cls is not DsaganDetector:  # the BatchNorm networks: training mode would leak the batch
        for net in detector.networks().values():
            net.train()
        with torch.no_grad():
            leaky = detector.score_patches(batch[:1])[0]
        assert not torch.allclose(leaky, together[:1], rtol=1e-3)


@pytest.mark.parametrize("cls", DETECTORS)
def test_a_scan_scores_the_same_with_any_score_batch(cls: type[GanDetector]) -> None:
    detector = tiny(cls).fit(TrainingData.from_scans(normal_scans(6, seed=1)))
    scan = anomalous_scan()
    first = detector.score([scan])[0]
    detector.config = dataclasses.replace(detector.config, score_batch=3)
    second = detector.score([scan])[0]
    assert second.score == pytest.approx(first.score, rel=1e-5)
    np.testing.assert_allclose(second.maps[0], first.maps[0], rtol=1e-4, atol=1e-6)


def _grey(scans: list[Scan]) -> list[Scan]:
    return [Scan(s.id, [v[..., :1] for v in s.views], encoding="grey") for s in scans]


def _dual(scans: list[Scan]) -> list[Scan]:
    return [
        Scan(s.id, [(v[..., :2].astype(np.uint16) * 257) for v in s.views], encoding="dual-energy")
        for s in scans
    ]


@pytest.mark.parametrize("cls", DETECTORS)
@pytest.mark.parametrize(("encode", "channels"), [(_grey, 1), (_dual, 2)])
def test_grey_and_dual_energy_scans_train_one_and_two_channel_networks(
    cls: type[GanDetector], encode: Any, channels: int
) -> None:
    detector = tiny(cls, epochs=1).fit(TrainingData.from_scans(encode(normal_scans(4, seed=1))))
    assert detector.info_ == {"channels": channels, "patch": 32}
    (result,) = detector.score(encode([anomalous_scan()]))
    assert np.isfinite(result.score)
    assert result.maps[0].shape == anomalous_scan().views[0].shape[:2]


@pytest.mark.parametrize("cls", DETECTORS)
def test_select_validation_keeps_the_lowest_held_out_reconstruction_loss(
    cls: type[GanDetector],
) -> None:
    data = TrainingData.from_scans(
        normal_scans(6, seed=1), validation=normal_scans(2, seed=5, prefix="valid")
    )
    detector = tiny(cls, epochs=3, select="validation").fit(data)
    losses = [h["validation"]["loss"] for h in detector.history_]
    assert len(losses) == 3
    assert detector.selected_epoch_ == 1 + int(np.argmin(losses))


def test_select_validation_without_validation_scans_is_refused() -> None:
    detector = tiny(GanomalyDetector, select="validation")
    with pytest.raises(XadtError, match="select='validation' needs held-out validation scans"):
        detector.fit(TrainingData.from_scans(normal_scans(4, seed=1)))


@pytest.mark.parametrize("cls", DETECTORS)
def test_the_discriminator_is_re_initialised_only_when_asked_and_collapsed(
    cls: type[GanDetector],
) -> None:
    def weights(step: Step) -> list[torch.Tensor]:
        return [p.detach().clone() for p in step.nets["discriminator"].parameters()]

    for reinit, loss, changed in [(True, 1e-6, True), (True, 1e-3, False), (False, 0.0, False)]:
        detector = tiny(cls, reinit_d=reinit)
        nets = detector.build_networks({"channels": 3, "patch": 32})
        step = Step(nets, torch.device("cpu"), 1, 0, None)  # type: ignore[arg-type]
        before = weights(step)
        assert detector.reinit_if_collapsed(step, loss) is changed
        same = all(torch.equal(a, b) for a, b in zip(before, weights(step), strict=True))
        assert same is not changed


@pytest.mark.parametrize("cls", DETECTORS)
def test_training_logs_every_loss_term(cls: type[GanDetector]) -> None:
    detector = tiny(cls, epochs=1).fit(TrainingData.from_scans(normal_scans(4, seed=1)))
    terms = {"g", "adv", "con", "d", "reinit_d", "enc" if cls is GanomalyDetector else "lat"}
    assert set(detector.history_[0]["train"]) == terms
    assert detector.history_[0]["train"]["reinit_d"] == 0.0
