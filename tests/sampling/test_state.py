"""Sampler state in checkpoint directories: JSON and safetensors round trip, damaged and foreign files."""

from __future__ import annotations

import json

import pytest
import torch

from rlsurrogate.errors import ConfigError
from rlsurrogate.sampling import build_sampler
from rlsurrogate.sampling.state import STATE_JSON, STATE_TENSORS, load_sampler_state, save_sampler_state
from tests.sampling.test_predictive import SyntheticContext


def _trained_predictive():
    ctx = SyntheticContext(n=60)
    sampler = build_sampler("predictive", {"warmup": 2})
    sampler.bind(ctx)
    for _ in range(4):
        indices = sampler.propose(ctx, 0, 3)
        sampler.observe(ctx, indices, ctx.observe_groups(indices))
    return sampler, ctx


def test_round_trip_restores_every_part_of_the_state(tmp_path):
    sampler, ctx = _trained_predictive()
    save_sampler_state(sampler, tmp_path)
    assert json.loads((tmp_path / STATE_JSON).read_text())["name"] == "predictive"
    assert (tmp_path / STATE_TENSORS).is_file() and not list(tmp_path.glob("*.tmp"))
    restored = build_sampler("predictive", {"warmup": 2})
    restored.bind(ctx)
    assert load_sampler_state(restored, tmp_path)
    assert restored.stream.state_dict() == sampler.stream.state_dict()
    assert restored.Y == sampler.Y and len(restored.X) == len(sampler.X)
    assert all(torch.equal(restored.cache[i], sampler.cache[i]) for i in sampler.cache)
    assert restored.propose(ctx, 0, 3) == sampler.propose(ctx, 0, 3)


def test_damaged_state_is_one_line_naming_the_file(tmp_path):
    sampler, _ = _trained_predictive()
    save_sampler_state(sampler, tmp_path)
    (tmp_path / STATE_JSON).write_text('{"name": "predictive", "generated": ')
    with pytest.raises(ConfigError, match=f"{STATE_JSON}: the sampler state cannot be read"):
        load_sampler_state(sampler, tmp_path)
    state = json.loads(json.dumps(sampler.state_dict()[0]))
    del state["cache_index"]
    (tmp_path / STATE_JSON).write_text(json.dumps(state))
    with pytest.raises(ConfigError, match="the sampler state is damaged"):
        load_sampler_state(sampler, tmp_path)


def test_missing_or_foreign_state_starts_afresh_with_a_warning(tmp_path):
    dynamic = build_sampler("dynamic")
    dynamic.bind(SyntheticContext(n=10))
    with pytest.warns(UserWarning, match="no sampler_state.json"):
        assert not load_sampler_state(dynamic, tmp_path)
    save_sampler_state(build_sampler("uniform"), tmp_path)
    with pytest.warns(UserWarning, match="saved by sampler 'uniform'; this run uses 'dynamic'"):
        assert not load_sampler_state(dynamic, tmp_path)
    assert dynamic.stream.state_dict()["position"] == 0
