"""Objectives: the GRPO family (TRL's loss types) and DisCO. `OBJECTIVES.get(name)(**params)` builds one."""

from __future__ import annotations

from rlsurrogate.registry import Registry

__all__ = ["OBJECTIVES", "build_objective"]

OBJECTIVES: Registry = Registry("objective")

from rlsurrogate.objectives import grpo  # noqa: E402,F401  (registers the GRPO family)
from rlsurrogate.objectives import disco  # noqa: E402,F401


def build_objective(name: str, params: dict | None = None):
    """The objective registered as `name`, configured with `params`."""
    return OBJECTIVES.get(name)(**(params or {}))
