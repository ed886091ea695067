"""build: every name of a recipe resolved once, problems of shape and names reported together."""

from __future__ import annotations

import pytest

from rlsurrogate.build import grpo_config, validate
from rlsurrogate.errors import ConfigError

COUNTING_REWARD = """
from pathlib import Path
with open(Path(__file__).with_suffix(".imports"), "a") as f:
    f.write("imported\\n")

def make_r(scale):
    with open(Path(__file__).with_suffix(".calls"), "a") as f:
        f.write("called\\n")
    def r(completions, **kwargs):
        return [scale] * len(completions)
    return r
"""


def _raw(tmp_path, **extra):
    return {
        "model": {"name": "smollm2-135m-instruct"},
        "data": {"task": "arithmetic", "num_train": 8, "num_eval": 2},
        "rewards": [{"name": str(tmp_path / "counting.py") + ":make_r", "params": {"scale": 1.0}}, "accuracy"],
        "generation": {"num_generations": 4, "max_completion_length": 8},
        "training": {"per_device_train_batch_size": 4, "max_steps": 1},
        "output_dir": str(tmp_path / "out"),
        **extra,
    }


def test_a_reward_file_is_imported_once_and_its_factory_called_once(tmp_path):
    (tmp_path / "counting.py").write_text(COUNTING_REWARD)
    recipe, resolved = validate(_raw(tmp_path))
    assert (tmp_path / "counting.imports").read_text().count("imported") == 1
    assert (tmp_path / "counting.calls").read_text().count("called") == 1
    assert resolved.reward_names == ["r", "accuracy"] and resolved.gold == [False, True]
    assert resolved.rewards[0](completions=["a", "b"]) == [1.0, 1.0]
    config = grpo_config(recipe, resolved)
    assert config.reward_weights == [1.0, 1.0] and config.num_generations == 4


def test_shape_and_name_problems_come_together(tmp_path):
    raw = _raw(tmp_path, objective={"name": "dispo"})
    raw["rewards"].append({"name": "format_lenght"})
    raw["generation"]["temperature"] = -1.0
    with pytest.raises(ConfigError) as info:
        validate(raw)
    text = "\n".join(info.value.problems)
    assert "generation.temperature = -1.0" in text  # shape
    assert 'objective.name = "dispo": unknown objective' in text  # name
    assert 'unknown reward "format_lenght"' in text  # name
    assert "counting.py" in text  # the reward file is missing: one more name problem


def test_objective_checks_the_runs_reward_names(tmp_path):
    (tmp_path / "counting.py").write_text(COUNTING_REWARD)
    with pytest.raises(
        ConfigError, match='label_reward = "r_missing": not among the recipe\'s rewards \\(r, accuracy\\)'
    ):
        validate(_raw(tmp_path, objective={"name": "disco", "params": {"label_reward": "r_missing"}}))
    recipe, resolved = validate(_raw(tmp_path, objective={"name": "disco", "params": {"label_reward": "r"}}))
    assert resolved.objective.config.label_reward == "r"


def test_optimizer_by_name(tmp_path):
    (tmp_path / "counting.py").write_text(COUNTING_REWARD)
    _, resolved = validate(_raw(tmp_path, optimizer={"name": "adam_cm", "params": {"buffer_size": 3}}))
    cls, kwargs = resolved.optimizer
    assert cls.__name__ == "AdamCM" and kwargs == {"buffer_size": 3}
    assert validate(_raw(tmp_path))[1].optimizer is None  # adamw: the Trainer's own


@pytest.mark.parametrize(
    "requested, gpu, gpu_bf16, cpu_bf16, expected",
    [
        (None, False, False, True, False),  # CPU default: fp32, even where bf16 is native
        (None, True, True, False, True),  # GPU default: bf16 where the GPU has it
        (None, True, False, True, False),
        ("auto", False, False, True, True),  # auto: bf16 where the CPU multiplies it natively
        ("auto", False, False, False, False),
        ("auto", True, False, True, False),  # a GPU run is judged by its GPU, not its host CPU
        ("auto", True, True, False, True),
        (True, False, False, True, True),
        (False, True, True, True, False),
        (True, False, False, False, "CPU has no bf16 instructions"),
        (True, True, False, True, "GPU has no bf16 support"),
    ],
)
def test_bf16_follows_the_recipe_and_the_hardware(tmp_path, monkeypatch, requested, gpu, gpu_bf16, cpu_bf16, expected):
    import torch

    from rlsurrogate import build

    (tmp_path / "counting.py").write_text(COUNTING_REWARD)
    raw = _raw(tmp_path)
    if requested is not None:
        raw["training"]["bf16"] = requested
    recipe, _ = validate(raw)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: gpu_bf16)
    monkeypatch.setattr(build, "_cpu_has_bf16", lambda: cpu_bf16)
    if isinstance(expected, str):
        with pytest.raises(ConfigError, match=expected):
            build.bf16_mixed_precision(recipe)
    else:
        assert build.bf16_mixed_precision(recipe) is expected


@pytest.mark.parametrize("value", ["yes", 1, 0, "AUTO", [True]])
def test_bf16_takes_only_true_false_or_auto(tmp_path, value):
    (tmp_path / "counting.py").write_text(COUNTING_REWARD)
    raw = _raw(tmp_path)
    raw["training"]["bf16"] = value
    with pytest.raises(ConfigError, match='training.bf16 = .*: must be true, false or "auto"'):
        validate(raw)


def test_bf16_auto_reaches_grpo_config_as_a_boolean(tmp_path):
    from rlsurrogate.build import bf16_mixed_precision

    (tmp_path / "counting.py").write_text(COUNTING_REWARD)
    raw = _raw(tmp_path)
    raw["training"]["bf16"] = "auto"
    recipe, resolved = validate(raw)
    assert grpo_config(recipe, resolved).bf16 is bf16_mixed_precision(recipe)
