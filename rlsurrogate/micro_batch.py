"""Completion padding trimmed from a micro-batch before its forward and backward pass.

TRL pads every completion of a generation to the longest one, then splits the generation into micro-batches: a
micro-batch of two 25-token completions from a generation whose longest completion has 48 tokens still runs its
forward and backward over 48 completion columns. `trim_completion_padding` drops the trailing completion columns that
are masked in every row of the micro-batch.

The loss and its gradient are unchanged: a causal model's outputs at the kept positions never see later columns,
whatever its position encoding; masked positions are left out of every loss TRL 1.16 computes (the token-level losses
sum `per_token_loss * mask`, `dr_grpo` divides by the configured `max_completion_length`, not by a tensor's width);
and the logged entropy and clip ratios are means over the mask. Prompts are left as they are (dropping their left
padding would shift absolute positions).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["trim_completion_padding"]


def trim_completion_padding(inputs: dict[str, Any]) -> dict[str, Any]:
    """A copy of TRL's micro-batch `inputs` without the trailing completion columns no row has a token in.

    Every tensor shaped `(B, C, ...)` like `completion_mask` (completion ids, old / reference / sampling
    log-probabilities, per-token advantages, token-level importance ratios) keeps its first columns; tensors of other
    shapes (prompts, `(B,)` advantages, `(B, 1)` sequence-level ratios, scalars) are passed through. At least one
    column is kept. `inputs` is not modified.
    """
    mask = inputs["completion_mask"]
    rows, width = mask.shape
    used = torch.nonzero(mask.any(dim=0)).flatten()
    keep = int(used[-1]) + 1 if used.numel() else 1
    if keep >= width:
        return inputs
    trimmed = dict(inputs)
    for key, value in inputs.items():
        if key in ("prompt_ids", "prompt_mask") or not isinstance(value, torch.Tensor) or value.dim() < 2:
            continue
        if value.shape[0] == rows and value.shape[1] == width:
            trimmed[key] = value[:, :keep]
    return trimmed
