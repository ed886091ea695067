"""Built-in rewards with TRL's signature, and the loader that turns a recipe's reward entries into callables.

Built-ins (registry names -> factories): `format`, `length`, `format_length` (Xin et al. 2025, arXiv 2505.19439),
`accuracy` (math-verify against an answer column), `boxed_number` (label-free strict format). User rewards are
referenced as `path/to/file.py:function` or `package.module:function` (see `rewards/` at the repository root).
Importing this package does not import torch, TRL, SymPy or math-verify.
"""

from __future__ import annotations

from rlsurrogate.rewards.builtin import REWARDS
from rlsurrogate.rewards.guard import GuardedReward, check_reward_output, guard_reward
from rlsurrogate.rewards.loading import build_reward, check_reward_spec

__all__ = ["REWARDS", "GuardedReward", "build_reward", "check_reward_output", "check_reward_spec", "guard_reward"]
