"""Benchmark functions reproduce their known optima and a few hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from rlsurrogate.blackbox import BENCHMARKS, get_benchmark

SINGLE = ["ackley", "branin", "hartmann3", "hartmann6", "levy", "rosenbrock", "styblinski_tang"]


def test_registry_lists_all_problems():
    assert set(SINGLE + ["mf_branin", "mf_hartmann6", "mixed_tuning"]) == set(BENCHMARKS.names())


@pytest.mark.parametrize("name", SINGLE + ["mf_branin", "mf_hartmann6", "mixed_tuning"])
def test_known_optimum_value(name):
    f = get_benchmark(name)
    values = f(f.optimizers)  # k
    torch.testing.assert_close(values, torch.full_like(values, f.optimal_value), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", SINGLE)
def test_optimum_is_a_minimum(name):
    """No point in a small box around the optimum, nor any random point in the domain, is lower."""
    f = get_benchmark(name)
    gen = torch.Generator().manual_seed(0)
    lo, hi = f.bounds
    span = hi - lo
    near = f.optimizers[:1] + 1e-3 * span * (2 * torch.rand(500, f.dim, generator=gen, dtype=torch.float64) - 1)
    anywhere = lo + span * torch.rand(5000, f.dim, generator=gen, dtype=torch.float64)
    X = torch.cat([near.clamp(lo, hi), anywhere])
    assert f(X).min() >= f.optimal_value - 1e-6


@pytest.mark.parametrize("dim", [2, 5])
def test_scalable_functions_in_higher_dimension(dim):
    for name, value in [("ackley", 0.0), ("levy", 0.0), ("rosenbrock", 0.0), ("styblinski_tang", -39.16616570377142)]:
        f = get_benchmark(name, dim=dim)
        assert f.dim == dim
        expected = value * dim if name == "styblinski_tang" else value
        assert float(f(f.optimizers)[0]) == pytest.approx(expected, abs=1e-9)


def test_hand_computed_values():
    # Branin(0, 0) = (-6)^2 + 10 (1 - 1/(8 pi)) cos(0) + 10
    assert float(get_benchmark("branin")(torch.tensor([0.0, 0.0]))) == pytest.approx(46 + 10 * (1 - 1 / (8 * math.pi)))
    assert float(get_benchmark("rosenbrock")(torch.tensor([0.0, 0.0]))) == pytest.approx(1.0)
    # Ackley at (1, 0): -20 exp(-0.2 sqrt(1/2)) - exp(1) + 20 + e
    expected = -20 * math.exp(-0.2 * math.sqrt(0.5)) - math.exp(1.0) + 20 + math.e
    assert float(get_benchmark("ackley")(torch.tensor([1.0, 0.0]))) == pytest.approx(expected)
    assert float(get_benchmark("styblinski_tang")(torch.tensor([0.0, 0.0]))) == 0.0


def test_batch_shapes():
    f = get_benchmark("hartmann6")
    assert f(torch.rand(7, 6)).shape == (7,)
    assert f(torch.rand(6)).shape == ()
    assert f(torch.rand(3, 4, 6)).shape == (3, 4)


@pytest.mark.parametrize("name", ["mf_branin", "mf_hartmann6"])
def test_multi_fidelity_matches_base_at_target_and_differs_below(name):
    f = get_benchmark(name)
    base = get_benchmark(name.removeprefix("mf_"))
    gen = torch.Generator().manual_seed(1)
    lo, hi = base.bounds
    X = lo + (hi - lo) * torch.rand(50, base.dim, generator=gen, dtype=torch.float64)
    ones, zeros = torch.ones(50, 1, dtype=torch.float64), torch.zeros(50, 1, dtype=torch.float64)
    torch.testing.assert_close(f(torch.cat([X, ones], 1)), base(X))
    assert not torch.allclose(f(torch.cat([X, zeros], 1)), base(X))
    torch.testing.assert_close(f.cost(torch.cat([X, zeros], 1)), torch.full((50,), f.fixed_cost, dtype=torch.float64))
    torch.testing.assert_close(
        f.cost(torch.cat([X, ones], 1)), torch.full((50,), 1 + f.fixed_cost, dtype=torch.float64)
    )


def test_mixed_tuning_optimum_is_the_minimum_and_each_pair_is_a_basin():
    f = get_benchmark("mixed_tuning")
    space = f.space
    U = torch.rand(20000, space.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert f(space.from_unit(U)).min() >= f.optimal_value
    assert space.decode(f.optimizers)[0] == {
        "lr": 1e-3, "weight_decay": 1e-4, "dropout": 0.1, "layers": 4, "units": 128, "optimizer": "adam",
        "activation": "gelu",
    }  # fmt: skip
    # The best point of another optimizer / activation pair is worse by the pair's base loss.
    x = f.optimizers.clone()
    x[0, 6] = 0.0  # relu: best depth 3, so 3 layers and units 2^(7 + 0.5 * (3 - 3)) = 128
    x[0, 3] = 3.0
    assert float(f(x)) == pytest.approx(f.optimal_value + 0.05)
