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
