"""Tools and multi-turn environments on TRL 1.16's `tools` / `environment_factory` seam.

A recipe's `tools:` (functions) and `environment:` (a class, or several selected per row by the dataset's
`environment` column) are resolved here once by `rlsurrogate.build`: imported, checked the way TRL will describe them
to the model, and wrapped so that every call is bounded in time (`loading.py`). `chat_template.py` gives ChatML
models without tool support (SmolLM2) a template that renders tool calls; `calculator.py` is the built-in CPU example;
`multi_turn.py` runs the same tool-calling loop greedily for held-out evaluation.
"""

from __future__ import annotations

import inspect
from typing import Any

from rlsurrogate.environments.loading import (
    EnvironmentFactory,
    EnvironmentFailure,
    TimedTool,
    ToolTimeout,
    check_environment_class,
    check_tool,
    load_object,
)

__all__ = [
    "FILTERING_SAMPLER_PROBLEM",
    "EnvironmentFactory",
    "EnvironmentFailure",
    "TimedTool",
    "ToolTimeout",
    "check_reset",
    "environment_rewards",
    "resolve_environment",
    "resolve_tools",
]

# Filtering samplers merge the batches of several generation rounds; TRL 1.16's tool loop adds per-token tool masks
# and per-rollout environment instances (reused across rounds) that those merges do not carry.
FILTERING_SAMPLER_PROBLEM = (
    "sampling.name = {name}: filtering samplers (dynamic, predictive) do not support tools or environments: their "
    "refill rounds merge batches without TRL's tool masks and reuse the environments of earlier rounds; use "
    "sampling.name: uniform."
)


def resolve_tools(specs: list[Any]) -> tuple[list[TimedTool], list[str]]:
    """The recipe's `tools` as bounded callables, and their problems (one line each)."""
    tools, problems = [], []
    for i, spec in enumerate(specs):
        func, found = load_object(spec.name, "tool")
        where = f"tools[{i}] ({spec.name})"
        if func is None:
            problems += [f"tools[{i}]: {p}" for p in found]
            continue
        checked = check_tool(func, where)
        problems += checked
        if not checked:  # TRL awaits async tools on its own loop, where a thread cannot bound them
            tools.append(func if inspect.iscoroutinefunction(func) else TimedTool(func, spec.timeout_s))
    names = [t.__name__ for t in tools]
    twice = sorted({n for n in names if names.count(n) > 1})
    problems += [f"tools: {n!r} is named twice; tool names must be unique." for n in twice]
    return tools, problems


def resolve_environment(spec: Any) -> tuple[Any, list[str]]:
    """TRL's `environment_factory` for the recipe's `environment` (a factory, or {name: factory} for `choices`), and
    its problems."""
    factories: dict[str | None, EnvironmentFactory] = {}
    problems = []
    for key, (reference, params) in spec.classes().items():
        where = "environment" if key is None else f"environment.choices.{key}"
        cls, found = load_object(reference, "environment")
        if cls is None:
            problems += [f"{where}: {p}" for p in found]
            continue
        checked = check_environment_class(cls, params, f"{where} ({reference})")
        problems += checked
        if not checked:
            factories[key] = EnvironmentFactory(cls, params, spec.timeout_s)
    if problems:
        return None, problems
    return (factories[None] if None in factories else factories), []


def check_reset(environment_factory: Any, row: dict[str, Any]) -> None:
    """Builds each environment once and calls `reset(**row)` as TRL will; raises ConfigError naming the
    environment and the problem (an `__init__` or `reset` that raises or outlives its timeout)."""
    from rlsurrogate.errors import ConfigError

    factories = environment_factory if isinstance(environment_factory, dict) else {None: environment_factory}
    if isinstance(environment_factory, dict) and "environment" not in row:
        raise ConfigError(
            "environment.choices: every row must name its environment in an `environment` column (one of "
            f"{', '.join(map(str, factories))}); the dataset has none."
        )
    chosen = row.get("environment") if isinstance(environment_factory, dict) else None
    if chosen not in factories:
        raise ConfigError(
            f"environment: the first row's environment column is {chosen!r}; it must be one of "
            f"{', '.join(map(str, factories))} (environment.choices)."
        )
    factory = factories[chosen]
    # TRL passes the whole row to reset; in multi-environment mode without its control column `environment`.
    fields = {k: v for k, v in row.items() if k != "environment"} if isinstance(environment_factory, dict) else row
    try:
        instance = factory()
        instance.reset(**fields)
    except (EnvironmentFailure, ToolTimeout) as err:
        raise ConfigError(f"environment {factory.__name__}: {err}.") from err
    except Exception as err:  # noqa: BLE001 - __init__ of user code; one line
        raise ConfigError(f"environment {factory.__name__}() raised {type(err).__name__}: {err}.") from err


def environment_rewards(environment_factory: Any) -> list[tuple[str, Any]]:
    """(name, reward) for each environment class with `get_reward`, as TRL 1.16 adds them to the reward list: named
    after the class, scoring only the rollouts of exactly that class (None for the others)."""
    factories = environment_factory if isinstance(environment_factory, dict) else {None: environment_factory}
    rewards: list[tuple[str, Any]] = []
    seen: list[type] = []
    for factory in factories.values():
        cls = getattr(factory, "bounded_cls", None) or type(factory())
        if not callable(getattr(cls, "get_reward", None)) or cls in seen:
            continue
        seen.append(cls)
        rewards.append((cls.__name__, _EnvironmentReward(cls)))
    return rewards


class _EnvironmentReward:
    """`get_reward()` of each rollout's environment of class `cls` (TRL's reward for an environment)."""

    def __init__(self, cls: type):
        self.cls = cls
        self.__name__ = cls.__name__

    def __call__(self, environments: list[Any], **kwargs: Any) -> list[float | None]:
        return [e.get_reward() if type(e) is self.cls else None for e in environments]
