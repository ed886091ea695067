"""Signal-aware sampling: which prompts each generation uses, and which groups the step trains on.

`SAMPLERS.get(name)(**params)` builds one: `uniform` (TRL's order, the default), `dynamic` (DAPO: drop zero-variance
groups, refill), `predictive` (a GP predicts each prompt's within-group reward variance before generating).
"""

from __future__ import annotations

from typing import Any

from rlsurrogate.registry import Registry
from rlsurrogate.sampling.base import Sampler
from rlsurrogate.sampling.dynamic import DynamicSampling
from rlsurrogate.sampling.predictive import PredictiveSampling
from rlsurrogate.sampling.uniform import Uniform

__all__ = ["SAMPLERS", "Sampler", "build_sampler"]

SAMPLERS: Registry = Registry(
    "sampler", {"uniform": Uniform, "dynamic": DynamicSampling, "predictive": PredictiveSampling}
)


def build_sampler(name: str = "uniform", params: dict[str, Any] | None = None) -> Sampler:
    """The sampler registered as `name`, configured with `params`."""
    return SAMPLERS.get(name)(**(params or {}))
