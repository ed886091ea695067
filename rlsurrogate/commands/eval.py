"""The `rlsurrogate eval` command: held-out greedy evaluation of a trained model, on every process.

`rlsurrogate eval RECIPE` evaluates `output_dir/final` (or `--model`) on the recipe's held-out prompts with every
reward of the recipe (see `rlsurrogate.evaluation`); under `accelerate launch` each process generates its share on
its own device. Prints sample completions and, last, the metrics as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML: its held-out prompts, rewards and eval settings are used")
    parser.add_argument("--model", help="model to evaluate (default: the recipe's output_dir/final, else its model)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe field")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--completions", metavar="FILE", help="also write every completion and its scores (JSONL)")


def run(args: argparse.Namespace) -> int:
    from rlsurrogate.build import bf16_mixed_precision, load, model_kwargs
    from rlsurrogate.evaluation import EvalRewards, evaluate_model, process_state
    from rlsurrogate.models import load_model
    from rlsurrogate.rewards.guard import guard_reward
    from rlsurrogate.tasks.loaders import load_rows

    recipe, resolved = load(args.recipe, overrides=args.set)
    bf16 = bf16_mixed_precision(recipe)
    state = process_state()
    final = Path(recipe.output_dir) / "final"
    name = args.model or (str(final) if (final / "config.json").is_file() else recipe.model.name)
    kwargs = model_kwargs(recipe)
    if name != recipe.model.name:  # a trained checkpoint on disk: the hub revision does not apply
        kwargs["revision"] = None
    with state.main_process_first():
        model, tokenizer = load_model(name, recipe.model.dtype, **kwargs)
    model.to(state.device)
    _, rows = load_rows(recipe.data)
    rows = rows[: recipe.eval.num_prompts or len(rows)]
    rewards = EvalRewards(
        names=list(resolved.reward_names),
        funcs=[guard_reward(f, t) for f, t in zip(resolved.rewards, resolved.timeouts)],
        gold=list(resolved.gold),
        weights=list(resolved.weights),
    )
    max_new_tokens = recipe.eval.max_new_tokens or recipe.generation.max_completion_length
    multi_turn = _multi_turn(recipe, resolved, tokenizer, rewards, max_new_tokens, state.is_main_process)
    result = evaluate_model(
        model,
        tokenizer,
        rows,
        rewards,
        max_new_tokens,
        recipe.eval.batch_size,
        progress=not args.json,
        bf16=bf16,
        multi_turn=multi_turn,
    )
    if not state.is_main_process:
        return 0
    if args.completions:
        with open(args.completions, "w") as f:
            for record in result["completions"]:
                f.write(json.dumps(record) + "\n")
    if not args.json:
        for sample in result["samples"][:4]:
            print(f"Q: {sample['prompt']}\nA: {sample['completion']!r}  (gold {sample['answer']})\n")
    keys = ("metrics", "num_prompts", "gold", "prompts_per_rank", "rank_wall_s", "wall_s")
    print(json.dumps({key: result[key] for key in keys} | {"model": name, "bf16": bf16}))
    return 0


def _multi_turn(
    recipe: Any, resolved: Any, tokenizer: Any, rewards: Any, max_new_tokens: int, is_main: bool
) -> Any:
    """The tool-calling loop for a recipe with tools or an environment (None without); adds the environments'
    rewards to `rewards`, as training does."""
    if not resolved.tools and resolved.environment_factory is None:
        return None
    from rlsurrogate.environments import environment_rewards
    from rlsurrogate.environments.chat_template import ensure_tool_calling
    from rlsurrogate.environments.multi_turn import MultiTurn
    from rlsurrogate.evaluation import any_process
    from rlsurrogate.rewards.guard import guard_reward

    note = ensure_tool_calling(tokenizer, recipe.model.name)
    if note and is_main:
        print(note, file=sys.stderr)
    if resolved.environment_factory is not None:
        for name, func in environment_rewards(resolved.environment_factory):
            rewards.names.append(name)
            rewards.funcs.append(guard_reward(func, None, f"{name}.get_reward"))
            rewards.gold.append(False)
            rewards.weights.append(1.0)
    return MultiTurn(
        tokenizer,
        resolved.tools or [],
        resolved.environment_factory,
        recipe.generation.max_tool_calling_iterations,
        max_new_tokens,
        tokenizer.eos_token_id,
        any_process,
    )
