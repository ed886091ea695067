"""Benchmark: INSTINCT vs APE-style sampling, random search and GP-BO on soft prompts (InstructZero-like).

The embedded SmolLM2-135M-Instruct is both the white-box model (soft-prompt pool, features, instruction generation)
and the black box (answers the validation inputs, greedy). For each built-in task and seed, every method gets the
same budget of black-box queries (instruction evaluations); the table shows the median over seeds of the best
validation score after 1, 5, 10, ... queries, the PNG the whole curves, and the last line is JSON with the median
best validation score at the full budget per method (over tasks x seeds).

    nice -n 10 python scripts/bench_prompt_opt.py                       # default: 2 tasks x 3 seeds x 30 queries
    nice -n 10 python scripts/bench_prompt_opt.py --tasks antonyms --seeds 0 1 2 3 4

Shortcuts that keep the run to minutes on a CPU and do not favour any method:
- The black box is deterministic (greedy), so identical requests are answered from one shared memo; every method
  is still charged the query (and its tokens) as if the call had been made.
- The pool's instructions are generated once per task (each candidate's greedy instruction is fixed anyway).
- APE's candidates are sampled once per task (`--ape-samples` at temperature 0.9); each seed queries them in its
  own random order, so seeds differ as they would with fresh samples from the same sampler.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from rlsurrogate.cli import main as _cli_main  # noqa: F401 - the package must import cleanly
from rlsurrogate.models import load_model
from rlsurrogate.prompt_opt.candidates import CandidateConfig, InstructionGenerator
from rlsurrogate.prompt_opt.clients import LocalHFClient
from rlsurrogate.prompt_opt.evaluator import InstructionEvaluator
from rlsurrogate.prompt_opt.instinct import INSTINCTConfig, optimize
from rlsurrogate.prompt_opt.query_log import Budget, request_key
from rlsurrogate.prompt_opt.results import plot_best_curves
from rlsurrogate.prompt_opt.tasks import load_task

METHODS = ("instinct", "ape", "random", "gp-bo")
CHECKPOINTS = (1, 5, 10, 15, 20, 25, 30)


class MemoClient:
    """A deterministic black box answered once per distinct request; usage is still charged per call."""

    def __init__(self, client: LocalHFClient):
        self.client, self.name, self.usage = client, client.name, client.usage
        self.memo: dict[str, object] = {}
        self.generations = 0

    def complete(self, requests, *, max_tokens=16, temperature=0.0, on_result=None):
        keys = [request_key(self.name, r, max_tokens=max_tokens, temperature=temperature) for r in requests]
        todo = [i for i, k in enumerate(keys) if k not in self.memo]
        if todo:
            fresh = self.client.complete([requests[i] for i in todo], max_tokens=max_tokens, temperature=temperature)
            self.generations += len(todo)
            for i, c in zip(todo, fresh):
                self.memo[keys[i]] = c
        out = [self.memo[k] for k in keys]
        for i, c in enumerate(out):
            if on_result is not None:
                on_result(i, c)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["sentiment", "reverse_words"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--pool-size", type=int, default=128)
    parser.add_argument("--n-val", type=int, default=5)
    parser.add_argument("--n-init", type=int, default=5)
    parser.add_argument("--answer-tokens", type=int, default=10)
    parser.add_argument("--ape-samples", type=int, default=60, help="APE candidates sampled once per task")
    parser.add_argument("--soft-prompt-scale", type=float, default=3.0, help="soft-token spread (CandidateConfig)")
    parser.add_argument("--train-steps", type=int, default=300, help="NeuralUCB Adam steps per refit (INSTINCT: 1000)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads per worker (1 is fastest on a shared CPU)"
    )
    parser.add_argument("--workers", type=int, default=2, help="tasks run in parallel processes")
    parser.add_argument("--out-dir", default="runs/bench_prompt_opt")
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.workers > 1 and len(args.tasks) > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(min(args.workers, len(args.tasks))) as pool:
            results = pool.starmap(_run_task, [(t, args, t0) for t in args.tasks])
    else:
        results = [_run_task(t, args, t0) for t in args.tasks]
    curves = dict(zip(args.tasks, results))
    for task_name, by_method in curves.items():
        plot_best_curves(by_method, out / f"{task_name}.png", title=f"{task_name} ({len(args.seeds)} seeds)")
    _print_table(curves, args.budget)
    summary = {m.replace("-", "_"): statistics.median(c[-1] for t in curves for c in curves[t][m]) for m in METHODS}
    per_task = {
        t: {m.replace("-", "_"): statistics.median(c[-1] for c in curves[t][m]) for m in METHODS} for t in curves
    }
    (out / "summary.json").write_text(json.dumps({"median_at_budget": summary, "per_task": per_task,
                                                  "curves": curves, "args": vars(args)}, indent=1))  # fmt: skip
    print(f"plots: {out}/<task>.png; wall time {time.time() - t0:.0f}s")
    print(json.dumps({**summary, "budget": args.budget, "seeds": len(args.seeds), "tasks": args.tasks}))


def _run_task(task_name: str, args: argparse.Namespace, t0: float) -> dict[str, list[list[float]]]:
    """All seeds x methods on one task; returns method -> per-seed best-score curves (length `budget`)."""
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model("smollm2-135m-instruct")
    black_box = MemoClient(LocalHFClient(model, tokenizer, name="smollm2-135m-instruct", batch_size=16))
    task = load_task(task_name, n_val=args.n_val)
    generator = InstructionGenerator(
        model,
        tokenizer,
        task.split()[0],
        CandidateConfig(pool_size=args.pool_size, soft_prompt_scale=args.soft_prompt_scale),
    )
    features = generator.pool_features()
    pool = generator.generate(generator.Z)
    ape_samples = generator.sample_ape(args.ape_samples, seed=0)
    print(f"[{time.time() - t0:6.0f}s] {task_name}: pool {len(pool)} candidates, {len(set(pool))} distinct "
          f"instructions; APE {len(set(ape_samples))} distinct of {len(ape_samples)}", flush=True)  # fmt: skip
    curves: dict[str, list[list[float]]] = {m: [] for m in METHODS}
    for seed in args.seeds:
        generator.sample_ape = _ape_order(ape_samples, seed)  # type: ignore[method-assign]
        for method in METHODS:
            evaluator = InstructionEvaluator(
                task, black_box, Budget(max_queries=args.budget), None, args.answer_tokens
            )
            config = INSTINCTConfig(n_init=args.n_init, seed=seed, train_steps=args.train_steps)
            result = optimize(method, evaluator, generator, config, features=features)
            curve = result.best_curve()
            curve = curve + [curve[-1]] * (args.budget - len(curve)) if curve else [0.0] * args.budget
            curves[method].append(curve)
            best = result.best.instruction if result.best else ""
            print(f"[{time.time() - t0:6.0f}s] {task_name} seed {seed} {method:8s} best@{args.budget} "
                  f"{curve[-1]:.3f} ({result.stopped}, {result.queries} queries, {result.tokens} tokens, "
                  f"{black_box.generations} distinct black-box calls so far): {best!r}", flush=True)  # fmt: skip
    return curves


def _ape_order(samples: list[str], run_seed: int):
    """`generator.sample_ape` for one seed: the shared samples in this seed's random order."""

    def sample_ape(n: int, seed: int = 0) -> list[str]:
        perm = torch.randperm(len(samples), generator=torch.Generator().manual_seed(run_seed)).tolist()
        return [samples[i] for i in perm][:n]

    return sample_ape


def _print_table(curves: dict[str, dict[str, list[list[float]]]], budget: int) -> None:
    points = [c for c in CHECKPOINTS if c <= budget]
    header = f"{'task':12s} {'method':9s} " + " ".join(f"@{c:<5d}" for c in points)
    print("\nmedian best validation score over seeds after k queries")
    print(header)
    print("-" * len(header))
    for task, by_method in curves.items():
        for method, runs in by_method.items():
            row = [statistics.median(r[c - 1] for r in runs) for c in points]
            print(f"{task:12s} {method:9s} " + " ".join(f"{v:<6.3f}" for v in row))


if __name__ == "__main__":
    main()
