from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rlsurrogate.errors import ConfigError
from rlsurrogate.losses.comp_sum import (
    CompSumLoss,
    SmoothAdvCompSumLoss,
    adversarial_inputs,
    comp_sum_loss,
    smooth_adv_comp_sum_loss,
)


def _batch(B: int = 6, K: int = 4, dtype: torch.dtype = torch.float64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(B, K, generator=g, dtype=dtype), torch.randint(0, K, (B,), generator=g)


def _naive(logits: torch.Tensor, target: torch.Tensor, tau: float) -> torch.Tensor:
    """Definition: Phi^tau(sum_{y' != y} exp(h_y' - h_y)), one example at a time."""
    out = []
    for h, y in zip(logits.tolist(), target.tolist()):
        u = sum(math.exp(h[k] - h[y]) for k in range(len(h)) if k != y)
        out.append(math.log1p(u) if tau == 1 else ((1 + u) ** (1 - tau) - 1) / (1 - tau))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 1.3, 1.7, 2.0, 3.0])
@pytest.mark.parametrize("K", [2, 5])
def test_matches_the_definition(tau, K):
    logits, target = _batch(K=K)
    torch.testing.assert_close(comp_sum_loss(logits, target, tau), _naive(logits, target, tau))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tau_one_is_cross_entropy(dtype):
    logits, target = _batch(dtype=dtype)
    for reduction in ("mean", "sum", "none"):
        torch.testing.assert_close(
            CompSumLoss(1.0, reduction=reduction)(logits, target), F.cross_entropy(logits, target, reduction=reduction)
        )


def test_cross_entropy_is_the_limit_tau_to_one():
    logits, target = _batch()
    ce = F.cross_entropy(logits, target, reduction="none")
    for sign in (1.0, -1.0):
        errors = [
            (comp_sum_loss(logits, target, 1 + sign * eps) - ce).abs().max().item() for eps in (1e-2, 1e-4, 1e-6)
        ]
        # L_tau = -s - (tau - 1) s^2 / 2 + O((tau - 1)^2) with s = log p_y: the gap shrinks linearly in tau - 1.
        assert errors[1] < errors[0] / 50 and errors[2] < errors[1] / 50 and errors[2] < 1e-4


def test_tau_two_is_mae():
    logits, target = _batch()
    p = logits.softmax(-1)
    mae = 0.5 * (F.one_hot(target, p.shape[-1]) - p).abs().sum(-1)
    torch.testing.assert_close(CompSumLoss("mae", reduction="none")(logits, target), mae)
    torch.testing.assert_close(comp_sum_loss(logits, target, 2.0), 1 - p.gather(-1, target[:, None]).squeeze(-1))


def test_gce_and_sum_exponential_closed_forms():
    logits, target = _batch()
    p_y = logits.softmax(-1).gather(-1, target[:, None]).squeeze(-1)
    q = 0.7
    torch.testing.assert_close(CompSumLoss("generalized_cross_entropy", "none")(logits, target), (1 - p_y**q) / q)
    torch.testing.assert_close(CompSumLoss("sum_exponential", "none")(logits, target), 1 / p_y - 1)


def test_gradients_match_the_naive_definition():
    logits, target = _batch(B=3, K=3)
    for tau in (0.0, 1.0, 1.5, 2.0):
        x = logits.clone().requires_grad_()
        comp_sum_loss(x, target, tau).sum().backward()
        y = logits.clone().requires_grad_()
        u = (y - y.gather(-1, target[:, None])).exp().sum(-1) - 1  # sum over y' != y
        ref = torch.log1p(u) if tau == 1 else ((1 + u) ** (1 - tau) - 1) / (1 - tau)
        ref.sum().backward()
        torch.testing.assert_close(x.grad, y.grad)


def test_losses_decrease_in_the_true_class_score():
    logits, target = _batch()
    bumped = logits.clone()
    bumped[torch.arange(len(target)), target] += 1.0
    for tau in (0.0, 1.0, 1.7, 2.0):
        assert torch.all(comp_sum_loss(bumped, target, tau) < comp_sum_loss(logits, target, tau))


def test_smooth_adversarial_reduces_to_comp_sum():
    logits, target = _batch()
    adv = logits + 0.1 * torch.randn(logits.shape, generator=torch.Generator().manual_seed(1), dtype=logits.dtype)
    base = comp_sum_loss(logits, target, 1.7)
    torch.testing.assert_close(smooth_adv_comp_sum_loss(logits, adv, target, 1.7, nu=0.0), base)
    torch.testing.assert_close(smooth_adv_comp_sum_loss(logits, logits, target, 1.7, nu=2.0), base)
    # A shift of all logits by a constant leaves the score differences (and the smooth term) unchanged.
    torch.testing.assert_close(smooth_adv_comp_sum_loss(logits, logits + 5.0, target, 1.7, nu=2.0), base)
    extra = SmoothAdvCompSumLoss(1.7, nu=2.0, reduction="none")(logits, target, adv) - base
    assert torch.all(extra > 0)


def test_adversarial_inputs_stay_in_ball_and_increase_smooth_term():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    x, target = torch.randn(10, 5, dtype=torch.float64), torch.randint(0, 3, (10,))
    gamma = 0.1
    x_adv = adversarial_inputs(model, x, target, gamma, steps=5, generator=torch.Generator().manual_seed(0))
    assert torch.all((x_adv - x).abs() <= gamma + 1e-12)
    rand = x + gamma * (2 * torch.rand(x.shape, generator=torch.Generator().manual_seed(2), dtype=x.dtype) - 1)
    loss = SmoothAdvCompSumLoss(1.0, nu=1.0, reduction="sum")
    with torch.no_grad():
        logits = model(x)
        assert loss(logits, target, model(x_adv)) > loss(logits, target, model(rand))


def test_invalid_arguments():
    with pytest.raises(ConfigError):
        CompSumLoss(-1.0)
    with pytest.raises(ConfigError):
        CompSumLoss(1.0, reduction="avg")
    with pytest.raises(ConfigError, match="Did you mean"):
        CompSumLoss("cross_entropyy")
