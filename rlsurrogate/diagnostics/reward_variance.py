"""Reward variance and on-policy accuracy: what makes a reward a good teacher for policy gradients.

Razin, Wang, Strauss, Wei, Lee, Arora, "What Makes a Reward Model a Good Teacher? An Optimization Perspective"
(2025, arXiv 2503.15477). The paper shows that the reward variance a reward induces under the *current* policy,

    Var_{y~pi(.|x)}[r(x, y)] = 1/2 E_{y, y' ~ pi(.|x)} (r(x, y) - r(x, y'))^2,                      (variance, Def.)

bounds how fast policy-gradient training can raise the expected reward (Thm. 1: time Omega(Var^(-1/3))), while
the reward's accuracy -- the share of response pairs it orders like the ground truth,

    acc_x = E_{(y, y')} 1[sign(r(x, y) - r(x, y')) = sign(r_G(x, y) - r_G(x, y'))],                (accuracy, Def.)

depends only on the ranking. A strictly increasing transform of a reward keeps its accuracy and can shrink its
variance to almost nothing, so an accurate reward can still be a poor teacher (Thm. 2).

This file holds the estimators on a `(P, K)` matrix of rewards (P prompts, K sampled completions each) and the
`RewardVarianceMonitor`, a score listener for `RLTrainer` that logs them every step.

Conventions (the paper's code, `RMEval/rm_eval_recipe.py`, uses the same ones):
- Within-group variance uses 1/(K-1) by default (`unbiased=True`), which equals 1/2 the mean squared difference
  over the K(K-1) ordered pairs of *distinct* completions; `unbiased=False` uses 1/K, which equals 1/2 the mean
  over all K^2 ordered pairs including a completion with itself (the plug-in estimate of the definition above).
- Whitened rewards are `(r - mean) / std` with the mean and std of the whole `(P, K)` matrix (std with the same
  1/(n-1) or 1/n convention), so rewards on different scales can be compared. A constant matrix whitens to 0.
- Accuracy is computed on-policy, over the K(K-1)/2 pairs of one prompt's completions; a tie counts as agreement
  only when both rewards tie (sign equality gives exactly that rule).
- NaN (a reward that returned None) is left out: of the variance, of the global mean/std and of any pair. A
  prompt with fewer than two scored completions has NaN variance and accuracy and is left out of the summaries.

Deviation: the paper does not specify "nearly flat"; we call a group flat when its variance is <= `FLAT_ATOL`.

Metrics logged by the monitor, for each reward `<name>` and for `total` (the weighted sum TRL turns into
advantages):
- `diagnostics/<name>/within_group_var_mean`: mean over prompts of the within-group variance.
- `diagnostics/<name>/within_group_var_q25`, `_q50`, `_q75`: its quartiles over prompts.
- `diagnostics/<name>/whitened_var_mean`: the same mean after whitening by the batch's global mean and std.
- `diagnostics/<name>/zero_var_share`: share of prompts whose completions all got the same reward (no signal).
- `diagnostics/<name>/flat_steps`: consecutive train steps with `zero_var_share >= flat_threshold`.

Status: estimators checked against naive pairwise loops in tests; the training-speed claim is the paper's.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from rlsurrogate.errors import ConfigError

if TYPE_CHECKING:
    from rlsurrogate.objectives.base import ScoredBatch

__all__ = [
    "FLAT_ATOL",
    "QUANTILES",
    "TeacherStats",
    "group_rewards",
    "within_group_variance",
    "whiten",
    "zero_variance_share",
    "nan_quantiles",
    "pairwise_accuracy",
    "teacher_stats",
    "RewardVarianceMonitor",
]

logger = logging.getLogger(__name__)

# A variance below this is "zero": rewards are floats computed from text, so a flat group is exactly flat, but
# sums of weighted rewards can differ in the last bits.
FLAT_ATOL = 1e-10
# Quartiles, as the paper's code logs them (with min and max, which the report adds).
QUANTILES = (0.25, 0.5, 0.75)


# ---------------------------------------------------------------------------------------------------------------
# pure functions on (P, K) reward matrices


def group_rewards(rewards: torch.Tensor, num_generations: int) -> torch.Tensor:
    """Reshapes flat rewards into groups: rows `g*K ... (g+1)*K - 1` belong to prompt g (TRL's order).

    Args:
        rewards: `(N,)` or `(N, F)` rewards, N divisible by `num_generations`.
        num_generations: K, completions per prompt.

    Returns:
        `(P, K)` or `(P, K, F)` with P = N / K.
    """
    n = rewards.shape[0]
    if num_generations < 1 or n % num_generations:
        raise ValueError(f"{n} rewards do not split into groups of num_generations={num_generations}")
    return rewards.reshape(n // num_generations, num_generations, *rewards.shape[1:])


def within_group_variance(rewards: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of each prompt's K rewards (the paper's reward variance, estimated on-policy).

    With `unbiased=True` this is `sum_k (r_k - mean)^2 / (n - 1)` = 1/2 mean over distinct ordered pairs of
    `(r_i - r_j)^2`; with `unbiased=False` it divides by n (= 1/2 mean over all n^2 ordered pairs). n counts the
    non-NaN rewards of the group.

    Args:
        rewards: `(P, K)` or `(P, K, F)`, NaN where a reward did not apply.
        unbiased: 1/(n-1) (True) or 1/n (False).

    Returns:
        `(P,)` or `(P, F)` variances; NaN for a group with fewer than 2 (unbiased) or 1 scored completions.

    Example:
        >>> within_group_variance(torch.tensor([[0.0, 1.0], [2.0, 2.0]]))
        tensor([0.5000, 0.0000])
    """
    valid = ~torch.isnan(rewards)
    n = valid.sum(dim=1)
    filled = torch.where(valid, rewards, torch.zeros_like(rewards))
    mean = filled.sum(dim=1) / n.clamp(min=1)
    centered = torch.where(valid, rewards - mean.unsqueeze(1), torch.zeros_like(rewards))
    denom = n - 1 if unbiased else n
    var = centered.pow(2).sum(dim=1) / denom.clamp(min=1)
    return torch.where(denom >= 1, var, torch.full_like(var, float("nan")))


def whiten(rewards: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Normalises a reward matrix by its global mean and std, so rewards on different scales compare.

    Args:
        rewards: `(P, K)` (or `(P, K, F)`: each reward column `F` is whitened on its own); NaN is ignored.
        unbiased: std with 1/(n-1) (the paper's code, `torch.std`) or 1/n.

    Returns:
        Same shape; `(r - mean) / std`, or 0 where the global std is 0 (a constant reward carries no signal).

    Example:
        >>> whiten(torch.tensor([[0.0, 2.0]]), unbiased=False)
        tensor([[-1.,  1.]])
    """
    flat = rewards.reshape(-1, *rewards.shape[2:])  # (P*K[, F])
    valid = ~torch.isnan(flat)
    n = valid.sum(dim=0)
    mean = torch.where(valid, flat, torch.zeros_like(flat)).sum(dim=0) / n.clamp(min=1)
    sq = torch.where(valid, (flat - mean).pow(2), torch.zeros_like(flat)).sum(dim=0)
    std = (sq / ((n - 1) if unbiased else n).clamp(min=1)).sqrt()
    safe_std = torch.where(std > 0, std, torch.ones_like(std))
    return torch.where(std > 0, (rewards - mean) / safe_std, 0.0 * rewards)  # 0 * NaN stays NaN


def zero_variance_share(variances: torch.Tensor, atol: float = FLAT_ATOL) -> torch.Tensor:
    """Share of groups whose variance is <= `atol` (no learning signal), among groups with a defined variance.

    Args:
        variances: `(P,)` or `(P, F)` from `within_group_variance`.

    Returns:
        Scalar or `(F,)`; NaN when no group has a defined variance.
    """
    defined = ~torch.isnan(variances)
    flat = (variances <= atol) & defined
    return flat.sum(dim=0) / defined.sum(dim=0)  # 0/0 -> NaN


def nan_quantiles(values: torch.Tensor, q: Sequence[float] = QUANTILES) -> torch.Tensor:
    """Quantiles over dim 0 ignoring NaN (linear interpolation, as `torch.quantile`).

    Args:
        values: `(P,)` or `(P, F)`.

    Returns:
        `(len(q),)` or `(len(q), F)`.
    """
    qs = torch.tensor(list(q), dtype=values.dtype, device=values.device)
    return torch.nanquantile(values, qs, dim=0)


def pairwise_accuracy(rewards: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """On-policy accuracy per prompt: share of the K(K-1)/2 completion pairs ordered like the gold reward.

    A pair agrees when `sign(r_i - r_j) == sign(g_i - g_j)`, so a tie counts as agreement only when both tie.
    Pairs with a NaN reward on either side are skipped.

    Args:
        rewards: `(P, K)` candidate rewards.
        gold: `(P, K)` ground-truth rewards of the same completions.

    Returns:
        `(P,)` accuracies in [0, 1]; NaN for a prompt without a valid pair.

    Example:
        >>> pairwise_accuracy(torch.tensor([[0.1, 0.9, 0.5]]), torch.tensor([[0.0, 1.0, 1.0]]))
        tensor([0.6667])
    """
    if rewards.shape != gold.shape or rewards.dim() != 2:
        raise ValueError(f"rewards {tuple(rewards.shape)} and gold {tuple(gold.shape)} must both be (P, K)")
    i, j = torch.triu_indices(rewards.shape[1], rewards.shape[1], offset=1, device=rewards.device)
    d_r = rewards[:, i] - rewards[:, j]  # (P, K(K-1)/2)
    d_g = gold[:, i] - gold[:, j]
    valid = ~(torch.isnan(d_r) | torch.isnan(d_g))
    agree = (torch.sign(d_r) == torch.sign(d_g)) & valid
    return agree.sum(dim=1) / valid.sum(dim=1)  # 0/0 -> NaN


@dataclass
class TeacherStats:
    """Per-reward summary of §3.4: variance (raw and whitened) over prompts, accuracy vs gold, var x acc."""

    var_mean: float
    var_quartiles: list[float]
    whitened_var_mean: float
    whitened_var_quartiles: list[float]
    zero_var_share: float
    accuracy: float | None
    var_x_acc: float | None
    per_prompt_var: list[float]
    per_prompt_whitened_var: list[float]
    per_prompt_accuracy: list[float] | None


def teacher_stats(rewards: torch.Tensor, gold: torch.Tensor | None = None, unbiased: bool = True) -> TeacherStats:
    """Summarises one candidate reward on a `(P, K)` matrix of on-policy samples (METHODS.md §3.4).

    `var_x_acc` is the whitened variance mean times the mean accuracy (the product the paper correlates with the
    gold-reward increase); without gold, accuracy and var x acc are None.

    Args:
        rewards: `(P, K)` candidate rewards.
        gold: `(P, K)` gold rewards of the same completions, or None.
        unbiased: 1/(K-1) (default) or 1/K.
    """
    rewards = rewards.double()
    var = within_group_variance(rewards, unbiased)  # (P,)
    wvar = within_group_variance(whiten(rewards, unbiased), unbiased)  # (P,)
    quart = _quartiles(var)
    wquart = _quartiles(wvar)
    accuracy = per_prompt_acc = var_x_acc = None
    if gold is not None:
        acc = pairwise_accuracy(rewards, gold.double())  # (P,)
        accuracy = float(acc.nanmean())
        per_prompt_acc = acc.tolist()
        var_x_acc = float(wvar.nanmean()) * accuracy
    return TeacherStats(
        var_mean=float(var.nanmean()),
        var_quartiles=quart,
        whitened_var_mean=float(wvar.nanmean()),
        whitened_var_quartiles=wquart,
        zero_var_share=float(zero_variance_share(var)),
        accuracy=accuracy,
        var_x_acc=var_x_acc,
        per_prompt_var=var.tolist(),
        per_prompt_whitened_var=wvar.tolist(),
        per_prompt_accuracy=per_prompt_acc,
    )


# ---------------------------------------------------------------------------------------------------------------
# the training callback


class RewardVarianceMonitor:
    """Score listener for `RLTrainer`: logs per-reward variance diagnostics and warns about flat rewards.

    Called as `monitor(trainer, scored)` after each scoring; logs through `trainer.log_metric`, so the values
    reach the console, TensorBoard and W&B with TRL's own metrics. When a reward has had zero variance on at
    least `flat_threshold` of the prompts for `flat_steps` consecutive train steps, it warns once (a
    `UserWarning` on the main process); the warning re-arms after the reward shows signal again. Turn it off
    with `diagnostics.enabled: false` in the recipe.

    Args:
        flat_threshold: share of flat prompts that makes a step "flat" (default 0.95).
        flat_steps: consecutive flat train steps before the warning (default 20).
        unbiased: 1/(K-1) (default) or 1/K within-group variance.

    Example:
        >>> trainer = RLTrainer(..., score_listeners=[RewardVarianceMonitor(0.95, 20)])  # doctest: +SKIP
    """

    def __init__(self, flat_threshold: float = 0.95, flat_steps: int = 20, unbiased: bool = True):
        problems = []
        if not 0.0 < flat_threshold <= 1.0:
            problems.append(
                f"diagnostics.flat_threshold = {flat_threshold}: must be in (0, 1] (a share of prompts); "
                "the default is 0.95."
            )
        if flat_steps < 1:
            problems.append(f"diagnostics.flat_steps = {flat_steps}: must be >= 1 (train steps); the default is 20.")
        if problems:
            raise ConfigError(problems)
        self.flat_threshold, self.flat_steps, self.unbiased = flat_threshold, flat_steps, unbiased
        self.streaks: dict[str, int] = {}
        self._last_step: dict[str, int] = {}
        self._warned: set[str] = set()

    def __call__(self, trainer: Any, scored: ScoredBatch) -> None:
        metrics, zero_share = self.compute(scored)
        names = [*scored.reward_names, "total"]
        if scored.mode == "train":
            for name, share in zip(names, zero_share):
                self._update_streak(name, share, scored.step, trainer)
        for name in names:
            metrics[f"diagnostics/{name}/flat_steps"] = float(self.streaks.get(name, 0))
        for key, value in metrics.items():
            if value == value:  # NaN: the reward returned None on every completion; nothing to log
                trainer.log_metric(key, value)

    def compute(self, scored: ScoredBatch) -> tuple[dict[str, float], list[float]]:
        """The metrics of one scored batch (without streaks) and each column's zero-variance share."""
        r = scored.rewards_per_func.detach().to("cpu", torch.float64)  # (N, F); one device sync
        w = scored.reward_weights.detach().to("cpu", torch.float64)
        total = (torch.nan_to_num(r) * w).sum(dim=1, keepdim=True)  # (N, 1); TRL's nansum of weighted rewards
        grouped = group_rewards(torch.cat([r, total], dim=1), scored.num_generations)  # (P, K, F+1)
        unbiased = self.unbiased
        var = within_group_variance(grouped, unbiased)  # (P, F+1)
        wvar = within_group_variance(whiten(grouped, unbiased), unbiased)  # (P, F+1)
        zero = zero_variance_share(var)  # (F+1,)
        stats = torch.cat([var.nanmean(0, keepdim=True), nan_quantiles(var), wvar.nanmean(0, keepdim=True)])
        rows = stats.tolist()  # (5, F+1)
        zero_share = zero.tolist()
        metrics: dict[str, float] = {}
        for f, name in enumerate([*scored.reward_names, "total"]):
            prefix = f"diagnostics/{name}/"
            metrics[prefix + "within_group_var_mean"] = rows[0][f]
            for qi, q in enumerate(QUANTILES):
                metrics[prefix + f"within_group_var_q{round(100 * q)}"] = rows[1 + qi][f]
            metrics[prefix + "whitened_var_mean"] = rows[-1][f]
            metrics[prefix + "zero_var_share"] = zero_share[f]
        return metrics, zero_share

    def _update_streak(self, name: str, share: float, step: int, trainer: Any) -> None:
        if not share >= self.flat_threshold:  # NaN (reward never applied) does not count as flat
            self.streaks[name] = 0
            self._warned.discard(name)
            return
        if self._last_step.get(name) != step:  # several generation batches in one step count once
            self.streaks[name] = self.streaks.get(name, 0) + 1
            self._last_step[name] = step
        if self.streaks[name] >= self.flat_steps and name not in self._warned:
            self._warned.add(name)
            if _is_main_process(trainer):
                warnings.warn(
                    f"reward {name} gave zero variance on {100 * self.flat_threshold:.0f} % of prompts for "
                    f"{self.streaks[name]} steps: the policy gets no signal from it. Check the reward on a few "
                    "completions, raise num_generations or the temperature, or set diagnostics.enabled: false to "
                    "silence this.",
                    UserWarning,
                    stacklevel=2,
                )


# ---------------------------------------------------------------------------------------------------------------


def _quartiles(values: torch.Tensor) -> list[float]:
    if torch.isnan(values).all():
        return [float("nan")] * 5
    return nan_quantiles(values, (0.0, *QUANTILES, 1.0)).tolist()


def _is_main_process(trainer: Any) -> bool:
    accelerator = getattr(trainer, "accelerator", None)
    return bool(getattr(accelerator, "is_main_process", True))
