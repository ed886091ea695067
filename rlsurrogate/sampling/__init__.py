"""Signal-aware sampling: which prompts each generation uses, and which groups the step trains on.

`SAMPLERS.get(name)(**params)` builds one: `uniform` (TRL's order, the default), `dynamic` (DAPO: drop zero-variance
groups, refill), `greso` (skip prompts whose recent groups were zero-variance, then DAPO), `predictive` (a GP
predicts each prompt's within-group reward variance before generating), `pass_rate` (a Beta posterior on each
prompt's pass rate with a prior shared across prompts by their features; generates where p(1-p) is high) and
`mopps` (the same posterior without the shared prior: MoPPS).
"""

from __future__ import annotations

from typing import Any

from rlsurrogate.registry import Registry
from rlsurrogate.sampling.base import Sampler
from rlsurrogate.sampling.dynamic import DynamicSampling
from rlsurrogate.sampling.greso import GRESOSampling
from rlsurrogate.sampling.pass_rate import MoPPSSampling, PassRateSampling
from rlsurrogate.sampling.predictive import PredictiveSampling
from rlsurrogate.sampling.uniform import Uniform

__all__ = ["SAMPLERS", "Sampler", "build_sampler"]

SAMPLERS: Registry = Registry(
    "sampler",
    {
        "uniform": Uniform,
        "dynamic": DynamicSampling,
        "greso": GRESOSampling,
        "predictive": PredictiveSampling,
        "pass_rate": PassRateSampling,
        "mopps": MoPPSSampling,
    },
)


def build_sampler(name: str = "uniform", params: dict[str, Any] | None = None) -> Sampler:
    """The sampler registered as `name`, configured with `params`."""
    return SAMPLERS.get(name)(**(params or {}))
