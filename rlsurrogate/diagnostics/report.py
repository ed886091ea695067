"""`rlsurrogate diagnose`: which reward is the better teacher for this policy? (Razin et al. 2025, arXiv 2503.15477)

Samples K completions per prompt from the model ONCE (HF generate, sampling, batched with left padding), scores
them with every candidate reward and an optional gold reward, and reports per candidate (METHODS.md §3.3-3.4):
the within-prompt reward variance (raw, and whitened by the global mean/std of the candidate's reward matrix;
mean and quartiles over prompts), the share of prompts with zero variance, the on-policy pairwise accuracy
against the gold reward and variance x accuracy. Candidates are ranked by whitened variance among those whose
accuracy reaches `--accuracy-floor` (our reading of the paper's advice, not its rule), then the rest.

Outputs in `--output-dir`: `report.json` (everything, including per-prompt values), `samples.jsonl` (each
completion with every candidate's reward), `variance.png` (per-prompt distributions), and a table on the terminal.

Deviations from the paper's `RMEval` recipe: completions come from HF generate only (no vLLM path yet); prompts
come from our task loaders; the paper samples K=10 at temperature 1 with 512 new tokens, our defaults are sized
for a CPU (K=8, 64 new tokens). Caveat for GRPO: TRL's default `scale_rewards="group"` divides each group's
advantages by its std, which removes the variance *scale* and leaves only the zero-variance share; the raw
variance matters as the paper says for unnormalised objectives (RLOO, `scale_rewards="none"`, Dr. GRPO).

Example:
    rlsurrogate diagnose --model smollm2-135m-instruct --task arithmetic --num-prompts 32 -k 8 \\
        --gold accuracy --candidate format --candidate format_length --candidate squash:accuracy
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import torch

from rlsurrogate.diagnostics.candidates import Candidate, Samples, build_candidate
from rlsurrogate.diagnostics.reward_variance import TeacherStats, teacher_stats
from rlsurrogate.errors import ConfigError

__all__ = ["add_arguments", "run", "sample_completions", "load_samples", "diagnose", "rank", "write_report"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help='hub id, local path or "smollm2-135m-instruct"')
    parser.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16 | auto")
    src = parser.add_argument_group("prompts (one source)")
    src.add_argument("--task", help='built-in task, e.g. "arithmetic"')
    src.add_argument("--jsonl", help="JSONL file with one example per line")
    src.add_argument("--hf-dataset", help="Hugging Face dataset name or local dir")
    src.add_argument("--hf-config", help="dataset configuration")
    src.add_argument("--split", default="train", help="dataset split (default train)")
    src.add_argument("--template", help='prompt template over the row\'s columns, e.g. "{question} Put ..."')
    src.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="OURS=THEIRS",
        help="map a dataset column to ours, e.g. --column answer=solution (repeatable)",
    )
    src.add_argument("--num-prompts", type=int, default=32, help="prompts to sample (default 32)")
    gen = parser.add_argument_group("sampling")
    gen.add_argument("-k", "--num-samples", type=int, default=8, help="completions per prompt, K (default 8)")
    gen.add_argument("--max-new-tokens", type=int, default=64, help="default 64")
    gen.add_argument("--temperature", type=float, default=1.0, help="default 1.0 (the paper's and TRL's)")
    gen.add_argument("--top-p", type=float, default=1.0)
    gen.add_argument("--batch-size", type=int, default=8, help="prompts per generate call (default 8)")
    gen.add_argument("--seed", type=int, default=0)
    rew = parser.add_argument_group("rewards")
    rew.add_argument(
        "--candidate",
        action="append",
        default=[],
        metavar="SPEC",
        help="[LABEL=]SPEC with SPEC a registry name, pkg.mod:fn, path.py:fn, rm:PATH_OR_HUB_ID or "
        "squash[(scale=..,spread=..)]:SPEC (repeatable)",
    )
    rew.add_argument("--gold", metavar="[LABEL=]SPEC", help="ground-truth reward for accuracy (any candidate spec)")
    rew.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="SPEC.KEY=VALUE",
        help="factory argument of a registry reward, e.g. --param accuracy.timeout_s=0.5 (repeatable)",
    )
    rew.add_argument("--rm-batch-size", type=int, default=16, help="completions per reward-model forward pass")
    rew.add_argument("--population-variance", action="store_true", help="use 1/K instead of 1/(K-1)")
    rew.add_argument("--accuracy-floor", type=float, default=0.5, help="rank by variance among these (default 0.5)")
    parser.add_argument(
        "--samples", metavar="JSONL", help="score the samples.jsonl of an earlier run instead of sampling again"
    )
    parser.add_argument("--output-dir", default="diagnose_out", help="report.json, samples.jsonl, variance.png")


def run(args: argparse.Namespace) -> int:
    if not args.candidate:
        raise ConfigError("diagnose: give at least one --candidate SPEC (e.g. --candidate format_length).")
    if args.num_samples < 2 and not args.samples:
        raise ConfigError(f"-k = {args.num_samples}: variance needs at least 2 completions per prompt.")
    params = _parse_params(args.param)
    cache: dict[str, Any] = {}
    specs = list(dict.fromkeys(([args.gold] if args.gold else []) + args.candidate))
    # Resolve every reward before loading the model, so a typo fails in a second.
    candidates = []
    for item in specs:
        label, spec = _split_label(item)
        candidate = build_candidate(spec, params.get(spec), args.max_new_tokens, cache, args.rm_batch_size)
        candidate.name = label or candidate.name
        candidates.append(candidate)
    gold = candidates[0] if args.gold else None
    start = time.perf_counter()
    if args.samples:
        samples = load_samples(args.samples)
    else:
        rows = _load_prompts(args)
        from rlsurrogate.models import load_model

        model, tokenizer = load_model(args.model, dtype=args.dtype)
        start = time.perf_counter()
        samples = sample_completions(
            model,
            tokenizer,
            rows,
            args.num_samples,
            args.max_new_tokens,
            args.temperature,
            args.top_p,
            args.batch_size,
            args.seed,
        )
    sample_s = time.perf_counter() - start
    stats, matrices = diagnose(samples, candidates, gold, unbiased=not args.population_variance)
    score_s = time.perf_counter() - start - sample_s
    order = rank(stats, args.accuracy_floor)
    meta = {
        "model": args.model,
        "prompts": f"samples:{args.samples}" if args.samples else _source(args),
        "num_prompts": samples.num_prompts,
        "k": samples.k,
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "seed": args.seed,
        "gold": candidates[0].name if args.gold else None,
        "variance": "1/K" if args.population_variance else "1/(K-1)",
        "accuracy_floor": args.accuracy_floor,
        "sample_seconds": round(sample_s, 1),
        "score_seconds": round(score_s, 1),
        "mean_completion_tokens": sum(map(len, samples.completion_ids)) / len(samples.completion_ids),
    }
    paths = write_report(Path(args.output_dir), stats, order, samples, matrices, meta)
    _print_table(stats, order, meta, paths)
    return 0


def sample_completions(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    k: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_size: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> Samples:
    """Samples K completions per prompt with HF generate (the trainer's CPU generation path).

    Prompts are chat-templated with the generation prompt, left-padded and generated `batch_size` at a time with
    `num_return_sequences=K`, so row p*K + k is completion k of prompt p (TRL's grouping). Completion ids stop at
    the first EOS (kept, as TRL passes them); texts are decoded without special tokens.

    Args:
        rows: P rows with a chat `prompt` (a list of messages) or a string prompt.
        k: completions per prompt.
        seed: seeds torch's global RNG, which HF generate samples from.
    """
    from rich.progress import Progress

    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos = {tokenizer.eos_token_id} | set(_as_list(getattr(model.generation_config, "eos_token_id", None)))
    texts = [
        tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False)
        if isinstance(r["prompt"], list)
        else r["prompt"]
        for r in rows
    ]
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    device = next(model.parameters()).device
    model.eval()
    completions: list[str] = []
    completion_ids: list[list[int]] = []
    with Progress(disable=not progress, transient=False) as bar, torch.no_grad():
        task = bar.add_task(f"sampling {k} completions x {len(rows)} prompts", total=len(rows))
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            out = model.generate(
                **enc,
                do_sample=True,
                temperature=temperature,
                top_p=top_p,
                top_k=0,
                max_new_tokens=max_new_tokens,
                num_return_sequences=k,
                pad_token_id=tokenizer.pad_token_id,
            )  # (b*K, L + T)
            for seq in out[:, enc["input_ids"].shape[1] :].tolist():
                ids = _until_eos(seq, eos)
                completion_ids.append(ids)
                completions.append(tokenizer.decode(ids, skip_special_tokens=True))
            bar.advance(task, len(chunk))
            if progress and not bar.console.is_terminal:  # a log file gets a line per batch instead of a bar
                done = min(start + batch_size, len(texts))
                print(f"sampled {done}/{len(texts)} prompts ({time.perf_counter() - t0:.0f} s)", flush=True)
    return Samples(rows=rows, k=k, completions=completions, completion_ids=completion_ids)


def diagnose(
    samples: Samples, candidates: list[Candidate], gold: Candidate | None = None, unbiased: bool = True
) -> tuple[dict[str, TeacherStats], dict[str, torch.Tensor]]:
    """Scores the samples with every candidate and summarises each one (§3.4).

    Returns:
        (name -> TeacherStats, name -> `(P, K)` reward matrix).
    """
    matrices = {c.name: c.score(samples) for c in candidates}
    gold_matrix = gold.score(samples) if gold is not None else None
    stats = {name: teacher_stats(r, gold_matrix, unbiased) for name, r in matrices.items()}
    return stats, matrices


def rank(stats: dict[str, TeacherStats], accuracy_floor: float = 0.5) -> list[str]:
    """Candidate names, best teacher first: whitened variance among those with accuracy >= floor, then the rest.

    Without a gold reward (accuracy None) every candidate passes the floor.
    """

    def key(name: str) -> tuple[bool, float]:
        s = stats[name]
        passes = s.accuracy is None or s.accuracy >= accuracy_floor
        return passes, _finite(s.whitened_var_mean)

    return sorted(stats, key=key, reverse=True)


def load_samples(path: str | Path) -> Samples:
    """Reads the `samples.jsonl` a previous report wrote (each line keeps its dataset row and token ids)."""
    by_prompt: dict[int, list[dict[str, Any]]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, text in enumerate(f, 1):
            line = json.loads(text)
            if "row" not in line or "completion_ids" not in line:
                raise ConfigError(f"--samples {path}:{lineno}: no 'row' or 'completion_ids'; rerun diagnose.")
            by_prompt.setdefault(line["prompt_index"], []).append(line)
    groups = [by_prompt[p] for p in sorted(by_prompt)]
    k = len(groups[0]) if groups else 0
    if k < 2 or any(len(g) != k for g in groups):
        raise ConfigError(f"--samples {path}: every prompt needs the same number (>= 2) of completions.")
    return Samples(
        rows=[g[0]["row"] for g in groups],
        k=k,
        completions=[line["completion"] for g in groups for line in g],
        completion_ids=[line["completion_ids"] for g in groups for line in g],
    )


def write_report(
    out_dir: Path,
    stats: dict[str, TeacherStats],
    order: list[str],
    samples: Samples,
    matrices: dict[str, torch.Tensor],
    meta: dict[str, Any],
) -> dict[str, str]:
    """Writes report.json, samples.jsonl and variance.png; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "meta": meta,
        "ranking": order,
        "candidates": {name: {"rank": order.index(name) + 1, **_clean(vars(stats[name]))} for name in order},
    }
    paths = {
        "json": str(out_dir / "report.json"),
        "samples": str(out_dir / "samples.jsonl"),
        "plot": str(out_dir / "variance.png"),
    }
    Path(paths["json"]).write_text(json.dumps(report, indent=2) + "\n")
    with open(paths["samples"], "w", encoding="utf-8") as f:
        for p, row in enumerate(samples.rows):
            for j in range(samples.k):
                i = p * samples.k + j
                rewards = {name: _clean(m[p, j].item()) for name, m in matrices.items()}
                prompt = row["prompt"][-1]["content"] if isinstance(row["prompt"], list) else row["prompt"]
                line = {
                    "prompt_index": p,
                    "prompt": prompt,
                    "answer": row.get("answer"),
                    "completion": samples.completions[i],
                    "tokens": len(samples.completion_ids[i]),
                    "rewards": rewards,
                    "completion_ids": samples.completion_ids[i],
                    "row": row,
                }
                f.write(json.dumps(line) + "\n")
    _plot(Path(paths["plot"]), stats, order)
    return paths


# ---------------------------------------------------------------------------------------------------------------


def _load_prompts(args: argparse.Namespace) -> list[dict[str, Any]]:
    from rlsurrogate.recipe import DataConfig
    from rlsurrogate.tasks.loaders import load_rows

    sources = [s for s in (args.task, args.jsonl, args.hf_dataset) if s]
    if len(sources) != 1:
        raise ConfigError("diagnose: give exactly one prompt source: --task, --jsonl or --hf-dataset.")
    columns = dict(c.split("=", 1) for c in args.column if "=" in c)
    data = DataConfig(
        task=args.task,
        path=args.jsonl,
        hf_dataset=args.hf_dataset,
        hf_config=args.hf_config,
        split=args.split,
        columns=columns,
        template=args.template,
        num_train=args.num_prompts,
        num_eval=0,
        seed=args.seed,
    )
    rows, _ = load_rows(data)
    return rows[: args.num_prompts]


def _split_label(item: str) -> tuple[str | None, str]:
    """`LABEL=SPEC` -> (LABEL, SPEC); a plain spec (even `squash(scale=0.1):x`) -> (None, spec)."""
    match = re.match(r"^(?P<label>[\w.-]+)=(?P<spec>.+)$", item)
    return (match["label"], match["spec"]) if match else (None, item)


def _source(args: argparse.Namespace) -> str:
    if args.task:
        return f"task:{args.task}"
    return f"jsonl:{args.jsonl}" if args.jsonl else f"hf:{args.hf_dataset}[{args.split}]"


def _parse_params(items: list[str]) -> dict[str, dict[str, Any]]:
    import yaml

    params: dict[str, dict[str, Any]] = {}
    for item in items:
        target, eq, value = item.partition("=")
        spec, dot, key = target.rpartition(".")
        if not (eq and dot and spec and key):
            raise ConfigError(f"--param {item!r}: expected SPEC.KEY=VALUE, e.g. --param format_length.p=0.5.")
        params.setdefault(spec, {})[key] = yaml.safe_load(value)
    return params


def _until_eos(seq: list[int], eos: set[int]) -> list[int]:
    for i, token in enumerate(seq):
        if token in eos:
            return seq[: i + 1]
    return seq


def _as_list(value: Any) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _finite(x: float | None) -> float:
    return x if x is not None and math.isfinite(x) else -math.inf


def _clean(value: Any) -> Any:
    """JSON has no NaN: NaN becomes None."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}g}" if abs(x) < 1e-2 and x != 0 else f"{x:.{digits}f}"


def _print_table(stats: dict[str, TeacherStats], order: list[str], meta: dict[str, Any], paths: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"reward teachers for {meta['model']} on {meta['prompts']} "
        f"({meta['num_prompts']} prompts x K={meta['k']}, gold: {meta['gold'] or 'none'})"
    )
    for col in (
        "rank",
        "candidate",
        "var mean",
        "var q25/q50/q75",
        "whitened var",
        "wvar q25/q50/q75",
        "zero-var share",
        "accuracy",
        "var x acc",
    ):
        table.add_column(col, justify="left" if col == "candidate" else "right")
    for i, name in enumerate(order, 1):
        s = stats[name]
        table.add_row(
            str(i),
            name + (" (gold)" if name == meta["gold"] else ""),
            _fmt(s.var_mean),
            "/".join(_fmt(q) for q in s.var_quartiles[1:4]),
            _fmt(s.whitened_var_mean),
            "/".join(_fmt(q) for q in s.whitened_var_quartiles[1:4]),
            _fmt(s.zero_var_share, 2),
            _fmt(s.accuracy),
            _fmt(s.var_x_acc),
        )
    console = Console(width=None if Console().is_terminal else 200)  # a log file gets the full table
    console.print(table)
    console.print(
        f"sampling {meta['sample_seconds']} s, scoring {meta['score_seconds']} s; "
        f"wrote {paths['json']}, {paths['samples']}, {paths['plot']}"
    )


def _plot(path: Path, stats: dict[str, TeacherStats], order: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("raw within-prompt variance", "per_prompt_var"), ("whitened variance", "per_prompt_whitened_var")]
    if all(stats[n].per_prompt_accuracy is not None for n in order):
        panels.append(("on-policy accuracy vs gold", "per_prompt_accuracy"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 0.5 * len(order) + 2.5), squeeze=False)
    labels = list(reversed(order))  # best at the top
    for ax, (title, attr) in zip(axes[0], panels):
        data = [[v for v in getattr(stats[n], attr) if not math.isnan(v)] or [float("nan")] for n in labels]
        ax.boxplot(data, vert=False, widths=0.6, showmeans=True)
        for y, values in enumerate(data, 1):  # every prompt as a dot, jittered vertically
            jitter = [y + 0.15 * math.sin(7.0 * i) for i in range(len(values))]
            ax.scatter(values, jitter, s=8, alpha=0.4)
        ax.set_yticks(range(1, len(labels) + 1), labels if ax is axes[0][0] else [""] * len(labels))
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("per-prompt distributions over prompts (box: quartiles, triangle: mean); best teacher at the top")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
