"""DisCO: Discriminative Constrained Optimization (Li, Lin, Galanti, Tu, Yang 2025, arXiv 2505.12366).

DisCO replaces GRPO's clipped, group-normalised surrogate by a discriminative objective on binary-labelled
completions: raise the scores of a question's correct completions (S+) above those of its incorrect ones (S-),
subject to a trust region KL(pi_old || pi_theta) <= delta, enforced by a squared-hinge penalty.

Implemented (equation names follow METHODS.md §1, which restates the paper and the authors' code):
- Scores (§1.3): log-L s = (1/|o|) sum_t log pi_theta(o_t), and L-ratio s = (1/|o|) sum_t exp(l_t - l_t^old)
  (the mean *per-token* ratio, not the sequence ratio).
- Objectives per question (§1.4): DisCO-b J_q = mean_{S+} s - mean_{S-} s; DisCO
  J_q = mean_{S+} s - tau * log mean_{S-} exp(s / tau). We use a true log-mean-exp; the authors' code uses
  log-sum-exp through a detach trick, which has the same gradient and a value shifted by tau * log |S-|.
- J = (sum of J_q over questions with >= 1 positive and >= 1 negative) / (number of questions): questions without
  both labels contribute nothing but count in the denominator, as in the authors' code (§1.6, item 4).
- Penalty (§1.5): (beta / 2) * [KL - delta]_+^2 with KL the token mean of (l^old - l) over the batch. Its
  gradient is beta * [KL - delta]_+ * grad KL, which is what the released code implements
  (`stopgrad(max(beta (KL - delta), 0)) * KL`); so our `beta` equals the released code's `beta` (1e3), and a
  penalty written beta' [KL - delta]_+^2 without the 1/2 corresponds to beta = 2 beta'.
- Loss = -J + penalty, computed once per optimizer step over every completion that step uses, on all processes.

How the loss stays the full-batch definition on TRL (written against TRL 1.16):
- `on_scored` attaches each completion's label and global question id, which survive TRL's shuffle.
- At the first micro-batch of each optimizer step, the objective takes that step's completions from TRL's buffered
  generation batch, computes their current scores (a no-grad forward; none when the step is one micro-batch, whose
  forward already gives every score, or when theta = theta_old makes the weights independent of the scores:
  DisCO-b with log-L, or any L-ratio objective), all-gathers scores, labels and
  question ids, and differentiates the full-batch loss with respect to each score. Each micro-batch then
  backpropagates sum_i w_i s_i + c * KL-part, with the weights w_i = dLoss/ds_i and c = beta [KL - delta]_+ held
  fixed: since theta does not change within an optimizer step, the accumulated gradient equals the full-batch
  gradient exactly. The micro-batch loss is multiplied by the number of processes because DDP averages gradients.
- With several optimizer steps per generation (`steps_per_generation > gradient_accumulation_steps`), TRL's random
  split would cut questions apart. Like the authors' code, we give each optimizer step whole questions: question g
  goes to step g mod K (K = steps_per_generation / gradient_accumulation_steps), a rule that does not depend on the
  number of processes. `num_iterations > 1` reuses the same steps with theta != theta_old (KL and L-ratio active).
- Deviation: the authors apply the KL penalty per micro-batch (4 questions per GPU x 8 GPUs); we apply it once per
  optimizer step (the same objective term; a larger batch for the KL estimate).
- Completions whose label reward returned None, and completions with no loss tokens (e.g. masked truncations), are
  neither positive nor negative.
- With vLLM, TRL's importance-sampling correction for the sampler/trainer mismatch is not applied to DisCO's loss
  (the authors' code has none); theta_old is the trainer's own forward at generation time, as in TRL.
- Text models only: the forward passes no image inputs.

Checked: matches a loop implementation written from the formulas and the detach-trick form on random tensors;
2-process and 1-process runs give the same loss and gradients. The paper's results are not reproduced here.

Metrics (each optimizer step): `objective/score_gap` (mean over valid questions of mean positive score minus mean
negative score), `objective/kl` (token-mean KL(old || current)), `objective/constraint_active` (1 if KL > delta),
`objective/valid_group_share` (share of questions with both labels), `objective/entropy` (token-mean entropy).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from rlsurrogate.errors import ConfigError, RewardError, UnsupportedError
from rlsurrogate.micro_batch import trim_completion_padding
from rlsurrogate.objectives.base import Objective, ScoredBatch, TrainerView, config_from_params

__all__ = [
    "DisCOConfig",
    "DisCO",
    "log_likelihood_score",
    "likelihood_ratio_score",
    "disco_objective",
    "kl_old_current",
    "kl_penalty",
    "disco_loss",
    "binarize_labels",
]

SCORES = ("log_l", "l_ratio")
VARIANTS = ("disco", "disco_b")
# Released scripts: tau = 10 for log-L, 1 for L-ratio (METHODS.md §1.8).
DEFAULT_TAU = {"log_l": 10.0, "l_ratio": 1.0}


@dataclass
class DisCOConfig:
    score: str = field(
        default="log_l", metadata={"help": "log_l (mean token log-prob) | l_ratio (mean token ratio), §1.3."}
    )
    variant: str = field(
        default="disco", metadata={"help": "disco (tau log-mean-exp over negatives) | disco_b; §1.4."}
    )
    tau: float | None = field(
        default=None,
        metadata={"help": "Negatives' log-mean-exp temperature (§1.4); default 10 (log_l) or 1 (l_ratio)."},
    )
    delta: float = field(default=1e-4, metadata={"help": "KL budget delta (§1.5); released scripts use 1e-4."})
    beta: float = field(default=1e3, metadata={"help": "Penalty weight, released-code convention (§1.5); 1e3."})
    label_reward: str = field(default="accuracy", metadata={"help": "Reward whose values are the 0/1 labels."})
    label_threshold: float | None = field(
        default=None, metadata={"help": "Binarize the label reward as reward >= threshold (§1.9); None: must be 0/1."}
    )

    def __post_init__(self) -> None:
        problems = []
        if self.score not in SCORES:
            problems.append(f'disco.score = "{self.score}": must be one of {", ".join(SCORES)}.')
        if self.variant not in VARIANTS:
            problems.append(f'disco.variant = "{self.variant}": must be one of {", ".join(VARIANTS)}.')
        if self.tau is None:
            self.tau = DEFAULT_TAU.get(self.score, 1.0)
        if not self.tau > 0:
            problems.append(f"disco.tau = {self.tau}: must be > 0; the paper uses 10 (log_l) or 1 (l_ratio).")
        if not self.delta > 0:
            problems.append(f"disco.delta = {self.delta}: must be > 0 (KL budget, §1.5); the paper uses 1e-4.")
        if not self.beta >= 0:
            problems.append(f"disco.beta = {self.beta}: must be >= 0 (penalty weight, §1.5); the paper uses 1e3.")
        if not self.label_reward:
            problems.append('disco.label_reward = "": name the reward that supplies 0/1 labels, e.g. "accuracy".')
        if problems:
            raise ConfigError(problems)


# ---------------------------------------------------------------------------------------------------------------
# pure functions


def log_likelihood_score(logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log-L score (§1.3): mean token log-probability of each completion.

    Args:
        logps: `(B, T)` token log-probabilities under the current policy.
        mask: `(B, T)` 1 for completion tokens, 0 for padding.

    Returns:
        `(B,)` scores; 0 for a completion without tokens.
    """
    mask = mask.to(logps.dtype)
    return (logps * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)


def likelihood_ratio_score(logps: torch.Tensor, old_logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L-ratio score (§1.3): mean per-token ratio exp(l_t - l_t^old) of each completion.

    Args:
        logps: `(B, T)` token log-probabilities under the current policy.
        old_logps: `(B, T)` token log-probabilities under the rollout policy (no gradient).
        mask: `(B, T)` 1 for completion tokens, 0 for padding.

    Returns:
        `(B,)` scores; all 1 (with gradient mean_t grad l_t) when logps equal old_logps.
    """
    mask = mask.to(logps.dtype)
    ratio = torch.exp((logps - old_logps) * mask)  # (B, T); padding gives exp(0), masked out below
    return (ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)


def disco_objective(
    scores: torch.Tensor, labels: torch.Tensor, group_ids: torch.Tensor, tau: float, variant: str = "disco"
) -> tuple[torch.Tensor, dict[str, float]]:
    """DisCO objective J (§1.4, to maximise) averaged over the questions in the batch.

    Args:
        scores: `(N,)` score of each completion.
        labels: `(N,)` 1 for correct, 0 for incorrect; any other value (NaN, 0.5) is neither and is ignored.
        group_ids: `(N,)` question of each completion (any integers; order and contiguity do not matter).
        tau: temperature of the log-mean-exp over negatives (variant "disco").
        variant: "disco" or "disco_b" (plain mean over negatives).

    Returns:
        J, a scalar: the sum over valid questions (>= 1 positive and >= 1 negative) of J_q, divided by the number
        of questions; and metrics `num_groups`, `num_valid`, `score_gap` (mean over valid questions of mean
        positive minus mean negative score; NaN without valid questions).
    """
    _, inverse = torch.unique(group_ids, return_inverse=True)  # (N,)
    Q = int(inverse.max().item()) + 1 if inverse.numel() else 0
    member = inverse.unsqueeze(0) == torch.arange(Q, device=scores.device).unsqueeze(1)  # (Q, N)
    pos = member & (labels == 1).unsqueeze(0)  # (Q, N)
    neg = member & (labels == 0).unsqueeze(0)  # (Q, N)
    n_pos, n_neg = pos.sum(1), neg.sum(1)  # (Q,)
    valid = (n_pos > 0) & (n_neg > 0)  # (Q,)
    s = scores.unsqueeze(0)  # (1, N)
    zero = torch.zeros((), dtype=scores.dtype, device=scores.device)
    pos_mean = torch.where(pos, s, zero).sum(1) / n_pos.clamp(min=1)  # (Q,)
    neg_mean = torch.where(neg, s, zero).sum(1) / n_neg.clamp(min=1)  # (Q,)
    if variant == "disco_b":
        neg_term = neg_mean
    else:
        # Rows without negatives get finite dummies so that logsumexp's backward never meets an all -inf row.
        logits = torch.where(neg, s / tau, -math.inf)
        logits = torch.where(valid.unsqueeze(1), logits, zero)  # (Q, N)
        neg_term = tau * (torch.logsumexp(logits, dim=1) - torch.log(n_neg.clamp(min=1).to(scores.dtype)))
    J_q = torch.where(valid, pos_mean - neg_term, zero)  # (Q,)
    J = J_q.sum() / max(Q, 1)
    num_valid = int(valid.sum().item())
    gap = (pos_mean - neg_mean)[valid].mean().item() if num_valid else float("nan")
    return J, {"num_groups": Q, "num_valid": num_valid, "score_gap": gap}


def kl_old_current(logps: torch.Tensor, old_logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(pi_old || pi_theta) estimated as the token mean of l^old - l over all tokens of the batch (§1.5).

    Args:
        logps: `(B, T)` current token log-probabilities.
        old_logps: `(B, T)` rollout-policy token log-probabilities.
        mask: `(B, T)` 1 for completion tokens.

    Returns:
        A scalar (a mean over tokens, not over sequences).
    """
    mask = mask.to(logps.dtype)
    return ((old_logps - logps) * mask).sum() / mask.sum().clamp(min=1.0)


def kl_penalty(kl: torch.Tensor, beta: float, delta: float) -> torch.Tensor:
    """Squared hinge (beta / 2) [kl - delta]_+^2; gradient beta [kl - delta]_+ grad kl, as the released code (§1.5)."""
    return 0.5 * beta * torch.relu(kl - delta) ** 2


def disco_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    mask: torch.Tensor,
    labels: torch.Tensor,
    group_ids: torch.Tensor,
    config: DisCOConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Full-batch DisCO loss -J + penalty (§1.7) for one optimizer step's completions.

    Args:
        logps: `(N, T)` current token log-probabilities.
        old_logps: `(N, T)` rollout-policy token log-probabilities.
        mask: `(N, T)` 1 for completion tokens.
        labels: `(N,)` 0/1 labels (others ignored).
        group_ids: `(N,)` question ids.
        config: the DisCO settings.

    Returns:
        The scalar loss and the metrics of `disco_objective` plus `kl`.

    Example:
        >>> loss, metrics = disco_loss(logps, logps.detach(), mask, labels, groups, DisCOConfig())  # doctest: +SKIP
    """
    scores = _score(config.score, logps, old_logps, mask)
    labels = torch.where(mask.sum(-1) > 0, labels, torch.nan)
    J, metrics = disco_objective(scores, labels, group_ids, config.tau, config.variant)
    kl = kl_old_current(logps, old_logps, mask)
    return -J + kl_penalty(kl, config.beta, config.delta), {**metrics, "kl": kl.item()}


def binarize_labels(rewards: torch.Tensor, name: str, threshold: float | None) -> torch.Tensor:
    """0/1 labels from one reward column (§1.9); NaN (reward returned None) stays NaN.

    Raises:
        RewardError: without a threshold, when a value is neither 0 nor 1.
    """
    if threshold is not None:
        return torch.where(torch.isnan(rewards), rewards, (rewards >= threshold).to(rewards.dtype))
    bad = ~torch.isnan(rewards) & (rewards != 0) & (rewards != 1)
    if bad.any():
        examples = ", ".join(f"{v:g}" for v in rewards[bad].unique()[:5].tolist())
        raise RewardError(
            f"DisCO needs binary labels, but reward {name!r} returned {examples}. Set "
            "objective.params.label_threshold (label = reward >= threshold) or choose a 0/1 reward as "
            "objective.params.label_reward."
        )
    return rewards


# ---------------------------------------------------------------------------------------------------------------
# the objective on RLTrainer


class DisCO(Objective):
    """DisCO on RLTrainer: the loss of each optimizer step is the full-batch `disco_loss` over all processes."""

    def __init__(self, name: str = "disco", **params: Any):
        self.name = name
        self.config = config_from_params(DisCOConfig, name, params)
        self._window: list[dict[str, Any]] | None = None
        self._plan: _Plan | None = None

    def config_overrides(self) -> dict[str, Any]:
        # No reference model: the only KL is to the rollout policy (§1.5).
        return {"beta": 0.0}

    def check(self, reward_names: Sequence[str], training_value: Callable[[str], Any]) -> list[str]:
        problems = []
        if self.config.label_reward not in reward_names:
            problems.append(
                f'objective.params.label_reward = "{self.config.label_reward}": not among the recipe\'s rewards '
                f"({', '.join(reward_names) or 'none'}); add it to `rewards` (weight 0 keeps it out of the summed "
                "reward)."
            )
        accumulation = training_value("gradient_accumulation_steps") or 1
        per_generation = training_value("steps_per_generation") or accumulation
        if per_generation % accumulation:
            problems.append(
                f"training.steps_per_generation = {per_generation}: DisCO needs a multiple of "
                f"gradient_accumulation_steps ({accumulation}) so that each optimizer step holds whole questions."
            )
        if training_value("beta"):
            problems.append(
                f"training.beta = {training_value('beta')}: DisCO has no reference-model KL; use "
                "objective.params.beta/delta for its trust region."
            )
        return problems

    def on_scored(self, trainer: TrainerView, scored: ScoredBatch, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        if self.config.label_reward not in scored.reward_names:
            raise ConfigError(
                f'objective.params.label_reward = "{self.config.label_reward}": no such reward in this run '
                f"(rewards: {', '.join(scored.reward_names)})."
            )
        labels = binarize_labels(
            scored.column(self.config.label_reward), self.config.label_reward, self.config.label_threshold
        )
        device = batch["completion_ids"].device
        return {
            "disco_label": labels[scored.local_slice].to(device=device, dtype=torch.float32),
            "disco_group": scored.group_ids[scored.local_slice].to(device),
        }

    def compute_loss(self, trainer: TrainerView, model: Any, inputs: dict[str, Any]) -> torch.Tensor:
        if not trainer.model.training:
            return self._eval_loss(trainer, model, inputs)
        args = trainer.args
        accumulation, per_generation = args.gradient_accumulation_steps, args.steps_per_generation
        if per_generation % accumulation:
            raise UnsupportedError(
                f"DisCO: steps_per_generation ({per_generation}) must be a multiple of gradient_accumulation_steps "
                f"({accumulation}), so that each optimizer step holds whole questions."
            )
        index = trainer.micro_step() % per_generation  # position of this micro-batch in the generation buffer
        j = index % accumulation
        if j == 0 or self._plan is None:
            self._window = self._select(trainer, index // accumulation)
            self._plan = None
        micro = trim_completion_padding(self._window[j])
        logps, entropies, mask = _forward(trainer, model, micro, compute_entropy=True)
        old = micro.get("old_per_token_logps")
        old = logps.detach() if old is None else old
        scores = _score(self.config.score, logps, old, mask)  # (b,)
        if self._plan is None:
            first_step = trainer.micro_step() % (per_generation * trainer.num_iterations) < accumulation
            # One micro-batch per step: this forward already has every current score, no extra pass needed.
            live = (scores.detach(), ((old - logps.detach()) * mask).sum()) if accumulation == 1 else None
            self._plan = self._make_plan(trainer, self._window, first_step, live)
        plan = self._plan
        kl_coef, tokens = plan.kl_coef.to(scores.dtype), plan.tokens.to(scores.dtype)
        surrogate = (plan.weights[j].to(scores.dtype) * scores).sum() + kl_coef * ((old - logps) * mask).sum() / tokens
        loss = trainer.accelerator.num_processes * surrogate  # DDP averages gradients over processes
        if plan.loss_value is not None:  # report the full-batch value; the gradient stays the surrogate's
            loss = loss - loss.detach() + plan.loss_value.to(loss.dtype) / accumulation
        plan.record(scores.detach(), micro, mask, ((old - logps.detach()) * mask).sum(), (entropies * mask).sum())
        if j == accumulation - 1:
            self._log(trainer, plan)
        return loss

    # -- plumbing ------------------------------------------------------------------------------------------------

    def _select(self, trainer: Any, k: int) -> list[dict[str, Any]]:
        """The micro-batches of optimizer step k of the current generation (whole questions when K > 1)."""
        accumulation = trainer.args.gradient_accumulation_steps
        K = trainer.args.steps_per_generation // accumulation
        buffer = trainer.generation_buffer()
        return list(buffer) if K == 1 else _whole_questions(buffer, k, K, accumulation)

    def _make_plan(
        self,
        trainer: Any,
        micro_batches: list[dict[str, Any]],
        at_rollout_policy: bool,
        live: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> _Plan:
        """Weights w_i = dLoss/ds_i and the KL coefficient of one optimizer step, from all processes' completions.

        `live` holds (scores, KL numerator) of the step when the caller already has them (one micro-batch per step).
        """
        window = _concat(micro_batches)
        mask = _loss_mask(window)
        labels = torch.where(mask.sum(-1) > 0, window["disco_label"], torch.nan)
        # At theta = theta_old the weights of DisCO-b/log-L and of L-ratio do not depend on the scores' values.
        skip = (
            live is None and at_rollout_policy and (self.config.variant == "disco_b" or self.config.score == "l_ratio")
        )
        if live is not None:
            scores, kl_sum = live
        elif skip:
            scores = torch.full_like(labels, 1.0 if self.config.score == "l_ratio" else 0.0)
            kl_sum = torch.zeros((), device=mask.device)
        else:
            scores, kl_sum = self._current_scores(trainer, micro_batches)
        all_scores, offset = _gather_rows(trainer, scores)
        all_labels, _ = _gather_rows(trainer, labels)
        all_groups, _ = _gather_rows(trainer, window["disco_group"])
        totals = trainer.accelerator.reduce(torch.stack([kl_sum.double(), mask.sum().double()]), reduction="sum")
        tokens = totals[1].clamp(min=1.0)
        kl = totals[0] / tokens
        s = all_scores.double().requires_grad_(True)
        J, _ = disco_objective(s, all_labels, all_groups, self.config.tau, self.config.variant)
        weights = -torch.autograd.grad(J, s, allow_unused=True)[0] if J.requires_grad else torch.zeros_like(s)
        local = weights[offset : offset + scores.shape[0]]
        sizes = [m["completion_ids"].shape[0] for m in micro_batches]
        loss_value = None if skip else -J.detach() + kl_penalty(kl, self.config.beta, self.config.delta)
        return _Plan(
            micro_batches,
            list(local.split(sizes)),
            self.config.beta * torch.relu(kl - self.config.delta),
            tokens,
            loss_value,
        )

    def _current_scores(self, trainer: Any, micro_batches: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        scores, kl_sum = [], 0.0
        with torch.no_grad():
            for micro in map(trim_completion_padding, micro_batches):
                logps, _, mask = _forward(trainer, trainer.model, micro, compute_entropy=False)
                old = micro.get("old_per_token_logps")
                old = logps if old is None else old
                scores.append(_score(self.config.score, logps, old, mask))
                kl_sum = kl_sum + ((old - logps) * mask).sum()
        return torch.cat(scores), torch.as_tensor(kl_sum)

    def _eval_loss(self, trainer: Any, model: Any, inputs: dict[str, Any]) -> torch.Tensor:
        logps, _, mask = _forward(trainer, model, inputs, compute_entropy=False)
        old = inputs.get("old_per_token_logps")
        old = logps if old is None else old
        scores = _score(self.config.score, logps, old, mask)
        labels = torch.where(mask.sum(-1) > 0, inputs["disco_label"], torch.nan)
        all_scores, _ = _gather_rows(trainer, scores)
        all_labels, _ = _gather_rows(trainer, labels)
        all_groups, _ = _gather_rows(trainer, inputs["disco_group"])
        J, _ = disco_objective(all_scores, all_labels, all_groups, self.config.tau, self.config.variant)
        return -J

    def _log(self, trainer: Any, plan: _Plan) -> None:
        scores, labels, groups = (torch.cat(x) for x in zip(*plan.seen, strict=True))
        all_scores, _ = _gather_rows(trainer, scores)
        all_labels, _ = _gather_rows(trainer, labels)
        all_groups, _ = _gather_rows(trainer, groups)
        _, metrics = disco_objective(all_scores, all_labels, all_groups, self.config.tau, self.config.variant)
        sums = trainer.accelerator.reduce(torch.stack(plan.sums).sum(0), reduction="sum")  # (kl, entropy, tokens)
        kl, entropy = (sums[:2] / sums[2].clamp(min=1.0)).tolist()
        if metrics["num_valid"]:
            trainer.log_metric("objective/score_gap", metrics["score_gap"])
        trainer.log_metric("objective/kl", kl)
        trainer.log_metric("objective/constraint_active", float(kl > self.config.delta))
        trainer.log_metric("objective/valid_group_share", metrics["num_valid"] / max(metrics["num_groups"], 1))
        trainer.log_metric("objective/entropy", entropy)


# ---------------------------------------------------------------------------------------------------------------
# private helpers


@dataclass
class _Plan:
    micro_batches: list[dict[str, Any]]
    weights: list[torch.Tensor]  # per micro-batch, (b,) float64 dLoss/ds of this process's completions
    kl_coef: torch.Tensor  # beta [KL - delta]_+ over the whole optimizer step
    tokens: torch.Tensor  # loss tokens of the whole optimizer step on all processes
    loss_value: torch.Tensor | None  # the full-batch loss, when the scores were computed up front
    seen: list[tuple[torch.Tensor, ...]] = field(default_factory=list)
    sums: list[torch.Tensor] = field(default_factory=list)

    def record(self, scores, micro, mask, kl_sum, entropy_sum) -> None:
        labels = torch.where(mask.sum(-1) > 0, micro["disco_label"], torch.nan)
        self.seen.append((scores.float(), labels, micro["disco_group"]))
        self.sums.append(torch.stack([kl_sum.detach().float(), entropy_sum.detach().float(), mask.sum().float()]))


def _score(kind: str, logps: torch.Tensor, old_logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if kind == "l_ratio":
        return likelihood_ratio_score(logps, old_logps, mask)
    return log_likelihood_score(logps, mask)


def _loss_mask(batch: dict[str, Any]) -> torch.Tensor:
    mask = batch["completion_mask"]
    return mask * batch["tool_mask"] if batch.get("tool_mask") is not None else mask


def _forward(trainer: TrainerView, model: Any, batch: dict[str, Any], compute_entropy: bool):
    """Token log-probs `(b, T)`, entropies and loss mask of a batch, through the trainer's forward."""
    logps, entropies = trainer.token_logps(model, batch, compute_entropy)
    return logps, entropies, _loss_mask(batch).to(logps.dtype)


def _gather_rows(trainer: Any, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Rows of every process in rank order (sizes may differ), and where this process's rows start."""
    accelerator = trainer.accelerator
    if accelerator.num_processes == 1:
        return x, 0
    sizes = accelerator.gather(torch.tensor([x.shape[0]], device=x.device)).tolist()
    padded = accelerator.gather(accelerator.pad_across_processes(x, dim=0))
    width = max(sizes)
    rows = torch.cat([padded[r * width : r * width + n] for r, n in enumerate(sizes)])
    return rows, sum(sizes[: accelerator.process_index])


def _take(batch: dict[str, Any], index: torch.Tensor) -> dict[str, Any]:
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.ndim > 0:
            out[key] = value[index.to(value.device)]
        elif isinstance(value, list):
            out[key] = [value[i] for i in index.tolist()]
        else:
            out[key] = value
    return out


def _concat(batches: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for key, value in batches[0].items():
        if isinstance(value, torch.Tensor) and value.ndim > 0:
            out[key] = torch.cat([b[key] for b in batches])
        elif isinstance(value, list):
            out[key] = [x for b in batches for x in b[key]]
        else:
            out[key] = value
    return out


def _whole_questions(buffer: list[dict], k: int, K: int, accumulation: int) -> list[dict[str, Any]]:
    """Micro-batches of optimizer step k: the buffered rows of questions g with g mod K == k, in TRL's order."""
    batch = _concat(buffer)
    rows = torch.nonzero(batch["disco_group"].cpu() % K == k).squeeze(1)
    parts = torch.tensor_split(rows, accumulation)
    if any(len(p) == 0 for p in parts):
        raise UnsupportedError(
            f"DisCO: optimizer step {k} has {len(rows)} completions on this process, fewer than "
            f"gradient_accumulation_steps ({accumulation}); make per_device_train_batch_size a multiple of "
            "num_generations so that every process holds whole questions."
        )
    return [_take(batch, p) for p in parts]
