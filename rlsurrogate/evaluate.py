"""Greedy held-out evaluation: boxed-answer accuracy, `\\boxed{}` format rate and mean completion length.

Accuracy checks the LAST brace-matched `\\boxed{...}` of each completion against the row's `answer` with
math-verify (symbolic equivalence), so "boxes everything" outputs (`\\boxed{2} + \\boxed{3} = 6}`) do not count
as correct. Format rate is the share of completions with any non-empty last box. Length is in tokens.

Metrics (also the keys of the returned dict): `accuracy`, `boxed_rate`, `mean_length`, `num_prompts`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rlsurrogate.rewards.boxed import completion_text, last_boxed

__all__ = ["evaluate", "generate_greedy", "boxed_answer_correct"]


def boxed_answer_correct(text: str, gold: str) -> bool:
    """True iff the last `\\boxed{}` of `text` is symbolically equal to `gold` (math-verify)."""
    box = last_boxed(text)
    if not box or not box.strip():
        return False
    from math_verify import parse, verify

    try:
        gold_parsed = parse(f"\\boxed{{{gold}}}")
        pred_parsed = parse(f"\\boxed{{{box}}}")
        return bool(gold_parsed) and bool(pred_parsed) and bool(verify(gold_parsed, pred_parsed))
    except Exception:  # math-verify raises on pathological input; such an answer is simply wrong
        return False


def generate_greedy(
    model: Any, tokenizer: Any, prompts: list[Any], max_new_tokens: int, batch_size: int = 16, progress: bool = False
) -> tuple[list[str], list[int]]:
    """Greedy completions (and their token counts) for chat or plain prompts, batched with left padding."""
    import torch

    texts, lengths = [], []
    was_training = model.training
    model.eval()
    tokenizer.padding_side = "left"
    batches = range(0, len(prompts), batch_size)
    if progress:
        from rich.progress import track

        batches = track(batches, description="evaluating", transient=True)
    for start in batches:
        chunk = prompts[start : start + batch_size]
        if isinstance(chunk[0], list):
            chunk = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in chunk]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.no_grad():
            out = model.generate(
                **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        for row in out[:, enc["input_ids"].shape[1] :]:
            ids = row[row != tokenizer.pad_token_id].tolist()
            texts.append(tokenizer.decode(ids, skip_special_tokens=True))
            lengths.append(len(ids))
    model.train(was_training)
    return texts, lengths


def evaluate(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    max_new_tokens: int,
    batch_size: int = 16,
    progress: bool = False,
) -> dict[str, Any]:
    """Greedy-decodes every row's prompt and scores it against the row's `answer`.

    Args:
        model, tokenizer: a causal LM and its tokenizer.
        rows: dicts with `prompt` (chat list or string) and `answer` (string).
        max_new_tokens: generation budget per prompt.

    Returns:
        {"accuracy", "boxed_rate", "mean_length", "num_prompts", "samples"}; `samples` holds the first 4
        (prompt, completion, answer) triples for a human to read.
    """
    if not rows:
        return {
            "accuracy": float("nan"),
            "boxed_rate": float("nan"),
            "mean_length": float("nan"),
            "num_prompts": 0,
            "samples": [],
        }
    texts, lengths = generate_greedy(
        model, tokenizer, [r["prompt"] for r in rows], max_new_tokens, batch_size, progress
    )
    correct = [boxed_answer_correct(t, str(r.get("answer", ""))) for t, r in zip(texts, rows)]
    boxed = [bool((last_boxed(t) or "").strip()) for t in texts]
    return {
        "accuracy": sum(correct) / len(rows),
        "boxed_rate": sum(boxed) / len(rows),
        "mean_length": sum(lengths) / len(rows),
        "num_prompts": len(rows),
        "samples": [
            {"prompt": completion_text(r["prompt"]), "completion": t, "answer": r.get("answer")}
            for r, t in list(zip(rows, texts))[:4]
        ],
    }


# ---------------------------------------------------------------------------------------------------------------
# the `rlsurrogate eval` command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML: its held-out prompts and eval settings are used")
    parser.add_argument("--model", help="model to evaluate (default: the recipe's output_dir/final, else its model)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe field")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rlsurrogate.models import load_model
    from rlsurrogate.recipe import load_recipe
    from rlsurrogate.tasks.loaders import load_rows

    recipe = load_recipe(args.recipe, overrides=args.set)
    final = Path(recipe.output_dir) / "final"
    name = args.model or (str(final) if (final / "config.json").is_file() else recipe.model.name)
    model, tokenizer = load_model(name, recipe.model.dtype)
    _, rows = load_rows(recipe.data)
    rows = rows[: recipe.eval.num_prompts or len(rows)]
    result = evaluate(
        model,
        tokenizer,
        rows,
        recipe.eval.max_new_tokens or recipe.generation.max_completion_length,
        recipe.eval.batch_size,
        progress=not args.json,
    )
    summary = {k: v for k, v in result.items() if k != "samples"} | {"model": name}
    if not args.json:
        for sample in result["samples"]:
            print(f"Q: {sample['prompt']}\nA: {sample['completion']!r}  (gold {sample['answer']})\n")
    print(json.dumps(summary))
    return 0
