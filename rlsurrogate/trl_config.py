"""TRL's `trl grpo --config` format, read as a recipe: a TRL 1.16 config file runs unchanged.

A `trl grpo` config is one flat mapping of the fields of four TRL dataclasses: `GRPOScriptArguments`
(`dataset_name`, `dataset_config`, `dataset_train_split`, `dataset_test_split`, `dataset_streaming`,
`reward_funcs`, `reward_model_name_or_path`), `ModelConfig` (`model_name_or_path`, `model_revision`, `dtype`,
`attn_implementation`, `use_peft`, `lora_*`, `load_in_4bit`, `bnb_*`), `DatasetMixtureConfig` (`datasets`) and
`GRPOConfig` (everything else). `normalize` recognises the format (TRL keys at the top level and none of the
recipe's `model`, `data`, `rewards` sections) and maps it onto a recipe mapping, which then goes through the same
validation as any recipe, so every problem is reported at once. The mapping follows TRL's `trl/scripts/grpo.py`:

- `reward_funcs` entries are TRL's registry names (`accuracy_reward`, `reasoning_accuracy_reward`,
  `think_format_reward`, `get_soft_overlong_punishment` with its script's 1280 / 256), our registry names (of which
  `accuracy`, `format` and `length` are refused, being open-r1's names for other rewards: write TRL's name, or
  `rlsurrogate.rewards.format` for ours), or dotted import paths (`my_lib.rewards.fn`; a module file under the
  working directory is loaded by path, as TRL puts the working directory on `sys.path`);
  `reward_model_name_or_path` becomes the first reward, `rm:<id>`. TRL's accuracy rewards are gold metrics (the
  hacking guard watches them; `best/` follows the first).
- `loss_type` (default TRL's `dapo`) becomes `objective.name`; generation fields go to `generation`;
  `eval_on_start` and `per_device_eval_batch_size` to `eval`; `trust_remote_code` and `model_init_kwargs` to `model`;
  every other GRPOConfig field to `training`, with TRL's defaults where ours differ (`logging_steps` 10,
  `gradient_checkpointing` true, `save_steps` 500, no `save_total_limit`, `max_completion_length` 512, output
  directory `trainer_output`), so the run is TRL's run. `bf16` keeps our default (on only with a bf16 GPU).
- Held-out evaluation (ours; TRL has none by default) uses `dataset_test_split` when the config names it or sets an
  `eval_strategy`, else rows split off the training split: `test_split_size` of them, or by default 10 % of the rows
  (at most 32; none from a dataset under 10 rows), so whatever TRL trains on still leaves training rows here. The run
  prints which.
- A string where TRL reads a bool or a number (`use_peft: "false"`, `learning_rate: "1e-5"`) is converted as TRL's
  HfArgumentParser converts it (argparse applies a field's type to a string default): `string_to_bool`, `int`,
  `float`; a string neither reads is refused.
- What has no equivalent is refused with the alternative, never dropped: launcher keys (`num_processes`,
  `accelerate_config`: use `accelerate launch`), `env`, multi-dataset mixtures, LoRA or bitsandbytes settings
  without `use_peft` / `load_in_4bit`, `resume_from_checkpoint` (use `--resume`). So are keys TRL 1.16 no longer
  has (`torch_dtype`, `warmup_ratio`, `max_prompt_length`, ...) and the keys of open-r1's `grpo.py`, which TRL's
  script would drop without a word; open-r1's `system_prompt` and `dataset_prompt_column` map onto
  `data.system_prompt` and `data.template`.

For a recipe (not TRL's format), `normalize` moves nothing and names each top-level key that belongs elsewhere:
a GRPOConfig field gets "put it under `training:`", a TRL key the recipe field it maps to.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from argparse import ArgumentTypeError
from pathlib import Path
from typing import Any

from rlsurrogate.registry import did_you_mean

__all__ = ["TRL_REWARD_FUNCS", "drop_restated", "is_trl_config", "normalize", "to_recipe"]

# TRL 1.16 `trl/scripts/grpo.py`: reward_funcs registry name -> (our reference, params).
TRL_REWARD_FUNCS: dict[str, tuple[str, dict[str, Any]]] = {
    "accuracy_reward": ("trl.rewards:accuracy_reward", {}),
    "reasoning_accuracy_reward": ("trl.rewards:reasoning_accuracy_reward", {}),
    "think_format_reward": ("trl.rewards:think_format_reward", {}),
    "get_soft_overlong_punishment": (
        "trl.rewards:get_soft_overlong_punishment",
        {"max_completion_len": 1280, "soft_punish_cache": 256},  # the values the TRL script uses
    ),
}
# GRPOScriptArguments (with ScriptArguments) and ModelConfig fields, and the recipe field each becomes.
_SCRIPT_KEYS = {
    "dataset_name": "data.hf_dataset",
    "dataset_config": "data.hf_config",
    "dataset_train_split": "data.split",
    "dataset_test_split": "data.eval_split",
    "dataset_streaming": "data.streaming",
    "ignore_bias_buffers": "nothing (TRL's GRPO script does not read it)",
    "reward_funcs": "rewards[i].name",
    "reward_model_name_or_path": "rewards[i].name: rm:<id>",
    "datasets": "data.hf_dataset / data.data_files",
    "streaming": "data.streaming",
    "test_split_size": "data.num_eval",
}
_MODEL_KEYS = {
    "model_name_or_path": "model.name",
    "model_revision": "model.revision",
    "dtype": "model.dtype",
    "attn_implementation": "model.attn_implementation",
    "use_peft": "model.lora",
    "lora_r": "model.lora.r",
    "lora_alpha": "model.lora.alpha",
    "lora_dropout": "model.lora.dropout",
    "lora_target_modules": "model.lora.target_modules",
    "lora_target_parameters": "nothing (not supported; use model.lora.target_modules)",
    "lora_modules_to_save": "model.lora.modules_to_save",
    "lora_task_type": "nothing (always CAUSAL_LM)",
    "use_rslora": "model.lora.use_rslora",
    "use_dora": "model.lora.use_dora",
    "load_in_8bit": "model.quantization.load_in_8bit",
    "load_in_4bit": "model.quantization.load_in_4bit",
    "bnb_4bit_quant_type": "model.quantization.bnb_4bit_quant_type",
    "use_bnb_nested_quant": "model.quantization.bnb_4bit_use_double_quant",
    "bnb_4bit_quant_storage": "model.quantization.bnb_4bit_quant_storage",
}
# GRPOConfig fields a recipe keeps outside `training`.
_GENERATION_KEYS = (
    "num_generations",
    "max_completion_length",
    "temperature",
    "top_p",
    "top_k",
    "use_vllm",
    "vllm_mode",
    "max_tool_calling_iterations",
)
_EVAL_KEYS = {"eval_on_start": "before", "per_device_eval_batch_size": "batch_size"}
# TRL's defaults where a recipe's differ (recipe.TRAINING_DEFAULTS, GenerationConfig), applied to a TRL config.
_TRL_TRAINING_DEFAULTS = {
    "logging_steps": 10,
    "gradient_checkpointing": True,
    "save_steps": 500,
    "save_total_limit": None,
}
_TRL_GENERATION_DEFAULTS = {"max_completion_length": 512}
_TRL_OUTPUT_DIR = "trainer_output"  # transformers' TrainingArguments default when output_dir is None
# model_init_kwargs keys a recipe expresses; TRL's script fills the same four.
_INIT_KWARGS = {"revision": "revision", "attn_implementation": "attn_implementation", "dtype": "dtype"}
_INIT_KWARGS |= {"trust_remote_code": "trust_remote_code"}
# `trl` CLI keys passed to `accelerate launch` (trl/cli/commands/training.py), which a config may carry.
_LAUNCHER_KEYS = ("num_processes", "accelerate_config", "config_file", "num_machines", "mixed_precision", "multi_gpu")
_RECIPE_SECTIONS = ("model", "data", "rewards")
# Keys of older TRL / transformers, and of open-r1's GRPO script (open_r1/configs.py), that TRL 1.16's script would
# drop without a word (it parses with fail_with_unknown_args=False): what to write instead.
_OPEN_R1 = "an open-r1 key, not TRL's"
_OPEN_R1_REWARD = "a parameter of an open-r1 reward, not TRL's; set it in your reward and name that by dotted path"
_NOT_TRL_1_16 = {
    "torch_dtype": "renamed dtype in TRL 1.x (ModelConfig); rename it.",
    "warmup_ratio": "merged into warmup_steps in transformers 5 (a float in [0, 1) is a ratio); write warmup_steps.",
    "max_prompt_length": "not a GRPOConfig field since TRL 1.0 (prompts are not truncated); drop it.",
    "overwrite_output_dir": "removed in transformers 5; drop it (use --resume to continue a run in output_dir).",
    "vllm_device": "removed from GRPOConfig; choose vllm_mode (colocate or server) instead.",
    "dataset_configs": f"{_OPEN_R1}; name one configuration with dataset_config.",
    "chat_template": f"{_OPEN_R1}; set tokenizer.chat_template, save the tokenizer with the model and name that "
    "directory in model_name_or_path.",
    "callbacks": f"{_OPEN_R1} (hub pushes during training); not supported; drop it.",
    "benchmarks": f"{_OPEN_R1} (lighteval after training); evaluate output_dir with lighteval after the run.",
    "num_completions_to_print": f"{_OPEN_R1}; use log_completions: true.",
    "wandb_log_unique_prompts": f"{_OPEN_R1}; drop it (log_completions logs the prompts).",
    **dict.fromkeys(
        ("hub_model_revision", "push_to_hub_revision", "overwrite_hub_revision"),
        f"{_OPEN_R1}; push with hub_model_id and push_to_hub.",
    ),
    **{
        f"wandb_{k}": f"{_OPEN_R1}; set WANDB_{k.upper()} in the environment (with report_to: wandb)."
        for k in ("entity", "project", "run_group")
    },
    **dict.fromkeys(
        ("cosine_min_value_wrong", "cosine_max_value_wrong", "cosine_min_value_correct", "cosine_max_value_correct")
        + ("cosine_max_len", "repetition_n_grams", "repetition_max_penalty", "code_language", "code_provider")
        + ("code_eval_test_batch_size", "code_eval_scoring_mode", "parallel_code_exec_per_proc", "e2b_router_url")
        + ("morph_router_url", "ioi_provider", "enforce_same_language", "max_completion_len", "soft_punish_cache"),
        f"{_OPEN_R1_REWARD} (my_rewards.cosine_reward).",
    ),
}
# open-r1's reward_funcs names that this package's registry also has, for another reward: refused in a flat config
# (which TRL's script would refuse too), naming the reward of each meaning.
_OPEN_R1_SHARED_REWARDS = {
    "accuracy": "open-r1's math-verify check of the `solution` column is TRL's accuracy_reward; this package's "
    "grades the last \\boxed{} against `answer`",
    "format": "open-r1's <think>/<answer> tag check is closest to TRL's think_format_reward; this package's checks "
    "that the last \\boxed{} holds valid mathematics",
    "length": "open-r1's len_reward (Kimi 1.5) has no TRL equivalent (name it by path, open_r1.rewards.len_reward); "
    "this package's is the Format-Length paper's length reward",
}
# open-r1's reward_funcs names (open_r1/rewards.py get_reward_funcs) that neither TRL nor this package has.
_OPEN_R1_REWARDS: tuple[str, ...] = (
    "reasoning_steps",
    "cosine",
    "repetition_penalty",
    "code",
    "binary_code",
    "ioi_code",
    "cf_code",
)
_OPEN_R1_REWARDS += ("code_format", "tag_count", "soft_overlong_punishment")
_OUR_PREFIX = "rlsurrogate.rewards."  # `rlsurrogate.rewards.format`: this package's registry name, spelled as a path


def is_trl_config(raw: dict[str, Any]) -> bool:
    """Whether a parsed YAML mapping is in TRL's flat format rather than a recipe."""
    if any(key in raw for key in _RECIPE_SECTIONS):
        return False
    return any(key in raw for key in (*_SCRIPT_KEYS, *_MODEL_KEYS))


def normalize(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(recipe mapping, problems): a TRL config converted, or a recipe with misplaced top-level keys named."""
    if is_trl_config(raw):
        return to_recipe(raw)
    return _misplaced(raw)


def to_recipe(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Maps a `trl grpo` config onto a recipe mapping; returns it with one problem line per unmappable key.

    Example:
        >>> recipe, problems = to_recipe(
        ...     {"model_name_or_path": "Qwen/Qwen2.5-0.5B", "dataset_name": "ds", "reward_funcs": ["accuracy_reward"]}
        ... )
        >>> recipe["rewards"], recipe["objective"], problems
        ([{'name': 'trl.rewards:accuracy_reward'}], {'name': 'dapo'}, [])
    """
    raw = dict(raw)
    problems: list[str] = []
    _coerce(raw, problems)
    if isinstance(raw.get("scale_rewards"), bool):  # GRPOConfig.__post_init__: True is "group", False "none"
        raw["scale_rewards"] = "group" if raw["scale_rewards"] else "none"
    grpo_fields = _grpo_fields()
    sections: dict[str, dict[str, Any]] = {}
    sections_of_ours = ("objective", "generation", "training", "eval", "diagnostics", "optimizer", "sampling")
    for name in (*sections_of_ours, "tools", "environment"):  # TRL's script has no tools or environments
        value = raw.pop(name, None)
        if value is not None:
            sections[name] = dict(value) if isinstance(value, dict) else value
    trust_remote_code = bool(raw.get("trust_remote_code"))
    model = _model(raw, problems)
    data = _data(raw, problems)
    rewards = _rewards(raw, trust_remote_code, problems)
    generation = dict(_TRL_GENERATION_DEFAULTS)
    training: dict[str, Any] = dict(_TRL_TRAINING_DEFAULTS)
    eval_section: dict[str, Any] = {}
    objective = {"name": raw.pop("loss_type", "dapo")}
    output_dir = raw.pop("output_dir", None) or _TRL_OUTPUT_DIR
    for key, value in raw.items():
        if key in _GENERATION_KEYS:
            generation[key] = value
        elif key in _EVAL_KEYS:
            eval_section[_EVAL_KEYS[key]] = value
        elif key in grpo_fields:
            training[key] = value
        elif key in _LAUNCHER_KEYS:
            problems.append(
                f"{key}: a `trl` launcher setting; launch with accelerate instead, e.g. `accelerate launch "
                f"--num_processes N -m rlsurrogate train CONFIG` (or --config_file for accelerate_config)."
            )
        elif key == "env":
            problems.append("env: set these environment variables in the shell that launches the run.")
        elif key in _NOT_TRL_1_16:
            problems.append(f"{key}: {_NOT_TRL_1_16[key]}")
        else:
            valid = [*_SCRIPT_KEYS, *_MODEL_KEYS, *grpo_fields]
            hint = did_you_mean(str(key), valid)
            problems.append(f"{key}: not a field of GRPOScriptArguments, ModelConfig or GRPOConfig (TRL 1.16).{hint}")
    if training.get("eval_strategy", "no") != "no" and "eval_split" not in data and "num_eval" not in data:
        data["eval_split"] = "test"  # TRL evaluates on dataset_test_split, default "test"
    recipe: dict[str, Any] = {"model": model, "data": data, "rewards": rewards}
    for name, mapped in (("objective", objective), ("generation", generation), ("training", training)):
        recipe[name] = _merge(name, mapped, sections.pop(name, None), problems)
    if eval_section or "eval" in sections:
        recipe["eval"] = _merge("eval", eval_section, sections.pop("eval", None), problems)
    recipe |= sections
    recipe["output_dir"] = output_dir
    if isinstance(recipe["training"], dict):
        _apply_reward_weights(recipe, problems)
    return recipe, problems


# ---------------------------------------------------------------------------------------------------------------


def _model(raw: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    model: dict[str, Any] = {}
    if "model_name_or_path" in raw:
        model["name"] = raw.pop("model_name_or_path")
    else:
        problems.append("model_name_or_path: missing; every TRL config names the model to train.")
    if raw.get("model_revision", "main") != "main":
        model["revision"] = raw["model_revision"]
    raw.pop("model_revision", None)
    if "dtype" in raw:
        model["dtype"] = raw.pop("dtype") or "auto"  # None: transformers 5 loads in the checkpoint's dtype
    if raw.get("attn_implementation") is not None:
        model["attn_implementation"] = raw["attn_implementation"]
    raw.pop("attn_implementation", None)
    if raw.pop("trust_remote_code", False):
        model["trust_remote_code"] = True
    init_kwargs = _init_kwargs(raw.pop("model_init_kwargs", None), problems)
    for key, value in init_kwargs.items():
        if key in _INIT_KWARGS:
            model[_INIT_KWARGS[key]] = value
        else:
            problems.append(
                f"model_init_kwargs.{key}: not supported; a recipe sets {', '.join(_INIT_KWARGS)} (and quantization "
                "through load_in_4bit)."
            )
    lora = {
        "r": raw.pop("lora_r", 16),
        "alpha": raw.pop("lora_alpha", 32),
        "dropout": raw.pop("lora_dropout", 0.05),
        "target_modules": raw.pop("lora_target_modules", None),
        "modules_to_save": raw.pop("lora_modules_to_save", None),
        "use_rslora": raw.pop("use_rslora", False),
        "use_dora": raw.pop("use_dora", False),
    }
    lora_defaults = {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": None, "modules_to_save": None}
    lora_defaults |= {"use_rslora": False, "use_dora": False}
    if raw.pop("lora_target_parameters", None) is not None:
        problems.append("lora_target_parameters: not supported; adapt modules with lora_target_modules.")
    task_type = raw.pop("lora_task_type", "CAUSAL_LM")
    if task_type != "CAUSAL_LM":
        problems.append(f'lora_task_type = "{task_type}": GRPO trains a causal LM; remove it.')
    if raw.pop("use_peft", False):
        model["lora"] = {k: v for k, v in lora.items() if v != lora_defaults[k] or k == "target_modules"}
    else:
        for key, value in lora.items():
            if value != lora_defaults[key]:
                trl_key = {"r": "lora_r", "alpha": "lora_alpha", "dropout": "lora_dropout"}.get(key, key)
                trl_key = {"target_modules": "lora_target_modules", "modules_to_save": "lora_modules_to_save"}.get(
                    key, trl_key
                )
                problems.append(f"{trl_key}: set, but use_peft is false, so TRL would ignore it; set use_peft: true.")
    quantization = {
        "load_in_4bit": raw.pop("load_in_4bit", False),
        "load_in_8bit": raw.pop("load_in_8bit", False),
        "bnb_4bit_quant_type": raw.pop("bnb_4bit_quant_type", "nf4"),
        "bnb_4bit_use_double_quant": raw.pop("use_bnb_nested_quant", False),
        "bnb_4bit_quant_storage": raw.pop("bnb_4bit_quant_storage", None),
    }
    if quantization["load_in_4bit"] or quantization["load_in_8bit"]:
        model["quantization"] = {k: v for k, v in quantization.items() if v not in (False, None, "nf4")}
    elif any(quantization[k] not in (False, None, "nf4") for k in quantization):
        problems.append("bnb_4bit_* / use_bnb_nested_quant: set without load_in_4bit, so TRL would ignore them.")
    return model


def _data(raw: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    mixture = raw.pop("datasets", None)
    if raw.get("dataset_name") and mixture:
        problems.append("dataset_name and datasets: set one (TRL would use datasets and ignore dataset_name).")
    if mixture:
        if not isinstance(mixture, list) or len(mixture) != 1 or not isinstance(mixture[0], dict):
            problems.append(
                "datasets: a mixture of several datasets is not supported; concatenate them into one dataset "
                "(datasets.concatenate_datasets) and name it with dataset_name."
            )
        else:
            entry = dict(mixture[0])
            data["hf_dataset"] = entry.pop("path", None)
            for theirs, ours in (("name", "hf_config"), ("data_files", "data_files"), ("split", "split")):
                if entry.get(theirs) is not None:
                    data[ours] = entry.pop(theirs)
            entry.pop("fraction", None)  # one dataset: the whole of it, whatever its fraction
            for key, value in entry.items():
                if value is not None:
                    problems.append(f"datasets[0].{key}: not supported; select columns or files with data_files.")
    if raw.get("dataset_name"):
        data["hf_dataset"] = raw["dataset_name"]
    elif not mixture:
        problems.append("dataset_name: missing; name the dataset (a hub id or a local file or directory).")
    raw.pop("dataset_name", None)
    if raw.get("dataset_config") is not None:
        data["hf_config"] = raw["dataset_config"]
    raw.pop("dataset_config", None)
    if raw.get("dataset_train_split", "train") != "train":
        data["split"] = raw["dataset_train_split"]
    raw.pop("dataset_train_split", None)
    if "dataset_test_split" in raw:
        data["eval_split"] = raw.pop("dataset_test_split")
    if raw.pop("dataset_streaming", False) or raw.pop("streaming", False):
        data["streaming"] = True
    test_size = raw.pop("test_split_size", None)
    if isinstance(test_size, int) and not isinstance(test_size, bool):
        data["num_eval"] = test_size
    elif test_size is not None:
        problems.append(f"test_split_size = {test_size!r}: give a number of held-out rows (data.num_eval).")
    if raw.pop("ignore_bias_buffers", False):
        problems.append("ignore_bias_buffers: TRL's GRPO script does not read it; remove it.")
    if raw.get("system_prompt") is not None:  # open-r1: a system message before each prompt
        data["system_prompt"] = raw["system_prompt"]
    raw.pop("system_prompt", None)
    column = raw.pop("dataset_prompt_column", None)
    if column is not None:  # open-r1: the user message is this column's text
        data["template"] = "{" + str(column) + "}"
    return data


def _rewards(raw: dict[str, Any], trust_remote_code: bool, problems: list[str]) -> list[dict[str, Any]]:
    from rlsurrogate.rewards import REWARDS

    rewards: list[dict[str, Any]] = []
    if raw.get("reward_model_name_or_path"):
        entry: dict[str, Any] = {"name": f"rm:{raw['reward_model_name_or_path']}"}
        if trust_remote_code:  # TRL loads its reward model with GRPOConfig.trust_remote_code
            entry["params"] = {"trust_remote_code": True}
        rewards.append(entry)
    raw.pop("reward_model_name_or_path", None)
    funcs = raw.pop("reward_funcs", None) or []
    funcs = [funcs] if isinstance(funcs, str) else funcs if isinstance(funcs, list) else [funcs]
    for name in funcs:
        if not isinstance(name, str):
            problems.append(
                f"reward_funcs: {name!r} is not a name; list reward names or dotted import paths (weights go in "
                "reward_weights; for parameters write a recipe's rewards: section, see `rlsurrogate convert`)."
            )
        elif name in TRL_REWARD_FUNCS:
            ref, params = TRL_REWARD_FUNCS[name]
            entry = {"name": ref, "params": dict(params)} if params else {"name": ref}
            if "accuracy" in name:  # what the run is for: watched by the hacking guard, picks best/
                entry["gold"] = True
            rewards.append(entry)
        elif name in _OPEN_R1_SHARED_REWARDS:
            problems.append(
                f"reward_funcs: {name!r} names two rewards: {_OPEN_R1_SHARED_REWARDS[name]}; write the TRL name, "
                f"or rlsurrogate.rewards.{name} for this package's."
            )
        elif name in REWARDS:
            rewards.append({"name": name})
        elif name.startswith(_OUR_PREFIX) and name.removeprefix(_OUR_PREFIX) in REWARDS:
            rewards.append({"name": name.removeprefix(_OUR_PREFIX)})
        elif isinstance(name, str) and "." in name:
            rewards.append({"name": _import_path(name)})
        elif name in _OPEN_R1_REWARDS:
            problems.append(
                f"reward_funcs: {name!r} is an open-r1 reward, not TRL's; with open-r1 installed name it by path "
                f"(open_r1.rewards.{name}_reward, if it takes no parameters), or use TRL's think_format_reward / "
                "get_soft_overlong_punishment or this package's format / length."
            )
        else:
            valid = [*TRL_REWARD_FUNCS, *REWARDS.names()]
            problems.append(
                f"reward_funcs: {name!r} is not a TRL or rlsurrogate reward.{did_you_mean(str(name), valid)} Valid: "
                f"{', '.join(valid)}, or a dotted import path (my_lib.rewards.fn)."
            )
    if not rewards and not any("reward_funcs:" in p for p in problems):
        problems.append("reward_funcs: missing; name at least one (or reward_model_name_or_path).")
    return rewards


def drop_restated(conversion: list[str], schema: list[str]) -> list[str]:
    """The schema's problems without those that only restate a conversion problem: a refused `reward_funcs` or
    `datasets` leaves the recipe without rewards or a dataset, which its own line already explains."""
    restated = []
    if any(p.startswith("reward_funcs:") for p in conversion):
        restated.append("rewards: must be a non-empty list")
    if any(p.startswith("datasets:") for p in conversion):
        restated.append("data: set exactly one of task, path, hf_dataset (got none)")
    return [p for p in schema if not any(p.startswith(r) for r in restated)]


def _init_kwargs(value: Any, problems: list[str]) -> dict[str, Any]:
    """model_init_kwargs as a mapping; a JSON string is read as GRPOConfig reads it (TrainingArguments'
    `_VALID_DICT_FIELDS`)."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            problems.append(f"model_init_kwargs = {value!r}: not valid JSON ({err.msg}); write a YAML mapping.")
            return {}
    if value is None or isinstance(value, dict):
        return value or {}
    problems.append(f"model_init_kwargs = {value!r}: must be a mapping such as {{dtype: bfloat16}}.")
    return {}


def _import_path(dotted: str) -> str:
    """`a.b.fn` -> `a/b.py:fn` if that file is under the working directory (TRL imports from there), else `a.b:fn`."""
    module, _, attr = dotted.rpartition(".")
    file = Path(*module.split(".")).with_suffix(".py")
    return f"{file.as_posix()}:{attr}" if file.is_file() else f"{module}:{attr}"


def _apply_reward_weights(recipe: dict[str, Any], problems: list[str]) -> None:
    weights = recipe["training"].pop("reward_weights", None)
    if weights is None or any(p.startswith("reward_funcs:") for p in problems):
        return  # a refused reward leaves the count unknown; its own line says what to change
    if not isinstance(weights, list) or len(weights) != len(recipe["rewards"]):
        problems.append(
            f"reward_weights = {weights!r}: needs one weight per reward ({len(recipe['rewards'])}: the reward model "
            "first, then reward_funcs in order)."
        )
        return
    for entry, weight in zip(recipe["rewards"], weights):
        entry["weight"] = weight


def _merge(name: str, mapped: dict[str, Any], given: Any, problems: list[str]) -> Any:
    """A section from flat TRL keys plus the same section written out; a key in both is a problem."""
    if given is None:
        return mapped
    if not isinstance(given, dict):
        return given  # the recipe's own check reports the type
    defaults = {**_TRL_TRAINING_DEFAULTS, **_TRL_GENERATION_DEFAULTS}
    twice = [k for k in given if k in mapped and not (k in defaults and mapped[k] == defaults[k])]
    twice = [k for k in twice if not (name == "objective" and k == "name" and mapped[k] == "dapo")]
    for key in twice:
        problems.append(f"{name}.{key}: set both as a flat TRL key and under {name}:; keep one.")
    return {**mapped, **given}


def _misplaced(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A recipe without its top-level keys that belong in a section; one line each saying where."""
    from rlsurrogate.recipe import Recipe

    sections = {f.name for f in dataclasses.fields(Recipe)}
    grpo_fields = _grpo_fields()
    problems, kept = [], {}
    for key, value in raw.items():
        if key in sections:
            kept[key] = value
        elif key in _GENERATION_KEYS:
            problems.append(f"{key}: a generation setting; put it under `generation:`.")
        elif key == "loss_type":
            problems.append("loss_type: put it under `objective:` as objective.name (grpo, dapo, dr_grpo, ...).")
        elif key in grpo_fields:
            problems.append(f"{key}: a GRPOConfig field; put it under `training:`.")
        elif key in _SCRIPT_KEYS or key in _MODEL_KEYS:
            where = {**_SCRIPT_KEYS, **_MODEL_KEYS}[key]
            problems.append(
                f"{key}: a `trl grpo` key; a recipe spells it {where} (or drop the model, data and rewards sections "
                "to use TRL's flat format)."
            )
        else:
            kept[key] = value  # the recipe's own check names it, with a did-you-mean
    return kept, problems


def _coerce(raw: dict[str, Any], problems: list[str]) -> None:
    """Strings of bool, int and float fields converted in place as TRL's HfArgumentParser converts a config value;
    a string neither reads, or a null where the field takes none, is removed and named."""
    from transformers.hf_argparser import string_to_bool

    kinds = _field_kinds()
    for key, value in list(raw.items()):
        kind, nullable = kinds.get(key, (None, True))
        if kind is None or value is None and nullable or value is not None and not isinstance(value, str):
            continue
        try:
            if value is None:
                raise ValueError(value)
            raw[key] = string_to_bool(value) if kind is bool else kind(value)
        except (ValueError, ArgumentTypeError):
            del raw[key]
            example = "true or false" if kind is bool else "a number such as 1e-5" if kind is float else "an integer"
            if value is None:
                problems.append(f"{key} = null: TRL's field takes no null; remove the line to keep its default.")
            else:
                problems.append(f"{key} = {value!r}: TRL reads this field as {kind.__name__}; write {example}.")


@functools.cache
def _field_kinds() -> dict[str, tuple[type, bool]]:
    """Field name -> (bool, int or float; whether it takes None), for the fields of TRL's four `trl grpo`
    dataclasses that have one of those types."""
    from trl import DatasetMixtureConfig, GRPOConfig, ModelConfig, ScriptArguments

    kinds: dict[str, tuple[type, bool]] = {}
    for cls in (ScriptArguments, ModelConfig, DatasetMixtureConfig, GRPOConfig):
        for name, hint in typing.get_type_hints(cls).items():
            args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
            kind = tuple(a for a in args if a is not type(None))
            if len(kind) == 1 and kind[0] in (bool, int, float):
                kinds[name] = (kind[0], type(None) in args)
    return kinds


def _grpo_fields() -> set[str]:
    from trl import GRPOConfig

    return {f.name for f in dataclasses.fields(GRPOConfig) if f.init}
