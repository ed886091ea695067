"""`rlsurrogate diagnose`: which reward is the better teacher for this policy? (Razin et al. 2025, arXiv 2503.15477)

Resolves every candidate reward first (so a typo fails in a second), samples K completions per prompt once (or
reads the `samples.jsonl` of an earlier run with `--samples`), then calls `rlsurrogate.diagnostics.report`, which
scores, ranks and writes `report.json`, `samples.jsonl` and `variance.png` in `--output-dir`. Prints the ranking as
a table. Candidates are ranked by whitened variance among those whose accuracy reaches `--accuracy-floor`.

Example:
    rlsurrogate diagnose --model smollm2-135m-instruct --task arithmetic --num-prompts 32 -k 8 \\
        --gold accuracy --candidate format --candidate format_length --candidate squash:accuracy
"""

from __future__ import annotations

import argparse
import math
import re
import time
from pathlib import Path
from typing import Any

from rlsurrogate.diagnostics.candidates import build_candidate
from rlsurrogate.diagnostics.report import diagnose, load_samples, rank, sample_completions, write_report
from rlsurrogate.diagnostics.reward_variance import TeacherStats
from rlsurrogate.errors import ConfigError

__all__ = ["add_arguments", "run"]


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
