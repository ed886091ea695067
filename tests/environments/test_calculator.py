"""The built-in calculator environment: its tools, its reward, and that TRL can describe it."""

from __future__ import annotations

import pytest

from rlsurrogate.environments import check_environment_class
from rlsurrogate.environments.calculator import Calculator


def test_tools_compute_and_the_reward_is_one_only_when_a_result_is_the_answer():
    env = Calculator()
    assert env.reset(answer="68", prompt=[], question="q") is None
    assert env.get_reward() == 0.0  # no call yet
    assert env.subtract(a=80, b=12) == 68 and isinstance(env.subtract(a=80, b=12), int)
    assert env.get_reward() == 1.0
    env.reset(answer="7")
    assert env.add(a="3", b=5) == 8 and env.multiply(a=2.5, b=2) == 5
    assert env.get_reward() == 0.0
    with pytest.raises(ValueError, match="expected a number"):
        env.add(a="three", b=1)
    with pytest.raises(ValueError, match="expected a number"):
        env.multiply(a=1e13, b=1)


def test_trl_can_describe_every_tool():
    assert check_environment_class(Calculator, {}, "environment") == []


def test_environment_rewards_score_only_their_own_class_as_trl_does():
    from rlsurrogate.environments import EnvironmentFactory, environment_rewards
    from tests.environments import envs

    factories = {"calc": EnvironmentFactory(Calculator), "count": EnvironmentFactory(envs.Counter)}
    rewards = dict(environment_rewards(factories))
    assert set(rewards) == {"Calculator", "Counter"}
    calc, count = factories["calc"](), factories["count"]()
    calc.reset(answer="5")
    calc.add(a=2, b=3)
    count.reset()
    assert rewards["Calculator"](environments=[calc, count]) == [1.0, None]
    assert rewards["Counter"](environments=[calc, count]) == [None, 0.0]
