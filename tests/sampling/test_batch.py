"""Batch assembly across rounds: TRL's padding, the filler's loss factor for each TRL loss type, DisCO unchanged."""

from __future__ import annotations

import pytest
import torch

from rlsurrogate.errors import UnsupportedError
from rlsurrogate.objectives import build_objective
from rlsurrogate.objectives.disco import disco_objective
from rlsurrogate.objectives.grpo import LOSS_TYPES
from rlsurrogate.sampling import build_sampler
from rlsurrogate.sampling.batch import LOSS_NORMALISERS, _borrowed_ids, filler_loss_scale, merge_rows
from tests.sampling.fake_world import FakeWorld, first_inputs, make_rows


def test_every_trl_loss_type_has_a_normaliser():
    assert set(LOSS_TYPES) <= set(LOSS_NORMALISERS)


def test_merge_pads_prompts_left_and_completions_right():
    a = {
        "prompt_ids": torch.tensor([[5, 6], [7, 8]]),
        "prompt_mask": torch.ones(2, 2, dtype=torch.long),
        "completion_ids": torch.tensor([[1, 2, 3], [4, 0, 0]]),
        "completion_mask": torch.tensor([[1, 1, 1], [1, 0, 0]]),
        "tool_mask": torch.ones(2, 3, dtype=torch.long),
        "advantages": torch.tensor([0.5, -0.5]),
        "num_items_in_batch": torch.tensor(4.0),
    }
    b = {
        "prompt_ids": torch.tensor([[9, 9, 9]]),
        "prompt_mask": torch.ones(1, 3, dtype=torch.long),
        "completion_ids": torch.tensor([[3]]),
        "completion_mask": torch.tensor([[1]]),
        "tool_mask": torch.ones(1, 1, dtype=torch.long),
        "advantages": torch.tensor([2.0]),
        "num_items_in_batch": torch.tensor(1.0),
    }
    out = merge_rows([(a, [1]), (b, [0])], pad_token_id=0)
    assert out["prompt_ids"].tolist() == [[0, 7, 8], [9, 9, 9]]
    assert out["prompt_mask"].tolist() == [[0, 1, 1], [1, 1, 1]]
    assert out["completion_ids"].tolist() == [[4, 0, 0], [3, 0, 0]]
    assert out["completion_mask"].tolist() == [[1, 0, 0], [1, 0, 0]]
    assert out["tool_mask"].tolist() == [[1, 1, 1], [1, 1, 1]]  # TRL pads tool_mask with 1
    assert out["advantages"].tolist() == [-0.5, 2.0]
    assert "num_items_in_batch" not in out  # recomputed by the caller


def test_merge_refuses_multimodal_batches():
    batch = {"prompt_ids": torch.ones(1, 1), "pixel_values": torch.ones(1, 3)}
    with pytest.raises(UnsupportedError, match="pixel_values.*text prompts only"):
        merge_rows([(batch, [0])], pad_token_id=0)


def _micro(rows: float, kept: float, kept_tokens: float, mask: torch.Tensor) -> dict:
    return {
        "completion_mask": mask,
        "sampling_rows": torch.tensor(rows),
        "sampling_kept_rows": torch.tensor(kept),
        "sampling_kept_tokens": torch.tensor(kept_tokens),
    }


def test_filler_factor_per_normaliser():
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0]])  # 2 kept rows (3 tokens), 2 filler rows
    inputs = _micro(rows=8, kept=6, kept_tokens=10, mask=mask)
    for loss_type in ("grpo", "sapo", "luspo", "dr_grpo"):
        assert filler_loss_scale(loss_type, inputs, num_processes=2, steps_per_generation=2) == pytest.approx(8 / 6)
    for loss_type in ("dapo", "cispo", "vespo"):
        assert filler_loss_scale(loss_type, inputs, 2, 2) == 1.0  # num_items_in_batch already counts kept tokens
    assert float(filler_loss_scale("bnpo", inputs, 2, 2)) == pytest.approx(3 * 2 * 2 / 10)
    full = _micro(rows=8, kept=8, kept_tokens=10, mask=mask)
    assert all(filler_loss_scale(t, full, 2, 2) == 1.0 for t in LOSS_NORMALISERS)
    with pytest.raises(UnsupportedError, match="loss_type 'mystery'"):
        filler_loss_scale("mystery", inputs, 2, 2)


def test_filler_borrows_the_nearest_kept_group_of_its_residue():
    filler = [False, True, False, True, True, False]
    assert _borrowed_ids(filler, 1).tolist() == [0, 0, 2, 2, 5, 5]
    # modulo 2: positions 1 and 3 (odd) have only kept 5 of their residue; 4 (even) borrows 2
    assert _borrowed_ids(filler, 2).tolist() == [0, 5, 2, 5, 2, 5]
    assert _borrowed_ids([True, True], 1).tolist() == [0, 1]  # nothing to borrow: own ids


@pytest.mark.parametrize("variant", ["disco", "disco_b"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_disco_objective_ignores_filler_rows(variant, dtype):
    """DisCO's labels and question ids attached to an assembled batch with filler give the same J as the kept rows."""
    G = 4
    rows = make_rows(["signal", "flat", "signal", "flat"] + ["flat"] * 20)
    world = FakeWorld(rows, 1, G)

    def one(ctx):
        sampler = build_sampler("dynamic", {"max_rounds": 2})
        sampler.bind(ctx)
        return sampler.sample(ctx, first_inputs(world, 0, 4))

    (sampled,) = world.run(one)
    objective = build_objective(variant, {"label_reward": "fake", "label_threshold": 0.5})
    extra = objective.on_scored(None, sampled.scored, sampled.batch)
    keep = sampled.batch["sampling_keep"].bool()
    assert keep.sum() == 2 * G and (~keep).sum() == 2 * G
    labels, groups = extra["disco_label"], extra["disco_group"]
    assert torch.isnan(labels[~keep]).all()
    scores = torch.linspace(-2.0, 1.0, len(labels), dtype=dtype, requires_grad=True)
    J_all, m_all = disco_objective(scores, labels, groups, tau=2.0, variant=variant)
    J_kept, m_kept = disco_objective(scores[keep], labels[keep], groups[keep], tau=2.0, variant=variant)
    assert m_all["num_groups"] == m_kept["num_groups"] == 2  # filler is never a question of its own
    torch.testing.assert_close(J_all, J_kept)
    (grad,) = torch.autograd.grad(J_all, scores)
    assert grad[~keep].abs().max() == 0
