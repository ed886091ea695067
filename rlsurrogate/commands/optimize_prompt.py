"""`rlsurrogate optimize-prompt`: find a good instruction for a black-box LLM on a task, within a query budget.

    rlsurrogate optimize-prompt --task antonyms --model gpt-4o-mini --budget 30       # OPENAI_API_KEY, OPENAI_BASE_URL
    rlsurrogate optimize-prompt --task antonyms --model my-model --base-url http://127.0.0.1:8000/v1 --budget 30
    rlsurrogate optimize-prompt --task antonyms --target openai:gpt-4o-mini@https://api.openai.com/v1 --budget 30
    rlsurrogate optimize-prompt --task my_task.jsonl --metric f1 --target hf:smollm2-135m-instruct --budget 30 \\
        --method ape --output-dir runs/my_task

The instruction with the best validation score is then scored on the task's test split (`--n-test`; its calls are
logged but are not queries of the budget) and both scores are printed. The run directory holds `queries.jsonl`
(every black-box call and evaluation, appended as it returns), `result.json` (history, best instruction, validation
and test scores, spend) and `best_score.png` (best validation score vs queries); see
`rlsurrogate.prompt_opt.results`. `--resume` continues a run from its log: no logged call is sent again; a line of
the log that cannot be read is skipped and reported (`skipped_log_lines` in `result.json`), never cut.
The white-box model (candidate generation and features) is the embedded SmolLM2 by default; `--white-box tiny` uses
a random tiny model (smoke tests only).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rlsurrogate.errors import ConfigError
from rlsurrogate.prompt_opt.clients import parse_target

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="built-in task (antonyms, uppercase, ...) or a .jsonl file")
    parser.add_argument("--metric", default=None, help="metric for a .jsonl task: exact_match, contains or f1")
    parser.add_argument("--target", default=None, help="black box: openai:<model>[@<base_url>] or hf:<name>")
    parser.add_argument("--model", default=None, help="black-box model name at an OpenAI-compatible endpoint")
    parser.add_argument(
        "--base-url", default=None, help="endpoint of --model (default: $OPENAI_BASE_URL, then api.openai.com)"
    )
    parser.add_argument("--budget", type=int, default=None, help="max black-box queries (instruction evaluations)")
    parser.add_argument("--max-tokens-budget", type=int, default=None, help="max tokens spent (prompt + completion)")
    parser.add_argument("--method", default="instinct", help="instinct, ape, random or gp-bo")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output-dir from its query log")
    parser.add_argument("--output-dir", default=None, help="run directory (default runs/prompt_opt/<task>-<method>)")
    parser.add_argument("--white-box", default="smollm2-135m-instruct", help="white-box model name, or 'tiny'")
    parser.add_argument("--pool-size", type=int, default=500, help="soft-prompt candidates (INSTINCT paper: 10000)")
    parser.add_argument("--n-init", type=int, default=5, help="random queries before the scorer takes over")
    parser.add_argument("--n-val", type=int, default=10, help="validation examples per query")
    parser.add_argument(
        "--n-test", type=int, default=None, help="test examples for the best instruction (default: the whole test "
        "split; 0 skips)",
    )  # fmt: skip
    parser.add_argument("--answer-tokens", type=int, default=16, help="max tokens of each black-box answer")
    parser.add_argument("--seed", type=int, default=0, help="seed of the method's random choices")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="NAME of the env variable with the API key")
    parser.add_argument("--concurrency", type=int, default=4, help="black-box requests in flight")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per black-box request")
    parser.add_argument("--max-retries", type=int, default=4, help="retries per request on 429/5xx/timeouts")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")


def run(args: argparse.Namespace) -> int:
    from rlsurrogate.models import load_named_model
    from rlsurrogate.prompt_opt.candidates import CandidateConfig, InstructionGenerator
    from rlsurrogate.prompt_opt.clients import LocalHFClient, make_client
    from rlsurrogate.prompt_opt.evaluator import InstructionEvaluator
    from rlsurrogate.prompt_opt.instinct import METHODS, INSTINCTConfig, optimize
    from rlsurrogate.prompt_opt.query_log import Budget, QueryLog
    from rlsurrogate.prompt_opt.results import run_summary, write_results
    from rlsurrogate.prompt_opt.tasks import load_task

    METHODS.get(args.method)  # unknown names fail before anything is loaded
    target = _target(args)
    if args.n_test is not None and args.n_test < 0:
        raise ConfigError(f"--n-test = {args.n_test}: must be >= 0 (0 skips the test score).")
    budget = Budget(max_queries=args.budget, max_tokens=args.max_tokens_budget)
    task_kwargs: dict[str, Any] = {"n_val": args.n_val}
    if args.metric:
        task_kwargs["metric"] = args.metric
    task = load_task(args.task, **task_kwargs)
    out = Path(args.output_dir or f"runs/prompt_opt/{task.name}-{args.method}")
    client_kwargs = (
        {"api_key_env": args.api_key_env, "concurrency": args.concurrency, "timeout": args.timeout,
         "max_retries": args.max_retries} if target.startswith("openai:") else {}
    )  # fmt: skip
    # a bad target fails here, before anything is loaded; hf: targets are loaded after the white box
    kind, model_name, _ = parse_target(target)
    client = None if kind == "hf" else make_client(target, **client_kwargs)
    log = QueryLog(out / "queries.jsonl", resume=args.resume)
    keys = ("task", "method", "target", "white_box", "pool_size", "n_val", "seed", "answer_tokens", "n_init")
    log.write_meta({**{k: getattr(args, k) for k in keys}, "target": target})
    model, tokenizer = load_named_model(args.white_box)
    if client is None and model_name == args.white_box:  # the same local model on both sides: load it once
        client = LocalHFClient(model, tokenizer, name=args.white_box)
    elif client is None:
        client = make_client(target)
    generator = InstructionGenerator(model, tokenizer, task.split()[0], CandidateConfig(pool_size=args.pool_size))
    config = INSTINCTConfig(n_init=args.n_init, seed=args.seed)
    with _progress(args, budget) as on_evaluation:
        evaluator = InstructionEvaluator(task, client, budget, log, args.answer_tokens, on_evaluation)
        try:
            result = optimize(args.method, evaluator, generator, config)
            test = _test_score(evaluator, result, task.split()[2], args.n_test)
        finally:
            log.close()
    summary = run_summary(result, evaluator, log, task=task.name, method=args.method, target=target, test=test)
    write_results(out, summary, title=f"{task.name}: {target}")
    _print_table(summary, out)
    return 0


# ---- private helpers ---------------------------------------------------------------------------------------------


def _target(args: argparse.Namespace) -> str:
    """The target string from `--target`, or from `--model` and `--base-url` (the openai SDK's way)."""
    if args.target and (args.model or args.base_url):
        raise ConfigError("give either --target or --model [--base-url], not both.")
    if args.target:
        return args.target
    if not args.model:
        raise ConfigError(
            "no black box: give --model NAME (an OpenAI-compatible endpoint: --base-url URL or $OPENAI_BASE_URL) "
            "or --target hf:<name> for a local model."
        )
    if args.base_url is not None and not args.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"--base-url {args.base_url!r}: must start with http:// or https://.")
    return f"openai:{args.model}" + (f"@{args.base_url}" if args.base_url else "")


def _test_score(evaluator: Any, result: Any, test: list[Any], n_test: int | None) -> dict[str, Any] | None:
    """The best instruction's score on the test split (None when there is no best, no test split, or --n-test 0)."""
    examples = test if n_test is None else test[:n_test]
    if result.best is None or not examples:
        return None
    score, _, tokens = evaluator.score_on(result.best.instruction, examples)
    return {"score": score, "examples": len(examples), "tokens": tokens}


class _progress:
    """A rich progress bar over the query budget (a no-op callback with --no-progress or without a query cap)."""

    def __init__(self, args: argparse.Namespace, budget: Any):
        self.enabled = not args.no_progress
        self.total = budget.max_queries

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("[bold]queries"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("best {task.fields[best]:.3f}"),
        )  # fmt: skip
        self.bar.start()
        self.task_id = self.bar.add_task("queries", total=self.total, best=0.0)
        self.best = 0.0

        def on_evaluation(evaluation: Any) -> None:
            self.best = max(self.best, evaluation.score)
            self.bar.update(self.task_id, advance=1, best=self.best)

        return on_evaluation

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.stop()


def _print_table(summary: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"optimize-prompt: {summary['task']} ({summary['method']})")
    table.add_column("best instruction", overflow="fold")
    table.add_column("validation score", justify="right")
    table.add_column("test score", justify="right")
    table.add_column("queries", justify="right")
    table.add_column("tokens", justify="right")
    score, test = summary["validation_score"], summary["test_score"]
    table.add_row(
        str(summary["best_instruction"]), "-" if score is None else f"{score:.3f}",
        "-" if test is None else f"{test:.3f} ({summary['test_examples']} ex.)", str(summary["queries"]),
        str(summary["tokens"]),
    )  # fmt: skip
    console = Console()
    console.print(table)
    console.print(f"stopped: {summary['stopped']}; results in {out}/ (result.json, queries.jsonl, best_score.png)")
    if summary["best_instruction"] is None:
        raise ConfigError("no query was made: raise --budget or check the task.")
