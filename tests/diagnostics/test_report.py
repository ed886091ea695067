"""The offline teacher report: sampling and ranking on tiny models (the command: tests/commands/test_diagnose.py)."""

from __future__ import annotations

import pytest
import torch

from rlsurrogate.diagnostics.report import rank, sample_completions
from rlsurrogate.diagnostics.reward_variance import teacher_stats
from rlsurrogate.tasks import build_task


def test_sample_completions_groups_k_per_prompt_and_is_seeded(tiny):
    make_model, tokenizer = tiny
    model = make_model()
    rows = build_task("arithmetic", "eval", 3, seed=0)
    a = sample_completions(model, tokenizer, rows, k=4, max_new_tokens=5, batch_size=2, seed=1, progress=False)
    b = sample_completions(model, tokenizer, rows, k=4, max_new_tokens=5, batch_size=2, seed=1, progress=False)
    assert len(a.completions) == len(a.completion_ids) == 12 and a.num_prompts == 3
    assert a.completion_ids == b.completion_ids
    assert all(1 <= len(ids) <= 5 for ids in a.completion_ids)
    assert tokenizer.pad_token_id not in [t for ids in a.completion_ids for t in ids[:-1]]


def test_rank_prefers_variance_among_accurate_candidates():
    gold = torch.tensor([[0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    stats = {
        "gold": teacher_stats(gold, gold),
        "low_var_gold": teacher_stats(0.5 + 0.01 * gold + torch.tensor([[0.0], [5.0]]), gold),
        "noisy_high_var": teacher_stats(torch.tensor([[3.0, -3.0, 2.0, -2.0], [-5.0, 5.0, 4.0, -4.0]]), gold),
        "const": teacher_stats(torch.ones(2, 4), gold),
    }
    assert stats["noisy_high_var"].accuracy < 0.5 and stats["const"].accuracy == pytest.approx(1 / 3)  # tie rate
    # above the floor by whitened variance, then the rest by whitened variance
    assert rank(stats, accuracy_floor=0.5) == ["gold", "low_var_gold", "noisy_high_var", "const"]
    assert rank(stats, accuracy_floor=0.0)[-1] == "const" and rank(stats, accuracy_floor=0.0)[0] != "low_var_gold"
