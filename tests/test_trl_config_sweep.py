"""The `trl grpo` config files TRL's docs and examples and open-r1's recipes ship (tests/assets/trl_configs/, each
pointed at a local tiny model and local data): every key either lands where TRL puts it or is refused in one line
naming the alternative, never accepted and dropped; with the refused keys changed as their lines say (and the
settings this CPU machine lacks turned off as `rlsurrogate.machine` says), each trains one step.

The one-step runs shrink the batch and completion sizes with `--set` (the configs are written for 8 GPUs and
2048-token completions); every other value is the file's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlsurrogate.build import grpo_config, load
from rlsurrogate.errors import ConfigError
from rlsurrogate.machine import machine_problems

ASSETS = Path(__file__).parent / "assets" / "trl_configs"
# Sizes for one step on a CPU; the configs' own sizes are for GPUs.
CPU_SIZES = [
    "training.max_steps=1",
    "training.per_device_train_batch_size=4",
    "training.gradient_accumulation_steps=1",
    "generation.num_generations=4",
    "generation.max_completion_length=8",
    "eval.max_new_tokens=8",
]
_OVERRIDDEN = {"max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "num_generations"}
_OVERRIDDEN |= {"max_completion_length", "num_train_epochs"}
# A machine-check line's field -> the flat key and the value that turns the setting off, as the line says.
_MACHINE_FIX = {
    "generation.use_vllm": ("use_vllm", False),
    "model.attn_implementation": ("attn_implementation", "sdpa"),
    "training.use_liger_kernel": ("use_liger_kernel", False),
    "training.report_to": ("report_to", "none"),
    "training.push_to_hub": ("push_to_hub", False),
}
_OPEN_R1_REWARD = "is an open-r1 reward, not TRL's; with open-r1 installed name it by path"
_TWO_REWARDS = "names two rewards"
_RENAMED_TRL_1 = {
    "torch_dtype": "torch_dtype: renamed dtype in TRL 1.x (ModelConfig); rename it.",
    "warmup_ratio": "warmup_ratio: merged into warmup_steps in transformers 5",
    "max_prompt_length": "max_prompt_length: not a GRPOConfig field since TRL 1.0",
    "overwrite_output_dir": "overwrite_output_dir: removed in transformers 5",
}
_OPEN_R1_FIX = {"rename": {"torch_dtype": "dtype", "warmup_ratio": "warmup_steps"}}
_OPEN_R1_DROP = ["max_prompt_length", "overwrite_output_dir"]


@dataclass
class Swept:
    """A swept config: the line expected for each refused key, and the change each line asks for."""

    refused: dict[str, str] = field(default_factory=dict)
    rename: dict[str, str] = field(default_factory=dict)
    drop: list[str] = field(default_factory=list)
    set: dict[str, Any] = field(default_factory=dict)
    num_processes: int = 1  # the launch the file was written for (open-r1: 8 GPUs, one serving vLLM)


SWEPT = {
    "trl_docs_clis_grpo.yaml": Swept(),
    "trl_docs_clis_grpo_num_processes.yaml": Swept(
        refused={"num_processes": "num_processes: a `trl` launcher setting; launch with accelerate instead"},
        drop=["num_processes"],
    ),
    "trl_docs_clis_grpo_accelerate_config.yaml": Swept(
        refused={"accelerate_config": "accelerate_config: a `trl` launcher setting; launch with accelerate instead"},
        drop=["accelerate_config"],
    ),
    "trl_docs_clis_grpo_datasets.yaml": Swept(
        refused={"datasets": "datasets: a mixture of several datasets is not supported; concatenate them"},
        drop=["datasets"],
        set={"dataset_name": "data/chat_both.parquet"},
    ),
    "trl_examples_cli_configs_example_config.yaml": Swept(
        refused={"reward_funcs": "reward_funcs: missing; name at least one"},
        set={"reward_funcs": ["think_format_reward"]},
    ),
    "open_r1_qwen2.5_1.5b_instruct_demo.yaml": Swept(
        refused={
            "reward_funcs accuracy": f"reward_funcs: 'accuracy' {_TWO_REWARDS}",
            "reward_funcs format": f"reward_funcs: 'format' {_TWO_REWARDS}",
            "reward_funcs tag_count": f"reward_funcs: 'tag_count' {_OPEN_R1_REWARD}",
            **_RENAMED_TRL_1,
        },
        **_OPEN_R1_FIX,
        drop=_OPEN_R1_DROP,
        set={"reward_funcs": ["accuracy_reward", "think_format_reward"], "reward_weights": [1.0, 1.0]},
        num_processes=7,
    ),
    "open_r1_deepseek_r1_distill_qwen_1.5b_demo.yaml": Swept(
        refused={
            "reward_funcs accuracy": f"reward_funcs: 'accuracy' {_TWO_REWARDS}",
            "reward_funcs format": f"reward_funcs: 'format' {_TWO_REWARDS}",
            "reward_funcs tag_count": f"reward_funcs: 'tag_count' {_OPEN_R1_REWARD}",
            "chat_template": "chat_template: an open-r1 key, not TRL's; set tokenizer.chat_template",
            **_RENAMED_TRL_1,
        },
        **_OPEN_R1_FIX,
        drop=[*_OPEN_R1_DROP, "chat_template"],
        set={"reward_funcs": ["accuracy_reward", "think_format_reward"], "reward_weights": [1.0, 1.0]},
        num_processes=7,
    ),
    "open_r1_qwen2.5_1.5b_instruct_demo_code.yaml": Swept(
        refused={
            "reward_funcs code": f"reward_funcs: 'code' {_OPEN_R1_REWARD}",
            "reward_funcs format": f"reward_funcs: 'format' {_TWO_REWARDS}",
            **_RENAMED_TRL_1,
        },
        **_OPEN_R1_FIX,
        drop=_OPEN_R1_DROP,
        set={"reward_funcs": ["think_format_reward"], "reward_weights": [0.1]},
        num_processes=7,
    ),
    "open_r1_qwen2.5_1.5b_instruct_demo_code_ioi.yaml": Swept(
        refused={
            "reward_funcs ioi_code": f"reward_funcs: 'ioi_code' {_OPEN_R1_REWARD}",
            "reward_funcs code_format": f"reward_funcs: 'code_format' {_OPEN_R1_REWARD}",
            "reward_funcs format": f"reward_funcs: 'format' {_TWO_REWARDS}",
            "code_language": "code_language: a parameter of an open-r1 reward, not TRL's",
            "code_eval_test_batch_size": "code_eval_test_batch_size: a parameter of an open-r1 reward, not TRL's",
            **_RENAMED_TRL_1,
        },
        **_OPEN_R1_FIX,
        drop=[*_OPEN_R1_DROP, "code_language", "code_eval_test_batch_size"],
        set={"reward_funcs": ["think_format_reward"], "reward_weights": [0.1]},
        num_processes=7,
    ),
    "open_r1_qwen2.5_coder_7b_instruct_codeforces.yaml": Swept(
        refused={
            "reward_funcs cf_code": f"reward_funcs: 'cf_code' {_OPEN_R1_REWARD}",
            "reward_funcs code_format": f"reward_funcs: 'code_format' {_OPEN_R1_REWARD}",
            "callbacks": "callbacks: an open-r1 key, not TRL's (hub pushes during training); not supported",
            "benchmarks": "benchmarks: an open-r1 key, not TRL's (lighteval after training)",
            "vllm_device": "vllm_device: removed from GRPOConfig; choose vllm_mode",
            "hub_model_revision": "hub_model_revision: an open-r1 key, not TRL's; push with hub_model_id",
            "wandb_entity": "wandb_entity: an open-r1 key, not TRL's; set WANDB_ENTITY in the environment",
            "wandb_project": "wandb_project: an open-r1 key, not TRL's; set WANDB_PROJECT in the environment",
            "code_eval_test_batch_size": "code_eval_test_batch_size: a parameter of an open-r1 reward, not TRL's",
            "code_eval_scoring_mode": "code_eval_scoring_mode: a parameter of an open-r1 reward, not TRL's",
            **_RENAMED_TRL_1,
        },
        **_OPEN_R1_FIX,
        drop=[*_OPEN_R1_DROP, "callbacks", "benchmarks", "vllm_device", "hub_model_revision", "wandb_entity"]
        + ["wandb_project", "code_eval_test_batch_size", "code_eval_scoring_mode"],
        set={"reward_funcs": ["think_format_reward"], "reward_weights": [0.1]},
        num_processes=7,
    ),
}
# The one swept config trained in the default run (many TRL keys at once); the others are `slow`.
FAST = "open_r1_qwen2.5_1.5b_instruct_demo.yaml"


def test_every_asset_is_swept():
    assert sorted(p.name for p in ASSETS.glob("*.yaml")) == sorted([*SWEPT, "small_32_rows.yaml"])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working directory with what the configs name: `tiny-model` and the local datasets under `data/`."""
    import pandas as pd

    from rlsurrogate.models import tiny_model

    root = tmp_path_factory.mktemp("sweep")
    model, tokenizer = tiny_model(seed=0)
    model.save_pretrained(root / "tiny-model")
    tokenizer.save_pretrained(root / "tiny-model")
    (root / "data" / "codeforces").mkdir(parents=True)
    messages = [[{"role": "user", "content": f"What is {i} + 2?"}] for i in range(32)]
    chat = [{"prompt": m, "solution": f"${i + 2}$"} for i, m in enumerate(messages)]
    pd.DataFrame(chat).to_parquet(root / "data" / "chat.parquet")
    pd.DataFrame(chat[:16]).to_parquet(root / "data" / "chat_more.parquet")
    pd.DataFrame(chat + chat[:16]).to_parquet(root / "data" / "chat_both.parquet")
    problems = pd.DataFrame(
        [
            {"problem": f"What is {i} + 2?", "problem_statement": f"Print {i} + 2.", "prompt": f"Print {i} + 2.",
             "solution": f"${i + 2}$", "answer": str(i + 2)}
            for i in range(32)
        ]
    )  # fmt: skip
    problems.to_parquet(root / "data" / "problems.parquet")
    # open-r1/codeforces has a `verifiable-prompts` configuration with train and test splits; so has this one.
    problems.iloc[:24].to_parquet(root / "data" / "codeforces" / "train.parquet")
    problems.iloc[24:].to_parquet(root / "data" / "codeforces" / "test.parquet")
    (root / "data" / "codeforces" / "README.md").write_text(
        "---\nconfigs:\n- config_name: verifiable-prompts\n  data_files:\n  - split: train\n    path: train.parquet\n"
        "  - split: test\n    path: test.parquet\n---\n"
    )
    return root


@pytest.mark.parametrize("name", list(SWEPT))
def test_each_key_is_refused_in_one_line_or_lands_where_trl_puts_it(name, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    swept = SWEPT[name]
    raw = yaml.safe_load((ASSETS / name).read_text())
    if swept.refused:
        with pytest.raises(ConfigError) as info:
            load(ASSETS / name, num_processes=swept.num_processes)
        lines = info.value.problems
        assert len(lines) == len(swept.refused), lines  # one line per refused key, nothing restated
        for expected in swept.refused.values():
            assert sum(line.startswith(expected) for line in lines) == 1, (expected, lines)
    fixed = _fixed(raw, swept)
    path = workdir / f"fixed_{name}"
    path.write_text(yaml.safe_dump(fixed, sort_keys=False))
    recipe, resolved = load(path, num_processes=swept.num_processes)
    if swept.num_processes > 1:  # this process builds GRPOConfig for one; give it the launch's generation batch
        accumulation = recipe.training_value("gradient_accumulation_steps")
        batch = recipe.training_value("per_device_train_batch_size") * swept.num_processes * accumulation
        recipe.training["generation_batch_size"] = batch
    config = _grpo_config_here(recipe, resolved)
    for key, value in fixed.items():
        _assert_landed(key, value, recipe, resolved, config)


@pytest.mark.parametrize("name", [pytest.param(n, marks=[] if n == FAST else [pytest.mark.slow]) for n in SWEPT])
def test_each_config_trains_one_step_with_the_refused_keys_changed(name, workdir, tmp_path):
    swept = SWEPT[name]
    fixed = _fixed(yaml.safe_load((ASSETS / name).read_text()), swept)
    fixed["output_dir"] = str(tmp_path / "out")
    path = workdir / f"run_{name}"
    path.write_text(yaml.safe_dump(fixed, sort_keys=False))
    cwd = os.getcwd()
    try:
        os.chdir(workdir)
        recipe, _ = load(path, overrides=CPU_SIZES)
        for line in machine_problems(recipe):  # what this machine lacks, turned off as each line says
            key, value = _MACHINE_FIX[next(f for f in _MACHINE_FIX if line.startswith(f))]
            fixed[key] = value
    finally:
        os.chdir(cwd)
    path.write_text(yaml.safe_dump(fixed, sort_keys=False))
    args = [a for override in CPU_SIZES for a in ("--set", override)]
    proc = subprocess.run(
        [sys.executable, "-m", "rlsurrogate", "train", path.name, *args],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=workdir,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 1
    history = json.loads((tmp_path / "out" / "log_history.json").read_text())
    for reward in fixed["reward_funcs"]:
        assert any(f"rewards/{reward}/mean" in row for row in history), reward
    shutil.rmtree(tmp_path / "out")


def test_a_32_row_trl_config_is_accepted_unchanged_and_keeps_training_rows(workdir, monkeypatch):
    from rlsurrogate.tasks.loaders import load_data

    monkeypatch.chdir(workdir)
    recipe, _ = load(ASSETS / "small_32_rows.yaml")
    assert recipe.data.num_eval is None and recipe.training["report_to"] == "tensorboard"
    loaded = load_data(recipe.data)
    assert (len(loaded.train), len(loaded.eval_rows)) == (29, 3)


@pytest.mark.slow
def test_a_32_row_trl_config_trains_two_steps_unchanged_and_logs_to_tensorboard(workdir, tmp_path):
    """A first run as a TRL user writes it: TRL's defaults throughout (512-token completions: minutes on a CPU)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    shutil.copy(ASSETS / "small_32_rows.yaml", tmp_path / "config.yaml")
    for item in ("tiny-model", "data"):
        (tmp_path / item).symlink_to(workdir / item)
    proc = subprocess.run(
        [sys.executable, "-m", "rlsurrogate", "train", "config.yaml"],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=tmp_path,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2
    assert "data: 29 training prompts and 3 held-out from data/chat.parquet" in proc.stdout
    files = sorted((tmp_path / "trainer_output").rglob("events.out.tfevents*"))
    assert files, "no TensorBoard event file"
    tags = set()
    for file in files:
        events = EventAccumulator(str(file))
        events.Reload()
        tags |= set(events.Tags()["scalars"])
    assert any("think_format_reward" in tag for tag in tags), sorted(tags)


# ---------------------------------------------------------------------------------------------------------------


def _fixed(raw: dict[str, Any], swept: Swept) -> dict[str, Any]:
    """The config with each refused key changed as its line says."""
    fixed = {swept.rename.get(k, k): v for k, v in raw.items() if k not in swept.drop}
    return fixed | swept.set


def _grpo_config_here(recipe: Any, resolved: Any) -> Any:
    """GRPOConfig of the recipe; `bf16: true` turned off where this machine refuses it (a CPU without bf16)."""
    try:
        return grpo_config(recipe, resolved)
    except ConfigError as err:
        assert all(line.startswith("training.bf16 = true: this machine's") for line in err.problems), err.problems
        recipe.training["bf16"] = False
        return grpo_config(recipe, resolved)


def _assert_landed(key: str, value: Any, recipe: Any, resolved: Any, config: Any) -> None:
    """A flat key's value reached the recipe field or the GRPOConfig field TRL's script gives it."""
    import dataclasses

    from trl import GRPOConfig

    data, model = recipe.data, recipe.model
    elsewhere = {
        "model_name_or_path": model.name,
        "model_revision": model.revision or "main",
        "dtype": model.dtype,
        "attn_implementation": model.attn_implementation,
        "dataset_name": data.hf_dataset,
        "dataset_config": data.hf_config,
        "dataset_train_split": data.split,
        "dataset_test_split": data.eval_split,
        "dataset_prompt_column": data.template and data.template.strip("{}"),
        "system_prompt": data.system_prompt,
        "reward_funcs": [spec.name.removeprefix("trl.rewards:") for spec in recipe.rewards],
        "reward_weights": resolved.weights,
        "per_device_eval_batch_size": recipe.eval.batch_size,
        "output_dir": recipe.output_dir,
    }
    if key in elsewhere:
        assert elsewhere[key] == value, (key, elsewhere[key], value)
        return
    assert key in {f.name for f in dataclasses.fields(GRPOConfig)}, key
    if key == "bf16" and recipe.training.get("bf16") is False:
        return  # this machine refused it: see _grpo_config_here
    expected = value
    if key == "scale_rewards" and isinstance(value, bool):  # GRPOConfig reads False as "none", True as "group"
        expected = "group" if value else "none"
    if key == "report_to":
        expected = [value] if isinstance(value, str) else value
        expected = [] if expected == ["none"] else expected
    landed = getattr(config, key)
    landed = getattr(landed, "value", landed)  # transformers' str enums (lr_scheduler_type, save_strategy, ...)
    assert landed == expected, (key, landed, expected)
