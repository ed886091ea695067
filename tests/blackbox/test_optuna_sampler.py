"""`OptunaSampler`: Optuna's own sampler test suites (optuna.testing.pytest_samplers), then studies of each parameter
type, failed trials, seeds, constraints and parallel workers."""

from __future__ import annotations

import math
import warnings

import pytest

optuna = pytest.importorskip("optuna")
from optuna.testing.pytest_samplers import (  # noqa: E402
    BasicSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)
from optuna.trial import TrialState  # noqa: E402

from rlsurrogate.blackbox.optuna_sampler import OptunaSampler  # noqa: E402
from rlsurrogate.errors import ConfigError  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)
# Small acquisition settings and one start-up trial, so that Optuna's suites reach the GP after one trial.
FAST = {"num_restarts": 2, "raw_samples": 64, "local_samples": 16}


def make_sampler(seed: int | None = 0, n_startup_trials: int = 1, **kwargs) -> OptunaSampler:
    return OptunaSampler(seed=seed, n_startup_trials=n_startup_trials, **{**FAST, **kwargs})


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class TestBasicSampler(BasicSamplerTestCase):
    @pytest.fixture
    def sampler(self):
        return make_sampler


class TestRelativeSampler(RelativeSamplerTestCase):
    @pytest.fixture
    def sampler(self):
        return make_sampler


class TestSingleOnly(SingleOnlySamplerTestCase):
    @pytest.fixture
    def sampler(self):
        return make_sampler


SUGGEST = {
    "float": (lambda t: t.suggest_float("x", -3.0, 3.0), lambda v: isinstance(v, float) and -3 <= v <= 3),
    "float_log": (lambda t: t.suggest_float("x", 1e-5, 1.0, log=True), lambda v: 1e-5 <= v <= 1.0),
    "float_step": (
        lambda t: t.suggest_float("x", -1.0, 1.0, step=0.25),
        lambda v: abs(v * 4 - round(v * 4)) < 1e-9 and -1 <= v <= 1,
    ),
    "int": (lambda t: t.suggest_int("x", -5, 5), lambda v: type(v) is int and -5 <= v <= 5),
    "int_log": (lambda t: t.suggest_int("x", 1, 1000, log=True), lambda v: type(v) is int and 1 <= v <= 1000),
    "int_step": (lambda t: t.suggest_int("x", 0, 20, step=4), lambda v: type(v) is int and v % 4 == 0),
    "categorical": (
        lambda t: t.suggest_categorical("x", ["a", 2, None, 3.5, True]),
        lambda v: v in ["a", 2, None, 3.5, True],
    ),
}


def loss_of(value) -> float:
    """A value to minimise for every parameter type (categoricals: "a" is best)."""
    if value is None or isinstance(value, (str, bool)):
        return 0.0 if value == "a" else 1.0
    return (math.log10(value) if value > 0 and value < 1 else value / 10) ** 2


@pytest.mark.parametrize("kind", sorted(SUGGEST))
def test_a_study_of_each_parameter_type(kind):
    suggest, valid = SUGGEST[kind]
    study = optuna.create_study(sampler=make_sampler(n_startup_trials=3))
    study.optimize(lambda t: loss_of(suggest(t)) + t.suggest_float("y", 0.0, 1.0), n_trials=8)
    assert all(t.state == TrialState.COMPLETE and valid(t.params["x"]) for t in study.trials)
    # From trial 3 on, the parameters come from the GP (the sampler's relative sampling), not the independent one.
    assert study.best_value <= min(t.value for t in study.trials[:3])


def test_same_seed_same_trials_and_different_seeds_differ():
    def params(seed: int) -> list[dict]:
        study = optuna.create_study(sampler=make_sampler(seed=seed, n_startup_trials=2))
        study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.2) ** 2 + t.suggest_int("k", 0, 4), n_trials=5)
        return [t.params for t in study.trials]

    assert params(3) == params(3)
    assert params(3) != params(4)


def test_failed_and_nan_trials_do_not_stop_the_study():
    def objective(trial):
        x = trial.suggest_float("x", -2.0, 2.0)
        if trial.number in (2, 5):
            raise RuntimeError("the training run crashed")
        return float("nan") if trial.number == 3 else (x - 1.0) ** 2

    study = optuna.create_study(sampler=make_sampler(n_startup_trials=2))
    study.optimize(objective, n_trials=9, catch=(RuntimeError,))
    states = [t.state for t in study.trials]
    assert states.count(TrialState.FAIL) == 3 and states.count(TrialState.COMPLETE) == 6
    assert study.best_value < 0.5


def test_constraints_set_on_trials_steer_the_best_trial():
    def objective(trial):
        x = trial.suggest_float("x", -2.0, 2.0)
        trial.set_constraint("x_at_most_0", x)  # feasible when x <= 0; unconstrained optimum at x = 1
        return (x - 1.0) ** 2

    study = optuna.create_study(sampler=make_sampler(n_startup_trials=3))
    study.optimize(objective, n_trials=12)
    feasible = [t for t in study.trials if t.constraints["x_at_most_0"] <= 0]
    assert min(t.value for t in feasible) < 1.0 + 0.05  # close to the constrained optimum x = 0
    late = study.trials[-5:]
    assert sum(t.params["x"] <= 0.05 for t in late) >= 3


def test_running_trials_are_pending_points():
    sampler = make_sampler(n_startup_trials=2)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("x", 0.0, 1.0) - 0.3) ** 2, n_trials=4)
    first, second = study.ask(), study.ask()  # two workers, neither has told
    x1, x2 = first.suggest_float("x", 0.0, 1.0), second.suggest_float("x", 0.0, 1.0)
    assert abs(x1 - x2) > 1e-4
    study.tell(first, (x1 - 0.3) ** 2)
    study.tell(second, (x2 - 0.3) ** 2)


def test_conditional_parameters_fall_back_to_the_independent_sampler():
    def objective(trial):
        kind = trial.suggest_categorical("kind", ["linear", "tree"])
        if kind == "linear":
            return trial.suggest_float("alpha", 1e-4, 1.0, log=True)
        return trial.suggest_int("depth", 1, 8) / 8

    study = optuna.create_study(sampler=make_sampler(n_startup_trials=2))
    study.optimize(objective, n_trials=8)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_bad_arguments_and_multi_objective_studies_are_refused():
    with pytest.raises(ConfigError, match="n_startup_trials"):
        OptunaSampler(n_startup_trials=-1)
    with pytest.raises(ConfigError, match="set by the study"):
        OptunaSampler(maximize=True)
    with pytest.raises(ConfigError, match="acquisition"):
        OptunaSampler(acquisition="pi")
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=make_sampler())
    with pytest.raises(ValueError, match="one objective"):
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=1)


def test_infinite_values_are_clipped_and_the_study_goes_on():
    def objective(trial):
        x = trial.suggest_float("x", -2.0, 2.0)
        return math.inf if trial.number in (1, 3) else (x - 1.0) ** 2  # Optuna completes a trial whose value is inf

    study = optuna.create_study(sampler=make_sampler(n_startup_trials=2))
    study.optimize(objective, n_trials=7)
    assert all(t.state == TrialState.COMPLETE for t in study.trials) and len(study.trials) == 7
    assert math.isfinite(study.best_value)


def test_gpsampler_keywords_it_does_not_take_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="trial.set_constraint"):
        OptunaSampler(constraints_func=lambda trial: [0.0])
    with pytest.raises(ConfigError, match="deterministic_objective.*BayesianOptimization") as err:
        OptunaSampler(deterministic_objective=True)
    assert "\n" not in str(err.value)


def test_a_restarts_gp_fit_carries_over_from_trial_to_trial(monkeypatch):
    from rlsurrogate.blackbox.bo import BayesianOptimization

    fit, restart_fits = BayesianOptimization._fit, []

    def spy(self, rows=None):
        if rows is not None:  # a restart's GP: was its previous fit there to warm-start from?
            restart_fits.append(self._restart_hyper[0] == int(rows[0]))
        return fit(self, rows)

    monkeypatch.setattr(BayesianOptimization, "_fit", spy)
    sampler = make_sampler(n_startup_trials=3, stall_window=3)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0) ** 2, n_trials=24)
    assert sampler._hyper_cache[3][0] >= 6  # a restart ran: after 3 start-up points and at least 3 without improvement
    assert restart_fits.count(True) >= 1  # each trial builds a new optimizer: the warm start came through the sampler
