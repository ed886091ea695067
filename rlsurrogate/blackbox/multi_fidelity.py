"""Multi-fidelity Bayesian optimisation: a fidelity dimension, a cost model and a cost-aware acquisition.

The objective takes one extra input, the fidelity `s` (the highest value is the target fidelity, e.g. full
training length), and an evaluation at `s` costs `fixed_cost + s`. The surrogate is BoTorch's
`SingleTaskMultiFidelityGP` (a product kernel with a downsampling kernel on `s`, Wu et al., UAI 2019), fitted on
unit-cube inputs with standardised outputs in float64.

Acquisitions (`acquisition=`):
- `"mfkg"` (default): multi-fidelity knowledge gradient per unit cost (Wu, Toscano-Palmerin, Frazier & Wilson,
  UAI 2019, arXiv 1903.04703, Eq. 2), BoTorch's `qMultiFidelityKnowledgeGradient`: the expected increase of the
  maximum posterior mean at target fidelity (Frazier 2018 §4.2, with the inner maximum projected to `s = target`)
  divided by the cost of the evaluation (`InverseCostWeightedUtility`).
- `"mfmes"`: multi-fidelity max-value entropy search per unit cost (Moss et al. 2020 / Takeno et al. 2020),
  BoTorch's `qMultiFidelityMaxValueEntropy`.

`cost_spent` is the total cost of every told evaluation; `recommend()` returns the maximiser of the posterior mean
at target fidelity, the point a multi-fidelity run reports. `best()` is the best observation at target fidelity
(or over all fidelities when none has been made there yet).

Deviations: the initial design is scrambled Sobol over all inputs including `s` (BoTorch's tutorial draws `s`
from {0.5, 0.75, 1}); MF-KG uses 16 fantasies and 5 restarts by default to keep an iteration to seconds on a CPU.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor
from torch.quasirandom import SobolEngine

from rlsurrogate.blackbox.base import SearchSpace, SurrogateOptimizer, check_int, check_number
from rlsurrogate.blackbox.gp import fit_hyperparameters
from rlsurrogate.errors import ConfigError

__all__ = ["MultiFidelityBO", "fidelity_cost"]

MF_ACQUISITIONS = ("mfkg", "mfmes")
# Cap on L-BFGS-B iterations of the GP fit (as in bo.py); the MAP estimate changes little after it.
_FIT_MAXITER = 75


def fidelity_cost(s: Tensor, fixed_cost: float) -> Tensor:
    """Affine cost model `fixed_cost + s` of evaluating at fidelity `s` (`(...)` -> `(...)`)."""
    return fixed_cost + s


class MultiFidelityBO(SurrogateOptimizer):
    """Cost-aware multi-fidelity BO (MF-KG or MF-MES) behind the ask/tell interface (registered as "mfbo").

    Args:
        space: A `SearchSpace` or `2 x d` bounds, including the fidelity dimension.
        fidelity_dim: Index of the fidelity dimension (default: the last one); its upper bound is the target.
        fixed_cost: Cost of an evaluation at fidelity 0 (the cost model is `fixed_cost + s`).
        maximize: Direction of the objective.
        seed: Seed of the initial design and the acquisition optimisation.
        acquisition: "mfkg" or "mfmes".
        n_init: Sobol points before the first model-based proposal (default `2 d`, at least 5).
        num_fantasies: Fantasies for MF-KG.
        num_restarts: Restarts of the acquisition optimiser.
        raw_samples: Raw samples used to choose the restarts.

    Example:
        >>> from rlsurrogate.blackbox import get_benchmark
        >>> f = get_benchmark("mf_branin")
        >>> opt = MultiFidelityBO(f.bounds, fidelity_dim=2, fixed_cost=f.fixed_cost, maximize=False, n_init=6)
        >>> X = opt.ask(1); opt.tell(X, f(X)); opt.cost_spent  # doctest: +SKIP
    """

    def __init__(
        self,
        space: SearchSpace | Tensor | list[list[float]],
        *,
        fidelity_dim: int | None = None,
        fixed_cost: float = 0.1,
        maximize: bool = True,
        seed: int = 0,
        acquisition: str = "mfkg",
        n_init: int | None = None,
        num_fantasies: int = 16,
        num_restarts: int = 5,
        raw_samples: int = 128,
    ):
        super().__init__(space, maximize=maximize, seed=seed)
        d = self.space.dim
        fid = d - 1 if fidelity_dim is None else fidelity_dim
        problems = check_int("fidelity_dim", fid, 0, f" and < {d}, the index of one dimension")
        if not problems and fid >= d:
            problems.append(f"fidelity_dim = {fidelity_dim}: must index one of the {d} dimensions.")
        elif not problems and self.space.dims[fid].kind != "continuous":
            problems.append(f"fidelity_dim = {fidelity_dim}: the fidelity dimension must be continuous.")
        if acquisition not in MF_ACQUISITIONS:
            problems.append(f"acquisition = {acquisition!r}: must be one of {MF_ACQUISITIONS}.")
        problems += check_number("fixed_cost", fixed_cost, 0.0, strict=True, rule=" (zero fidelity must cost)")
        if n_init is not None:
            problems += check_int("n_init", n_init, 1, " (or None for max(5, 2 d))")
        problems += check_int("num_fantasies", num_fantasies, 1)
        restarts = check_int("num_restarts", num_restarts, 1)
        problems += restarts or check_int("raw_samples", raw_samples, num_restarts, " (= num_restarts)")
        if problems:
            raise ConfigError(problems, header="invalid MultiFidelityBO arguments")
        self.fidelity_dim = int(fid)
        self.fixed_cost, self.acquisition = float(fixed_cost), acquisition
        self.n_init = max(5, 2 * d) if n_init is None else int(n_init)
        self.num_fantasies, self.num_restarts, self.raw_samples = num_fantasies, num_restarts, raw_samples
        self.cost_spent = 0.0
        self.n_sobol = 0
        self.model: Any = None

    @property
    def target_fidelity(self) -> float:
        return float(self.space.bounds[1, self.fidelity_dim])

    def _told(self, X: Tensor, Y: Tensor) -> None:
        self.cost_spent += float(fidelity_cost(X[:, self.fidelity_dim], self.fixed_cost).sum())

    def best(self) -> tuple[Tensor, float]:
        at_target = self.X[:, self.fidelity_dim] >= self.target_fidelity - 1e-9
        if not at_target.any():
            return super().best()
        Y = torch.where(at_target, self.Y_max, torch.full_like(self.Y, -math.inf))
        i = int(Y.argmax())
        return self.X[i].clone(), float(self.Y[i])

    def recommend(self) -> Tensor | None:
        """`d` maximiser of the posterior mean at target fidelity (None before the first model fit)."""
        if self.model is None:
            return None
        from botorch.acquisition import PosteriorMean
        from botorch.optim import optimize_acqf

        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            x, _ = optimize_acqf(
                PosteriorMean(self.model),
                self._unit_bounds(),
                q=1,
                num_restarts=self.num_restarts,
                raw_samples=self.raw_samples,
                fixed_features={self.fidelity_dim: 1.0},
            )
        return self.space.from_unit(x.detach())[0]

    # -- ask ----------------------------------------------------------------------------------------------------------
    def _ask_unit(self, n: int, seed: int) -> Tensor:
        if max(self.Y.numel(), self.n_sobol) < self.n_init:
            return self._sobol(n)
        from botorch.exceptions.errors import BotorchError

        try:
            return self._propose(n, seed)
        except (RuntimeError, ValueError, BotorchError) as err:  # NaN acquisition values, failed GP fits
            warnings.warn(f"MF-BO step {self.step}: proposal failed ({err}); using a Sobol point.", stacklevel=2)
            return self._sobol(n)

    def _sobol(self, n: int) -> Tensor:
        engine = SobolEngine(self.space.dim, scramble=True, seed=self.seed)
        engine.fast_forward(self.n_sobol)
        self.n_sobol += n
        return engine.draw(n, dtype=torch.float64)

    def _propose(self, n: int, seed: int) -> Tensor:
        from botorch.optim import optimize_acqf

        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.model = self._fit()
            acqf = self._build_acquisition()
            X, _ = optimize_acqf(
                acqf,
                self._unit_bounds(),
                q=n,
                num_restarts=self.num_restarts,
                raw_samples=self.raw_samples,
                options={"seed": seed % (2**31), "batch_limit": 8, "maxiter": 100},
            )
        return X.detach()  # n x d

    def _fit(self) -> Any:
        from botorch.models import SingleTaskMultiFidelityGP

        model = SingleTaskMultiFidelityGP(self.U, self.Y_max.unsqueeze(-1), data_fidelities=[self.fidelity_dim])
        fit_hyperparameters(model, maxiter=_FIT_MAXITER)
        return model.eval()

    def _build_acquisition(self) -> Any:
        from botorch.acquisition import PosteriorMean
        from botorch.acquisition.cost_aware import InverseCostWeightedUtility
        from botorch.acquisition.fixed_feature import FixedFeatureAcquisitionFunction
        from botorch.acquisition.knowledge_gradient import qMultiFidelityKnowledgeGradient
        from botorch.acquisition.max_value_entropy_search import qMultiFidelityMaxValueEntropy
        from botorch.acquisition.utils import project_to_target_fidelity
        from botorch.models.cost import AffineFidelityCostModel
        from botorch.optim import optimize_acqf

        fid, d = self.fidelity_dim, self.space.dim
        lo, hi = (float(v) for v in self.space.bounds[:, fid])
        # cost = fixed + s with s = lo + (hi - lo) u in unit-cube coordinates
        cost_model = AffineFidelityCostModel(fidelity_weights={fid: hi - lo}, fixed_cost=self.fixed_cost + lo)
        utility = InverseCostWeightedUtility(cost_model=cost_model)

        def project(X: Tensor) -> Tensor:
            return project_to_target_fidelity(X=X, target_fidelities={fid: 1.0}, d=d)

        if self.acquisition == "mfmes":
            candidates = SobolEngine(d, scramble=True, seed=self.seed).draw(512, dtype=torch.float64)
            return qMultiFidelityMaxValueEntropy(
                self.model, candidate_set=candidates, cost_aware_utility=utility, project=project
            )
        # Current value: the best posterior mean at target fidelity (the KG baseline mu*_n).
        columns = [i for i in range(d) if i != fid]
        mean_at_target = FixedFeatureAcquisitionFunction(PosteriorMean(self.model), d, [fid], [1.0])
        _, current_value = optimize_acqf(
            mean_at_target,
            self._unit_bounds()[:, columns],
            q=1,
            num_restarts=self.num_restarts,
            raw_samples=self.raw_samples,
        )
        return qMultiFidelityKnowledgeGradient(
            self.model,
            num_fantasies=self.num_fantasies,
            current_value=current_value,
            cost_aware_utility=utility,
            project=project,
        )

    def _unit_bounds(self) -> Tensor:
        d = self.space.dim
        return torch.stack([torch.zeros(d), torch.ones(d)]).double()

    def _extra_state(self) -> dict[str, Any]:
        return {"cost_spent": self.cost_spent, "n_sobol": self.n_sobol}

    def _check_extra_state(self, extra: Any) -> None:
        super()._check_extra_state(extra)
        problems = check_number("state extra.cost_spent", extra.get("cost_spent"), 0.0)
        problems += check_int("state extra.n_sobol", extra.get("n_sobol"), 0)
        if problems:
            raise ConfigError(problems[0])

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self.cost_spent, self.n_sobol = extra["cost_spent"], extra["n_sobol"]
