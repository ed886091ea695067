"""trim_completion_padding: which columns go, and that TRL's loss and gradients are the same without them."""

from __future__ import annotations

import pytest
import torch
from trl import GRPOTrainer

from rlsurrogate.micro_batch import trim_completion_padding


def _mask(lengths, width):
    return (torch.arange(width).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)).long()


def test_trailing_masked_columns_go_from_every_per_token_tensor_and_nothing_else():
    rows, width = 3, 7
    mask = _mask([2, 4, 1], width)
    inputs = {
        "prompt_ids": torch.ones(rows, width, dtype=torch.long),  # as wide as the completions: kept by name
        "prompt_mask": torch.ones(rows, width, dtype=torch.long),
        "completion_ids": torch.arange(rows * width).reshape(rows, width),
        "completion_mask": mask,
        "old_per_token_logps": torch.randn(rows, width),
        "advantages": torch.randn(rows),
        "importance_sampling_ratio": torch.rand(rows, 1),
        "num_items_in_batch": torch.tensor(7.0),
        "extra": torch.randn(rows + 1, width),  # another leading size: not a per-row tensor
    }
    trimmed = trim_completion_padding(inputs)
    assert trimmed["completion_ids"].tolist() == inputs["completion_ids"][:, :4].tolist()
    assert trimmed["completion_mask"].sum() == mask.sum() and trimmed["completion_mask"].shape == (rows, 4)
    assert torch.equal(trimmed["old_per_token_logps"], inputs["old_per_token_logps"][:, :4])
    for key in ("prompt_ids", "prompt_mask", "advantages", "importance_sampling_ratio", "num_items_in_batch", "extra"):
        assert trimmed[key] is inputs[key], key
    assert inputs["completion_ids"].shape == (rows, width)  # the caller's batch is not modified


def test_a_full_width_row_keeps_the_batch_and_an_all_masked_batch_keeps_one_column():
    full = {"prompt_mask": torch.ones(2, 3), "completion_mask": _mask([5, 2], 5), "completion_ids": torch.zeros(2, 5)}
    assert trim_completion_padding(full) is full
    empty = {"prompt_mask": torch.ones(2, 3), "completion_mask": _mask([0, 0], 5), "completion_ids": torch.ones(2, 5)}
    assert trim_completion_padding(empty)["completion_ids"].shape == (2, 1)


def _padded_batch(vocab, pad_columns):
    torch.manual_seed(0)
    rows, prompt_len, lengths = 4, 5, [3, 6, 2, 5]
    width = max(lengths) + pad_columns
    mask = _mask(lengths, width)
    return {
        "prompt_ids": torch.randint(3, vocab, (rows, prompt_len)),
        "prompt_mask": torch.ones(rows, prompt_len, dtype=torch.long),
        "completion_ids": torch.randint(3, vocab, (rows, width)) * mask,
        "completion_mask": mask,
        "advantages": torch.tensor([1.0, -0.5, 0.25, -0.75]),
        "old_per_token_logps": -torch.rand(rows, width),  # off-policy: the clipped ratio is live
        "ref_per_token_logps": -torch.rand(rows, width),
        "num_items_in_batch": mask.sum().float(),
    }


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo"])
def test_trl_loss_and_gradients_are_unchanged_without_the_padding(tiny_rl_trainer, loss_type):
    trainer = tiny_rl_trainer(loss_type)
    model = trainer.model.train()
    padded = _padded_batch(model.config.vocab_size, pad_columns=5)
    results = []
    for batch in (padded, trim_completion_padding(padded)):
        model.zero_grad()
        loss = GRPOTrainer._compute_loss(trainer, model, batch)
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        results.append((batch["completion_ids"].shape[1], loss.detach(), grads))
    (wide, loss_padded, grad_padded), (narrow, loss_trimmed, grad_trimmed) = results
    assert (wide, narrow) == (11, 6)
    assert grad_padded.abs().max() > 0
    torch.testing.assert_close(loss_trimmed, loss_padded, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(grad_trimmed, grad_padded, rtol=1e-4, atol=1e-7)


def test_rl_trainer_hands_trl_the_trimmed_micro_batch(tiny_rl_trainer, monkeypatch):
    trainer = tiny_rl_trainer("dapo")
    widths = []

    def spy(self, model, inputs):
        widths.append(inputs["completion_ids"].shape[1])
        return torch.zeros((), requires_grad=True)

    monkeypatch.setattr(GRPOTrainer, "_compute_loss", spy)
    trainer.compute_loss(trainer.model, _padded_batch(trainer.model.config.vocab_size, pad_columns=5))
    assert widths == [6]
