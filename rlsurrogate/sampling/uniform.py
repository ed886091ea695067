"""Uniform sampling: TRL's own prompt order, every generated group trained on (today's behaviour, the default).

One round per generation, with the batch TRL's `RepeatSampler` drew (a seeded shuffle of the train dataset, G
copies of each prompt); nothing is dropped and the batch reaches the loss exactly as TRL built it. The sampler
still logs the `sampling/*` metrics of `rlsurrogate.sampling.base` (tokens generated, zero-variance share), so that
runs with different samplers compare on the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlsurrogate.sampling.base import Sampler, sampler_config

__all__ = ["UniformConfig", "Uniform"]


@dataclass
class UniformConfig:
    """Uniform sampling has no settings."""


class Uniform(Sampler):
    """TRL's batch, unchanged."""

    name = "uniform"

    def __init__(self, **params: Any):
        super().__init__()
        self.config = sampler_config(UniformConfig, "uniform", params)
