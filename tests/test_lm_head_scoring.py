"""trl_compat.score_only_labelled_positions: on a CPU, TRL's fused LM head projects only the completion tokens, with
the same loss and gradients as when it projects every position."""

from __future__ import annotations

import pytest
import torch
import trl.trainer.utils as trl_utils
from trl import GRPOTrainer
from trl.kernels.chunked_logprob import _use_triton as trl_decides

from rlsurrogate import trl_compat


@pytest.fixture
def trl_default(monkeypatch):
    """TRL's own decision (every position projected on a CPU) for the test, whatever an earlier test turned on."""
    monkeypatch.setattr(trl_utils, "_use_triton", trl_decides)


@pytest.fixture
def projected_rows(monkeypatch):
    """The number of hidden-state rows each call of TRL's chunked log-probability kernel projects."""
    rows: list[int] = []
    kernel = trl_utils._ChunkedLogProbFunction

    class Counting:
        @staticmethod
        def apply(hidden, *args):
            rows.append(hidden.shape[0])
            return kernel.apply(hidden, *args)

    monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", Counting)
    return rows


def _batch(vocab):
    """4 rows: left-padded prompts of 3-6 tokens, completions of 2-6 tokens right-padded to 6."""
    torch.manual_seed(0)
    prompt_lengths, lengths, width = [6, 3, 5, 4], [3, 6, 2, 5], 6
    prompt_mask = (torch.arange(6).unsqueeze(0) >= 6 - torch.tensor(prompt_lengths).unsqueeze(1)).long()
    mask = (torch.arange(width).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)).long()
    return {
        "prompt_ids": torch.randint(3, vocab, (4, 6)) * prompt_mask,
        "prompt_mask": prompt_mask,
        "completion_ids": torch.randint(3, vocab, (4, width)) * mask,
        "completion_mask": mask,
        "advantages": torch.tensor([1.0, -0.5, 0.25, -0.75]),
        "old_per_token_logps": -torch.rand(4, width),
        "ref_per_token_logps": -torch.rand(4, width),
        "num_items_in_batch": mask.sum().float(),
    }


@pytest.mark.parametrize("loss_type", ["grpo", "dapo"])
def test_the_loss_and_gradients_are_trls_while_only_completion_tokens_are_projected(
    tiny_rl_trainer, trl_default, projected_rows, loss_type
):
    trainer = tiny_rl_trainer(loss_type)
    trl_utils._use_triton = trl_decides  # RLTrainer turned it on; measure TRL's own path first
    model = trainer.model.train()
    batch = _batch(model.config.vocab_size)
    results = []
    for compact in (False, True):
        if compact:
            trl_compat.score_only_labelled_positions()
        model.zero_grad()
        loss = GRPOTrainer._compute_loss(trainer, model, batch)
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        results.append((loss.detach(), grads))
    (loss_all, grad_all), (loss_scored, grad_scored) = results
    # every position but the last of 4 rows of 6 + 6 tokens, then only the 16 completion tokens
    assert projected_rows == [4 * 11, 16]
    assert grad_all.abs().max() > 0
    torch.testing.assert_close(loss_scored, loss_all, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(grad_scored, grad_all, rtol=1e-4, atol=1e-7)


def test_scored_log_probabilities_are_trls_and_the_others_zero(tiny_rl_trainer, trl_default):
    trainer = tiny_rl_trainer()
    trl_utils._use_triton = trl_decides
    model = trainer.model.eval()
    batch = _batch(model.config.vocab_size)
    outputs = []
    for compact in (False, True):
        if compact:
            trl_compat.score_only_labelled_positions()
        with torch.no_grad():
            outputs.append(trl_compat.token_logps(trainer, model, batch, compute_entropy=True))
    (logps_all, entropy_all), (logps_scored, entropy_scored) = outputs
    scored = batch["completion_mask"].bool()
    torch.testing.assert_close(logps_scored[scored], logps_all[scored], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(entropy_scored[scored], entropy_all[scored], rtol=1e-5, atol=1e-6)
    assert logps_all[scored].lt(0).all()
    assert logps_scored[~scored].eq(0).all() and entropy_scored[~scored].eq(0).all()


def test_it_turns_on_for_the_cpu_only_once_and_defers_to_trl_elsewhere(trl_default):
    assert trl_utils._use_triton(torch.device("cpu")) is False  # TRL's own choice on a CPU
    trl_compat.score_only_labelled_positions()
    decides = trl_utils._use_triton
    trl_compat.score_only_labelled_positions()
    assert trl_utils._use_triton is decides  # not wrapped twice
    assert decides(torch.device("cpu")) is True
    for device in (torch.device("cuda"), torch.device("meta")):  # constructing a device needs no hardware
        assert decides(device) == trl_decides(device)


def test_rl_trainer_turns_it_on(tiny_rl_trainer, trl_default):
    assert trl_utils._use_triton(torch.device("cpu")) is False
    tiny_rl_trainer()
    assert trl_utils._use_triton(torch.device("cpu")) is True
