"""Random search: the baseline every surrogate optimizer must beat (Bergstra & Bengio, JMLR 2012).

Draws candidates uniformly in the unit cube (or from a scrambled Sobol sequence with `sobol=True`), then maps them to
the user's search space. Same ask/tell interface as the model-based optimizers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.quasirandom import SobolEngine

from rlsurrogate.blackbox.base import SearchSpace, SurrogateOptimizer, check_int
from rlsurrogate.errors import ConfigError

__all__ = ["RandomSearch"]


class RandomSearch(SurrogateOptimizer):
    """Uniform random (or scrambled Sobol) sampling of the search space (registered as "random").

    Args:
        space: A `SearchSpace` or `2 x d` bounds.
        maximize: Direction of the objective.
        seed: Seed of the sampler.
        outcome_constraints: `{name: bound}` recorded with each value; `best()` respects them (sampling does not).
        sobol: Draw from one scrambled Sobol sequence instead of i.i.d. uniform points.
    """

    def __init__(
        self,
        space: SearchSpace | Tensor | list[list[float]],
        *,
        maximize: bool = True,
        seed: int = 0,
        outcome_constraints: dict[str, float] | None = None,
        sobol: bool = False,
    ):
        super().__init__(space, maximize=maximize, seed=seed, outcome_constraints=outcome_constraints)
        if not isinstance(sobol, bool):
            raise ConfigError(f"sobol = {sobol!r}: must be True or False.")
        self.sobol = sobol
        self.n_drawn = 0

    def _ask_unit(self, n: int, seed: int) -> Tensor:
        if self.sobol:
            engine = SobolEngine(self.space.dim, scramble=True, seed=self.seed)
            engine.fast_forward(self.n_drawn)
            U = engine.draw(n, dtype=torch.float64)
        else:
            U = torch.rand(n, self.space.dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        self.n_drawn += n
        return U  # n x d

    def _extra_state(self) -> dict[str, Any]:
        return {"n_drawn": self.n_drawn}

    def _check_extra_state(self, extra: Any) -> None:
        super()._check_extra_state(extra)
        problems = check_int("state extra.n_drawn", extra.get("n_drawn"), 0)
        if problems:
            raise ConfigError(problems[0])

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self.n_drawn = extra["n_drawn"]
