"""Ask/tell black-box optimizers for small problems, and the test functions they are benchmarked on.

Modules (one method each): `space` (named mixed search spaces: `Float`, `Integer`, `Categorical`), `base` (the
ask/tell interface `SurrogateOptimizer`), `bo` (Bayesian optimization on BoTorch) with its GP (`gp`) and acquisition
maximiser (`acquisition`), `multi_fidelity` (cost-aware multi-fidelity BO), `neural_bandit` (NeuralUCB, NeuralTS),
`random_search`, `benchmarks` (test functions with known optima), `loop` (ask/evaluate/tell for a budget),
`optuna_sampler` (BO as an Optuna sampler; imported on its own, it needs Optuna). Never imports transformers or TRL.

The registries are built here from explicit tables; the method modules never import them:
- `OPTIMIZERS`: name -> `SurrogateOptimizer` class; `OPTIMIZERS.get("bo")(space, seed=0, ...)` builds one.
- `BENCHMARKS`: name -> factory of a `Benchmark`; `get_benchmark("ackley", dim=5)` builds one.

Example:
    >>> from rlsurrogate.blackbox import OPTIMIZERS, get_benchmark
    >>> f = get_benchmark("branin")
    >>> opt = OPTIMIZERS.get("random")(f.bounds, maximize=False, seed=0)
    >>> X = opt.ask(4); opt.tell(X, f(X))
"""

from __future__ import annotations

from collections.abc import Callable

from rlsurrogate.blackbox import benchmarks
from rlsurrogate.blackbox.base import SurrogateOptimizer
from rlsurrogate.blackbox.benchmarks import Benchmark
from rlsurrogate.blackbox.bo import BayesianOptimization
from rlsurrogate.blackbox.multi_fidelity import MultiFidelityBO
from rlsurrogate.blackbox.neural_bandit import NeuralTSOptimizer, NeuralUCBOptimizer
from rlsurrogate.blackbox.random_search import RandomSearch
from rlsurrogate.blackbox.space import Categorical, Dim, Float, Integer, SearchSpace
from rlsurrogate.registry import Registry

__all__ = [
    "BENCHMARKS",
    "OPTIMIZERS",
    "BayesianOptimization",
    "Benchmark",
    "Categorical",
    "Dim",
    "Float",
    "Integer",
    "SearchSpace",
    "SurrogateOptimizer",
    "get_benchmark",
]

OPTIMIZERS: Registry[type[SurrogateOptimizer]] = Registry(
    "surrogate optimizer",
    {
        "bo": BayesianOptimization,
        "mfbo": MultiFidelityBO,
        "neural_ts": NeuralTSOptimizer,
        "neural_ucb": NeuralUCBOptimizer,
        "random": RandomSearch,
    },
)

BENCHMARKS: Registry[Callable[..., Benchmark]] = Registry(
    "benchmark",
    {
        "branin": benchmarks.make_branin,
        "hartmann3": benchmarks.make_hartmann3,
        "hartmann6": benchmarks.make_hartmann6,
        "ackley": benchmarks.make_ackley,
        "levy": benchmarks.make_levy,
        "rosenbrock": benchmarks.make_rosenbrock,
        "styblinski_tang": benchmarks.make_styblinski_tang,
        "mf_branin": benchmarks.make_mf_branin,
        "mf_hartmann6": benchmarks.make_mf_hartmann6,
        "mixed_tuning": benchmarks.make_mixed_tuning,
    },
)


def get_benchmark(name: str, **kwargs: float | int) -> Benchmark:
    """Builds a registered benchmark, e.g. `get_benchmark("ackley", dim=5)`."""
    return BENCHMARKS.get(name)(**kwargs)
