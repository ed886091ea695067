"""Benchmark: our BO against a raw BoTorch loop, Optuna's GPSampler and TPE, and random search on Hartmann6.

Setting (issue "Surrogate core I"): noiseless Hartmann6 (minimise), 10 initial points, then up to `--budget`
evaluations in total, `--seeds` seeds. Printed per method: median log10 simple regret after 50 and after `--budget`
evaluations, how many seeds ended in the second-best basin (regret ~0.12, value -3.20), and the median time per
model-based iteration near n = budget. A second table times one proposal with n = 100 and n = 500 random
observations for ours and Optuna's GPSampler. A third compares multi-fidelity BO with single-fidelity BO on
`--mf-problem` (default `mf_branin`): the cost spent until the target-fidelity regret falls below each of the
`--mf-regret` targets (1, 0.1, 0.01).

Methods:
- ours_logei / ours_nei / ours_kg: `rlsurrogate.blackbox.bo.BayesianOptimization` with that acquisition.
- botorch: BoTorch's tutorial loop with library defaults (default `SingleTaskGP`, `LogExpectedImprovement`,
  `optimize_acqf(num_restarts=10, raw_samples=512)`), on the same Sobol initial design as ours.
- optuna_gp / optuna_tpe: `GPSampler(seed=s)` / `TPESampler(seed=s)` with defaults (10 random start-up trials).
- random: uniform random search.

Run: `nice -n 10 python scripts/bench_bo.py` (10 seeds x 100 evaluations; KG takes most of the time: ~10-35 min per
seed on a 2-core CPU, so `--kg-seeds 3` gives a first look).
Results are appended to `--cache` (JSON lines) as they finish, so an interrupted run resumes.
The last line printed is one JSON object with the key figures.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
import warnings
from pathlib import Path

import torch

from rlsurrogate.blackbox import get_benchmark
from rlsurrogate.blackbox.bo import BayesianOptimization
from rlsurrogate.blackbox.multi_fidelity import MultiFidelityBO
from rlsurrogate.blackbox.random_search import RandomSearch

METHODS = ("ours_logei", "ours_nei", "ours_kg", "botorch", "optuna_gp", "optuna_tpe", "random")
N_INIT = 10
SECOND_OPTIMUM_REGRET = 0.1224  # Hartmann6's second-best local minimum is -3.2003


def run_ours(acq: str, f, seed: int, budget: int) -> tuple[list[float], list[float]]:
    # One-shot KG optimises q + num_fantasies points jointly; fewer starts keep it to seconds per iteration.
    extra = {"num_restarts": 5, "raw_samples": 256} if acq == "kg" else {}
    opt = BayesianOptimization(f.bounds, maximize=False, seed=seed, acquisition=acq, n_init=N_INIT, **extra)
    ys, times = [], []
    for _ in range(budget):
        t0 = time.perf_counter()
        X = opt.ask(1)
        times.append(time.perf_counter() - t0)
        y = f(X)
        opt.tell(X, y)
        ys.append(float(y))
    return ys, times[N_INIT:]


def run_botorch(f, seed: int, budget: int) -> tuple[list[float], list[float]]:
    from botorch.acquisition import LogExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.optim import optimize_acqf
    from gpytorch.mlls import ExactMarginalLogLikelihood
    from torch.quasirandom import SobolEngine

    torch.manual_seed(seed)
    bounds = torch.stack([torch.zeros(6), torch.ones(6)]).double()
    X = SobolEngine(6, scramble=True, seed=seed).draw(N_INIT, dtype=torch.float64)
    Y = -f(X).unsqueeze(-1)  # BoTorch maximises
    times = []
    while X.shape[0] < budget:
        t0 = time.perf_counter()
        model = SingleTaskGP(X, Y)
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        acqf = LogExpectedImprovement(model, best_f=Y.max())
        x, _ = optimize_acqf(acqf, bounds, q=1, num_restarts=10, raw_samples=512)
        times.append(time.perf_counter() - t0)
        X, Y = torch.cat([X, x]), torch.cat([Y, -f(x).unsqueeze(-1)])
    return (-Y.squeeze(-1)).tolist(), times


def run_optuna(kind: str, f, seed: int, budget: int) -> tuple[list[float], list[float]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = optuna.samplers.GPSampler(seed=seed) if kind == "gp" else optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    ys, times = [], []
    for _ in range(budget):
        t0 = time.perf_counter()
        trial = study.ask()
        x = torch.tensor([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(6)], dtype=torch.float64)
        times.append(time.perf_counter() - t0)
        y = float(f(x))
        study.tell(trial, y)
        ys.append(y)
    return ys, times[N_INIT:]


def run_random(f, seed: int, budget: int) -> tuple[list[float], list[float]]:
    opt = RandomSearch(f.bounds, maximize=False, seed=seed)
    X = opt.ask(budget)
    return f(X).tolist(), [0.0]


def run_method(method: str, seed: int, budget: int) -> dict:
    f = get_benchmark("hartmann6")
    if method.startswith("ours_"):
        ys, times = run_ours(method.removeprefix("ours_"), f, seed, budget)
    elif method == "botorch":
        ys, times = run_botorch(f, seed, budget)
    elif method.startswith("optuna_"):
        ys, times = run_optuna(method.removeprefix("optuna_"), f, seed, budget)
    else:
        ys, times = run_random(f, seed, budget)
    best = [min(ys[: i + 1]) for i in range(len(ys))]
    regret = [max(b - f.optimal_value, 1e-12) for b in best]
    return {"method": method, "seed": seed, "budget": budget, "regret": regret, "times": times}


def time_at_n(n: int, repeats: int = 3) -> dict[str, float]:
    """Seconds for one proposal given n random Hartmann6 observations: ours (LogEI) and Optuna's GPSampler."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    f = get_benchmark("hartmann6")
    ours, opt_gp = [], []
    for r in range(repeats):
        X = torch.rand(n, 6, generator=torch.Generator().manual_seed(r), dtype=torch.float64)
        Y = f(X)
        bo = BayesianOptimization(f.bounds, maximize=False, seed=r, n_init=N_INIT)
        bo.tell(X, Y)
        bo.ask(1)  # first fit starts cold; the timed one is warm-started, as inside a run
        t0 = time.perf_counter()
        bo.ask(1)
        ours.append(time.perf_counter() - t0)
        dists = {f"x{i}": FloatDistribution(0.0, 1.0) for i in range(6)}
        study = optuna.create_study(direction="minimize", sampler=optuna.samplers.GPSampler(seed=r))
        for x, y in zip(X.tolist(), Y.tolist()):
            study.add_trial(create_trial(params={f"x{i}": v for i, v in enumerate(x)}, distributions=dists, value=y))
        for _ in range(2):  # the first ask warms the sampler cache; the second is timed
            t0 = time.perf_counter()
            trial = study.ask(dists)
            elapsed = time.perf_counter() - t0
            study.tell(trial, float(f(torch.tensor([trial.params[f"x{i}"] for i in range(6)]))))
        opt_gp.append(elapsed)
    return {"ours": statistics.median(ours), "optuna_gp": statistics.median(opt_gp)}


def mf_cost_to_regret(problem: str, seed: int, budget_cost: float, targets: list[float]) -> dict[str, float]:
    """Cost spent until the regret at target fidelity is <= each target: MF-BO (MF-KG, regret of its posterior-mean
    recommendation) and single-fidelity BO (LogEI at s = 1, regret of its best observation). Keys
    "mfbo@<target>" and "single@<target>"; inf where the cost budget ran out first."""
    f = get_benchmark(problem)
    base = get_benchmark(problem.removeprefix("mf_"))
    n_init = 2 * f.dim
    out = {f"{m}@{t:g}": math.inf for m in ("mfbo", "single") for t in targets}

    def record(method: str, regret: float, cost: float) -> bool:
        for t in targets:
            if regret <= t and math.isinf(out[f"{method}@{t:g}"]):
                out[f"{method}@{t:g}"] = cost
        return regret <= min(targets)

    mf = MultiFidelityBO(
        f.bounds, fidelity_dim=f.fidelity_dim, fixed_cost=f.fixed_cost, maximize=False, seed=seed, n_init=n_init
    )
    while mf.cost_spent < budget_cost:
        X = mf.ask(1)
        mf.tell(X, f(X))
        x = mf.recommend()
        if x is not None and record("mfbo", base.regret(float(base(x[: base.dim]))), mf.cost_spent):
            break
    sf = BayesianOptimization(base.bounds, maximize=False, seed=seed, n_init=n_init)
    cost = 0.0
    while cost < budget_cost:
        X = sf.ask(1)
        sf.tell(X, base(X))
        cost += 1.0 + f.fixed_cost
        if record("single", base.regret(sf.best()[1]), cost):
            break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed..seeds-1 (split a run)")
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--kg-seeds", type=int, default=None, help="seeds for ours_kg (the slowest); default --seeds")
    parser.add_argument("--cache", default="bench_bo_results.jsonl")
    parser.add_argument("--timing-repeats", type=int, default=3)
    parser.add_argument("--mf-seeds", type=int, default=3)
    parser.add_argument("--mf-problem", default="mf_branin")
    parser.add_argument("--mf-budget", type=float, default=40.0, help="cost budget (a target-fidelity eval costs 1.1)")
    parser.add_argument("--mf-regret", type=float, nargs="+", default=[1.0, 0.1, 0.01], help="target regrets")
    parser.add_argument("--skip-mf", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="summarise --cache without running missing seeds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    methods = args.methods.split(",")

    cache = Path(args.cache)
    done = [json.loads(line) for line in cache.read_text().splitlines()] if cache.exists() else []
    results = {(r["method"], r["seed"]): r for r in done if r.get("budget") == args.budget}
    mf_done = {
        (r["method"], r["seed"]): {k: math.inf if v is None else v for k, v in r["mf"].items()}
        for r in done
        if "mf" in r
    }
    # seed-major, so an interrupted run has every method on the first seeds
    for seed in range(args.first_seed, args.seeds):
        for method in methods:
            if (method, seed) in results or (method == "ours_kg" and seed >= (args.kg_seeds or args.seeds)):
                continue
            if args.report_only:
                continue
            t0 = time.perf_counter()
            r = run_method(method, seed, args.budget)
            results[(method, seed)] = r
            _append(cache, r)
            print(
                f"  {method:11s} seed {seed}: log10 regret {math.log10(r['regret'][-1]):+.2f} "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )

    half = min(50, args.budget)
    rows = {}
    print(f"\nHartmann6, {N_INIT} initial points, medians over seeds")
    print(
        f"{'method':12s} {'seeds':>5s} {'log10 r@' + str(half):>11s} {'log10 r@' + str(args.budget):>12s} "
        f"{'stuck@2nd':>9s} {'s/iter':>8s} {'s/iter@n~' + str(args.budget):>14s}"
    )
    for method in methods:
        rs = [r for (m, _), r in results.items() if m == method]
        if not rs:
            continue
        r_half = statistics.median(math.log10(r["regret"][half - 1]) for r in rs)
        r_end = statistics.median(math.log10(r["regret"][-1]) for r in rs)
        stuck = sum(abs(r["regret"][-1] - SECOND_OPTIMUM_REGRET) < 0.01 for r in rs)
        t_all = statistics.median(statistics.median(r["times"]) for r in rs)
        t_end = statistics.median(statistics.median(r["times"][-10:]) for r in rs)
        rows[method] = {"half": r_half, "end": r_end, "t": t_all, "t_end": t_end, "n": len(rs)}
        print(
            f"{method:12s} {len(rs):5d} {r_half:+11.2f} {r_end:+12.2f} {stuck:6d}/{len(rs):<2d} "
            f"{t_all:8.3f} {t_end:14.3f}"
        )

    timing = {}
    if "ours_logei" in methods and "optuna_gp" in methods and args.timing_repeats > 0:
        print("\nOne proposal after n random observations (median of repeats, seconds)")
        for n in (100, 500):
            timing[n] = time_at_n(n, args.timing_repeats)
            ratio = timing[n]["ours"] / timing[n]["optuna_gp"]
            print(
                f"  n = {n}: ours {timing[n]['ours']:.3f}  optuna_gp {timing[n]['optuna_gp']:.3f}  ratio {ratio:.2f}"
            )

    mf_summary = {} if args.skip_mf else compare_fidelities(args, cache, mf_done)

    def get(method: str, key: str) -> float | None:
        return round(rows[method][key], 3) if method in rows else None

    t100 = timing.get(100)
    summary = {
        "ours_log10_regret": get("ours_logei", "end"),
        "ours_nei_log10_regret": get("ours_nei", "end"),
        "ours_kg_log10_regret": get("ours_kg", "end"),
        "botorch_log10_regret": get("botorch", "end"),
        "optuna_gp_log10_regret": get("optuna_gp", "end"),
        "optuna_tpe_log10_regret": get("optuna_tpe", "end"),
        "random_log10_regret": get("random", "end"),
        "ours_log10_regret_at_50": get("ours_logei", "half"),
        "botorch_log10_regret_at_50": get("botorch", "half"),
        "optuna_gp_log10_regret_at_50": get("optuna_gp", "half"),
        "time_ratio_vs_optuna_gp": round(t100["ours"] / t100["optuna_gp"], 3) if t100 else None,
        "time_ratio_vs_optuna_gp_n500": round(timing[500]["ours"] / timing[500]["optuna_gp"], 3) if timing else None,
        "in_run_time_ratio_vs_optuna_gp": _paired_time_ratio(results, "ours_logei", "optuna_gp"),
        "mf_cost_to_regret": {t: _nullable(c)["mf"] for t, c in mf_summary.items()},  # per target; null: not reached
        "sf_cost_to_regret": {t: _nullable(c)["sf"] for t, c in mf_summary.items()},
        "seeds_per_method": {m: row["n"] for m, row in rows.items()},
        "budget": args.budget,
    }
    print(json.dumps(summary))


def compare_fidelities(args: argparse.Namespace, cache: Path, done: dict) -> dict[str, dict[str, float]]:
    """Runs (or reads from `done`) the MF-vs-SF seeds and prints the cost to each target regret; returns the
    medians per target as {target: {"mf": cost, "sf": cost}}."""
    targets = args.mf_regret
    print(f"\n{args.mf_problem}: cost until regret <= target at target fidelity (cost = 0.1 + s per evaluation)")
    key = f"mf:{args.mf_problem}:{args.mf_budget}:{','.join(f'{t:g}' for t in targets)}"
    for seed in range(args.mf_seeds):
        if (key, seed) not in done and not args.report_only:
            done[(key, seed)] = mf_cost_to_regret(args.mf_problem, seed, args.mf_budget, targets)
            # JSON has no inf: a budget that ran out is stored as null
            _append(cache, {"method": key, "seed": seed, "mf": _nullable(done[(key, seed)])})
    runs = [done[(key, seed)] for seed in range(args.mf_seeds) if (key, seed) in done]
    if not runs:
        return {}
    print(f"  {'target regret':>13s} {'MF-BO cost (median)':>20s} {'SF-BO cost (median)':>20s}  per seed")
    medians = {}
    for t in targets:
        mf_costs, sf_costs = ([r[f"{m}@{t:g}"] for r in runs] for m in ("mfbo", "single"))
        medians[f"{t:g}"] = {"mf": statistics.median(mf_costs), "sf": statistics.median(sf_costs)}
        print(
            f"  {t:13g} {medians[f'{t:g}']['mf']:20.1f} {medians[f'{t:g}']['sf']:20.1f}  "
            f"{[round(c, 1) for c in mf_costs]} / {[round(c, 1) for c in sf_costs]}"
        )
    return medians


def _append(cache: Path, record: dict) -> None:
    with cache.open("a") as fh:
        fh.write(json.dumps(record) + "\n")


def _paired_time_ratio(results: dict, method: str, peer: str) -> float | None:
    """Median over seeds of the ratio of the two methods' median time per iteration over the last 10 iterations
    (n ~ budget). Pairing by seed cancels load that changed between seeds; the two runs of a seed are back to back."""
    ratios = [
        statistics.median(r["times"][-10:]) / statistics.median(results[(peer, seed)]["times"][-10:])
        for (m, seed), r in results.items()
        if m == method and (peer, seed) in results
    ]
    return round(statistics.median(ratios), 3) if ratios else None


def _nullable(costs: dict[str, float]) -> dict[str, float | None]:
    return {k: None if math.isinf(v) else v for k, v in costs.items()}


if __name__ == "__main__":
    main()
