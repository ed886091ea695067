"""Standard test functions for global optimisation, with their known minima, plus multi-fidelity variants.

All functions are minimisation problems on a box, take an `n x d` float64 tensor and return `n` values.
Definitions and optima follow the Virtual Library of Simulation Experiments (Surjanovic & Bingham, sfu.ca/~ssurjano),
the standard reference used by BoTorch's and Optuna's test suites:

- Branin (d = 2), min 0.397887 at three points.
- Hartmann3 / Hartmann6 (unit cube), min -3.86278 / -3.32237.
- Ackley, Levy, Rosenbrock, Styblinski-Tang (any d), min 0, 0, 0, -39.16617 d.

Multi-fidelity problems append one fidelity dimension `s in [0, 1]` (s = 1 is the target) and a cost model
`cost(s) = fixed_cost + s`:

- `mf_branin`: Branin with the quadratic coefficient shifted by `-0.1 (1 - s)` (the "augmented Branin" of
  Kandasamy et al., ICML 2017, BOCA §5).
- `mf_hartmann6`: Hartmann6 whose first weight alpha_1 is lowered by `0.1 (1 - s)` (same paper's augmented Hartmann).
At `s = 1` both equal the single-fidelity function, so the optimum is unchanged.

One mixed problem, shaped like tuning a network (ours; constructed so that its optimum is known exactly):

- `mixed_tuning`: learning rate and weight decay (log floats), dropout (float), layers (integer), units (log
  integer), optimizer and activation (categoricals). A validation-loss-like value: a base per optimizer and
  activation, plus quadratics in log10 lr around the optimizer's own best lr, in log10 weight decay (coupled to lr),
  in layers around the activation's best depth, in log2 units (coupled to layers) and in dropout. Min 0.2 at adam /
  gelu, lr 1e-3, weight decay 1e-4, 4 layers, 128 units, dropout 0.1; each other optimizer / activation pair is its
  own basin (the next best, adam / relu, at 0.25).

`make_<name>(...)` builds each problem; `rlsurrogate.blackbox.get_benchmark(name, ...)` looks one up by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from rlsurrogate.blackbox.space import Categorical, Float, Integer, SearchSpace

__all__ = [
    "Benchmark",
    "ackley",
    "branin",
    "hartmann",
    "levy",
    "make_ackley",
    "make_branin",
    "make_hartmann3",
    "make_hartmann6",
    "make_levy",
    "make_mf_branin",
    "make_mf_hartmann6",
    "make_mixed_tuning",
    "mixed_tuning",
    "make_rosenbrock",
    "make_styblinski_tang",
    "rosenbrock",
    "styblinski_tang",
]

_H3_ALPHA = [1.0, 1.2, 3.0, 3.2]
_H3_A = [[3.0, 10.0, 30.0], [0.1, 10.0, 35.0], [3.0, 10.0, 30.0], [0.1, 10.0, 35.0]]
_H3_P = [[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]
_H6_A = [
    [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
    [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
    [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
    [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
]
_H6_P = [
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
]
_ST_XSTAR = -2.903534027771178  # root of 4x^3 - 32x + 5 = 0 in [-5, 0]
_ST_FSTAR = 0.5 * (_ST_XSTAR**4 - 16 * _ST_XSTAR**2 + 5 * _ST_XSTAR)  # -39.16616570377142 per dimension
# mixed_tuning: per optimizer (sgd, momentum, adam) a base loss and a best log10 lr; per activation (relu, tanh, gelu)
# a base loss and a best number of layers.
_MT_OPT_BASE, _MT_OPT_LOG_LR = [0.25, 0.1, 0.0], [-1.0, -1.5, -3.0]
_MT_ACT_BASE, _MT_ACT_LAYERS = [0.05, 0.3, 0.0], [3.0, 2.0, 4.0]
_MT_FLOOR = 0.2


@dataclass
class Benchmark:
    """A minimisation test problem.

    Args:
        name: Registry name.
        fn: Maps `n x d` points to `n` values.
        bounds: `2 x d` box.
        optimal_value: Known global minimum.
        optimizers: `k x d` known minimisers (at target fidelity for multi-fidelity problems).
        fidelity_dim: Index of the fidelity dimension (multi-fidelity problems only); 1.0 is the target.
        fixed_cost: Cost of an evaluation at fidelity 0; an evaluation at fidelity s costs `fixed_cost + s`.
        space: The named search space of a mixed problem (points in its user units: a categorical as its index);
            None for a continuous box.
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    bounds: Tensor
    optimal_value: float
    optimizers: Tensor
    fidelity_dim: int | None = None
    fixed_cost: float = 0.0
    space: SearchSpace | None = None
    n_calls: int = field(default=0, repr=False)

    @property
    def dim(self) -> int:
        return self.bounds.shape[1]

    def __call__(self, X: Tensor) -> Tensor:
        """`n x d` (or `d`) -> `n` (or scalar) values."""
        X = torch.as_tensor(X, dtype=torch.float64)
        self.n_calls += X.reshape(-1, self.dim).shape[0]
        return self.fn(X.reshape(-1, self.dim)).reshape(X.shape[:-1])

    def cost(self, X: Tensor) -> Tensor:
        """Evaluation cost `fixed_cost + s` (`n x d` -> `n`); 1 per evaluation for single-fidelity problems."""
        X = torch.as_tensor(X, dtype=torch.float64)
        if self.fidelity_dim is None:
            return torch.ones(X.shape[:-1], dtype=torch.float64)
        return self.fixed_cost + X[..., self.fidelity_dim]

    def regret(self, y: float) -> float:
        """Simple regret `y - f*` of a value at target fidelity."""
        return float(y) - self.optimal_value


# -- pure functions ---------------------------------------------------------------------------------------------------
def branin(X: Tensor, shift: Tensor | float = 0.0) -> Tensor:
    """Branin-Hoo on `[-5, 10] x [0, 15]`; `shift` is added to the quadratic coefficient (multi-fidelity)."""
    x1, x2 = X[..., 0], X[..., 1]
    b = 5.1 / (4 * math.pi**2) + shift
    return (x2 - b * x1**2 + 5 / math.pi * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * torch.cos(x1) + 10


def hartmann(X: Tensor, alpha: Tensor, A: Tensor, P: Tensor) -> Tensor:
    """Hartmann family: `-sum_i alpha_i exp(-sum_j A_ij (x_j - P_ij)^2)`; `alpha` may be `n x 4` (per point)."""
    inner = ((X.unsqueeze(-2) - P) ** 2 * A).sum(-1)  # n x 4
    return -(alpha * torch.exp(-inner)).sum(-1)


def ackley(X: Tensor) -> Tensor:
    d = X.shape[-1]
    return (
        -20 * torch.exp(-0.2 * torch.sqrt((X**2).sum(-1) / d))
        - torch.exp(torch.cos(2 * math.pi * X).sum(-1) / d)
        + 20
        + math.e
    )


def levy(X: Tensor) -> Tensor:
    w = 1 + (X - 1) / 4
    head = torch.sin(math.pi * w[..., 0]) ** 2
    mid = ((w[..., :-1] - 1) ** 2 * (1 + 10 * torch.sin(math.pi * w[..., :-1] + 1) ** 2)).sum(-1)
    tail = (w[..., -1] - 1) ** 2 * (1 + torch.sin(2 * math.pi * w[..., -1]) ** 2)
    return head + mid + tail


def rosenbrock(X: Tensor) -> Tensor:
    return (100 * (X[..., 1:] - X[..., :-1] ** 2) ** 2 + (X[..., :-1] - 1) ** 2).sum(-1)


def styblinski_tang(X: Tensor) -> Tensor:
    return 0.5 * (X**4 - 16 * X**2 + 5 * X).sum(-1)


def mixed_tuning(X: Tensor) -> Tensor:
    """`n x 7` points (lr, weight_decay, dropout, layers, units, optimizer index, activation index) -> `n` losses."""
    lr, wd, dropout, layers, units = (X[..., j] for j in range(5))
    opt, act = X[..., 5].long(), X[..., 6].long()
    base = torch.tensor(_MT_OPT_BASE, dtype=X.dtype)[opt] + torch.tensor(_MT_ACT_BASE, dtype=X.dtype)[act]
    lr_gap = torch.log10(lr) - torch.tensor(_MT_OPT_LOG_LR, dtype=X.dtype)[opt]
    depth_gap = layers - torch.tensor(_MT_ACT_LAYERS, dtype=X.dtype)[act]
    loss = _MT_FLOOR + base + 0.3 * lr_gap**2 + 0.1 * (torch.log10(wd) + 4 - 0.5 * lr_gap) ** 2
    loss = loss + 0.05 * depth_gap**2 + 0.08 * (torch.log2(units) - 7 - 0.5 * depth_gap) ** 2
    return loss + 0.5 * (dropout - 0.1) ** 2


# -- problems: `rlsurrogate.blackbox.BENCHMARKS` maps each name to its factory ----------------------------------------
def _t(rows: list[list[float]]) -> Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def make_branin() -> Benchmark:
    opt = _t([[-math.pi, 12.275], [math.pi, 2.275], [9.42478, 2.475]])
    return Benchmark("branin", branin, _t([[-5.0, 0.0], [10.0, 15.0]]), 0.397887357729738, opt)


def make_hartmann3() -> Benchmark:
    alpha, A, P = _t([_H3_ALPHA]), _t(_H3_A), _t(_H3_P) * 1e-4
    opt = _t([[0.114614, 0.555649, 0.852547]])
    return Benchmark(
        "hartmann3", lambda X: hartmann(X, alpha, A, P), _t([[0.0] * 3, [1.0] * 3]), -3.86278214782076, opt
    )


def make_hartmann6() -> Benchmark:
    alpha, A, P = _t([_H3_ALPHA]), _t(_H6_A), _t(_H6_P) * 1e-4
    opt = _t([[0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]])
    return Benchmark(
        "hartmann6", lambda X: hartmann(X, alpha, A, P), _t([[0.0] * 6, [1.0] * 6]), -3.32236801141551, opt
    )


def make_ackley(dim: int = 2) -> Benchmark:
    return Benchmark(
        "ackley", ackley, _t([[-32.768] * dim, [32.768] * dim]), 0.0, torch.zeros(1, dim, dtype=torch.float64)
    )


def make_levy(dim: int = 2) -> Benchmark:
    return Benchmark("levy", levy, _t([[-10.0] * dim, [10.0] * dim]), 0.0, torch.ones(1, dim, dtype=torch.float64))


def make_rosenbrock(dim: int = 2) -> Benchmark:
    bounds = _t([[-5.0] * dim, [10.0] * dim])
    return Benchmark("rosenbrock", rosenbrock, bounds, 0.0, torch.ones(1, dim, dtype=torch.float64))


def make_styblinski_tang(dim: int = 2) -> Benchmark:
    opt = torch.full((1, dim), _ST_XSTAR, dtype=torch.float64)
    return Benchmark("styblinski_tang", styblinski_tang, _t([[-5.0] * dim, [5.0] * dim]), _ST_FSTAR * dim, opt)


def make_mixed_tuning() -> Benchmark:
    space = SearchSpace(
        [
            Float("lr", 1e-5, 1.0, log=True),
            Float("weight_decay", 1e-6, 1e-1, log=True),
            Float("dropout", 0.0, 0.5),
            Integer("layers", 1, 8),
            Integer("units", 16, 1024, log=True),
            Categorical("optimizer", ["sgd", "momentum", "adam"]),
            Categorical("activation", ["relu", "tanh", "gelu"]),
        ]
    )
    opt = _t([[1e-3, 1e-4, 0.1, 4.0, 128.0, 2.0, 2.0]])
    return Benchmark("mixed_tuning", mixed_tuning, space.bounds, _MT_FLOOR, opt, space=space)


def make_mf_branin(fixed_cost: float = 0.1) -> Benchmark:
    base = make_branin()

    def fn(X: Tensor) -> Tensor:
        return branin(X[..., :2], shift=-0.1 * (1 - X[..., 2]))

    bounds = torch.cat([base.bounds, _t([[0.0], [1.0]])], dim=1)
    opt = torch.cat([base.optimizers, torch.ones(3, 1, dtype=torch.float64)], dim=1)
    return Benchmark("mf_branin", fn, bounds, base.optimal_value, opt, fidelity_dim=2, fixed_cost=fixed_cost)


def make_mf_hartmann6(fixed_cost: float = 0.1) -> Benchmark:
    base = make_hartmann6()
    A, P = _t(_H6_A), _t(_H6_P) * 1e-4

    def fn(X: Tensor) -> Tensor:
        alpha = torch.tensor(_H3_ALPHA, dtype=torch.float64).expand(*X.shape[:-1], 4).clone()
        alpha[..., 0] = alpha[..., 0] - 0.1 * (1 - X[..., 6])
        return hartmann(X[..., :6], alpha, A, P)

    bounds = _t([[0.0] * 7, [1.0] * 7])
    opt = torch.cat([base.optimizers, torch.ones(1, 1, dtype=torch.float64)], dim=1)
    return Benchmark("mf_hartmann6", fn, bounds, base.optimal_value, opt, fidelity_dim=6, fixed_cost=fixed_cost)
