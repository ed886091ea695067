"""Objectives: the GRPO family (TRL's loss types) and DisCO. `OBJECTIVES.get(name)(**params)` builds one."""

from __future__ import annotations

from rlsurrogate.objectives.base import Objective
from rlsurrogate.registry import Registry

__all__ = ["OBJECTIVES", "build_objective"]

OBJECTIVES: Registry = Registry("objective")

# Importing the method modules registers them (they need OBJECTIVES, defined above).
from rlsurrogate.objectives import disco, grpo  # noqa: E402,F401


def build_objective(name: str, params: dict | None = None) -> Objective:
    """The objective registered as `name`, configured with `params`."""
    return OBJECTIVES.get(name)(**(params or {}))
