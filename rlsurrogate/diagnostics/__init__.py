"""Reward-variance diagnostics (Razin et al. 2025): the training callback and the offline teacher report.

`RewardVarianceMonitor` is a score listener for `RLTrainer`; `rlsurrogate diagnose` (module `report`) samples
completions once and ranks candidate rewards by the variance they induce and their accuracy against a gold reward.
"""

from __future__ import annotations

from rlsurrogate.diagnostics.reward_variance import (
    RewardVarianceMonitor,
    TeacherStats,
    group_rewards,
    pairwise_accuracy,
    teacher_stats,
    whiten,
    within_group_variance,
    zero_variance_share,
)

__all__ = [
    "RewardVarianceMonitor",
    "TeacherStats",
    "group_rewards",
    "pairwise_accuracy",
    "teacher_stats",
    "whiten",
    "within_group_variance",
    "zero_variance_share",
]
