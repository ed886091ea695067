"""Built-in tasks and dataset loaders. A task yields rows with a chat-format `prompt` and a string `answer`."""

from __future__ import annotations

from rlsurrogate.registry import Registry

__all__ = ["TASKS", "build_task"]

TASKS: Registry = Registry("task")


def build_task(name: str, split: str, num: int, seed: int = 0, **params) -> list[dict]:
    """Rows of the built-in task `name` for `split` ("train" or "eval")."""
    from rlsurrogate.tasks import arithmetic  # noqa: F401  (registers the built-in tasks)

    return TASKS.get(name)(split=split, num=num, seed=seed, **params)


def task_names() -> list[str]:
    from rlsurrogate.tasks import arithmetic  # noqa: F401

    return TASKS.names()
