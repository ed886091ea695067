"""`BayesianOptimization` as an Optuna sampler: switch a study to it with one line and keep the rest of Optuna.

    import optuna
    from rlsurrogate.blackbox.optuna_sampler import OptunaSampler

    study = optuna.create_study(direction="minimize", sampler=OptunaSampler(seed=0))
    study.optimize(objective, n_trials=100)      # storage, pruners, dashboards and plots unchanged

Like Optuna's `GPSampler` (Optuna 5.0, which this file was written against), the sampler proposes every parameter of
the study's intersection search space jointly (`sample_relative`) and leaves parameters outside it (conditional ones)
to an independent sampler (`RandomSampler` with the same seed). Each call rebuilds the optimizer's state from the
study, the storage being the one source of truth (several processes may share a study):
- COMPLETE trials are observations (an infinite value is clipped to the finite range, as GPSampler does); FAIL
  trials are told as failed (NaN), PRUNED ones are ignored;
- RUNNING trials that already hold every parameter are pending points, so parallel workers (`n_jobs > 1`, or
  processes on one storage) get different proposals;
- constraint values set with `trial.set_constraint(name, value)` (feasible when `<= 0`, Optuna's convention) become
  outcome constraints `{name: 0.0}`.
The first `n_startup_trials` trials (by trial number) are points of one scrambled Sobol sequence instead of Optuna's
independent random draws; the GP hyper-parameters of one proposal warm-start the next, as GPSampler's cache does.
Parameter types map one to one: `suggest_float` (linear, `log=True`, `step=`), `suggest_int` (linear, `log=True`,
`step=`) and `suggest_categorical` become `Float`, `Integer` and `Categorical`. Multi-objective studies are refused.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from typing import Any

import optuna
import torch
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from rlsurrogate.blackbox.bo import BayesianOptimization
from rlsurrogate.blackbox.space import Categorical, Dim, Float, Integer, SearchSpace
from rlsurrogate.errors import ConfigError

__all__ = ["OptunaSampler"]

# Optuna's own seeds are drawn below 2**31 (numpy RandomState); ours must stay below 2**32.
_MAX_SEED = 2**31


class OptunaSampler(optuna.samplers.BaseSampler):
    """An Optuna sampler that proposes with rlsurrogate's `BayesianOptimization` (GP, LogEI by default).

    Args:
        seed: Seed of the Sobol design, of every acquisition optimisation and of the independent sampler
            (None: a random one, as Optuna's samplers).
        n_startup_trials: Trials proposed by the Sobol design before the GP is used (GPSampler's default, 10).
        independent_sampler: Sampler for parameters outside the joint search space (default `RandomSampler`).
        **bo_kwargs: Passed to `BayesianOptimization` (acquisition, gp_prior, num_restarts, raw_samples, ...).

    Example:
        >>> import optuna
        >>> study = optuna.create_study(sampler=OptunaSampler(seed=0, n_startup_trials=3))
        >>> study.optimize(lambda t: (t.suggest_float("x", -2, 2) - 1) ** 2 + t.suggest_int("k", 0, 3), n_trials=6)
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        n_startup_trials: int = 10,
        independent_sampler: optuna.samplers.BaseSampler | None = None,
        **bo_kwargs: Any,
    ):
        if isinstance(n_startup_trials, bool) or not isinstance(n_startup_trials, int) or n_startup_trials < 0:
            raise ConfigError(f"n_startup_trials = {n_startup_trials!r}: must be an int >= 0.")
        for reserved in ("maximize", "seed", "n_init", "outcome_constraints"):
            if reserved in bo_kwargs:
                raise ConfigError(
                    f"OptunaSampler({reserved}=...): set by the study (direction, constraints) or by the sampler's "
                    "own arguments (seed, n_startup_trials); drop it."
                )
        self._seed = int(seed) % _MAX_SEED if seed is not None else secrets.randbelow(_MAX_SEED)
        self._n_startup_trials = n_startup_trials
        self._bo_kwargs = bo_kwargs
        self._independent_sampler = independent_sampler or optuna.samplers.RandomSampler(seed=seed)
        self._intersection = optuna.search_space.IntersectionSearchSpace()
        # GP hyper-parameters of the last proposal (and the n they were optimised at), keyed by the search space.
        self._hyper_cache: tuple[Any, list, int, tuple] | None = None
        if "constraints_func" in bo_kwargs:  # GPSampler's argument, deprecated in Optuna 5.0
            raise ConfigError(
                "OptunaSampler(constraints_func=...): call trial.set_constraint(name, value) in the objective instead "
                "(Optuna 5.0 deprecates constraints_func; values <= 0 are feasible)."
            )
        # Builds the optimizer once with these arguments so that a bad keyword is refused here, not mid-study.
        try:
            BayesianOptimization([[0.0], [1.0]], n_init=max(n_startup_trials, 1), **bo_kwargs)
        except TypeError as err:
            raise ConfigError(
                f"OptunaSampler: {err}; the keywords beyond seed, n_startup_trials and independent_sampler go to "
                "BayesianOptimization (acquisition, num_restarts, raw_samples, ...)."
            ) from err

    def reseed_rng(self) -> None:
        self._seed = secrets.randbelow(_MAX_SEED)
        self._independent_sampler.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        _refuse_multi_objective(study)
        space = self._intersection.calculate(study)
        return {name: dist for name, dist in space.items() if not dist.single()}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        _refuse_multi_objective(study)
        if not search_space:
            return {}
        space = SearchSpace([_dim(name, dist) for name, dist in search_space.items()])
        names = list(search_space)
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL, TrialState.RUNNING))
        complete = [t for t in trials if t.state == TrialState.COMPLETE and _covers(t, names)]
        constraint_names = _constraint_names(complete)
        opt = BayesianOptimization(
            space,
            maximize=study.direction == StudyDirection.MAXIMIZE,
            seed=self._seed,
            n_init=max(self._n_startup_trials, 1),
            outcome_constraints={name: 0.0 for name in constraint_names} or None,
            **self._bo_kwargs,
        )
        key = (tuple(space.dims), tuple(constraint_names))
        if self._hyper_cache is not None and self._hyper_cache[0] == key:
            opt._hyper, opt._fitted_n = list(self._hyper_cache[1]), self._hyper_cache[2]  # as GPSampler's cache
            opt._restart_hyper = self._hyper_cache[3]  # a restart's GP fit, for the restart it names
        if complete:
            params = [_params(t, names) for t in complete]
            C = None
            if constraint_names:
                C = torch.tensor([[t.constraints[c] for c in constraint_names] for t in complete], dtype=torch.float64)
            opt.tell(params, _clip_infinite([t.value for t in complete]), constraints=C)
        failed = [_params(t, names) for t in trials if t.state == TrialState.FAIL and _covers(t, names)]
        if failed:
            opt.tell(failed, [math.nan] * len(failed))
        running = [t for t in trials if t.state == TrialState.RUNNING and t.number != trial.number]
        pending = [_params(t, names) for t in running if _covers(t, names)]
        if pending:
            opt.set_pending(pending)
        opt.n_sobol = opt.step = trial.number  # the trial's own Sobol point and per-step seed
        x = opt.ask(1)
        self._hyper_cache = (key, list(opt._hyper), opt._fitted_n, opt._restart_hyper)
        return opt.space.decode(x)[0]

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        _refuse_multi_objective(study)
        return self._independent_sampler.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._independent_sampler.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        self._independent_sampler.after_trial(study, trial, state, values)


# ---------------------------------------------------------------------------------------------------------------------
def _refuse_multi_objective(study: Study) -> None:
    if len(study.directions) > 1:
        raise ConfigError(
            f"OptunaSampler optimises one objective but the study has {len(study.directions)} directions; use "
            "optuna.samplers.GPSampler or NSGAIISampler for multi-objective studies."
        )


def _dim(name: str, dist: BaseDistribution) -> Dim:
    if isinstance(dist, FloatDistribution):
        return Float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return Integer(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, CategoricalDistribution):
        return Categorical(name, list(dist.choices))
    raise ConfigError(f"parameter {name!r} has a {type(dist).__name__}, which OptunaSampler does not know.")


def _covers(trial: FrozenTrial, names: list[str]) -> bool:
    return all(name in trial.params for name in names)


def _params(trial: FrozenTrial, names: list[str]) -> dict[str, Any]:
    return {name: trial.params[name] for name in names}


def _clip_infinite(values: list[float]) -> list[float]:
    """Clips +-inf values (Optuna completes such trials) to the finite ones' range, or to 0 if none is finite."""
    finite = [v for v in values if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
    return [min(max(v, lo), hi) for v in values]


def _constraint_names(trials: list[FrozenTrial]) -> list[str]:
    """The constraint names every complete trial set (Optuna's `trial.set_constraint`); [] if none set any."""
    sets = [tuple(sorted(t.constraints)) for t in trials]
    if not sets or not any(sets):
        return []
    if len(set(sets)) > 1:
        raise ConfigError(
            f"trials set different constraints ({sorted(set(sets))}); set the same constraint names on every trial."
        )
    return list(sets[0])
