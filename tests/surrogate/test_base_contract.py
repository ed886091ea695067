"""Contract suite every registered surrogate optimizer passes (STYLE.md §11, in the spirit of Optuna's sampler tests).

Shapes and bounds, determinism under a seed, improvement on a 2-D quadratic, the `maximize` flag, and that a saved
and reloaded optimizer continues exactly like the uninterrupted one.
"""

from __future__ import annotations

import pytest
import torch

from rlsurrogate.errors import ConfigError
from rlsurrogate.surrogate.base import OPTIMIZERS, Dim, SearchSpace
from rlsurrogate.surrogate.bo import BayesianOptimization  # noqa: F401  (registers "bo")
from rlsurrogate.surrogate.multi_fidelity import MultiFidelityBO  # noqa: F401  (registers "mfbo")
from rlsurrogate.surrogate.neural_bandit import NeuralBanditOptimizer  # noqa: F401  (registers "neural_*")
from rlsurrogate.surrogate.random_search import RandomSearch  # noqa: F401  (registers "random")

BOUNDS_2D = [[-1.0, -1.0], [1.0, 1.0]]
CENTRE = torch.tensor([0.3, -0.2], dtype=torch.float64)

# Small settings so each optimizer takes a fraction of a second per step.
FACTORIES = {
    "random": lambda **kw: OPTIMIZERS.get("random")(BOUNDS_2D, **kw),
    "bo": lambda **kw: OPTIMIZERS.get("bo")(
        BOUNDS_2D, n_init=4, num_restarts=2, raw_samples=64, local_samples=16, **kw
    ),
    "mfbo": lambda **kw: OPTIMIZERS.get("mfbo")(
        [[-1.0, -1.0, 0.0], [1.0, 1.0, 1.0]], n_init=5, num_fantasies=2, num_restarts=1, raw_samples=16, **kw
    ),
    "neural_ucb": lambda **kw: OPTIMIZERS.get("neural_ucb")(
        BOUNDS_2D, n_domain=512, n_init=4, train_steps=300, n_eval=256, **kw
    ),
    "neural_ts": lambda **kw: OPTIMIZERS.get("neural_ts")(
        BOUNDS_2D, n_domain=512, n_init=4, train_steps=300, n_eval=256, **kw
    ),
}
# Multi-fidelity KG takes seconds per step on a CPU, so its long improvement run is in the slow suite.
IMPROVE = [pytest.param(n, marks=pytest.mark.slow) if n == "mfbo" else n for n in sorted(FACTORIES)]


def quadratic(X: torch.Tensor) -> torch.Tensor:
    """`n x d` -> `n`: squared distance of the first two coordinates to CENTRE (extra dims, e.g. fidelity, ignored)."""
    return ((X[..., :2] - CENTRE) ** 2).sum(-1)


def run(opt, steps: int, batch: int = 1) -> torch.Tensor:
    for _ in range(steps):
        X = opt.ask(batch)
        opt.tell(X, quadratic(X))
    return opt.X


def test_every_registered_optimizer_is_covered():
    assert set(OPTIMIZERS.names()) == set(FACTORIES)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_shapes_and_bounds(name):
    opt = FACTORIES[name](maximize=False, seed=0)
    d = opt.space.dim
    for batch in (3, 1, 2):  # initial design, then model-based batches
        X = opt.ask(batch)
        assert X.shape == (batch, d) and X.dtype == torch.float64
        lo, hi = opt.space.bounds
        assert ((X >= lo) & (X <= hi)).all()
        opt.tell(X, quadratic(X))
    x_best, y_best = opt.best()
    assert x_best.shape == (d,) and isinstance(y_best, float)
    assert y_best == pytest.approx(float(quadratic(x_best.unsqueeze(0))))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_deterministic_under_seed(name):
    X1 = run(FACTORIES[name](maximize=False, seed=3), steps=6)
    X2 = run(FACTORIES[name](maximize=False, seed=3), steps=6)
    X3 = run(FACTORIES[name](maximize=False, seed=4), steps=6)
    torch.testing.assert_close(X1, X2)
    assert not torch.allclose(X1, X3)


@pytest.mark.parametrize("name", IMPROVE)
def test_improves_on_quadratic(name):
    opt = FACTORIES[name](maximize=False, seed=0)
    run(opt, steps=14)
    first = float(opt.Y[:4].min())
    assert opt.best()[1] < first
    assert opt.best()[1] < 0.1  # the quadratic ranges over [0, 3.7] on the box


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_save_load_round_trip(name, tmp_path):
    reference = FACTORIES[name](maximize=False, seed=1)
    run(reference, steps=6)
    reference.save(tmp_path / "state.pt")
    resumed = FACTORIES[name](maximize=False, seed=99)  # the seed comes back from the file
    resumed.load(tmp_path / "state.pt")
    torch.testing.assert_close(resumed.X, reference.X)
    torch.testing.assert_close(resumed.best()[0], reference.best()[0])
    assert resumed.best()[1] == reference.best()[1]
    torch.testing.assert_close(resumed.ask(1), reference.ask(1))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_maximize_flag(name):
    opt = FACTORIES[name](maximize=True, seed=0)
    X = opt.ask(4)
    opt.tell(X, -quadratic(X))
    assert opt.best()[1] == pytest.approx(float((-quadratic(X)).max()))


def test_tell_rejects_bad_input():
    opt = FACTORIES["random"](seed=0)
    with pytest.raises(ConfigError, match="one value per row"):
        opt.tell(torch.zeros(3, 2), torch.zeros(2))
    with pytest.raises(ConfigError, match="NaN"):
        opt.tell(torch.zeros(1, 2), [float("nan")])
    with pytest.raises(ConfigError, match="no observations"):
        opt.best()


def test_search_space_round_trip_and_rounding():
    space = SearchSpace(
        [Dim("lr", 1e-4, 1e-1), Dim("layers", 1, 4, kind="integer"), Dim("act", kind="categorical", choices=3)]
    )
    X = torch.tensor([[0.05, 3.0, 2.0], [1e-4, 1.0, 0.0], [0.1, 4.0, 1.0]], dtype=torch.float64)
    U = space.to_unit(X)
    assert ((U >= 0) & (U <= 1)).all()
    torch.testing.assert_close(space.from_unit(U), X)
    # Every unit-cube point maps to whole integers and valid category indices.
    V = torch.rand(200, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    Z = space.from_unit(V)
    assert torch.equal(Z[:, 1], Z[:, 1].round()) and Z[:, 1].min() >= 1 and Z[:, 1].max() <= 4
    assert set(Z[:, 2].tolist()) <= {0.0, 1.0, 2.0}
    # Each integer value owns an equal share of the unit interval.
    counts = torch.bincount(
        space.from_unit(torch.linspace(0, 1, 4001, dtype=torch.float64).unsqueeze(-1).expand(-1, 3))[:, 1].long()
    )
    assert counts[1:].min() >= 999


def test_search_space_validation_lists_every_problem():
    with pytest.raises(ConfigError) as err:
        SearchSpace([Dim("a", 1.0, 0.0), Dim("b", kind="categorical", choices=0), Dim("c", kind="ordinal")])
    assert len(err.value.problems) == 3


def test_unknown_optimizer_suggests_a_name():
    with pytest.raises(ConfigError, match='Did you mean "random"'):
        OPTIMIZERS.get("randon")
