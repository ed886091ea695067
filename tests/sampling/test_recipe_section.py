"""The recipe's `sampling:` section: resolved once into `Resolved.sampler`, every problem one line, all at once."""

from __future__ import annotations

import copy

import pytest

from rlsurrogate.build import validate
from rlsurrogate.errors import ConfigError
from rlsurrogate.sampling.dynamic import DynamicSampling
from rlsurrogate.sampling.greso import GRESOSampling
from rlsurrogate.sampling.pass_rate import MoPPSSampling, PassRateSampling
from rlsurrogate.sampling.predictive import PredictiveSampling
from rlsurrogate.sampling.uniform import Uniform

GOOD = {
    "model": {"name": "smollm2-135m-instruct"},
    "data": {"task": "arithmetic_mixed", "num_train": 16, "num_eval": 4},
    "rewards": [{"name": "accuracy"}],
    "generation": {"num_generations": 4, "max_completion_length": 16},
    "training": {"per_device_train_batch_size": 4, "max_steps": 1},
}


def _raw(sampling=None, **training):
    raw = copy.deepcopy(GOOD)
    raw["training"].update(training)
    if sampling is not None:
        raw["sampling"] = sampling
    return raw


def _problems(raw, **kwargs) -> list[str]:
    with pytest.raises(ConfigError) as err:
        validate(raw, **kwargs)
    return err.value.problems


def test_without_a_section_the_sampler_is_uniform():
    recipe, resolved = validate(_raw())
    assert recipe.sampling.name == "uniform" and isinstance(resolved.sampler, Uniform)


@pytest.mark.parametrize(
    ("sampling", "cls", "attribute", "value"),
    [
        ({"name": "dynamic", "params": {"max_rounds": 3}}, DynamicSampling, "max_rounds", 3),
        ({"name": "predictive", "params": {"pool_factor": 2, "rule": "ucb"}}, PredictiveSampling, "filters", False),
        ({"name": "predictive", "params": {"filter": True, "max_rounds": 5}}, PredictiveSampling, "max_rounds", 5),
        ({"name": "pass_rate", "params": {"threshold": 0.5}}, PassRateSampling, "filters", False),
        ({"name": "mopps", "params": {"discount": 1.0}}, MoPPSSampling, "filters", False),
        ({"name": "greso", "params": {"max_rounds": 4}}, GRESOSampling, "max_rounds", 4),
    ],
)
def test_the_section_builds_its_sampler_with_its_params(sampling, cls, attribute, value):
    _, resolved = validate(_raw(sampling))
    assert type(resolved.sampler) is cls
    assert getattr(resolved.sampler, attribute) == value


def test_an_unknown_sampler_suggests_the_closest_name():
    (problem,) = _problems(_raw({"name": "dynamc"}))
    assert problem.startswith('sampling.name = "dynamc": unknown sampler.')
    assert 'Did you mean "dynamic"?' in problem and "uniform" in problem and "predictive" in problem


@pytest.mark.parametrize(
    ("sampling", "fragment"),
    [
        ({"name": "dynamic", "params": {"max_rounds": 0}}, "sampling.params.max_rounds = 0"),
        ({"name": "predictive", "params": {"explore": 1.5}}, "sampling.params.explore = 1.5"),
        ({"name": "predictive", "params": {"pool": 4}}, "sampling.params.pool: unknown for predictive. Valid:"),
        ({"name": "uniform", "params": {"max_rounds": 2}}, "sampling.params.max_rounds: unknown for uniform"),
        ({"name": "pass_rate", "params": {"discount": 2}}, "sampling.params.discount = 2"),
        ({"name": "greso", "params": {"p_min": -1}}, "sampling.params.p_min = -1"),
    ],
)
def test_bad_params_are_one_line_each(sampling, fragment):
    (problem,) = _problems(_raw(sampling))
    assert fragment in problem and "\n" not in problem


def test_a_filtering_sampler_needs_whole_groups_on_every_process():
    # 2 processes x 6 completions: TRL's global batch of 12 holds whole groups of 4, a process's 6 does not
    (problem,) = _problems(_raw({"name": "dynamic"}, per_device_train_batch_size=6), num_processes=2)
    assert "per_device_train_batch_size x steps_per_generation = 6 x 1 = 6" in problem
    assert "multiple of num_generations 4" in problem
    # steps_per_generation counts: 6 x 2 = 12 completions per process are whole groups of 4
    raw = _raw({"name": "dynamic"}, per_device_train_batch_size=6, steps_per_generation=2)
    assert isinstance(validate(raw, num_processes=2)[1].sampler, DynamicSampling)
    # uniform takes TRL's batch as it is, whole groups per process or not
    assert isinstance(validate(_raw(None, per_device_train_batch_size=6), num_processes=2)[1].sampler, Uniform)


def test_sampling_problems_are_reported_with_the_others():
    raw = _raw({"name": "dynamic", "params": {"max_rounds": -1}})
    raw["rewards"] = [{"name": "acuracy"}]
    problems = _problems(raw)
    assert any(p.startswith("sampling.params.max_rounds") for p in problems)
    assert any("acuracy" in p for p in problems)
