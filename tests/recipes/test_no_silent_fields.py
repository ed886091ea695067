"""Nothing a recipe accepts is ignored: fields the run never read are refused with the alternative; the defaults
that used to cut a run short (num_train 256, max_steps 100) are TRL's (the whole dataset, epochs)."""

from __future__ import annotations

import copy

import pytest

from rlsurrogate.build import grpo_config, validate
from rlsurrogate.errors import ConfigError
from rlsurrogate.recipe import DataConfig

GOOD = {
    "model": {"name": "smollm2-135m-instruct"},
    "data": {"task": "arithmetic", "num_train": 16, "num_eval": 4},
    "rewards": [{"name": "format_length"}],
    "generation": {"num_generations": 4, "max_completion_length": 16},
    "training": {"per_device_train_batch_size": 4},
}


def _with(section: str, **values):
    raw = copy.deepcopy(GOOD)
    raw.setdefault(section, {}).update(values)
    return raw


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("resume_from_checkpoint", "out/checkpoint-5", "`rlsurrogate train RECIPE --resume`"),
        ("model_init_kwargs", {"revision": "v1"}, "set it under model (revision, attn_implementation"),
        ("trust_remote_code", True, "set it under model.trust_remote_code"),
        ("do_eval", True, "held-out evaluation is eval.before"),
        ("num_generations_eval", 2, "one greedy completion per prompt"),
        ("eval_accumulation_steps", 4, "TRL's evaluation loop does not run"),
        ("label_smoothing_factor", 0.1, "there are no labels"),
    ],
)
def test_fields_the_run_never_reads_are_refused_with_the_alternative(key, value, expected):
    with pytest.raises(ConfigError) as info:
        validate(_with("training", **{key: value}))
    assert any(p.startswith(f"training.{key}") and expected in p for p in info.value.problems), info.value.problems


def test_a_default_value_of_an_unread_field_is_harmless():
    validate(_with("training", do_train=False, prediction_loss_only=False))


def test_num_train_defaults_to_the_whole_dataset_and_max_steps_to_trls_epochs():
    assert DataConfig().num_train is None
    raw = copy.deepcopy(GOOD)
    recipe, resolved = validate(raw)
    config = grpo_config(recipe, resolved)
    assert config.max_steps == -1 and config.num_train_epochs == 3.0  # TRL 1.16's defaults


def test_streaming_needs_max_steps():
    raw = copy.deepcopy(GOOD)
    raw["data"] = {"hf_dataset": "some/dataset", "streaming": True}
    with pytest.raises(ConfigError, match="data.streaming: a stream has no length"):
        validate(raw)
    raw["training"]["max_steps"] = 3
    assert validate(raw)[0].data.streaming


def test_hf_only_fields_are_refused_for_paths_and_tasks():
    with pytest.raises(ConfigError) as info:
        validate(_with("data", data_files="x.jsonl", eval_split="test"))
    text = "\n".join(info.value.problems)
    assert "data.data_files: applies to data.hf_dataset only" in text
    assert "data.split / data.eval_split: apply to data.hf_dataset only" in text


def test_quantization_needs_lora_and_names_what_this_machine_lacks(monkeypatch):
    import importlib.util

    with pytest.raises(ConfigError, match="model.quantization: quantized weights cannot be trained in full"):
        validate(_with("model", quantization={"load_in_4bit": True}))
    with pytest.raises(ConfigError, match="set exactly one of load_in_4bit, load_in_8bit"):
        validate(_with("model", quantization={"load_in_4bit": True, "load_in_8bit": True}, lora={"r": 8}))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "bitsandbytes" else real(n, *a))
    with pytest.raises(ConfigError, match=r'install it with `pip install "rlsurrogate\[qlora\]"`'):
        validate(_with("model", quantization={"load_in_4bit": True}, lora={"r": 8}))
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object() if n == "bitsandbytes" else real(n, *a))
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="needs a CUDA GPU and this machine has none"):
        validate(_with("model", quantization={"load_in_4bit": True}, lora={"r": 8}))


def test_revision_applies_to_hub_ids_only():
    with pytest.raises(ConfigError, match='model.revision = "v2": applies to a hub id'):
        validate(_with("model", revision="v2"))
    validate(_with("model", name="org/hub-model", revision="v2"))


def test_reference_model_gets_the_policys_revision_and_trust_remote_code():
    raw = _with("model", name="org/hub-model", revision="v2", attn_implementation="eager", trust_remote_code=True)
    raw["training"]["beta"] = 0.04
    config = grpo_config(*validate(raw))
    assert config.trust_remote_code is True
    assert config.model_init_kwargs == {"revision": "v2", "attn_implementation": "eager"}
    raw["training"]["beta"] = 0.0  # no reference model: nothing to pass (TRL would warn it is ignored)
    assert grpo_config(*validate(raw)).model_init_kwargs is None
