"""Objective: schedules, free bits, balancing, IWAE >= ELBO, non-finite detection."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from microvae.errors import NonFiniteError
from microvae.model import LikelihoodConfig, ModelConfig, VAEOutput, build_vae
from microvae.objective import (
    NonFiniteGuard,
    ObjectiveConfig,
    check_finite,
    compute_loss,
    iwae_bound,
    kl_weight,
    nonfinite_gradients,
)


def test_linear_and_cyclical_warmup():
    lin = ObjectiveConfig(beta=2.0, warmup="linear", warmup_steps=100)
    assert [kl_weight(s, lin) for s in (0, 50, 100, 500)] == [0.0, 1.0, 2.0, 2.0]
    cyc = ObjectiveConfig(beta=1.0, warmup="cyclical", cycle_steps=100, cycle_ramp=0.5)
    assert [kl_weight(s, cyc) for s in (0, 25, 50, 99, 100, 125)] == [0, 0.5, 1, 1, 0, 0.5]
    assert kl_weight(0, ObjectiveConfig(beta=0.3, warmup="none")) == 0.3


@pytest.mark.parametrize(
    "bad",
    [{"beta": -1}, {"free_bits": -0.1}, {"warmup": "cosine"}, {"warmup_steps": -5}, {"betta": 1.0}],
)
def test_bad_values_name_the_key(bad):
    with pytest.raises(ValidationError) as info:
        ObjectiveConfig(**bad)
    assert next(iter(bad)) in str(info.value)


def _fake_output(kls: list[torch.Tensor], n_dims: int = 100) -> VAEOutput:
    b = kls[0].shape[0]
    log_px = torch.full((b,), -50.0, requires_grad=True)
    return VAEOutput(
        params=torch.zeros(b, 1, 1, 1),
        log_px=log_px,
        kl=kls,
        log_qz=torch.zeros(b),
        log_pz=torch.zeros(b),
        latents=[],
        n_dims=n_dims,
    )


def test_loss_without_free_bits_is_the_beta_elbo():
    kl = torch.rand(4, 3, 2, 2, requires_grad=True)
    out = _fake_output([kl])
    cfg = ObjectiveConfig(beta=0.5, warmup="none")
    terms = compute_loss(out, cfg, step=0)
    expected = -(out.log_px - 0.5 * kl.sum(dim=(1, 2, 3))).mean() / 100
    assert terms.loss.item() == pytest.approx(expected.item())
    assert terms.bits_per_dim.item() == pytest.approx(
        -(-50 - kl.sum(dim=(1, 2, 3))).mean().item() / 100 / math.log(2), rel=1e-5
    )


def test_free_bits_per_channel():
    lam = 0.2
    kl = torch.empty(2, 3, 4, 4)
    kl[:, 0] = 0.05  # below lambda per element: costs lambda, gets no gradient
    kl[:, 1] = 0.5  # above: costs its KL, gets the gradient
    kl[:, 2] = 0.2  # at lambda: counts as active
    kl.requires_grad_(True)
    out = _fake_output([kl])
    cfg = ObjectiveConfig(beta=1.0, warmup="none", free_bits=lam, free_bits_mode="channel")
    terms = compute_loss(out, cfg, step=0)
    positions = 16
    penalised = lam * positions + 0.5 * positions + 0.2 * positions
    assert terms.loss.item() == pytest.approx((50 + penalised) / 100, rel=1e-6)
    terms.loss.backward()
    assert torch.all(kl.grad[:, 0] == 0)
    assert torch.all(kl.grad[:, 1] > 0) and torch.all(kl.grad[:, 2] > 0)
    # the reported KL is the true one, not the penalised
    assert terms.kl.item() == pytest.approx((0.05 + 0.5 + 0.2) * positions / 100)


def test_free_bits_per_level():
    lam = 0.3
    low = torch.full((2, 2, 4, 4), 0.1, requires_grad=True)  # level mean 0.1 < lambda
    high = torch.full((2, 2, 2, 2), 0.5, requires_grad=True)  # level mean 0.5 > lambda
    out = _fake_output([low, high])
    cfg = ObjectiveConfig(beta=1.0, warmup="none", free_bits=lam, free_bits_mode="level")
    terms = compute_loss(out, cfg, step=0)
    assert terms.loss.item() == pytest.approx((50 + lam * 32 + 0.5 * 8) / 100, rel=1e-6)
    terms.loss.backward()
    assert low.grad is None or torch.all(low.grad == 0)
    assert torch.all(high.grad > 0)


def test_kl_balancing_pushes_the_level_with_more_kl_per_element():
    busy = torch.full((2, 1, 2, 2), 2.0, requires_grad=True)  # 2 nats per element
    idle = torch.full((2, 1, 4, 4), 0.1, requires_grad=True)  # 0.1 nats per element
    cfg = ObjectiveConfig(beta=1.0, warmup="linear", warmup_steps=100, kl_balancing=True)
    compute_loss(_fake_output([busy, idle]), cfg, step=50).loss.backward()
    g_busy, g_idle = busy.grad.abs().mean(), idle.grad.abs().mean()
    assert g_busy > 5 * g_idle
    # after warm-up the levels are weighted equally again
    busy.grad = idle.grad = None
    compute_loss(_fake_output([busy, idle]), cfg, step=200).loss.backward()
    assert torch.allclose(busy.grad.abs().mean(), idle.grad.abs().mean())


def test_iwae_is_above_the_elbo_and_grows_with_k():
    torch.manual_seed(0)
    cfg = ModelConfig(levels=1, base_channels=4, latent_channels=1, tile_size=8)
    vae = build_vae(cfg, LikelihoodConfig(name="laplace"), bit_depth=8).eval()
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        elbo = torch.stack([vae(x).elbo for _ in range(400)]).mean(0)  # analytic KL
        est = {
            k: torch.stack([iwae_bound(vae, x, k, chunk=64) for _ in range(800 // k)])
            for k in (1, 4, 16, 64)
        }
    mean = {k: v.mean(0) for k, v in est.items()}
    se = {k: v.std(0) / math.sqrt(len(v)) for k, v in est.items()}
    # K = 1 is an unbiased estimate of the ELBO (Monte Carlo KL instead of analytic)
    assert torch.all((mean[1] - elbo).abs() < 4 * se[1] + 0.05)
    for lo, hi in ((1, 4), (4, 16), (16, 64)):
        assert torch.all(mean[hi] >= mean[lo] - 3 * (se[hi] + se[lo]))
    assert torch.all(mean[64] > elbo)


def test_check_finite_names_step_and_term():
    check_finite(3, {"recon": torch.tensor(1.0), "kl_level_0": 2.0})
    with pytest.raises(NonFiniteError, match=r"step 7: kl_level_2 is NaN; lower the learning"):
        check_finite(7, {"recon": 1.0, "kl_level_2": torch.tensor([1.0, float("nan")])})
    with pytest.raises(NonFiniteError, match="recon is infinite"):
        check_finite(1, {"recon": float("-inf")})


def test_guard_skips_counts_and_stops():
    model = torch.nn.Linear(2, 1)
    model(torch.ones(1, 2)).sum().backward()
    guard = NonFiniteGuard(max_consecutive=3)
    assert guard.ok(0, {"loss": 1.0}, model)
    model.weight.grad[0, 0] = float("nan")
    assert nonfinite_gradients(model) == ["weight"]
    assert not guard.ok(1, {"loss": 1.0}, model)
    assert guard.last_problem == "step 1: gradient of weight is not finite (1 parameters)"
    assert not guard.ok(2, {"loss": float("nan")}, None)
    model.weight.grad.zero_()
    assert guard.ok(3, {"loss": 1.0}, model) and guard.consecutive == 0
    assert guard.skipped == 2
    guard.ok(4, {"loss": float("nan")}, None)
    guard.ok(5, {"loss": float("nan")}, None)
    with pytest.raises(
        NonFiniteError,
        match=r"3 updates in a row skipped, the last at step 6: "
        r"loss is NaN",
    ):
        guard.ok(6, {"loss": float("nan")}, None)
