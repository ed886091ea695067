"""SSO: a target-space surrogate that takes several updates per generation (Lavington et al. 2023, arXiv 2302.02607).

"Target-based Surrogates for Stochastic Optimization" (METHODS.md §5.2-5.3): when computing the gradient's data is
the expensive part, fix the model's outputs z_t = z(theta_t) on a batch, linearise the loss there and add a proximal
term in output space,
    h_t(theta) = l(z_t) + <g_t, z(theta) - z_t> + (1 / 2 eta) ||z(theta) - z_t||_c^2,    g_t = grad_z l(z_t)   (§5.2)
and minimise h_t with m cheap parameter updates before paying for new data. Here the data is a generation of
rollouts and z are the per-token log-probabilities of the sampled completion tokens.

Which quantities are fixed per generation (computed once, at the generation's first use of each micro-batch):
- z_t: the token log-probabilities under the policy that generated (TRL's `old_per_token_logps`, which TRL computes
  whenever a generation is used for more than one optimizer step; without it, m = 1 and the generation is one
  optimizer step at theta_t, so the live forward is z(theta_t));
- g_t: the base loss's gradient with respect to each token's log-probability at z_t, with every normaliser of the
  base (TRL's per-sequence or per-token averaging, gradient accumulation, DDP's average over processes, the filler
  rows of a filtering sampler) folded in, so that the sum of h over micro-batches and processes is the base's loss;
- c: the weights of the squared distance, the base's own token weights (the GRPO family) or a token mean over the
  optimizer step (DisCO), so that (1 / 2 eta) sum c (z - z_t)^2 is (1 / eta) times the k2 estimate of
  KL(pi_t || pi_theta) on the sampled tokens, aggregated as the base loss aggregates tokens;
- l(z_t): the base loss at the rollout policy (only the reported value).
Nothing else changes between the m inner updates; TRL's `num_iterations = m` replays the generation's micro-batches
(m passes over its `steps_per_generation` micro-batches) and the objective returns h's micro-batch share each time.
Because h is a sum over tokens of fixed-coefficient terms, the accumulated gradient is exact for any split of the
tokens into micro-batches and processes.

How the bases enter (all at z_t, where every importance ratio to the rollout policy is 1):
- GRPO family (`grpo`, `dapo`; Shao et al. 2024, arXiv 2402.03300, Eq. 3): the per-token loss -min(r A, clip(r) A)
  has value -A and derivative -A at r = 1, so the clip range never enters h (the trust region is eta); the
  reference-model KL beta k3 = beta (exp(l_ref - z) - (l_ref - z) - 1) enters linearised, derivative
  beta (1 - exp(l_ref - z_t)) (plus beta k3 with TRL's `use_bias_correction_kl`, the KL times r); vLLM's
  importance-sampling ratio multiplies the policy term as in TRL.
- DisCO (Li et al. 2025, arXiv 2505.12366): g_t,i,t' = (dLoss / ds_i) / |o_i| for both scores (log-L, and L-ratio at
  ratio 1). The squared-hinge penalty (beta / 2) [KL - delta]_+^2 is linearised too: at z_t the KL to the rollout
  policy is 0 < delta, so the penalty has zero value and zero gradient there and drops out of h; the proximal term
  takes its place as the trust region.

Limit cases (tests/objectives/test_sso.py):
- m = 1: grad h_t(theta_t) = grad l(theta_t) for every eta (the proximal term's gradient vanishes at z_t), so one
  inner step on a generation that is one optimizer step is exactly the base objective's update.
- eta -> 0: any theta with h_t(theta) <= h_t(theta_t) has ||z(theta) - z_t||_c <= 2 eta ||g_t / c||_c, and the
  exact minimiser in target space is z_t - eta g_t / c: a gradient step of length eta in target space (§5.2),
  projected onto the model's range; the targets stay put as eta -> 0. eta -> inf: h is the linearised base loss.
- With several optimizer steps per generation (`steps_per_generation > gradient_accumulation_steps`) only the
  first step of each generation is at theta_t; later steps minimise the same surrogate further, so even m = 1
  then differs from the base, which re-evaluates its loss at the current theta.

Deviations: the paper's inner solver is Armijo line-search SGD with the step size reset per outer step (§5.3); here
the run's own optimizer (AdamW by default) takes the m inner steps at its learning rate. Not supported with the GRPO
family (a recipe check says so): entropy bonus or entropy masking, off-policy masking, TRL's two-sided `delta`
clip. DisCO with m = 1 and one optimizer step per generation runs DisCO's own loss (the same update, by the m = 1
case).

What eta means: g_t / c is the per-token gradient per unit weight, so the target step z_t - eta g_t / c asks each
sampled token's log-probability to move by eta A rho nats for the GRPO family (A the advantage; minus the KL's pull
when beta > 0) and with DisCO by about eta (G / n_q) (mean length / |o_i|) nats, up for a correct and down for an
incorrect completion (n_q: the question's positives or negatives; 2 in a balanced group).

Checked: the surrogate's value and gradient at theta_t match TRL's loss and DisCO's; m = 1 trains the same weights as
the base; micro-batch splits and 1 vs 2 processes give the same gradients. Whether the extra updates pay off per
generated token is measured by scripts/bench_amortise.py.

Metrics (each micro-batch): `objective/target_shift` (root token-mean square of z - z_t, the change of the targets),
`objective/surrogate_proximal` (this micro-batch's (1 / 2 eta) sum c (z - z_t)^2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from rlsurrogate.errors import ConfigError
from rlsurrogate.micro_batch import trim_completion_padding
from rlsurrogate.objectives.base import Objective, ScoredBatch, TrainerView
from rlsurrogate.objectives.disco import DisCO, DisCOConfig, likelihood_ratio_score, log_likelihood_score
from rlsurrogate.objectives.grpo import GRPOFamily, GRPOFamilyConfig

__all__ = ["SSOConfig", "SSO", "Targets", "sso_surrogate", "grpo_token_weights", "grpo_targets", "disco_targets"]

BASES = ("grpo", "dapo", "disco")
# Base parameters that have no effect on the surrogate (every ratio is 1 at z_t; DisCO's penalty vanishes there).
_INERT = {
    "grpo": ("loss_type", "epsilon", "epsilon_high", "importance_sampling_level"),
    "dapo": ("loss_type", "epsilon", "epsilon_high", "importance_sampling_level"),
    "disco": ("beta", "delta"),
}
_WHY_INERT = {
    "grpo": "every ratio is 1 at the targets",
    "dapo": "every ratio is 1 at the targets",
    "disco": "its KL penalty is 0 with zero gradient at the targets",
}
# GRPOConfig settings whose extra loss terms the surrogate does not reproduce: field -> value that switches it off.
_UNSUPPORTED_TRAINING = {
    "top_entropy_quantile": 1.0,
    "entropy_coef": 0.0,
    "use_adaptive_entropy": False,
    "off_policy_mask_threshold": None,
    "delta": None,
}


@dataclass
class SSOConfig:
    base: str = field(default="dapo", metadata={"help": "The loss the surrogate majorises: grpo | dapo | disco."})
    inner_steps: int = field(
        default=4,
        metadata={"help": "m, optimizer steps on each generation's surrogate (§5.3; the paper sweeps 1-100)."},
    )
    eta: float = field(
        default=1.0,
        metadata={
            "help": "Target step size eta of the proximal term 1/(2 eta) ||z - z_t||^2 (§5.2); smaller stays closer."
        },
    )

    def __post_init__(self) -> None:
        problems = []
        if self.base not in BASES:
            problems.append(f'objective.params.base = "{self.base}": must be one of {", ".join(BASES)}.')
        if isinstance(self.inner_steps, bool) or not isinstance(self.inner_steps, int) or self.inner_steps < 1:
            problems.append(
                f"objective.params.inner_steps = {self.inner_steps}: must be an integer >= 1 (1 is the base's update)."
            )
        if isinstance(self.eta, bool) or not isinstance(self.eta, int | float) or not self.eta > 0:
            problems.append(f"objective.params.eta = {self.eta}: must be > 0 (target step size); try 1.0.")
        if problems:
            raise ConfigError(problems)


@dataclass
class Targets:
    """What one micro-batch's surrogate holds fixed for a generation (shapes `(b, T)` as its completion tokens).

    Attributes:
        z: z_t, token log-probabilities at the rollout policy.
        g: g_t, the base loss's gradient with respect to z at z_t (this process's micro-batch share).
        c: weights of the squared distance (0 on padding).
        value: this micro-batch's share of l(z_t), a 0-dim tensor.
    """

    z: torch.Tensor
    g: torch.Tensor
    c: torch.Tensor
    value: torch.Tensor


# ---------------------------------------------------------------------------------------------------------------
# pure functions


def sso_surrogate(logps: torch.Tensor, targets: Targets, eta: float) -> tuple[torch.Tensor, dict[str, float]]:
    """h_t = l(z_t) + <g_t, z - z_t> + (1 / 2 eta) sum c (z - z_t)^2 on one micro-batch (§5.2).

    Args:
        logps: `(b, T)` current token log-probabilities z(theta).
        targets: the generation's fixed z_t, g_t, c and l(z_t) for these tokens.
        eta: target step size.

    Returns:
        The scalar surrogate and metrics `target_shift` (root c-free token-mean square of z - z_t over c's
        support) and `proximal` (the quadratic term's value).

    Example:
        >>> loss, metrics = sso_surrogate(logps, targets, eta=1.0)  # doctest: +SKIP
    """
    delta = logps - targets.z.to(logps.dtype)  # (b, T)
    c = targets.c.to(logps.dtype)
    linear = (targets.g.to(logps.dtype) * delta).sum()
    proximal = (c * delta.square()).sum() / (2 * eta)
    support = (c > 0).to(logps.dtype)
    shift = ((delta.detach().square() * support).sum() / support.sum().clamp(min=1.0)).sqrt()
    loss = targets.value.to(logps.dtype) + linear + proximal
    return loss, {"target_shift": shift.item(), "proximal": proximal.item()}


def grpo_token_weights(
    mask: torch.Tensor,
    loss_type: str,
    accumulation: int,
    num_items: torch.Tensor | float | None = None,
    num_processes: int = 1,
    steps_per_generation: int = 1,
) -> torch.Tensor:
    """`(b, T)` weight of each token in TRL 1.16's training loss of one micro-batch (`GRPOTrainer._compute_loss`).

    `grpo`: mean over the micro-batch's sequences of each sequence's token mean, divided by the accumulation steps.
    `dapo`: sum over tokens divided by the generation's loss tokens `num_items` per process, rescaled to one
    accumulation window (`num_items / P * accumulation / steps_per_generation`).
    """
    mask = mask.to(torch.float64)
    if loss_type == "grpo":
        lengths = mask.sum(-1, keepdim=True).clamp(min=1.0)  # (b, 1)
        return mask / (lengths * mask.shape[0] * accumulation)
    if loss_type == "dapo":
        items = torch.as_tensor(num_items, dtype=torch.float64, device=mask.device).clamp(min=1.0)
        return mask / (items / num_processes * accumulation / steps_per_generation)
    raise ValueError(f"no token weights for loss_type {loss_type!r}")


def grpo_targets(
    z_t: torch.Tensor,
    advantages: torch.Tensor,
    weights: torch.Tensor,
    beta: float = 0.0,
    ref_logps: torch.Tensor | None = None,
    is_ratio: torch.Tensor | None = None,
    bias_corrected_kl: bool = False,
) -> Targets:
    """GRPO targets: at r = 1 the token loss is -A rho + beta k3, derivative -A rho + beta (1 - e^(l_ref - z)).

    Args:
        z_t: `(b, T)` rollout-policy token log-probabilities.
        advantages: `(b,)` or `(b, T)` advantages.
        weights: `(b, T)` the base's token weights (`grpo_token_weights`, times any filler correction).
        beta: reference-model KL weight; with beta > 0, `ref_logps` `(b, T)` are the reference log-probabilities.
        is_ratio: `(b, T)` or `(b, 1)` vLLM importance-sampling ratios rho (TRL multiplies the policy term), or None.
        bias_corrected_kl: TRL's `use_bias_correction_kl`: the KL term is k3 r, whose derivative at r = 1 adds k3.
    """
    z = z_t.detach().to(torch.float64)
    A = advantages.to(torch.float64)
    A = A.unsqueeze(1) if A.dim() == 1 else A  # (b, 1) or (b, T)
    policy = -A if is_ratio is None else -A * is_ratio.to(torch.float64)
    value_tok, grad_tok = policy.expand_as(z), policy.expand_as(z)
    if beta:
        log_ratio = ref_logps.to(torch.float64) - z  # (b, T)
        k3 = torch.exp(log_ratio) - log_ratio - 1
        value_tok = value_tok + beta * k3
        grad_tok = grad_tok + beta * (1 - torch.exp(log_ratio) + (k3 if bias_corrected_kl else 0.0))
    return Targets(z=z, g=weights * grad_tok, c=weights, value=(weights * value_tok).sum())


def disco_targets(
    z_t: torch.Tensor,
    mask: torch.Tensor,
    score_weights: torch.Tensor,
    tokens: torch.Tensor,
    value: torch.Tensor,
    num_processes: int,
) -> Targets:
    """DisCO's targets: g_i,t = P w_i / |o_i| (w = dLoss/ds at z_t), c = P / (the optimizer step's loss tokens).

    Args:
        z_t: `(b, T)` rollout-policy token log-probabilities.
        mask: `(b, T)` loss mask.
        score_weights: `(b,)` w_i = dLoss/ds_i of the full-batch DisCO loss at z_t.
        tokens: loss tokens of the whole optimizer step on all processes.
        value: this micro-batch's share of the loss at z_t (the full-batch value / accumulation steps).
        num_processes: P (DDP averages gradients over processes).
    """
    mask = mask.to(torch.float64)
    lengths = mask.sum(-1, keepdim=True).clamp(min=1.0)  # (b, 1)
    g = num_processes * score_weights.to(torch.float64).unsqueeze(1) * mask / lengths
    c = num_processes * mask / tokens.to(torch.float64).clamp(min=1.0)
    return Targets(z=z_t.detach().to(torch.float64), g=g, c=c, value=value.detach().to(torch.float64))


# ---------------------------------------------------------------------------------------------------------------
# the objective on RLTrainer


class SSO(Objective):
    """The SSO surrogate of a base objective, minimised by `inner_steps` updates per generation (num_iterations)."""

    def __init__(self, name: str = "sso", base: str = "dapo", inner_steps: int = 4, eta: float = 1.0, **params: Any):
        self.name = name
        self.config = SSOConfig(base=base, inner_steps=inner_steps, eta=eta)
        inert = sorted(set(params) & set(_INERT[base]))
        if inert:
            raise ConfigError(
                [
                    f"objective.params.{k}: has no effect in SSO's surrogate of {base} ({_WHY_INERT[base]}; the "
                    "trust region is eta); remove it."
                    for k in inert
                ]
            )
        if base == "disco":
            self.base: Objective = DisCO("disco", **params)
        else:
            self.base = GRPOFamily(base, **{**params, "loss_type": base})
        self._generation: tuple[int, int] | None = None  # (generation index, id of its first micro-batch)
        self._targets: dict[Any, tuple[dict[str, Any], Targets]] = {}

    @property
    def base_config(self) -> DisCOConfig | GRPOFamilyConfig:
        return self.base.config  # type: ignore[attr-defined]

    def config_overrides(self) -> dict[str, Any]:
        return {**self.base.config_overrides(), "num_iterations": self.config.inner_steps}

    def check(self, reward_names: Sequence[str], training_value: Callable[[str], Any]) -> list[str]:
        problems = self.base.check(reward_names, training_value)
        m = self.config.inner_steps
        if training_value("num_iterations") not in (None, 1, m):
            problems.append(
                f"training.num_iterations = {training_value('num_iterations')}: SSO sets it to "
                f"objective.params.inner_steps ({m}); remove training.num_iterations."
            )
        if self.config.base != "disco":
            for key, off in _UNSUPPORTED_TRAINING.items():
                value = training_value(key)
                if value is not None and value != off:
                    problems.append(
                        f"training.{key} = {value}: SSO's surrogate does not include that loss term; set it to "
                        f"{off} or use objective.name: {self.config.base}."
                    )
        return problems

    def on_scored(self, trainer: TrainerView, scored: ScoredBatch, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.base.on_scored(trainer, scored, batch)

    def compute_loss(self, trainer: TrainerView, model: Any, inputs: dict[str, Any]) -> torch.Tensor | None:
        if not trainer.model.training:
            return self.base.compute_loss(trainer, model, inputs)
        self._start_generation(trainer)
        if self.config.base == "disco":
            if inputs.get("old_per_token_logps") is None:  # m = 1, one step per generation: DisCO's own update
                return self.base.compute_loss(trainer, model, inputs)
            micro, targets = self._disco_micro_batch(trainer)
        else:
            micro = trim_completion_padding(inputs)
        logps, _ = trainer.token_logps(model, micro, False)
        if self.config.base != "disco":
            targets = self._grpo_targets(trainer, micro, logps)
        loss, metrics = sso_surrogate(logps, targets, self.config.eta)
        trainer.log_metric("objective/target_shift", metrics["target_shift"])
        trainer.log_metric("objective/surrogate_proximal", metrics["proximal"])
        return loss

    # -- plumbing ------------------------------------------------------------------------------------------------

    def _start_generation(self, trainer: TrainerView) -> None:
        """Forgets the previous generation's targets when TRL has generated anew."""
        per_generation = trainer.args.steps_per_generation
        index = trainer.micro_step() // (per_generation * trainer.num_iterations)
        first = id(trainer.generation_buffer()[0])
        if self._generation != (index, first):
            self._generation = (index, first)
            self._targets = {}

    def _grpo_targets(self, trainer: TrainerView, micro: dict[str, Any], logps: torch.Tensor) -> Targets:
        j = trainer.micro_step() % trainer.args.steps_per_generation
        if j in self._targets:
            return self._targets[j][1]
        args = trainer.args
        old = micro.get("old_per_token_logps")
        z_t = logps.detach() if old is None else old  # None: m = 1 and theta = theta_t for the whole generation
        mask = _loss_mask(micro)
        accumulation = (
            getattr(trainer, "current_gradient_accumulation_steps", None) or args.gradient_accumulation_steps
        )
        P = trainer.accelerator.num_processes
        weights = grpo_token_weights(
            mask, self.config.base, accumulation, micro.get("num_items_in_batch"), P, args.steps_per_generation
        )
        if "sampling_rows" in micro:  # filler rows of a filtering sampler stay out of the normalisation
            from rlsurrogate.sampling.batch import filler_loss_scale  # lazy: sampling imports objectives.base

            weights = weights * filler_loss_scale(self.config.base, micro, P, args.steps_per_generation)
        beta = float(getattr(args, "beta", 0.0) or 0.0)
        targets = grpo_targets(
            z_t,
            micro["advantages"],
            weights,
            beta,
            micro.get("ref_per_token_logps"),
            micro.get("importance_sampling_ratio"),
            bool(getattr(args, "use_bias_correction_kl", False)),
        )
        self._targets[j] = (micro, targets)
        return targets

    def _disco_micro_batch(self, trainer: TrainerView) -> tuple[dict[str, Any], Targets]:
        """This micro-batch of DisCO's step windows (whole questions per optimizer step) and its targets."""
        args = trainer.args
        accumulation = args.gradient_accumulation_steps
        index = trainer.micro_step() % args.steps_per_generation
        k, j = divmod(index, accumulation)
        if (k, j) not in self._targets:
            disco: Any = self.base
            raw = disco._select(trainer, k)  # DisCO's plan concatenates the untrimmed micro-batches
            window = [trim_completion_padding(m) for m in raw]
            z_t = [m["old_per_token_logps"] for m in window]
            masks = [_loss_mask(m).to(z.dtype) for m, z in zip(window, z_t, strict=True)]
            scores = torch.cat(
                [_disco_score(self.base_config.score, z, mask) for z, mask in zip(z_t, masks, strict=True)]
            )
            plan = disco._make_plan(trainer, raw, True, (scores, torch.zeros((), device=scores.device)))
            P = trainer.accelerator.num_processes
            for i, micro in enumerate(window):
                share = plan.loss_value / accumulation
                targets = disco_targets(z_t[i], masks[i], plan.weights[i], plan.tokens, share, P)
                self._targets[(k, i)] = (micro, targets)
        return self._targets[(k, j)]


# ---------------------------------------------------------------------------------------------------------------
# private helpers


def _loss_mask(batch: dict[str, Any]) -> torch.Tensor:
    mask = batch["completion_mask"]
    return mask * batch["tool_mask"] if batch.get("tool_mask") is not None else mask


def _disco_score(kind: str, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """DisCO's score at the rollout policy: the L-ratio is 1 there (z = z_old)."""
    return likelihood_ratio_score(z, z, mask) if kind == "l_ratio" else log_likelihood_score(z, mask)
