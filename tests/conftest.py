"""Shared fixtures: tiny models, the repo root, and a working directory for runs."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny():
    """(model_factory, tokenizer): a fresh tiny random Llama per call, the embedded tokenizer shared."""
    from rlsurrogate.models import tiny_model

    _, tokenizer = tiny_model()
    return (lambda seed=0: tiny_model(seed=seed)[0]), tokenizer


@pytest.fixture(scope="session")
def tiny_reward_model(tiny):
    """A factory of tiny random Llama sequence-classification reward models (one score), the embedded tokenizer's
    vocabulary and padding."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    _, tokenizer = tiny
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )

    def make(seed: int = 0) -> LlamaForSequenceClassification:
        torch.manual_seed(seed)
        return LlamaForSequenceClassification(config)

    return make


@pytest.fixture
def tiny_rl_trainer(tmp_path, tiny):
    """A factory `make(loss_type)` of RLTrainers (GRPO, a zero reward) on a fresh tiny Llama, ready for one
    `_compute_loss` call on a hand-made micro-batch with the KL term on."""
    from datasets import Dataset
    from trl import GRPOConfig

    from rlsurrogate.objectives import build_objective
    from rlsurrogate.tasks import build_task
    from rlsurrogate.trainer import RLTrainer

    make_model, tokenizer = tiny

    def make(loss_type: str = "grpo") -> RLTrainer:
        config = GRPOConfig(
            output_dir=str(tmp_path),
            per_device_train_batch_size=4,
            num_generations=4,
            max_completion_length=12,
            max_steps=1,
            report_to="none",
            bf16=False,
            save_strategy="no",
            loss_type=loss_type,
        )
        trainer = RLTrainer(
            model=make_model(3),
            reward_funcs=[lambda completions, **kw: [0.0] * len(completions)],
            args=config,
            train_dataset=Dataset.from_list(build_task("arithmetic", "train", 8)),
            processing_class=tokenizer,
            objective=build_objective("grpo"),
        )
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train's loop
        # the KL term on: it reads the reference log-probabilities, a per-token input (no reference model)
        trainer.beta = 0.04
        return trainer

    return make
