"""The GRPO family: TRL's own loss types, selected by name.

GRPO (Shao et al. 2024, arXiv 2402.03300, Eq. 3) and its variants differ in how the clipped per-token ratio term is
aggregated (`loss_type`), whether advantages are scaled by the group std (`scale_rewards`, Dr. GRPO arXiv
2503.20783 drops it) and at which level the importance ratio is taken (`importance_sampling_level`; GSPO,
arXiv 2507.18071, uses the sequence level). TRL 1.16 implements all of them in `GRPOTrainer._compute_loss`; this
objective only selects one, so the trainer runs TRL's loss unchanged.

Registered names: grpo, bnpo, dr_grpo, dapo, cispo, sapo, luspo, vespo (TRL `loss_type`s) and gspo
(= `loss_type="grpo"` with `importance_sampling_level="sequence"`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from rlsurrogate.errors import ConfigError
from rlsurrogate.objectives.base import Objective, config_from_params

__all__ = ["GRPOFamilyConfig", "GRPOFamily", "GRPO_FAMILY"]

LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo")


@dataclass
class GRPOFamilyConfig:
    loss_type: str = field(default="dapo", metadata={"help": "TRL loss type; TRL 1.16's default is dapo."})
    beta: float | None = field(default=None, metadata={"help": "KL-to-reference weight; TRL default 0 (no ref)."})
    epsilon: float | None = field(default=None, metadata={"help": "Lower clip range; TRL default 0.2."})
    epsilon_high: float | None = field(default=None, metadata={"help": "Upper clip range; DAPO suggests 0.28."})
    scale_rewards: str | None = field(default=None, metadata={"help": "group | batch | none (Dr. GRPO: none)."})
    importance_sampling_level: str | None = field(default=None, metadata={"help": "token | sequence (GSPO)."})
    mask_truncated_completions: bool | None = field(default=None, metadata={"help": "DAPO overlong filtering."})

    def __post_init__(self) -> None:
        problems = []
        if self.loss_type not in LOSS_TYPES:
            problems.append(
                f'objective.params.loss_type = "{self.loss_type}": must be one of {", ".join(LOSS_TYPES)}.'
            )
        if self.beta is not None and self.beta < 0:
            problems.append(f"objective.params.beta = {self.beta}: must be >= 0; 0 loads no reference model.")
        if self.epsilon is not None and self.epsilon <= 0:
            problems.append(f"objective.params.epsilon = {self.epsilon}: must be > 0; TRL's default is 0.2.")
        if self.scale_rewards not in (None, "group", "batch", "none"):
            problems.append(f'objective.params.scale_rewards = "{self.scale_rewards}": must be group, batch or none.')
        if self.importance_sampling_level not in (None, "token", "sequence"):
            problems.append(
                f'objective.params.importance_sampling_level = "{self.importance_sampling_level}": token or sequence.'
            )
        if problems:
            raise ConfigError(problems)


class GRPOFamily(Objective):
    """Selects one of TRL's GRPO loss types; the loss itself is TRL's."""

    def __init__(self, name: str = "grpo", **params: Any):
        self.name = name
        self.config = config_from_params(GRPOFamilyConfig, name, params)

    def config_overrides(self) -> dict[str, Any]:
        return {
            f.name: getattr(self.config, f.name)
            for f in fields(self.config)
            if getattr(self.config, f.name) is not None
        }


def _factory(name: str, **defaults: Any) -> Any:
    def factory(**params: Any) -> GRPOFamily:
        return GRPOFamily(name, **{**defaults, **params})

    return factory


# name -> factory of the GRPOFamily objective it names; the registry in objectives/__init__.py lists these.
GRPO_FAMILY = {name: _factory(name, loss_type=name) for name in LOSS_TYPES} | {
    "gspo": _factory("gspo", loss_type="grpo", importance_sampling_level="sequence")
}
