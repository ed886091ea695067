"""Learning per generated token: GRPO (mu = 1, mu = m with TRL's clipping), SSO-GRPO, DisCO and SSO-DisCO.

Every method trains `recipes/quickstart.yaml` (embedded SmolLM2-135M-Instruct, arithmetic word problems, the
label-free `majority_vote` reward; `accuracy` against the gold answer is the held-out metric) from the same seeds
until it has generated `--budget` completion tokens (counted by the sampler), always finishing the inner steps of
its last generation. Only the objective changes:
- `grpo_mu1`: the recipe (GRPO, one optimizer step per generation);
- `grpo_mu{m}`: `training.num_iterations = m`, TRL's ratio clipping on m steps per generation;
- `sso_grpo`: `objective: {name: sso, params: {base: grpo, inner_steps: m, eta}}`;
- `disco` and `sso_disco`: DisCO with labels = majority_vote >= `--label-threshold` (self-consistent), and its SSO.
The held-out gold (greedy, `--eval-prompts` >= 64 problems, the same for every method) is measured before training
(once: it does not depend on the seed) and each time a run crosses a quarter of the budget, at the end of a
generation's inner steps. Reported per method (median over seeds, paired by seed):
- held-out gold at the budget;
- tokens to gold: the generated tokens at which the run's curve (linear between evaluations) first reaches the gold
  that `grpo_mu1` of the same seed reaches at its full budget; `sso_vs_grpo_mu1_tokens` divides SSO-GRPO's by
  `grpo_mu1`'s full budget (goal <= 0.7), `sso_vs_trl_mu_tokens` by `grpo_mu{m}`'s tokens to gold (goal <= 1);
- training wall time per generated token (evaluations excluded) over `grpo_mu1`'s on the same seed (inner steps
  cost compute).
Runs are cached (`--cache`, one JSON line per method and seed) so an interrupted benchmark resumes; the PNG shows
each method's curve (mean over seeds) of held-out gold vs generated tokens.

    python scripts/bench_amortise.py                      # 5 methods x 3 seeds, alone on the machine
    python scripts/bench_amortise.py --report-only        # the table and the figure again, from the cache
    python scripts/bench_amortise.py --quick              # a tiny random model, 1 seed, 2 steps: checks the harness
The last line is one JSON object with the key figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml"
BEFORE = "before"  # the cache entry of the untrained model's held-out evaluation
REFERENCE = "grpo_mu1"
CHECKPOINTS = (0.25, 0.5, 0.75, 1.0)  # shares of the budget at which the held-out gold is measured
MACHINE = f"{os.cpu_count()}-core CPU"  # named beside every wall time


def methods(m: int, eta: float, label_threshold: float) -> dict[str, list[str]]:
    """Recipe overrides per method; the generation, data, reward and optimizer stay the quickstart's."""
    labels = f"label_reward: majority_vote, label_threshold: {label_threshold}"
    return {
        REFERENCE: [],
        f"grpo_mu{m}": [f"training.num_iterations={m}"],
        "sso_grpo": ["objective.name=sso", f"objective.params={{base: grpo, inner_steps: {m}, eta: {eta}}}"],
        "disco": ["objective.name=disco", f"objective.params={{{labels}}}"],
        "sso_disco": [
            "objective.name=sso",
            f"objective.params={{base: disco, inner_steps: {m}, eta: {eta}, {labels}}}",
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--inner-steps", type=int, default=4, help="m: SSO's inner steps and TRL's num_iterations")
    parser.add_argument("--eta", type=float, default=1.0, help="SSO's target step size")
    parser.add_argument("--budget", type=int, default=12000, help="completion tokens generated per run")
    parser.add_argument("--eval-prompts", type=int, default=64)
    parser.add_argument("--label-threshold", type=float, default=1.0, help="DisCO label = majority_vote >= this")
    parser.add_argument("--methods", nargs="+", default=None, help="a subset of the methods (default: all)")
    parser.add_argument("--cache", default="runs/bench_amortise.jsonl")
    parser.add_argument("--png", default="runs/bench_amortise.png")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny random model, 1 seed, 2 steps, 4 prompts")
    args = parser.parse_args()
    extra: list[str] = []
    if args.quick:
        args.seeds, args.inner_steps, args.eval_prompts = args.seeds[:1], 2, 4
        if args.cache == parser.get_default("cache"):  # a quick run never mixes with the real runs' cache
            args.cache = str(Path(tempfile.mkdtemp()) / "quick.jsonl")
        args.png = args.png.replace(".png", "_quick.png")
        extra = _quick_overrides()
        args.budget = 100  # about one generation of the tiny model: 1-2 steps for mu = 1, 2-4 for the others
    table = methods(args.inner_steps, args.eta, args.label_threshold)
    chosen = args.methods or list(table)
    key = (args.budget, args.inner_steps, args.eta)

    cache = Path(args.cache)
    runs = _read_cache(cache)
    if not args.report_only:
        cache.parent.mkdir(parents=True, exist_ok=True)
        if (BEFORE, 0, key) not in runs:
            print("[bench_amortise] held-out evaluation of the untrained model ...", flush=True)
            _append(cache, runs, run_one(BEFORE, [], 0, args, extra))
        for seed in args.seeds:
            for name in chosen:
                if (name, seed, key) not in runs:
                    print(f"[bench_amortise] {name} seed {seed} ...", flush=True)
                    _append(cache, runs, run_one(name, table[name], seed, args, extra))
    before = runs.get((BEFORE, 0, key))
    selected = {k: v for k, v in runs.items() if k[0] in chosen and k[1] in args.seeds and k[2] == key}
    summary = report(selected, before, chosen)
    _plot(runs, chosen, args, before, key)
    print(json.dumps(summary))


# ---------------------------------------------------------------------------------------------------------------
# one run


def run_one(name: str, overrides: list[str], seed: int, args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    """Trains one method for one seed until the budget; held-out gold at each checkpoint (BEFORE: no training)."""
    from transformers import TrainerCallback

    from rlsurrogate.build import grpo_config, load
    from rlsurrogate.evaluation import EvalRewards, evaluate_model
    from rlsurrogate.models import load_model
    from rlsurrogate.tasks.loaders import load_data
    from rlsurrogate.trainer import RLTrainer

    with tempfile.TemporaryDirectory() as out:
        settings = [
            *extra,
            *overrides,
            f"data.num_eval={args.eval_prompts}",
            f"training.seed={seed}",
            "training.max_steps=100000",
            "training.save_strategy=no",
            "training.logging_steps=1",
            f"output_dir={out}",
        ]
        recipe, resolved = load(RECIPE, overrides=settings)
        data = load_data(recipe.data)
        model, tokenizer = load_model(recipe.model.name, recipe.model.dtype)
        gold = resolved.reward_names[[i for i, g in enumerate(resolved.gold) if g][0]]
        names, funcs, golds, weights = (
            list(x) for x in (resolved.reward_names, resolved.rewards, resolved.gold, resolved.weights)
        )
        rewards = EvalRewards(names, funcs, golds, weights)
        max_tokens = recipe.generation.max_completion_length

        def heldout(model: Any) -> float:
            was_training = model.training
            model.eval()
            metrics = evaluate_model(model, tokenizer, data.eval_rows, rewards, max_tokens, batch_size=32)["metrics"]
            model.train(was_training)
            return float(metrics[gold])

        if name == BEFORE:
            return {"method": BEFORE, "seed": 0, "key": _key(args), "curve": [[0.0, heldout(model)]]}

        class Budget(TrainerCallback):
            """Counts generated tokens; evaluates at each checkpoint and stops at the budget, between generations."""

            def __init__(self) -> None:
                self.tokens, self.steps, self.curve, self.eval_s = 0.0, [], [], 0.0
                self.next = 0

            def on_log(self, targs, state, control, logs=None, **kwargs):
                if not logs or "loss" not in logs:
                    return
                self.tokens += logs.get("sampling/completion_tokens", 0.0)
                self.steps.append({"tokens": self.tokens, **{k: v for k, v in logs.items() if _keep(k)}})
                if state.global_step % trainer.num_iterations:  # inside a generation's inner steps
                    return
                if self.next < len(CHECKPOINTS) and self.tokens >= CHECKPOINTS[self.next] * args.budget:
                    while self.next < len(CHECKPOINTS) and self.tokens >= CHECKPOINTS[self.next] * args.budget:
                        self.next += 1
                    started = time.perf_counter()
                    self.curve.append([self.tokens, heldout(trainer.model)])
                    self.eval_s += time.perf_counter() - started
                if self.tokens >= args.budget:
                    control.should_training_stop = True

        trainer = RLTrainer(
            model=model,
            reward_funcs=resolved.rewards,
            args=grpo_config(recipe, resolved),
            train_dataset=data.train,
            processing_class=tokenizer,
            objective=resolved.objective,
            reward_timeouts=resolved.timeouts,
            sampler=resolved.sampler,
        )
        budget = Budget()
        trainer.add_callback(budget)
        started = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - started - budget.eval_s
    return {
        "method": name,
        "seed": seed,
        "key": _key(args),
        "curve": budget.curve,
        "tokens": budget.tokens,
        "optimizer_steps": len(budget.steps),
        "train_s": round(train_s, 2),
        "steps": budget.steps,
    }


def _quick_overrides() -> list[str]:
    """A tiny random model saved to a temporary directory, short completions: the harness in a minute."""
    from rlsurrogate.models import tiny_model

    model, tokenizer = tiny_model(seed=0)
    path = Path(tempfile.mkdtemp()) / "tiny"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return [
        f"model.name={path}",
        "generation.max_completion_length=8",
        "data.num_train=32",
    ]


def _keep(key: str) -> bool:
    return key.startswith(("sampling/", "objective/")) or key in ("reward", "step_time", "loss", "grad_norm")


# ---------------------------------------------------------------------------------------------------------------
# the report


def report(
    runs: dict[tuple[str, int, tuple], dict[str, Any]], before: dict[str, Any] | None, order: list[str]
) -> dict[str, Any]:
    by_method: dict[str, dict[int, dict[str, Any]]] = {}
    for (name, seed, _), run in sorted(runs.items(), key=lambda item: (order.index(item[0][0]), item[0][1])):
        by_method.setdefault(name, {})[seed] = run
    start = before["curve"][0] if before else None
    reference = by_method.get(REFERENCE, {})
    rows: dict[str, dict[str, Any]] = {}
    for name, seeds in by_method.items():
        per_seed = []
        for seed, run in seeds.items():
            curve = ([start] if start else []) + run["curve"]
            ref = reference.get(seed)
            level = ref["curve"][-1][1] if ref and ref["curve"] else None
            per_seed.append(
                {
                    "gold": run["curve"][-1][1] if run["curve"] else None,
                    "tokens": run["tokens"],
                    "to_gold": _tokens_to(curve, level) if level is not None else None,
                    "ref_tokens": ref["tokens"] if ref else None,
                    "wall_per_token": run["train_s"] / max(run["tokens"], 1.0),
                    "ref_wall_per_token": ref["train_s"] / max(ref["tokens"], 1.0) if ref else None,
                    "steps": run["optimizer_steps"],
                }
            )
        rows[name] = {
            "gold": _median([s["gold"] for s in per_seed]),
            "gold_per_seed": [s["gold"] for s in per_seed],
            "to_gold": _median([s["to_gold"] for s in per_seed]),
            "to_gold_per_seed": [s["to_gold"] for s in per_seed],
            "tokens": _median([s["tokens"] for s in per_seed]),
            "steps": _median([float(s["steps"]) for s in per_seed]),
            "wall_per_token": _median([s["wall_per_token"] for s in per_seed]),
            "wall_ratio": _median([_ratio(s["wall_per_token"], s["ref_wall_per_token"]) for s in per_seed]),
            "vs_reference_budget": _median([_ratio(s["to_gold"], s["ref_tokens"]) for s in per_seed]),
        }
    trl = next((n for n in rows if n.startswith("grpo_mu") and n != REFERENCE), None)
    sso_vs_trl = None
    if "sso_grpo" in by_method and trl:
        pairs = [
            _ratio(
                _tokens_to(([start] if start else []) + run["curve"], _level(reference, seed)),
                _tokens_to(([start] if start else []) + by_method[trl][seed]["curve"], _level(reference, seed)),
            )
            for seed, run in by_method["sso_grpo"].items()
            if seed in by_method[trl]
        ]
        sso_vs_trl = _median(pairs)
    print(
        f"\nheld-out gold (greedy) before training: {_fmt(start[1] if start else None)}; medians over seeds, "
        "per seed in brackets; tokens to gold = generated tokens until the gold grpo_mu1 reaches at its budget; "
        f"wall time on this machine ({MACHINE})"
    )
    print(
        "| method | held-out gold at budget | tokens to gold | / grpo_mu1 budget | tokens | optimizer steps "
        "| wall s per 1k tokens | wall / grpo_mu1 |"
    )
    print("|" + "---|" * 8)
    for name, r in rows.items():
        print(
            f"| {name} | {_fmt(r['gold'])} ({', '.join(_fmt(g) for g in r['gold_per_seed'])}) "
            f"| {_fmt(r['to_gold'], 0)} ({', '.join(_fmt(t, 0) for t in r['to_gold_per_seed'])}) "
            f"| {_fmt(r['vs_reference_budget'])} | {_fmt(r['tokens'], 0)} | {_fmt(r['steps'], 0)} "
            f"| {_fmt(None if r['wall_per_token'] is None else 1000 * r['wall_per_token'], 2)} "
            f"| {_fmt(r['wall_ratio'])} |"
        )
    return {
        "heldout_gold_at_budget": {n: r["gold"] for n, r in rows.items()},
        "tokens_to_gold": {n: r["to_gold"] for n, r in rows.items()},
        "sso_vs_grpo_mu1_tokens": rows.get("sso_grpo", {}).get("vs_reference_budget"),
        "sso_vs_trl_mu_tokens": sso_vs_trl,
        "wall_ratio_per_token": {n: r["wall_ratio"] for n, r in rows.items()},
        "heldout_gold_before": start[1] if start else None,
        "seeds": sorted({seed for seeds in by_method.values() for seed in seeds}),
    }


def _level(reference: dict[int, dict[str, Any]], seed: int) -> float | None:
    ref = reference.get(seed)
    return ref["curve"][-1][1] if ref and ref["curve"] else None


def _tokens_to(curve: list[list[float]], level: float | None) -> float | None:
    """Generated tokens at which the piecewise-linear curve [(tokens, gold), ...] first reaches `level`."""
    if level is None:
        return None
    for i, (tokens, gold) in enumerate(curve):
        if gold >= level:
            if i == 0:
                return tokens
            (t0, g0) = curve[i - 1]
            return t0 + (tokens - t0) * (level - g0) / (gold - g0) if gold > g0 else tokens
    return None


def _plot(runs: dict, chosen: list[str], args: argparse.Namespace, before: dict | None, key: tuple) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    start = before["curve"] if before else []
    for name in chosen:
        curves = [run["curve"] for (n, _, k), run in runs.items() if n == name and k == key]
        if not curves:
            continue
        points = min(len(c) for c in curves)
        xs = [statistics.mean(c[i][0] for c in curves) for i in range(points)]
        ys = [statistics.mean(c[i][1] for c in curves) for i in range(points)]
        ax.plot([p[0] for p in start] + xs, [p[1] for p in start] + ys, marker="o", label=name)
    ax.set_xlabel("generated completion tokens")
    ax.set_ylabel(f"held-out gold accuracy ({args.eval_prompts} prompts, greedy)")
    ax.set_title(f"quickstart, m = {args.inner_steps}, eta = {args.eta}; mean over seeds {args.seeds}; {MACHINE}")
    ax.legend()
    fig.tight_layout()
    Path(args.png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.png, dpi=120)
    print(f"curves: {args.png}")


def _key(args: argparse.Namespace) -> list:
    return [args.budget, args.inner_steps, args.eta]


def _append(cache: Path, runs: dict, run: dict[str, Any]) -> None:
    runs[(run["method"], run["seed"], tuple(run["key"]))] = run
    with cache.open("a") as f:
        f.write(json.dumps(run) + "\n")


def _read_cache(path: Path) -> dict[tuple[str, int, tuple], dict[str, Any]]:
    runs: dict[tuple[str, int, tuple], dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                run = json.loads(line)
                runs[(run["method"], run["seed"], tuple(run["key"]))] = run
    return runs


def _median(values: list[float | None]) -> float | None:
    """Median over seeds; a run that never reached the level (None) counts as larger than any number."""
    if not values:
        return None
    ordered = sorted(values, key=lambda v: (v is None, v if v is not None else 0.0))
    if len(ordered) % 2:
        return ordered[(len(ordered) - 1) // 2]
    a, b = ordered[len(ordered) // 2 - 1], ordered[len(ordered) // 2]
    return None if a is None or b is None else (a + b) / 2


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 or math.isnan(a) else round(a / b, 3)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


if __name__ == "__main__":
    main()
