"""A validated recipe and its resolved names → dataset, RLTrainer with evaluation → train → save → summary.

Called by `rlsurrogate train RECIPE [--set key=value ...] [--resume]` on one process, or
`accelerate launch [--config_file recipes/accelerate/X.yaml] -m rlsurrogate train RECIPE` on several.
The run writes into `output_dir`: checkpoints, `final/` (the trained model), `eval_before.json`,
`eval_after.json`, `rewards.png` (reward per step), `log_history.json` (every logged metric per step, diagnostics
included) and `summary.json`; its last output line is the summary JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlsurrogate.build import Resolved, grpo_config, model_kwargs, vllm_engine_kwargs
from rlsurrogate.errors import UnsupportedError
from rlsurrogate.recipe import Recipe

__all__ = ["train"]


def train(recipe: Recipe, resolved: Resolved, resume: bool = False) -> dict[str, Any] | None:
    """Runs one recipe end to end; returns the summary on the main process (None on the others).

    Args:
        recipe: the validated recipe.
        resolved: its names, resolved once (`rlsurrogate.build.load`).
        resume: continue from the newest intact checkpoint in `output_dir`.

    Example:
        >>> recipe, resolved = rlsurrogate.build.load("recipes/quickstart.yaml")  # doctest: +SKIP
        >>> summary = train(recipe, resolved)  # doctest: +SKIP
    """
    from rlsurrogate.checkpoints import newest_intact_checkpoint
    from rlsurrogate.eval_callback import HeldOutEvaluation
    from rlsurrogate.evaluation import process_state
    from rlsurrogate.machine import check_machine
    from rlsurrogate.models import load_model
    from rlsurrogate.tasks.loaders import load_data
    from rlsurrogate.trainer import RLTrainer

    _check_launch()
    check_machine(recipe)
    _keep_torch_threads_beside_vllm(recipe)
    state = process_state()
    out = Path(recipe.output_dir)
    data = load_data(recipe.data)
    eval_rows = data.eval_rows[: recipe.eval.num_prompts or len(data.eval_rows)]
    config = grpo_config(recipe, resolved)
    agent = _agent_kwargs(resolved, next(iter(data.train)))

    with state.main_process_first():  # the first load of an embedded model converts it; do that once
        model, tokenizer = load_model(recipe.model.name, recipe.model.dtype, **model_kwargs(recipe))
    if agent:
        from rlsurrogate.environments.chat_template import ensure_tool_calling

        note = ensure_tool_calling(tokenizer, recipe.model.name)
        if note and state.is_main_process:
            print(note)

    checkpoint, broken = newest_intact_checkpoint(out)
    if state.is_main_process:
        for path, problem in broken if resume else []:
            print(f"warning: {path} is broken ({problem}); skipping it.")
        if resume and checkpoint is None:
            print(f"--resume: no intact checkpoint in {out}; starting from step 0.")
        elif checkpoint and not resume:
            print(f"note: {out} has {checkpoint.name}; pass --resume to continue from it instead of restarting.")

    optimizer = None
    if resolved.optimizer is not None:  # the Trainer passes no lr to a custom optimizer class
        optimizer = (resolved.optimizer[0], {"lr": config.learning_rate, **resolved.optimizer[1]})
    trainer = RLTrainer(
        model=model,
        reward_funcs=resolved.rewards,
        args=config,
        train_dataset=data.train,
        processing_class=tokenizer,
        peft_config=_peft_config(recipe),
        objective=resolved.objective,
        score_listeners=_score_listeners(recipe),
        reward_timeouts=resolved.timeouts,
        sampler=resolved.sampler,
        **agent,
        optimizer_cls_and_kwargs=None
        if optimizer is None
        else (optimizer[0], {"lr": config.learning_rate, **optimizer[1]}),
        vllm_engine_kwargs=vllm_engine_kwargs(recipe),
    )
    evaluation = HeldOutEvaluation(
        trainer,
        eval_rows,
        _eval_rewards(resolved, trainer),
        recipe.eval,
        recipe.eval.max_new_tokens or recipe.generation.max_completion_length,
        out,
        multi_turn=_multi_turn(recipe, resolved, trainer) if agent else None,
    )
    trainer.callback_handler.callbacks.insert(0, _step_count())  # printed before the progress bar and evaluation
    trainer.add_callback(evaluation)
    if state.is_main_process:
        print(data.description)
        _print_batch_table(recipe, config, state.num_processes)
        if eval_rows and not evaluation.rewards.gold_names:
            print("note: no gold reward (mark one with `gold: true`, e.g. accuracy): the reward-hacking guard is off.")
    trainer.dry_run_rewards(next(iter(data.train)))
    resume_from = str(checkpoint) if resume and checkpoint else None
    trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model(str(out / "final"))
    state.wait_for_everyone()
    if trainer.use_vllm:
        from rlsurrogate.vllm_weights import close_colocated_engine

        close_colocated_engine(getattr(trainer, "vllm_generation", None))
    if not state.is_main_process:
        return None
    _plot_rewards(trainer.state.log_history, out / "rewards.png")
    (out / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    summary = _summary(recipe, evaluation, trainer, state.num_processes)
    summary["resumed_from_step"] = int(Path(resume_from).name.split("-")[-1]) if resume_from else None
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


# ---------------------------------------------------------------------------------------------------------------


def _peft_config(recipe: Recipe) -> Any:
    if recipe.model.lora is None:
        return None
    from peft import LoraConfig

    lora = recipe.model.lora
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        use_dora=lora.use_dora,
        use_rslora=lora.use_rslora,
        modules_to_save=lora.modules_to_save,
        task_type="CAUSAL_LM",
    )


def _agent_kwargs(resolved: Resolved, first_row: dict[str, Any]) -> dict[str, Any]:
    """RLTrainer's `tools` / `environment_factory` from the recipe; each environment's reset is tried on the first
    training row, so an environment that cannot start fails before the model loads."""
    kwargs: dict[str, Any] = {}
    if resolved.tools:
        kwargs["tools"] = list(resolved.tools)
    if resolved.environment_factory is not None:
        from rlsurrogate.environments import check_reset

        check_reset(resolved.environment_factory, first_row)
        kwargs["environment_factory"] = resolved.environment_factory
    return kwargs


def _multi_turn(recipe: Recipe, resolved: Resolved, trainer: Any) -> Any:
    """The tool-calling loop held-out evaluation runs, with the trainer's tools, environments and budget."""
    from rlsurrogate.environments.multi_turn import MultiTurn
    from rlsurrogate.evaluation import any_process

    tokenizer = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)
    return MultiTurn(
        tokenizer,
        resolved.tools or [],
        resolved.environment_factory,
        recipe.generation.max_tool_calling_iterations,
        recipe.eval.max_new_tokens or recipe.generation.max_completion_length,
        tokenizer.eos_token_id,
        any_process,
    )


def _step_count() -> Any:
    """A callback that prints the optimizer steps the Trainer resolved (max_steps, or epochs over the data)."""
    from transformers import TrainerCallback

    class StepCount(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                source = "training.max_steps" if args.max_steps > 0 else f"{args.num_train_epochs:g} epochs"
                steps = f"{state.max_steps} optimizer step{'s' if state.max_steps != 1 else ''}"
                print(f"training: {steps} ({source})", flush=True)

    return StepCount()


def _score_listeners(recipe: Recipe) -> list[Any]:
    if not recipe.diagnostics.enabled:
        return []
    from rlsurrogate.diagnostics import RewardVarianceMonitor

    return [RewardVarianceMonitor(recipe.diagnostics.flat_threshold, recipe.diagnostics.flat_steps)]


def _check_launch() -> None:
    """Refuses sharded launches that accelerate would silently run as DDP: it shards only on GPUs."""
    import os

    import torch

    for variable, name in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")):
        if os.environ.get(variable, "false").lower() == "true" and not torch.cuda.is_available():
            raise UnsupportedError(
                f"{name} was requested, but this machine has no GPU: accelerate shards weights only on GPUs and would "
                "train unsharded copies instead. On CPUs launch with recipes/accelerate/cpu_2proc.yaml (DDP, gloo)."
            )


def _keep_torch_threads_beside_vllm(recipe: Recipe) -> None:
    """vLLM's CPU worker sets torch to 1 thread for serving unless OMP_NUM_THREADS is set; a colocated engine lives
    in the training process, so that would also be the trainer's thread count
    (vllm/utils/torch_utils.py::set_torch_threads_for_runtime)."""
    import os

    import torch

    from rlsurrogate.build import vllm_is_cpu_build

    gen = recipe.generation
    if gen.use_vllm and gen.vllm_mode == "colocate" and vllm_is_cpu_build():
        os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))


def _eval_rewards(resolved: Resolved, trainer: Any) -> Any:
    """The trainer's (guarded) reward callables with the recipe's gold flags and weights, for evaluation."""
    from rlsurrogate.evaluation import EvalRewards

    extra = len(trainer.reward_funcs) - len(resolved.gold)  # TRL's environment rewards: weight 1, not gold
    return EvalRewards(
        names=list(trainer.reward_func_names),
        funcs=list(trainer.reward_funcs),
        gold=list(resolved.gold) + [False] * extra,
        weights=list(resolved.weights) + [1.0] * extra,
    )


def _print_batch_table(recipe: Recipe, config: Any, num_processes: int) -> None:
    from rich.console import Console
    from rich.table import Table

    G = config.num_generations
    per_device = config.per_device_train_batch_size
    per_step = per_device * num_processes * config.gradient_accumulation_steps
    per_generation = config.generation_batch_size
    table = Table(title=f"resolved batch ({recipe.source or 'recipe'})", show_header=True)
    table.add_column("")
    table.add_column("prompts", justify="right")
    table.add_column("completions", justify="right")
    table.add_row("per generation (all processes)", str(per_generation // G), str(per_generation))
    table.add_row("per optimizer step (all processes)", f"{per_step / G:g}", str(per_step))
    table.add_row("per micro-batch (one process)", f"{per_device / G:g}", str(per_device))
    Console().print(table)
    print(
        f"processes {num_processes} ({_distributed_type()}) | num_generations {G} | gradient_accumulation_steps "
        f"{config.gradient_accumulation_steps} | steps_per_generation {config.steps_per_generation} | "
        f"num_iterations {config.num_iterations} | objective {recipe.objective.name} "
        f"(loss_type {config.loss_type}) | sampling {recipe.sampling.name} | max_steps {config.max_steps}"
    )


def _distributed_type() -> str:
    from rlsurrogate.evaluation import process_state

    state = process_state()
    kind = str(state.distributed_type).rsplit(".", 1)[-1]
    if kind == "FSDP":
        kind = f"FSDP{getattr(getattr(state, 'fsdp_plugin', None), 'fsdp_version', '')}"
    return f"{kind} on {state.device.type}"


def _plot_rewards(log_history: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in log_history if "reward" in r and "step" in r]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    keys = sorted({k for r in rows for k in r if k.startswith("rewards/") and k.endswith("/mean")})
    for key in keys:
        ax.plot([r["step"] for r in rows if key in r], [r[key] for r in rows if key in r], label=key[8:-5], alpha=0.7)
    ax.plot([r["step"] for r in rows], [r["reward"] for r in rows], label="total (weighted)", color="black", lw=2)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("mean reward of sampled completions")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _summary(recipe: Recipe, evaluation: Any, trainer: Any, num_processes: int) -> dict[str, Any]:
    history = [r for r in trainer.state.log_history if "reward" in r]
    step_times = [r["step_time"] for r in history if "step_time" in r]
    summary: dict[str, Any] = {
        "recipe": recipe.source,
        "output_dir": recipe.output_dir,
        "steps": trainer.state.global_step,
        "world_size": num_processes,
        "reward_first": history[0]["reward"] if history else None,
        "reward_last": history[-1]["reward"] if history else None,
        "mean_step_time_s": sum(step_times) / len(step_times) if step_times else None,
        "optimizer": type(getattr(trainer.optimizer, "optimizer", trainer.optimizer)).__name__,
    }
    for tag, result in (("before", evaluation.before), ("after", evaluation.after)):
        for name, value in (result or {}).get("metrics", {}).items():
            summary[f"{name}_{tag}"] = value
    summary |= evaluation.summary()
    summary["final_checkpoint"] = {
        "path": str(Path(recipe.output_dir) / "final"),
        "step": trainer.state.global_step,
        "metrics": (evaluation.after or {}).get("metrics"),
    }
    return summary
