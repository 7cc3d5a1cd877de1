"""The GAN family's losses and scores on hand-computed examples (methods.md §2.5, §2.7, §3.4,
§3.6, §4.4, §4.6)."""

from __future__ import annotations

import math

import pytest
import torch

from xadt.plugins.dsagan.losses import dsagan_score
from xadt.plugins.gan_common.losses import bce, discriminator_loss, l1, l2
from xadt.plugins.gan_common.losses import feature_matching_loss as dsagan_loss
from xadt.plugins.gan_common.losses import feature_matching_loss as skip_loss
from xadt.plugins.gan_common.maps import pixel_errors
from xadt.plugins.ganomaly.losses import generator_loss as ganomaly_loss
from xadt.plugins.ganomaly.losses import latent_score
from xadt.plugins.skipganomaly.losses import skip_score

# One sample: D features f(x) = (1, 2), f(x̂) = (0, 0); image x = 0, x̂ = (1, -1, 0.5, 0);
# codes z = (1, 1), ẑ = (0, 3).
F_REAL, F_FAKE = torch.tensor([[1.0, 2.0]]), torch.zeros(1, 2)
X, FAKE = torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, -1.0], [0.5, 0.0]]]])
Z, Z_HAT = torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0, 3.0]])
ADV_FM = (1 + 4) / 2  # mean squared feature difference
CON = (1 + 1 + 0.5 + 0) / 4  # mean |x - x̂| = 0.625
ENC = (1 + 4) / 2  # mean squared code difference
LN2 = math.log(2)  # BCE of a logit 0 (D(x̂) = 0.5) against "real"


def test_bce_and_the_discriminator_loss() -> None:
    assert float(bce(torch.tensor([0.0]), True)) == pytest.approx(LN2)
    # D(x) = 0.75 and D(x̂) = 0.25: each term is -ln 0.75.
    real, fake = torch.tensor([math.log(3)]), torch.tensor([-math.log(3)])
    assert float(discriminator_loss(real, fake)) == pytest.approx(-2 * math.log(0.75))
    assert float(discriminator_loss(torch.zeros(4), torch.zeros(4))) == pytest.approx(2 * LN2)
    # Stable where a sigmoid + log would overflow: a confident, right discriminator costs ~0.
    assert float(discriminator_loss(torch.tensor([200.0]), torch.tensor([-200.0]))) < 1e-30


def test_l1_and_l2_are_means_over_every_element() -> None:
    assert float(l1(X, FAKE)) == pytest.approx(CON)
    assert float(l2(F_REAL, F_FAKE)) == pytest.approx(ADV_FM)


def test_ganomaly_generator_loss() -> None:
    terms = ganomaly_loss(F_REAL, F_FAKE, X, FAKE, Z, Z_HAT, w_adv=1, w_con=50, w_enc=1)
    assert float(terms["adv"]) == pytest.approx(2.5)
    assert float(terms["con"]) == pytest.approx(0.625)
    assert float(terms["enc"]) == pytest.approx(2.5)
    assert float(terms["g"]) == pytest.approx(2.5 + 50 * 0.625 + 2.5)  # 36.25


def test_ganomaly_score_is_the_latent_distance() -> None:
    assert latent_score(Z, Z_HAT, "l2").tolist() == pytest.approx([2.5])  # the official code
    assert latent_score(Z, Z_HAT, "l1").tolist() == pytest.approx([1.5])  # Eq. 5
    batch = torch.stack([Z[0], Z_HAT[0]])
    assert latent_score(batch, batch, "l2").tolist() == [0.0, 0.0]


def test_skipganomaly_generator_loss() -> None:
    terms = skip_loss(torch.tensor([0.0]), F_REAL, F_FAKE, X, FAKE, w_adv=1, w_con=40, w_lat=1)
    assert float(terms["adv"]) == pytest.approx(LN2)
    assert float(terms["con"]) == pytest.approx(0.625)
    assert float(terms["lat"]) == pytest.approx(2.5)
    assert float(terms["g"]) == pytest.approx(LN2 + 40 * 0.625 + 2.5)


def test_skipganomaly_score_mixes_reconstruction_and_features() -> None:
    paper = skip_score(X, FAKE, F_REAL, F_FAKE, lam=0.9, kind="paper")
    assert paper.tolist() == pytest.approx([0.9 * 0.625 + 0.1 * 2.5])  # 0.8125
    code = skip_score(X, FAKE, F_REAL, F_FAKE, lam=0.9, kind="code")
    assert code.tolist() == pytest.approx([0.9 * (1 + 1 + 0.25) / 4 + 0.1 * 2.5])  # 0.75625
    assert skip_score(X, FAKE, F_REAL, F_FAKE, lam=1.0, kind="paper").tolist() == [0.625]


def test_dsagan_generator_loss_uses_l1_features_as_printed() -> None:
    kwargs = {"w_adv": 1.0, "w_con": 40.0, "w_lat": 1.0}
    terms = dsagan_loss(torch.tensor([0.0]), F_REAL, F_FAKE, X, FAKE, latent="l1", **kwargs)
    assert float(terms["lat"]) == pytest.approx(1.5)  # mean |f(x) - f(x̂)|
    assert float(terms["g"]) == pytest.approx(LN2 + 40 * 0.625 + 1.5)
    squared = dsagan_loss(torch.tensor([0.0]), F_REAL, F_FAKE, X, FAKE, latent="l2", **kwargs)
    assert float(squared["lat"]) == pytest.approx(2.5)


def test_dsagan_score() -> None:
    score = dsagan_score(X, FAKE, F_REAL, F_FAKE, eta=0.9)
    assert score.tolist() == pytest.approx([0.9 * 0.625 + 0.1 * 1.5])  # 0.7125


def test_pixel_errors_average_channels_and_smoothing_keeps_flat_maps_flat() -> None:
    x = torch.zeros(1, 2, 4, 4)
    x_hat = torch.zeros(1, 2, 4, 4)
    x_hat[0, 0, 1, 2], x_hat[0, 1, 1, 2] = 1.0, -3.0
    errors = pixel_errors(x, x_hat)
    assert errors.shape == (1, 4, 4)
    assert float(errors[0, 1, 2]) == 2.0
    assert float(errors.sum()) == 2.0
    assert float(pixel_errors(x, x_hat, squared=True)[0, 1, 2]) == 5.0
    flat = pixel_errors(torch.zeros(2, 1, 8, 8), torch.full((2, 1, 8, 8), 0.5), sigma=2.0)
    torch.testing.assert_close(flat, torch.full((2, 8, 8), 0.5))
    spike = torch.zeros(1, 1, 16, 16)
    spike[0, 0, 8, 8] = 1.0
    smoothed = pixel_errors(torch.zeros_like(spike), spike, sigma=1.0)[0]
    assert float(smoothed.sum()) == pytest.approx(1.0)
    assert float(smoothed[8, 8]) == pytest.approx(1 / (2 * math.pi), rel=0.01)
    assert float(smoothed.max()) == float(smoothed[8, 8])
