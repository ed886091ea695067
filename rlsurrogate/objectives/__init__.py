"""Objectives: the GRPO family (TRL's loss types), DisCO, and SSO (a target-space surrogate of either).

`OBJECTIVES.get(name)(**params)` builds one.
"""

from __future__ import annotations

from rlsurrogate.objectives.base import Objective
from rlsurrogate.objectives.disco import DisCO
from rlsurrogate.objectives.grpo import GRPO_FAMILY
from rlsurrogate.objectives.sso import SSO
from rlsurrogate.registry import Registry

__all__ = ["OBJECTIVES", "build_objective"]

OBJECTIVES: Registry = Registry(
    "objective",
    {
        **GRPO_FAMILY,
        "disco": lambda **params: DisCO("disco", **params),
        "disco_b": lambda **params: DisCO("disco_b", **{"variant": "disco_b", **params}),
        "sso": lambda **params: SSO("sso", **params),
    },
)


def build_objective(name: str, params: dict | None = None) -> Objective:
    """The objective registered as `name`, configured with `params`."""
    return OBJECTIVES.get(name)(**(params or {}))
