from __future__ import annotations

import pytest
import torch

from rlsurrogate.errors import ConfigError
from rlsurrogate.losses.ensloss import EnsLoss, calibrated_derivatives


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _margins(B: int = 64, seed: int = 1) -> torch.Tensor:
    return 2 * torch.randn(B, generator=_gen(seed), dtype=torch.float64)


@pytest.mark.parametrize("lam", [0.0, 0.5, -0.5, 1.0])
def test_derivatives_negative_bounded_and_monotone_in_margin(lam):
    z = _margins()
    for seed in range(5):
        d_raw = calibrated_derivatives(z, lam, _gen(seed), tail_scaling=False)
        assert torch.all(d_raw < 0) and torch.all(d_raw >= -1 - 1e-6)
        order = torch.argsort(z)
        assert torch.all(torch.diff(d_raw[order]) >= 0)  # non-decreasing in z: convex on the batch
        d = calibrated_derivatives(z, lam, _gen(seed))
        assert torch.all(d < 0)
        assert torch.all(torch.diff(d[order]) >= -1e-12)  # tail scaling keeps the order
        big = z > 1
        assert torch.all(d[big].abs() <= d_raw[big].abs())
        torch.testing.assert_close(d[~big], d_raw[~big])
        torch.testing.assert_close(d[big] + 1e-6, (d_raw[big] + 1e-6) / z[big])


def test_lognormal_draw_clips_about_half_to_minus_one():
    z = torch.linspace(-3, 3, 4000, dtype=torch.float64)
    d = calibrated_derivatives(z, 0.0, _gen(0), tail_scaling=False)
    frac = ((d + 1 + 1e-6).abs() < 1e-12).double().mean().item()
    assert 0.45 < frac < 0.55  # P(exp(e) >= 1) = 1/2


def test_derivatives_match_a_naive_loop():
    z = _margins(B=12)
    e = torch.randn(12, generator=_gen(3), dtype=torch.float64)
    mags = sorted((-torch.exp(e)).tolist())
    ranks = sorted(range(12), key=lambda i: z[i].item())
    expected = [0.0] * 12
    for k, i in enumerate(ranks):
        v = max(mags[k], -1.0)
        expected[i] = (v / z[i].item() if z[i] > 1 else v) - 1e-6
    torch.testing.assert_close(calibrated_derivatives(z, 0.0, _gen(3)), torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize("shape", [(16,), (16, 1)])
def test_gradient_wrt_logits_is_d_times_y_over_B(shape):
    f = torch.randn(shape, generator=_gen(5), dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 2, (16,), generator=_gen(6))
    EnsLoss(generator=_gen(7))(f, target).backward()
    y = 2 * target.double() - 1
    d = calibrated_derivatives(f.detach().reshape(-1) * y, 0.0, _gen(7))
    torch.testing.assert_close(f.grad.reshape(-1), d * y / 16)


def test_reductions_and_reproducibility():
    f, target = torch.randn(10, generator=_gen(1)), torch.randint(0, 2, (10,), generator=_gen(2))
    none = EnsLoss(reduction="none", generator=_gen(0))(f, target)
    assert none.shape == (10,)
    torch.testing.assert_close(EnsLoss(reduction="sum", generator=_gen(0))(f, target), none.sum())
    torch.testing.assert_close(EnsLoss(generator=_gen(0))(f, target), none.mean())
    loss = EnsLoss(generator=_gen(0))
    assert loss(f, target) != loss(f, target)  # a fresh draw every call


def test_trains_a_separable_problem():
    g = _gen(0)
    X = torch.randn(200, 4, generator=g)
    target = (X @ torch.tensor([1.0, -1.0, 0.5, 0.0]) > 0).long()
    model = torch.nn.Linear(4, 1)
    torch.nn.init.zeros_(model.weight)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loss_fn = EnsLoss(generator=_gen(1))
    for _ in range(100):
        opt.zero_grad()
        loss_fn(model(X), target).backward()
        opt.step()
    acc = ((model(X).squeeze(-1) > 0).long() == target).float().mean().item()
    assert acc > 0.95


def test_redraw_lambda_and_bad_reduction():
    loss = EnsLoss(generator=_gen(0))
    lams = {loss.redraw_lambda() for _ in range(5)}
    assert len(lams) == 5 and all(-1 <= v <= 1 for v in lams)
    with pytest.raises(ConfigError):
        EnsLoss(reduction="avg")
