"""Torch optimizers: Adam with critical momenta (`adam_cm`) and target-based surrogate optimization (`sso`).

`OPTIMIZERS` maps the names a recipe's `optimizer.name` may take to optimizer classes with torch's
`step(closure=None)`, which is what the trainer calls: `OPTIMIZERS.get("adam_cm")(params, lr=..., ...)`.
`SSO` is not in it: its `step(targets, loss_fn)` needs the model's outputs and the loss on them, which a trainer
does not pass; use it in your own loop. Never imports transformers or TRL.
"""

from __future__ import annotations

import torch

from rlsurrogate.optim.adam_cm import AdamCM
from rlsurrogate.optim.sso import SSO
from rlsurrogate.registry import Registry

__all__ = ["OPTIMIZERS", "SSO", "AdamCM"]

OPTIMIZERS: Registry[type[torch.optim.Optimizer]] = Registry("optimizer", {"adam_cm": AdamCM})
