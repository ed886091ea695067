"""A filtering sampler's generation batch: groups from several rounds in one TRL batch, and a loss that ignores filler.

Written against TRL 1.16's `_generate_and_score_completions` output (text models) and `_compute_loss`.

Assembly (`assemble`): each process takes its groups with signal in round order, up to its share, then (only when
the rounds ran out) dropped groups as *filler*. Rows from different rounds are padded to one width, as TRL pads:
prompts on the left, completions and their per-token tensors on the right. A filler row gets a zero loss mask
(`completion_mask`, and `tool_mask` when present), a zero advantage, NaN rewards and the group id of a kept group
in the `ScoredBatch` the objective sees, so that a per-group count (DisCO's number of questions) never counts it.
Each row carries `sampling_keep` (1 kept, 0 filler) and the batch carries the generation's counts as 0-dim
tensors (`sampling_rows`, `sampling_kept_rows`, `sampling_kept_tokens`), which TRL's shuffle and split copy to
every micro-batch.

Why masking filler rows is not enough, and the correction (`filler_loss_scale`): TRL normalises each loss type
differently, and a row with no loss tokens still counts where the normaliser counts sequences. With N rows and K
kept rows in the generation (all processes), T kept loss tokens, P processes, S = steps_per_generation:
- `grpo`, `sapo`, `luspo`, `dr_grpo` average over the micro-batch's sequences: the loss is multiplied by N / K,
  so each kept sequence weighs 1 / K per generation instead of 1 / N.
- `bnpo` averages over the micro-batch's tokens (filler has none), but a micro-batch of filler still counts as one
  of the step's micro-batches: the loss is multiplied by T_m P S / T (T_m the micro-batch's loss tokens), which
  makes it the token mean over the step's kept tokens.
- `dapo`, `cispo`, `vespo` divide by `num_items_in_batch`, the generation's loss tokens: it is set to T, so no
  further factor is needed.
With S equal to gradient_accumulation_steps (TRL's default) the result equals the loss of a batch holding only the
kept groups; with several optimizer steps per generation it does so per generation, the same approximation TRL's own
`num_items_in_batch` makes for `dapo`. The factor scales TRL's whole micro-batch loss, an entropy bonus included.
DisCO computes its own full-batch loss from the buffered micro-batches: filler rows have no loss tokens, no label
and a kept group's id, so it needs no factor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rlsurrogate.errors import UnsupportedError
from rlsurrogate.objectives.base import ScoredBatch

__all__ = ["LOSS_NORMALISERS", "SampledScoredBatch", "assemble", "filler_loss_scale", "merge_rows"]

# How TRL 1.16's `_compute_loss` normalises each loss_type: over the micro-batch's sequences, over its tokens, or
# over `num_items_in_batch` (the generation's loss tokens).
LOSS_NORMALISERS: dict[str, str] = {
    "grpo": "sequences",
    "sapo": "sequences",
    "luspo": "sequences",
    "dr_grpo": "sequences",
    "bnpo": "tokens",
    "dapo": "items",
    "cispo": "items",
    "vespo": "items",
}
# Keys of TRL 1.16's generation batch (text models) and how rows of different widths are padded.
_LEFT = {"prompt_ids": "pad", "prompt_mask": 0}
_RIGHT = {
    "completion_ids": "pad",
    "completion_mask": 0,
    "old_per_token_logps": 0.0,
    "ref_per_token_logps": 0.0,
    "sampling_per_token_logps": 0.0,
    "importance_sampling_ratio": 0.0,
    "tool_mask": 1,
}
_ROWS = {"advantages"}
_RECOMPUTED = {"num_items_in_batch"}


@dataclass
class SampledScoredBatch(ScoredBatch):
    """A ScoredBatch whose group ids are given rather than positional (a filler row borrows a kept group's id)."""

    explicit_group_ids: torch.Tensor | None = None

    @property
    def group_ids(self) -> torch.Tensor:
        assert self.explicit_group_ids is not None
        return self.explicit_group_ids


def merge_rows(pieces: Sequence[tuple[dict[str, Any], Sequence[int]]], pad_token_id: int) -> dict[str, Any]:
    """One batch from rows of several TRL batches, padded to a common width as TRL pads them.

    Args:
        pieces: (TRL generation batch, row indices to take from it), in order.
        pad_token_id: the tokenizer's padding id.

    Returns:
        The batch, `num_items_in_batch` left out (the caller recomputes it).
    """
    keys = list(pieces[0][0])
    unknown = sorted(set(keys) - set(_LEFT) - set(_RIGHT) - _ROWS - _RECOMPUTED)
    if unknown or any(list(batch) != keys for batch, _ in pieces):
        raise UnsupportedError(
            f"sampling: cannot merge generation batches with keys {', '.join(unknown) or 'that differ'}; filtering "
            "samplers support text prompts only (no images, no multimodal inputs). Use sampling.name: uniform."
        )
    out: dict[str, Any] = {}
    for key in keys:
        if key in _RECOMPUTED or pieces[0][0][key] is None:
            continue
        parts = [batch[key][list(rows)] for batch, rows in pieces]
        if key in _ROWS:
            out[key] = torch.cat(parts)
            continue
        side, fill = ("left", _LEFT[key]) if key in _LEFT else ("right", _RIGHT[key])
        out[key] = _pad_cat(parts, pad_token_id if fill == "pad" else fill, side)
    return out


def assemble(
    ctx: Any,
    rounds: list[Any],
    kept: list[list[tuple[int, int]]],
    dropped: list[list[tuple[int, int]]],
    share: int,
) -> tuple[dict[str, Any], ScoredBatch]:
    """This process's generation batch and the ScoredBatch the objective sees, from several rounds' groups.

    Args:
        ctx: the `SamplingContext` (`rlsurrogate.sampling.base`, which imports this module).
        rounds: the generation's rounds (`Round`: TRL's local batch, the gathered ScoredBatch).
        kept, dropped: per process, (round, group index within the round) of groups with and without signal.
        share: groups per process in the assembled batch.
    """
    P, rank, G = ctx.num_processes, ctx.process_index, ctx.num_generations
    sizes = [r.scored.rewards_per_func.shape[0] // (G * P) for r in rounds]  # groups per process of each round
    final = []  # per process: (round, group, filler)
    for p in range(P):
        own = [(r, g, False) for r, g in kept[p][:share]]
        final.append(own + [(r, g, True) for r, g in dropped[p][: share - len(own)]])
    first = rounds[0].scored
    rewards = torch.cat(
        [_group_rows(rounds[r].scored.rewards_per_func, g, G, filler) for groups in final for r, g, filler in groups]
    )  # (P * share * G, F)
    filler_flags = [filler for groups in final for _, _, filler in groups]
    ids = _borrowed_ids(filler_flags, ctx.steps_per_generation).repeat_interleave(G)  # (P * share * G,)
    pieces = [
        (rounds[r].batch, range((g - rank * sizes[r]) * G, (g - rank * sizes[r] + 1) * G)) for r, g, _ in final[rank]
    ]
    batch = merge_rows(pieces, ctx.pad_token_id)
    device = batch["completion_ids"].device
    keep = torch.tensor([0.0 if f else 1.0 for _, _, f in final[rank] for _ in range(G)], device=device)
    batch["completion_mask"] = batch["completion_mask"] * keep.unsqueeze(1).to(batch["completion_mask"].dtype)
    if batch.get("tool_mask") is not None:
        batch["tool_mask"] = batch["tool_mask"] * keep.unsqueeze(1).to(batch["tool_mask"].dtype)
    batch["advantages"] = batch["advantages"] * keep.to(batch["advantages"].dtype)
    loss_mask = batch["completion_mask"] * batch["tool_mask"] if batch.get("tool_mask") is not None else None
    local_tokens = float((batch["completion_mask"] if loss_mask is None else loss_mask).sum())
    kept_tokens = ctx.sum_over_processes(local_tokens)
    batch["num_items_in_batch"] = torch.tensor(kept_tokens, device=device)
    batch["sampling_keep"] = keep
    batch["sampling_rows"] = torch.tensor(float(len(filler_flags) * G), device=device)
    batch["sampling_kept_rows"] = torch.tensor(float(filler_flags.count(False) * G), device=device)
    batch["sampling_kept_tokens"] = torch.tensor(kept_tokens, device=device)
    n_local = share * G
    scored = SampledScoredBatch(
        rewards_per_func=rewards,
        reward_names=list(first.reward_names),
        reward_weights=first.reward_weights,
        num_generations=G,
        local_slice=slice(rank * n_local, (rank + 1) * n_local),
        mode=first.mode,
        step=first.step,
        explicit_group_ids=ids.to(rewards.device),
    )
    return batch, scored


def filler_loss_scale(loss_type: str, inputs: dict[str, Any], num_processes: int, steps_per_generation: int) -> Any:
    """Factor on TRL's micro-batch loss that keeps filler rows out of its normalisation (see the module docstring).

    Args:
        loss_type: TRL's `loss_type`.
        inputs: the micro-batch, with the `sampling_*` counts `assemble` attached.
        num_processes: P.
        steps_per_generation: S.

    Returns:
        A float or a 0-dim tensor; 1 when the generation has no filler.
    """
    rows, kept = float(inputs["sampling_rows"]), float(inputs["sampling_kept_rows"])
    if kept >= rows:
        return 1.0
    kind = LOSS_NORMALISERS.get(loss_type)
    if kind is None:
        raise UnsupportedError(
            f"sampling: TRL loss_type {loss_type!r} has no known normalisation; filtering samplers support "
            f"{', '.join(sorted(LOSS_NORMALISERS))}."
        )
    if kind == "items":
        return 1.0
    if kept == 0:
        return 0.0
    if kind == "sequences":
        return rows / kept
    mask = inputs["completion_mask"]
    if inputs.get("tool_mask") is not None:
        mask = mask * inputs["tool_mask"]
    return mask.sum() * num_processes * steps_per_generation / inputs["sampling_kept_tokens"].clamp(min=1.0)


# ---------------------------------------------------------------------------------------------------------------
# private helpers


def _group_rows(rewards: torch.Tensor, g: int, G: int, filler: bool) -> torch.Tensor:
    rows = rewards[g * G : (g + 1) * G]
    return torch.full_like(rows, torch.nan) if filler else rows


def _borrowed_ids(filler: list[bool], modulus: int) -> torch.Tensor:
    """Group ids by position; a filler group takes the id of the nearest kept group congruent to it modulo
    `modulus` (steps_per_generation), so rules that assign groups to optimizer steps by id keep their balance. Without
    such a kept group it keeps its own id."""
    kept = [q for q, f in enumerate(filler) if not f]
    ids = []
    for p, f in enumerate(filler):
        same = [q for q in kept if (q - p) % modulus == 0]
        ids.append(min(same, key=lambda q: (abs(q - p), q)) if f and same else p)
    return torch.tensor(ids, dtype=torch.long)


def _pad_cat(parts: list[torch.Tensor], value: Any, side: str) -> torch.Tensor:
    width = max(t.shape[1] for t in parts)
    padded = []
    for t in parts:
        if t.shape[1] < width:
            fill = torch.full((t.shape[0], width - t.shape[1], *t.shape[2:]), value, dtype=t.dtype, device=t.device)
            t = torch.cat([fill, t] if side == "left" else [t, fill], dim=1)
        padded.append(t)
    return torch.cat(padded)
