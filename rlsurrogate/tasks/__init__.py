"""Built-in tasks and dataset loaders. A task yields rows with a chat-format `prompt` and a string `answer`."""

from __future__ import annotations

from rlsurrogate.registry import Registry
from rlsurrogate.tasks.arithmetic import arithmetic, arithmetic_mixed, arithmetic_tools

__all__ = ["TASKS", "build_task", "task_names"]

TASKS: Registry = Registry(
    "task", {"arithmetic": arithmetic, "arithmetic_mixed": arithmetic_mixed, "arithmetic_tools": arithmetic_tools}
)


def build_task(name: str, split: str, num: int, seed: int = 0, **params) -> list[dict]:
    """Rows of the built-in task `name` for `split` ("train" or "eval")."""
    return TASKS.get(name)(split=split, num=num, seed=seed, **params)


def task_names() -> list[str]:
    return TASKS.names()
