"""Bayesian optimisation on BoTorch (Frazier, "A Tutorial on Bayesian Optimization", arXiv 1807.02811, §3-5).

Algorithm 1 of the tutorial: a space-filling initial design (scrambled Sobol), then repeat {fit a GP posterior to all
observations; propose the maximiser of an acquisition function; observe}. The GP and the acquisitions are BoTorch's
(`SingleTaskGP`, `LogExpectedImprovement`, ...); this file chooses the model (`gp.py`), the acquisition, and hands it
to the maximiser (`acquisition.py`). Conventions (STYLE.md §6): maximisation internally, `n x D` inputs in the unit
cube, standardised outputs, float64.

Acquisitions (`acquisition=`), tutorial section in brackets:
- `"logei"` (default): log of expected improvement, Eq. (8) [§4.1], in the numerically stable form of Ament et al.
  (NeurIPS 2023, arXiv 2310.20708). Same maximiser as EI, but its gradient does not vanish far from the incumbent.
- `"ei"`: expected improvement, closed form `EI = Delta Phi(Delta / sigma) + sigma phi(Delta / sigma)` [§4.1].
- `"nei"`: noisy EI, BoTorch's `qLogNoisyExpectedImprovement` (Letham et al. 2019; Frazier §5 on noise).
- `"ucb"`: upper confidence bound `mu + sqrt(beta) sigma` (Srinivas et al. 2010).
- `"kg"`: knowledge gradient [§4.2], BoTorch's one-shot `qKnowledgeGradient`.
- `"mes"`: max-value entropy search (Wang & Jegelka 2017), a cheap relative of entropy search [§4.3].
`expected_improvement` and `upper_confidence_bound` below restate the closed forms as pure functions (used in tests).

Pending points, batches and outcome constraints (the Monte-Carlo acquisitions of Balandat et al., NeurIPS 2020, §5):
- Points asked and not told (`X_pending`) are fantasised jointly with the candidate: EI / LogEI / UCB become their
  q-versions with `X_pending` (128 Sobol base samples, BoTorch's default), so an asynchronous worker that asks before
  the others tell gets a different point. `ask(n)` proposes `n` points one after another, each with the previous ones
  pending (sequential greedy, as BoTorch's `sequential=True` and Optuna's GPSampler).
- Each outcome constraint `c_j(x) <= b_j` gets its own GP (same prior); EI / LogEI / NEI weight the improvement by the
  modelled feasibility (`constraints=` of BoTorch's q-acquisitions, Gardner et al. 2014); the incumbent `best_f` is
  the best feasible value (the worst observed value while nothing is feasible, so the search is driven towards
  feasibility). UCB, KG and MES take no constraints.
- Failed evaluations are not modelled (as in Optuna's GPSampler).

Deviations and choices:
- GP prior `gp_prior="gamma"` (default, `gp.py`): BoTorch's current default (`gp_prior="dim_scaled"`, Hvarfner et al.
  2024) fits long lengthscales from few points on Hartmann6; the GP then treats the function as a single smooth bump
  and EI settles in a local optimum (median log10 regret after 50 evaluations, 8 seeds: -1.2 with that prior, -4.0
  with ours).
- The analytic acquisitions are evaluated on `CachedPosteriorGP` (`gp.py`), the same posterior computed from cached
  factors, about 3x cheaper per call than GPyTorch's path; the acquisition optimiser calls it ~100 times per ask.
- Acquisition maximisation (`acquisition.py`): multi-start L-BFGS-B from starts chosen out of Sobol points plus
  perturbations of the best observed points; in mixed spaces, projection to valid points and a discrete polish.
- Categoricals are one-hot encoded for the GP (`categorical_encoding="onehot"`, one ARD lengthscale per choice),
  so no order between choices is implied; `"ordinal"` relaxes each categorical to cells of `[0, 1]` (one column,
  cheaper for many choices). The one-hot columns get their own lengthscale prior (`gp.py`, mode sqrt 2: a change of
  category at kernel distance 1, as in Optuna's GPSampler). Under the unit-cube prior (mode 1/3) the fitted one-hot
  lengthscales sat at 0.33-0.35 on `mixed_tuning` (seeds 0, 1, 7, 8 inspected), a change of category lay at distance
  ~4.3 (Matern correlation ~0.003), so every optimizer / activation pair was modelled on its own and the search
  stayed in the pair it first found good; GPSampler fits Hamming lengthscales 1.3-1.8 there (correlation ~0.7-0.8).
  `mixed_tuning` median log10 regret after 60 evaluations, 10 seeds: -1.29 before, -2.03 after (GPSampler -2.20);
  stuck seeds 6/10 -> 4/10 (GPSampler 4/10). In such a model the other columns' prior has its mode at 1 (GPSampler's)
  instead of 1/3: given the same 10 random start-up points as GPSampler, 60 held-out seeds (30-89) ended outside the
  optimum's optimizer / activation pair 32 times under mode 1/3 (GPSampler 22; ours sticks alone on 14 seeds,
  GPSampler alone on 4, exact McNemar p = 0.03) and 21 times under mode 1 (p = 1.0 against GPSampler; lower regret
  than GPSampler on 41 of 60); from our Sobol points 25 -> 16. Neither the acquisition's optimisation (Optuna's
  alternating local search: higher acquisition values on 28 of 50 proposals of a traced seed, still 25 stuck) nor
  tying a categorical's one-hot lengthscales (GPSampler's one lengthscale per categorical: 25) changed the count. On
  Hartmann6 (no categoricals) mode 1 is far worse (30 seeds, median log10 regret @100 -0.92, 16 stuck, against -3.87
  and 0 with mode 1/3 in the same environment), so plain spaces keep 1/3. Integers, stepped and log-scaled dims are
  cells of the unit interval (`space.py`), rounded by the maximiser's projection and polish.
- GP hyper-parameters are warm-started from the previous fit, so refits take a few L-BFGS iterations. From n = 100
  on they are re-optimised only once the data have grown by `_REFIT_GROWTH` (2 %) since the last optimisation
  (every 2nd evaluation near n = 100, every 10th near n = 500); in between the GP is conditioned on all the data
  with the last hyper-parameters. At n = 500 the marginal-likelihood optimisation is ~90 % of a proposal (0.8 of
  0.9 s, profiled); below n = 100 nothing changes.
- Restarts (`stall_window`, `polish_every`; `restarts.py`, after TuRBO's): once the best value has not improved for
  `stall_window` evaluations (by 1e-3 of the observed range), the search starts again from a fresh Sobol design of
  `n_init` points with a GP of its own points, while one proposal in `polish_every` keeps polishing the incumbent
  with the GP on every observation; a restart that stalls is replaced. Without them every GP method measured stayed
  in the basin of its best start-up point on Hartmann6 (11 of 30 seeds outside the global one). When a restart runs
  and which points its GP sees are a function of the told values, so a resumed run or the Optuna sampler makes the
  same choices (a restart's GP, warm-started from its previous fit within a run, is refitted from scratch after a
  resume); random points told in bulk count as a stalled search (`stall_window=None` turns restarts off).
  Each search that stalled leaves its incumbent behind as a basin to avoid: a restart's acquisition (LogEI, NEI, EI,
  MES; not UCB or KG) is penalised by a Gaussian bump of the GP's lengthscales around it (`_AvoidBasins`), so the
  restart climbs another basin instead of re-finding the old one. Hartmann6, 30 seeds x 100 evaluations: stuck
  seeds 11 (no restarts) -> 7 (plain restarts) -> 2 (restarts avoiding found basins; GPSampler 3), worst-quartile
  log10 regret -0.92 -> -3.77 -> -3.81, median -4.45 -> -4.28 -> -4.05; held-out seeds 30-89: stuck 11/60 (plain
  restarts) -> 5/60. On `mixed_tuning` (two categoricals, integers; 60 evaluations) they did worse on 18 of 30 seeds
  and better on 5 (median -1.29 -> -0.99; avoiding found basins: -0.98, stuck 16 -> 21 of 30), so by default
  (`stall_window="auto"`) a space with integer, stepped or categorical dims does not restart.
- If fitting or the acquisition fails numerically (duplicates, degenerate data) the step falls back to a Sobol point
  and warns, rather than crashing the run. Until two evaluations have succeeded, steps are Sobol points.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Normal
from torch.quasirandom import SobolEngine

from rlsurrogate.blackbox.acquisition import Features, maximize_acquisition
from rlsurrogate.blackbox.base import SearchSpace, SurrogateOptimizer, check_int, check_number
from rlsurrogate.blackbox.gp import FIT_MAXITER, GP_PRIORS, MIN_NOISE, CachedPosteriorGP, fit_gp
from rlsurrogate.blackbox.restarts import Restart, current_restart
from rlsurrogate.errors import ConfigError

__all__ = ["ACQUISITIONS", "BayesianOptimization", "expected_improvement", "fit_gp", "upper_confidence_bound"]

ACQUISITIONS = ("logei", "ei", "nei", "ucb", "kg", "mes")
ENCODINGS = ("onehot", "ordinal")
# Acquisitions that take outcome constraints.
_CONSTRAINED = ("logei", "ei", "nei")
# Size of the candidate set MES uses to sample max values (BoTorch's tutorials use 1000 to 10000).
_MES_CANDIDATES = 1024
# Quasi-MC samples of the q-acquisitions (pending points, constraints): BoTorch's and Optuna's default.
_QMC_SAMPLES = 128
# Fewest successful evaluations a GP is fitted to; before that, steps are Sobol points.
_MIN_FIT_POINTS = 2
# Offsets the seed of the i-th point of one ask(n) (i >= 1) far from every step seed.
_BATCH_SEED_STRIDE = 2**40
# Hyper-parameters are re-optimised when the number of observations has grown by this fraction (at least one point)
# since they were last optimised; see the module notes.
_REFIT_GROWTH = 0.02
# Unit-cube distance (largest coordinate difference) below which a restart's design point counts as evaluated.
_SAME_POINT = 1e-9
# stall_window="auto" in a space of plain floats.
_STALL_WINDOW = 10
# Height of a restart's penalty at the incumbent of a search that stalled, in log-acquisition units (x e^-20 there).
_BASIN_PENALTY = 20.0
# Acquisitions whose values are logs (the penalty is subtracted) and those that are >= 0 (it multiplies by exp(-p)).
_LOG_ACQUISITIONS, _POSITIVE_ACQUISITIONS = ("logei", "nei"), ("ei", "mes")


def expected_improvement(mean: Tensor, sigma: Tensor, best_f: Tensor | float) -> Tensor:
    """Closed-form expected improvement (Frazier 2018, Eq. 8), maximisation.

    `EI = [Delta]^+ + sigma phi(Delta / sigma) - |Delta| Phi(-|Delta| / sigma)` with `Delta = mean - best_f`; equal to
    `Delta Phi(Delta/sigma) + sigma phi(Delta/sigma)`. Where `sigma = 0` it is `[Delta]^+` exactly.

    Args:
        mean: `(...)` posterior means.
        sigma: `(...)` posterior standard deviations (>= 0).
        best_f: Incumbent value `f*_n`, broadcastable to `mean`.

    Returns:
        `(...)` expected improvement, >= 0.
    """
    delta = mean - best_f
    safe_sigma = torch.where(sigma > 0, sigma, torch.ones_like(sigma))
    normal = Normal(torch.zeros_like(mean), torch.ones_like(mean))
    ei = delta.clamp_min(0) + safe_sigma * normal.log_prob(delta / safe_sigma).exp()
    ei = ei - delta.abs() * normal.cdf(-delta.abs() / safe_sigma)
    return torch.where(sigma > 0, ei.clamp_min(0), delta.clamp_min(0))


def upper_confidence_bound(mean: Tensor, sigma: Tensor, beta: float) -> Tensor:
    """UCB `mean + sqrt(beta) sigma` (BoTorch's parameterisation); `(...)` -> `(...)`, >= mean for beta >= 0."""
    return mean + math.sqrt(beta) * sigma


class BayesianOptimization(SurrogateOptimizer):
    """GP Bayesian optimisation with BoTorch acquisitions behind the ask/tell interface (registered as "bo").

    Args:
        space: A `SearchSpace` (named float / integer / categorical dims) or `2 x d` bounds.
        maximize: Direction of the objective.
        seed: Seed of the initial design and of every acquisition optimisation.
        outcome_constraints: `{name: bound}`: outcomes that must stay `<= bound`, each modelled by its own GP.
        acquisition: One of `ACQUISITIONS` ("logei", "ei", "nei", "ucb", "kg", "mes").
        n_init: Number of scrambled Sobol points before the first model-based proposal (default `2 d`, at least 5).
        gp_prior: "gamma" (default; see `gp.py`) or "dim_scaled" (BoTorch's default model).
        categorical_encoding: "onehot" (default) or "ordinal" (see module notes).
        num_restarts: L-BFGS-B starts when maximising the acquisition.
        raw_samples: Sobol points scored to choose starts.
        local_samples: Perturbations of the best observed points added to the start pool (0 disables).
        local_scale: Standard deviation of those perturbations in the unit cube.
        beta: UCB exploration weight.
        num_fantasies: Fantasy samples for knowledge gradient.
        min_noise: Noise variance floor (standardised units).
        stall_window: Evaluations without improvement after which the search restarts from a fresh design with a
            model of its own points (`restarts.py`); None never restarts; "auto" (default): 10 in a space of plain
            floats, None when it has integer, stepped or categorical dims (measured: module notes).
        polish_every: After a restart, one proposal in this many comes from the GP on every observation.

    Example:
        >>> from rlsurrogate.blackbox import Categorical, Float, SearchSpace
        >>> space = SearchSpace([Float("lr", 1e-4, 1e-1, log=True), Categorical("opt", ["sgd", "adam"])])
        >>> opt = BayesianOptimization(space, maximize=False, seed=0, n_init=4)
        >>> for _ in range(6):
        ...     params = opt.ask_params()  # {"lr": ..., "opt": ...}
        ...     opt.tell(params, (math.log10(params["lr"]) + 2.5) ** 2 + (params["opt"] == "sgd"))
    """

    def __init__(
        self,
        space: SearchSpace | Tensor | list[list[float]],
        *,
        maximize: bool = True,
        seed: int = 0,
        outcome_constraints: dict[str, float] | None = None,
        acquisition: str = "logei",
        n_init: int | None = None,
        gp_prior: str = "gamma",
        categorical_encoding: str = "onehot",
        num_restarts: int = 10,
        raw_samples: int = 1024,
        local_samples: int = 256,
        local_scale: float = 0.05,
        beta: float = 2.0,
        num_fantasies: int = 32,
        min_noise: float = MIN_NOISE,
        stall_window: int | str | None = "auto",
        polish_every: int = 4,
    ):
        super().__init__(space, maximize=maximize, seed=seed, outcome_constraints=outcome_constraints)
        problems = []
        if acquisition not in ACQUISITIONS:
            problems.append(f"acquisition = {acquisition!r}: must be one of {ACQUISITIONS}.")
        elif self.outcome_constraints and acquisition not in _CONSTRAINED:
            problems.append(f"acquisition = {acquisition!r}: outcome constraints need one of {_CONSTRAINED}.")
        if gp_prior not in GP_PRIORS:
            problems.append(f"gp_prior = {gp_prior!r}: must be one of {GP_PRIORS}.")
        if categorical_encoding not in ENCODINGS:
            problems.append(f"categorical_encoding = {categorical_encoding!r}: must be one of {ENCODINGS}.")
        if n_init is not None:
            problems += check_int("n_init", n_init, 1, " (or None for max(5, 2 d))")
        restarts = check_int("num_restarts", num_restarts, 1)
        problems += restarts or check_int("raw_samples", raw_samples, num_restarts, " (= num_restarts)")
        problems += check_int("local_samples", local_samples, 0, " (0 disables local starts)")
        problems += check_int("num_fantasies", num_fantasies, 1)
        problems += check_number("beta", beta, 0.0) + check_number("local_scale", local_scale, 0.0, strict=True)
        problems += check_number("min_noise", min_noise, 0.0, strict=True)
        if stall_window is not None and stall_window != "auto":
            problems += check_int("stall_window", stall_window, 1, ' (or None: no restarts, or "auto")')
        problems += check_int("polish_every", polish_every, 2)
        if problems:
            raise ConfigError(problems, header="invalid BayesianOptimization arguments")
        self.acquisition = acquisition
        self.n_init = max(5, 2 * self.space.dim) if n_init is None else int(n_init)
        self.gp_prior, self.min_noise = gp_prior, min_noise
        self.features = Features(self.space, one_hot=categorical_encoding == "onehot")
        self.num_restarts, self.raw_samples = num_restarts, raw_samples
        self.local_samples, self.local_scale = local_samples, local_scale
        self.beta, self.num_fantasies = beta, num_fantasies
        if stall_window == "auto":
            stall_window = _STALL_WINDOW if self.space.is_continuous else None
        self.stall_window: int | None = stall_window  # type: ignore[assignment]
        self.polish_every = polish_every
        self.n_sobol = 0  # initial-design points handed out so far
        self.model: Any = None  # the objective's GP of the last proposal (a restart's GP sees its own points only)
        self.constraint_models: list[Any] = []  # one GP per outcome constraint
        self._hyper: list[dict | None] = [None] * (1 + len(self.outcome_constraints))
        self._fitted_n = 0  # observations when the hyper-parameters were last optimised
        self._restart_hyper: tuple[int, list[dict | None]] = (-1, [])  # (restart's first observation, its GP fits)

    # -- ask -------------------------------------------------------------------------------------------------------
    def _ask_unit(self, n: int, seed: int) -> Tensor:
        if max(self.Y.numel(), self.n_sobol) < self.n_init or self.Y.numel() < _MIN_FIT_POINTS:
            return self._sobol(n)
        rows, stalled = None, []  # the observations the model sees (all, or a restart's own); basins to avoid
        if self.stall_window is not None:
            values = torch.where(self.feasible, self.Y_max, -math.inf).tolist()
            restart = current_restart(
                values, n_init=self.n_init, window=self.stall_window, polish_every=self.polish_every
            )
            if restart.start is not None:
                design = self._restart_design(restart.start, n)
                if design is not None:
                    return design
                if self._restart_proposes(restart):
                    rows, stalled = torch.tensor(restart.owned, dtype=torch.long), restart.stalled
        from botorch.exceptions.errors import BotorchError

        try:
            with torch.random.fork_rng():
                torch.manual_seed(seed)  # BoTorch's samplers and initialisers draw from the global RNG
                basins = self._basins(stalled)
                self._fit(rows)
                pending = self.features(self.space.to_unit(self.X_pending))  # p x D
                points = []
                for i in range(n):  # sequential greedy: each point is proposed with the previous ones pending
                    u = self._propose(pending, seed + i * _BATCH_SEED_STRIDE, rows, basins)  # d
                    points.append(u)
                    pending = torch.cat([pending, self.features(u.unsqueeze(0))])
                return torch.stack(points)  # n x d
        except (RuntimeError, ValueError, BotorchError) as err:  # NotPSDError, NanError, ModelFittingError
            warnings.warn(
                f"BO step {self.step}: model-based proposal failed ({err}); using a Sobol point.", stacklevel=2
            )
            self._hyper = [None] * len(self._hyper)
            return self._sobol(n)

    def _restart_proposes(self, restart: Restart) -> bool:
        """Whether the next proposal is the restart's (not a polishing one) and its GP has enough points."""
        j = self.Y.numel() + self.X_pending.shape[0] - restart.start  # this proposal's place in the restart
        return (j - self.n_init) % self.polish_every != self.polish_every - 1 and len(restart.owned) >= _MIN_FIT_POINTS

    def _basins(self, stalled: list[int]) -> tuple[Tensor, Tensor] | None:
        """Features (`k x D`) of the incumbents of the searches that stalled and the lengthscales (`D`) of the GP on
        every observation, which measure how far a restart's candidate is from them; None: nothing to avoid."""
        if not stalled or self.acquisition not in _LOG_ACQUISITIONS + _POSITIVE_ACQUISITIONS:
            return None
        if self._hyper[0] is None:  # a resumed or rebuilt run: the GP on every observation was not fitted yet
            self._fit()
        gp = self._gp(self.features(self.U), self.Y_max, self._hyper[0], maxiter=0)
        kernel = next(k for k in gp.covar_module.modules() if getattr(k, "has_lengthscale", False))
        return self.features(self.U[stalled]), kernel.lengthscale.detach().reshape(-1)

    def _fit(self, rows: Tensor | None = None) -> None:
        """Fits the objective's GP and one GP per outcome constraint, each warm-started from its previous fit.

        `rows`: the observations a restart owns; its GPs are warm-started from the restart's previous fit (from scratch
        at its first), and the first search's warm start is left alone."""
        U, Y, _ = self._observed(rows)
        F = self.features(U)  # n x D
        targets = [Y, *(self.C if rows is None else self.C[rows]).T]
        if rows is None:
            grown = F.shape[0] - self._fitted_n  # observations since the hyper-parameters were last optimised
            refit = any(h is None for h in self._hyper) or not 0 <= grown < max(1, int(_REFIT_GROWTH * self._fitted_n))
            previous = self._hyper
        else:
            refit, start = True, int(rows[0])  # a restart's first observation names it
            previous = self._restart_hyper[1] if self._restart_hyper[0] == start else [None] * len(targets)
        models = [self._gp(F, y, hyper, maxiter=FIT_MAXITER if refit else 0) for y, hyper in zip(targets, previous)]
        fits = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in models]
        if rows is None:
            self._fitted_n = F.shape[0] if refit else self._fitted_n
            self._hyper = fits
        else:
            self._restart_hyper = (start, fits)
        self.model, self.constraint_models = models[0], models[1:]

    def _gp(self, F: Tensor, y: Tensor, hyper: dict | None, *, maxiter: int) -> Any:
        """A GP of this optimizer's prior on `n x D` features and `n` targets, started from `hyper` (0 iterations:
        only conditioned on the data)."""
        return fit_gp(
            F,
            y,
            gp_prior=self.gp_prior,
            min_noise=self.min_noise,
            warm_start=hyper,
            maxiter=maxiter,
            categorical_columns=self.features.categorical_columns,
        )

    def _propose(
        self, pending: Tensor, seed: int, rows: Tensor | None = None, basins: tuple[Tensor, Tensor] | None = None
    ) -> Tensor:
        """The `d` unit point maximising the acquisition, given `p x D` pending features (`rows`: a restart's, whose
        acquisition is penalised near the `basins` of the searches that stalled)."""
        acqf = self._build_acquisition(pending, seed, rows)
        if basins is not None:
            acqf = _AvoidBasins(acqf, *basins, log_values=self.acquisition in _LOG_ACQUISITIONS)
        if self.acquisition == "kg":  # one-shot KG optimises the fantasy points jointly: BoTorch's own starts
            from botorch.optim import optimize_acqf

            D = self.features.dim
            box = torch.stack([torch.zeros(D), torch.ones(D)]).double()
            options: dict[str, bool | float | int | str] = {"seed": seed % (2**31), "batch_limit": 32, "maxiter": 100}
            F, _ = optimize_acqf(
                acqf, box, q=1, num_restarts=self.num_restarts, raw_samples=self.raw_samples, options=options
            )
            return self.features.unit(F.detach()).reshape(-1)
        U, Y, feasible = self._observed(rows)
        order = torch.where(feasible, Y, Y - math.inf).argsort(descending=True)
        return maximize_acquisition(
            acqf,
            self.features,
            U[order],
            seed=seed,
            num_restarts=self.num_restarts,
            raw_samples=self.raw_samples,
            local_samples=self.local_samples,
            local_scale=self.local_scale,
        )

    def _build_acquisition(self, pending: Tensor, seed: int, rows: Tensor | None = None) -> Any:
        from botorch.acquisition import (
            ExpectedImprovement,
            LogExpectedImprovement,
            UpperConfidenceBound,
            qExpectedImprovement,
            qKnowledgeGradient,
            qLogExpectedImprovement,
            qLogNoisyExpectedImprovement,
            qMaxValueEntropy,
            qUpperConfidenceBound,
        )
        from botorch.sampling import SobolQMCNormalSampler

        X_pending = pending if pending.shape[0] else None
        U, Y, feasible = self._observed(rows)
        # The posterior is un-standardised by the model's outcome transform, so the incumbent is in raw units.
        best_f = Y[feasible].max() if feasible.any() else Y.min()
        if X_pending is None and not self.constraint_models and self.acquisition in ("logei", "ei", "ucb"):
            model = CachedPosteriorGP.from_model(self.model) or self.model
            if self.acquisition == "logei":
                return LogExpectedImprovement(model, best_f)
            if self.acquisition == "ei":
                return ExpectedImprovement(model, best_f)
            return UpperConfidenceBound(model, self.beta)
        sampler = SobolQMCNormalSampler(torch.Size([_QMC_SAMPLES]), seed=seed % (2**31))
        model, mc = self.model, dict[str, Any]()
        if self.constraint_models:
            from botorch.acquisition.objective import GenericMCObjective
            from botorch.models import ModelListGP

            model = ModelListGP(self.model, *self.constraint_models)
            bounds = list(self.outcome_constraints.values())
            mc = {
                "objective": GenericMCObjective(lambda Z, X=None: Z[..., 0]),
                "constraints": [lambda Z, j=j, b=b: Z[..., j + 1] - b for j, b in enumerate(bounds)],
            }
        if self.acquisition == "logei":
            return qLogExpectedImprovement(model, best_f, sampler=sampler, X_pending=X_pending, **mc)
        if self.acquisition == "ei":
            return qExpectedImprovement(model, best_f, sampler=sampler, X_pending=X_pending, **mc)
        if self.acquisition == "ucb":
            return qUpperConfidenceBound(model, self.beta, sampler=sampler, X_pending=X_pending)
        if self.acquisition == "nei":
            F = self.features(U)
            return qLogNoisyExpectedImprovement(
                model, X_baseline=F, sampler=sampler, X_pending=X_pending, prune_baseline=True, **mc
            )
        if self.acquisition == "kg":
            return qKnowledgeGradient(model, num_fantasies=self.num_fantasies, X_pending=X_pending)
        candidates = SobolEngine(self.space.dim, scramble=True, seed=self.seed).draw(
            _MES_CANDIDATES, dtype=torch.float64
        )
        candidates = self.features(torch.cat([self.space.round_unit(candidates), U]))
        return qMaxValueEntropy(model, candidate_set=candidates, X_pending=X_pending)

    def _observed(self, rows: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """Unit points, values (maximised) and feasibility of the observations `rows` (None: all of them)."""
        if rows is None:
            return self.U, self.Y_max, self.feasible
        return self.U[rows], self.Y_max[rows], self.feasible[rows]

    def _restart_design(self, start: int, n: int) -> Tensor | None:
        """The next `n` points of the Sobol design of the restart at observation `start` that were not evaluated
        (successfully or not) or asked yet; None when fewer than `n` are left."""
        engine = SobolEngine(self.space.dim, scramble=True, seed=(self.seed * 1_000_003 + start) % 2**31)
        design = self.space.round_unit(engine.draw(self.n_init, dtype=torch.float64))  # n_init x d
        seen = torch.cat([self.U, self.space.to_unit(torch.cat([self.X_failed, self.X_pending]))])
        if seen.shape[0]:
            nearest = (design.unsqueeze(1) - seen.unsqueeze(0)).abs().amax(dim=-1).min(dim=1).values  # n_init
            design = design[nearest > _SAME_POINT]
        return design[:n] if design.shape[0] >= n else None

    def _sobol(self, n: int) -> Tensor:
        engine = SobolEngine(self.space.dim, scramble=True, seed=self.seed)
        engine.fast_forward(self.n_sobol)
        self.n_sobol += n
        return engine.draw(n, dtype=torch.float64)

    # -- state -----------------------------------------------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any]:
        hyper = {"hyper": self._hyper[0], "hyper_constraints": self._hyper[1:]}
        return {"n_sobol": self.n_sobol, "fitted_n": self._fitted_n, **hyper}

    def _check_extra_state(self, extra: Any) -> None:
        super()._check_extra_state(extra)
        problems = check_int("state extra.n_sobol", extra.get("n_sobol"), 0)
        problems += check_int("state extra.fitted_n", extra.get("fitted_n", 0), 0)
        hypers = [extra.get("hyper"), *extra.get("hyper_constraints", [None] * len(self.outcome_constraints))]
        if len(hypers) != len(self._hyper):
            problems.append(
                f"state extra.hyper_constraints: needs {len(self._hyper) - 1} entries (one per constraint)."
            )
        for hyper in hypers:
            if hyper is not None and not (
                isinstance(hyper, dict) and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in hyper.items())
            ):
                problems.append(
                    f"state extra.hyper is a {type(hyper).__name__}: must be None or a dict of GP tensors."
                )
        if problems:
            raise ConfigError(problems[0])

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self.n_sobol, self._fitted_n = extra["n_sobol"], extra.get("fitted_n", 0)  # states before fitted_n: refit
        self._hyper = [extra["hyper"], *extra.get("hyper_constraints", [None] * len(self.outcome_constraints))]


class _AvoidBasins(torch.nn.Module):
    """A restart's acquisition penalised near the incumbents of the searches that stalled (`restarts.py`).

    The penalty is a Gaussian bump of the GP's lengthscales around each incumbent `c`,
    `p(x) = _BASIN_PENALTY * sum_c exp(-|(x - c) / lengthscale|^2 / 2)`, subtracted from a log acquisition and
    applied as the factor `exp(-p(x))` to a non-negative one: within about two lengthscales of an old incumbent the
    restart sees next to no acquisition, so it climbs another basin, while the incumbent keeps being polished by the
    proposals of the GP on every observation. After the local penalisation of Gonzalez et al. (AISTATS 2016, Eq. 4),
    which multiplies the acquisition by a soft exclusion ball around each pending point.
    """

    def __init__(self, acqf: Any, centres: Tensor, lengthscale: Tensor, *, log_values: bool):
        super().__init__()
        self.acqf, self.centres, self.lengthscale, self.log_values = acqf, centres, lengthscale, log_values

    def forward(self, X: Tensor) -> Tensor:  # b x q x D -> b
        scaled = (X.unsqueeze(-2) - self.centres) / self.lengthscale  # b x q x k x D
        penalty = _BASIN_PENALTY * torch.exp(-0.5 * scaled.pow(2).sum(-1)).sum((-1, -2))  # b
        value = self.acqf(X)
        return value - penalty if self.log_values else value * torch.exp(-penalty)
