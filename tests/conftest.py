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
