"""Recipe sections `tools:` and `environment:`: every problem one line naming the entry, checked before training."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlsurrogate.build import validate
from rlsurrogate.errors import ConfigError

ENVS = str(Path(__file__).parent / "envs.py")


def _raw(**sections):
    raw = {
        "model": {"name": "smollm2-135m-instruct"},
        "data": {"task": "arithmetic", "num_train": 8, "num_eval": 2},
        "rewards": [{"name": "accuracy"}],
        "generation": {"num_generations": 2, "max_completion_length": 16},
        "training": {"per_device_train_batch_size": 2, "max_steps": 1},
    }
    raw.update(sections)
    return raw


def _problems(**sections) -> list[str]:
    try:
        validate(_raw(**sections), num_processes=1)
    except ConfigError as err:
        return err.problems
    return []


def test_valid_tools_and_environment_resolve_to_trl_arguments():
    from trl import GRPOConfig  # noqa: F401 - the config below must accept max_tool_calling_iterations

    from rlsurrogate.build import grpo_config

    recipe, resolved = validate(
        _raw(
            tools=[f"{ENVS}:add"],
            environment={"name": f"{ENVS}:Counter", "params": {"start": 3}, "timeout_s": 2},
            generation={"num_generations": 2, "max_completion_length": 16, "max_tool_calling_iterations": 3},
        ),
        num_processes=1,
    )
    assert [t.__name__ for t in resolved.tools] == ["add"]
    assert resolved.tools[0](a=2, b=3) == 5
    env = resolved.environment_factory()
    assert type(env).__name__ == "Counter" and env.bump(by=1) == 4
    assert grpo_config(recipe, resolved).max_tool_calling_iterations == 3


def test_several_environments_by_name():
    _, resolved = validate(
        _raw(environment={"choices": {"count": f"{ENVS}:Counter", "more": {"name": f"{ENVS}:Counter",
                                                                            "params": {"start": 5}}}}),
        num_processes=1,
    )
    assert set(resolved.environment_factory) == {"count", "more"}
    assert resolved.environment_factory["more"]().bump(by=1) == 6


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"tools": ["no_colon"]}, r"tools\[0\]: tool 'no_colon': must be 'package.module:function'"),
        ({"tools": ["missing/file.py:add"]}, r"tools\[0\].*file missing/file.py not found"),
        ({"tools": ["math:nope"]}, r"math has no attribute 'nope'"),
        ({"tools": [f"{ENVS}:no_docstring"]}, r"tools\[0\] .*no_docstring\): cannot be described.*no docstring"),
        ({"tools": [f"{ENVS}:no_hints"]}, r"no_hints\): cannot be described.*type hint"),
        ({"tools": [f"{ENVS}:add", f"{ENVS}:add"]}, r"'add' is named twice"),
        ({"tools": [{"name": f"{ENVS}:add", "timeout_s": -1}]}, r"tools\[0\].timeout_s = -1"),
        ({"environment": {"name": f"{ENVS}:NoReset"}}, r"NoReset has no reset method"),
        ({"environment": {"name": f"{ENVS}:UndocumentedTool"}}, r"method poke: cannot be described"),
        ({"environment": {"name": f"{ENVS}:Counter", "params": {"stat": 1}}}, r"unknown param 'stat'.*start"),
        ({"environment": {"name": f"{ENVS}:add"}}, r"is a function, not a class"),
        ({"environment": {"choices": {"a": 3}}}, r"environment.choices.a = 3: must be"),
        ({"environment": {}}, r"set exactly one of name .* and choices"),
        ({"environment": {"name": f"{ENVS}:Counter", "timeoutt_s": 1}}, r"environment.timeoutt_s: unknown key"),
        ({"generation": {"max_tool_calling_iterations": 2}}, r"applies to tools or an environment"),
        (
            {"environment": {"name": f"{ENVS}:Counter"}, "sampling": {"name": "dynamic"}},
            r"sampling.name = dynamic: filtering samplers .* do not support tools or environments",
        ),
    ],
)
def test_bad_entries_are_one_line_each(sections, expected):
    import re

    problems = _problems(**sections)
    assert any(re.search(expected, p) for p in problems), problems
    assert all("\n" not in p for p in problems)


def test_max_tool_calling_iterations_belongs_to_generation():
    problems = _problems(
        tools=[f"{ENVS}:add"],
        training={"per_device_train_batch_size": 2, "max_steps": 1, "max_tool_calling_iterations": 2},
    )
    assert any("training.max_tool_calling_iterations: set it under generation" in p for p in problems)


def test_trl_flat_config_maps_max_tool_calling_iterations():
    from rlsurrogate.trl_config import to_recipe

    recipe, problems = to_recipe(
        {"model_name_or_path": "m", "dataset_name": "d", "reward_funcs": ["accuracy_reward"],
         "max_tool_calling_iterations": 4}
    )
    assert problems == [] and recipe["generation"]["max_tool_calling_iterations"] == 4


@pytest.mark.parametrize(
    ("env", "expected"),
    [("ResetRaises", r"environment ResetRaises.*reset\(\) for row .* raised RuntimeError: no sandbox available"),
     ("ResetHangs", r"environment ResetHangs.*reset\(.*\) did not return within timeout_s = 0.2 s")],
)
def test_reset_that_fails_is_named_before_training(env, expected):
    import re

    from rlsurrogate.environments import check_reset

    _, resolved = validate(_raw(environment={"name": f"{ENVS}:{env}", "timeout_s": 0.2}), num_processes=1)
    with pytest.raises(ConfigError) as info:
        check_reset(resolved.environment_factory, {"prompt": [{"role": "user", "content": "q"}], "answer": "1"})
    assert re.search(expected, str(info.value)), str(info.value)


def test_a_hanging_tool_is_stopped_by_its_timeout_and_named():
    from rlsurrogate.environments import ToolTimeout

    _, resolved = validate(_raw(tools=[{"name": f"{ENVS}:hangs", "timeout_s": 0.2}]), num_processes=1)
    with pytest.raises(ToolTimeout, match=r"tool hangs\(a=1\) did not return within timeout_s = 0.2 s"):
        resolved.tools[0](a=1)
