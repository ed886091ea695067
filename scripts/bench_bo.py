"""Benchmark: our BO against a raw BoTorch loop, Optuna's GPSampler and TPE, and random search.

Problems:
- Hartmann6 (noiseless, minimise): 10 initial points, then up to `--budget` evaluations in total, `--seeds` seeds.
  Methods: ours_logei (`BayesianOptimization`, LogEI), botorch (BoTorch's tutorial loop with library defaults:
  default `SingleTaskGP`, `LogExpectedImprovement`, `optimize_acqf(num_restarts=10, raw_samples=512)`, same Sobol
  initial design as ours), optuna_gp / optuna_tpe (`GPSampler(seed=s)` / `TPESampler(seed=s)`, defaults: 10 random
  start-up trials), random. ours_nei and ours_kg (qLogNEI, knowledge gradient) run only when named in `--methods`:
  KG takes 8-25 min per seed on a 2-core CPU, more than the whole default run. The initial-design A/B, also only when
  named: ours_optuna_init (ours, LogEI, told the 10 random start-up points Optuna's GPSampler(seed=s) evaluates) and
  optuna_gp_sobol_init (GPSampler(seed=s) with our 10 Sobol points enqueued as its start-up trials).
- mixed_tuning (`rlsurrogate.blackbox.benchmarks`: log floats, a float, an integer, a log integer, two categoricals;
  known optimum), `--mixed-budget` evaluations, `--seeds` seeds, every method driving an Optuna study through
  `trial.suggest_*`: ours (`OptunaSampler`, one-hot categoricals), ours_ordinal (`OptunaSampler` with
  `categorical_encoding="ordinal"`, the A/B for the encoding), optuna_gp, optuna_tpe, random (`RandomSampler`).

Printed per method: median and worst-quartile (75th percentile) log10 simple regret after 50 evaluations and at the
budget; how many seeds are stuck in a non-global basin (Hartmann6: L-BFGS-B from the final best point does not
reach the global minimum; mixed_tuning: the best point's optimizer / activation pair is not adam / gelu); the median
time per proposal over the run and near n = budget. Then proposal times inside real runs paired by seed: ours vs
Optuna's GPSampler near n = 100 (the Hartmann6 runs) and near n = 500 (`--n500-seeds` runs of 500 evaluations), and
one proposal on the same n = 100 / 500 random observations. Last, multi-fidelity BO against single-fidelity BO on
`--mf-problem`: the cost until the target-fidelity regret falls below each `--mf-regret`.

Run: `python scripts/bench_bo.py --cache bench_bo.jsonl` (see README for the wall time). Results are appended to
`--cache` (JSON lines) as they finish, so an interrupted run resumes; `--report-only` prints the tables from it.
The last line printed is one JSON object with the key figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
import warnings
from pathlib import Path

import torch
from torch.quasirandom import SobolEngine

from rlsurrogate.blackbox import get_benchmark
from rlsurrogate.blackbox.bo import BayesianOptimization
from rlsurrogate.blackbox.multi_fidelity import MultiFidelityBO
from rlsurrogate.blackbox.random_search import RandomSearch

H6_METHODS = ("ours_logei", "botorch", "optuna_gp", "optuna_tpe", "random")
H6_EXTRA = ("ours_nei", "ours_kg", "ours_optuna_init", "optuna_gp_sobol_init")
MIXED_METHODS = ("ours", "ours_ordinal", "optuna_gp", "optuna_tpe", "random")
N_INIT = 10
# A local search from the final best point that ends above f* + this is in another basin (Hartmann6's second-best
# local minimum is 0.12 above the global one).
BASIN_TOL = 1e-3


# -- Hartmann6 runners: each returns (values in evaluation order, seconds per proposal, best x) -----------------------
def run_ours(acq: str, f, seed: int, budget: int, init: torch.Tensor | None = None):
    """Our BO; `init` (`N_INIT x 6`): evaluate these start-up points instead of our Sobol design."""
    # One-shot KG optimises q + num_fantasies points jointly; fewer starts keep it to seconds per iteration.
    extra = {"num_restarts": 5, "raw_samples": 256} if acq == "kg" else {}
    opt = BayesianOptimization(f.bounds, maximize=False, seed=seed, acquisition=acq, n_init=N_INIT, **extra)
    ys, times = [], []
    if init is not None:
        opt.step = opt.n_sobol = N_INIT  # the model-based steps use the seeds they have in a Sobol-started run
        opt.tell(init, f(init))
        ys = f(init).tolist()
    for _ in range(budget - len(ys)):
        t0 = time.perf_counter()
        X = opt.ask(1)
        times.append(time.perf_counter() - t0)
        y = f(X)
        opt.tell(X, y)
        ys.append(float(y))
    return ys, times[-(budget - N_INIT) :], opt.best()[0].tolist()  # the model-based proposals


def run_botorch(f, seed: int, budget: int) -> tuple[list[float], list[float], list[float]]:
    from botorch.acquisition import LogExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.optim import optimize_acqf
    from gpytorch.mlls import ExactMarginalLogLikelihood

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
    return (-Y.squeeze(-1)).tolist(), times, X[Y.argmax()].tolist()


def run_optuna_h6(kind: str, f, seed: int, budget: int, enqueue: torch.Tensor | None = None):
    """Optuna's GPSampler or TPE; `enqueue` (`N_INIT x 6`): start-up points evaluated first, in order."""
    study = _study(kind, seed)
    for x in [] if enqueue is None else enqueue.tolist():
        study.enqueue_trial({f"x{i}": v for i, v in enumerate(x)})
    ys, times = [], []
    for _ in range(budget):
        t0 = time.perf_counter()
        trial = study.ask()
        x = torch.tensor([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(6)], dtype=torch.float64)
        times.append(time.perf_counter() - t0)
        y = float(f(x))
        study.tell(trial, y)
        ys.append(y)
    return ys, times[N_INIT:], [study.best_params[f"x{i}"] for i in range(6)]


def run_random(f, seed: int, budget: int) -> tuple[list[float], list[float], list[float]]:
    opt = RandomSearch(f.bounds, maximize=False, seed=seed)
    X = opt.ask(budget)
    Y = f(X)
    return Y.tolist(), [0.0], X[Y.argmin()].tolist()


def run_h6(method: str, seed: int, budget: int) -> dict:
    f = get_benchmark("hartmann6")
    if method == "ours_optuna_init":
        ys, times, x_best = run_ours("logei", f, seed, budget, init=_optuna_startup(seed))
    elif method == "optuna_gp_sobol_init":
        sobol = SobolEngine(6, scramble=True, seed=seed).draw(N_INIT, dtype=torch.float64)  # ours, as bo.py draws it
        ys, times, x_best = run_optuna_h6("gp", f, seed, budget, enqueue=sobol)
    elif method.startswith("ours_"):
        ys, times, x_best = run_ours(method.removeprefix("ours_"), f, seed, budget)
    elif method == "botorch":
        ys, times, x_best = run_botorch(f, seed, budget)
    elif method.startswith("optuna_"):
        ys, times, x_best = run_optuna_h6(method.removeprefix("optuna_"), f, seed, budget)
    else:
        ys, times, x_best = run_random(f, seed, budget)
    best = [min(ys[: i + 1]) for i in range(len(ys))]
    regret = [max(b - f.optimal_value, 1e-12) for b in best]
    stuck = _local_minimum(f, x_best) > f.optimal_value + BASIN_TOL
    return {"problem": "hartmann6", "method": method, "seed": seed, "budget": budget, "regret": regret,
            "times": times, "stuck": stuck}  # fmt: skip


# -- mixed_tuning: every method drives an Optuna study -----------------------------------------------------------
def run_mixed(method: str, seed: int, budget: int) -> dict:
    f = get_benchmark("mixed_tuning")
    space = f.space
    study = _study(method, seed)
    ys, times, params = [], [], []
    for _ in range(budget):
        t0 = time.perf_counter()
        trial = study.ask()
        p = {d.name: _suggest(trial, d) for d in space.dims}
        times.append(time.perf_counter() - t0)
        y = float(f(space.encode(p)))
        study.tell(trial, y)
        ys.append(y)
        params.append(p)
    best = [min(ys[: i + 1]) for i in range(len(ys))]
    regret = [max(b - f.optimal_value, 1e-12) for b in best]
    winner = params[min(range(budget), key=ys.__getitem__)]
    stuck = (winner["optimizer"], winner["activation"]) != ("adam", "gelu")
    return {"problem": "mixed_tuning", "method": method, "seed": seed, "budget": budget, "regret": regret,
            "times": times[N_INIT:], "stuck": stuck}  # fmt: skip


def time_at_n(n: int, repeats: int = 3) -> dict[str, float]:
    """Seconds for one proposal given n random Hartmann6 observations: ours (LogEI) and Optuna's GPSampler."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    f = get_benchmark("hartmann6")
    ours, opt_gp = [], []
    for r in range(repeats):
        X = torch.rand(n, 6, generator=torch.Generator().manual_seed(r), dtype=torch.float64)
        Y = f(X)
        bo = BayesianOptimization(f.bounds, maximize=False, seed=r, n_init=N_INIT)
        bo.tell(X, Y)
        bo.tell(bo.ask(1), 0.0)  # first fit starts cold; the timed one is warm-started, as inside a run
        t0 = time.perf_counter()
        bo.ask(1)
        ours.append(time.perf_counter() - t0)
        dists = {f"x{i}": FloatDistribution(0.0, 1.0) for i in range(6)}
        study = _study("optuna_gp", r)
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
    parser.add_argument("--methods", default=",".join(H6_METHODS), help=f"Hartmann6 methods; also {H6_EXTRA}")
    parser.add_argument("--mixed-methods", default=",".join(MIXED_METHODS))
    parser.add_argument("--mixed-budget", type=int, default=60)
    parser.add_argument("--n500-seeds", type=int, default=2, help="runs of --n500-budget for the n ~ 500 ratio")
    parser.add_argument("--n500-budget", type=int, default=500)
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
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    start = time.perf_counter()

    cache = Path(args.cache)
    done = [json.loads(line) for line in cache.read_text().splitlines()] if cache.exists() else []
    runs = {(r.get("problem", "hartmann6"), r["method"], r["seed"], r["budget"]): r for r in done if "regret" in r}
    mf_done = {
        (r["method"], r["seed"]): {k: math.inf if v is None else v for k, v in r["mf"].items()}
        for r in done
        if "mf" in r
    }
    h6_methods, mixed_methods = args.methods.split(","), args.mixed_methods.split(",")
    plan = [("hartmann6", m, s, args.budget) for s in range(args.first_seed, args.seeds) for m in h6_methods]
    plan += [
        ("mixed_tuning", m, s, args.mixed_budget) for s in range(args.first_seed, args.seeds) for m in mixed_methods
    ]
    plan += [
        ("hartmann6", m, s, args.n500_budget) for s in range(args.n500_seeds) for m in ("ours_logei", "optuna_gp")
    ]
    for key in plan:  # seed-major per problem, so an interrupted run has every method on the first seeds
        if key in runs or args.report_only:
            continue
        problem, method, seed, budget = key
        t0 = time.perf_counter()
        r = run_h6(method, seed, budget) if problem == "hartmann6" else run_mixed(method, seed, budget)
        runs[key] = r
        _append(cache, r)
        print(f"  {problem} {method:12s} seed {seed} n={budget}: log10 regret {math.log10(r['regret'][-1]):+.2f}"
              f"{' stuck' if r['stuck'] else ''} ({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip

    h6 = _table(runs, "hartmann6", args.budget, h6_methods + [m for m in H6_EXTRA if m not in h6_methods])
    mixed = _table(runs, "mixed_tuning", args.mixed_budget, mixed_methods)

    in_run = {}
    for n, budget in ((100, args.budget), (500, args.n500_budget)):
        in_run[n] = _paired_time_ratio(runs, budget)
        if in_run[n]:
            print(f"\nProposal time inside real Hartmann6 runs near n = {budget}, last 10 proposals, paired by seed")
            for seed, (ours, theirs) in sorted(in_run[n]["per_seed"].items()):
                print(f"  seed {seed}: ours {ours:.3f} s  optuna_gp {theirs:.3f} s  ratio {ours / theirs:.2f}")
            print(f"  median ratio {in_run[n]['ratio']:.2f}")

    timing = {}
    if args.timing_repeats > 0 and not args.report_only:
        print("\nOne proposal after n random observations (median of repeats, seconds)")
        for n in (100, 500):
            timing[n] = time_at_n(n, args.timing_repeats)
            ratio = timing[n]["ours"] / timing[n]["optuna_gp"]
            print(
                f"  n = {n}: ours {timing[n]['ours']:.3f}  optuna_gp {timing[n]['optuna_gp']:.3f}  ratio {ratio:.2f}"
            )

    mf_summary = {} if args.skip_mf else compare_fidelities(args, cache, mf_done)
    print(f"\nwall time {time.perf_counter() - start:.0f} s; load average at end: {os.getloadavg()[0]:.2f}")

    def get(table: dict, method: str, key: str) -> float | None:
        return round(table[method][key], 3) if method in table else None

    summary = {
        "ours_log10_regret": get(h6, "ours_logei", "end"),
        "ours_nei_log10_regret": get(h6, "ours_nei", "end"),
        "ours_kg_log10_regret": get(h6, "ours_kg", "end"),
        "botorch_log10_regret": get(h6, "botorch", "end"),
        "optuna_gp_log10_regret": get(h6, "optuna_gp", "end"),
        "optuna_tpe_log10_regret": get(h6, "optuna_tpe", "end"),
        "random_log10_regret": get(h6, "random", "end"),
        "ours_log10_regret_at_50": get(h6, "ours_logei", "half"),
        "botorch_log10_regret_at_50": get(h6, "botorch", "half"),
        "optuna_gp_log10_regret_at_50": get(h6, "optuna_gp", "half"),
        "ours_log10_regret_q75": get(h6, "ours_logei", "end_q75"),
        "optuna_gp_log10_regret_q75": get(h6, "optuna_gp", "end_q75"),
        "ours_log10_regret_q75_at_50": get(h6, "ours_logei", "half_q75"),
        "optuna_gp_log10_regret_q75_at_50": get(h6, "optuna_gp", "half_q75"),
        "stuck": {m: row["stuck"] for m, row in h6.items()},
        "mixed_log10_regret": {m: round(row["end"], 3) for m, row in mixed.items()},
        "mixed_log10_regret_q75": {m: round(row["end_q75"], 3) for m, row in mixed.items()},
        "mixed_stuck": {m: row["stuck"] for m, row in mixed.items()},
        "time_ratio_vs_optuna_gp": round(timing[100]["ours"] / timing[100]["optuna_gp"], 3) if timing else None,
        "time_ratio_vs_optuna_gp_n500": round(timing[500]["ours"] / timing[500]["optuna_gp"], 3) if timing else None,
        "in_run_time_ratio_vs_optuna_gp": in_run[100]["ratio"] if in_run[100] else None,
        "in_run_time_ratio_vs_optuna_gp_n500": in_run[500]["ratio"] if in_run[500] else None,
        "mf_cost_to_regret": {t: _nullable(c)["mf"] for t, c in mf_summary.items()},  # per target; null: not reached
        "sf_cost_to_regret": {t: _nullable(c)["sf"] for t, c in mf_summary.items()},
        "seeds_per_method": {m: row["n"] for m, row in h6.items()},
        "mixed_seeds_per_method": {m: row["n"] for m, row in mixed.items()},
        "budget": args.budget,
        "mixed_budget": args.mixed_budget,
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


# ---------------------------------------------------------------------------------------------------------------------
def _study(method: str, seed: int):
    import optuna

    from rlsurrogate.blackbox.optuna_sampler import OptunaSampler

    samplers = {
        "ours": lambda: OptunaSampler(seed=seed),
        "ours_ordinal": lambda: OptunaSampler(seed=seed, categorical_encoding="ordinal"),
        "optuna_gp": lambda: optuna.samplers.GPSampler(seed=seed),
        "gp": lambda: optuna.samplers.GPSampler(seed=seed),
        "optuna_tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
    }
    return optuna.create_study(direction="minimize", sampler=samplers[method]())


def _optuna_startup(seed: int) -> torch.Tensor:
    """The `N_INIT x 6` start-up points of GPSampler(seed=seed): its independent RandomSampler(seed=seed) draws."""
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    points = []
    for _ in range(N_INIT):
        trial = study.ask()
        points.append([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(6)])
        study.tell(trial, 0.0)
    return torch.tensor(points, dtype=torch.float64)


def _suggest(trial, d):
    if d.kind == "categorical":
        return trial.suggest_categorical(d.name, list(d.choices))
    if d.kind == "integer":
        return trial.suggest_int(d.name, int(d.low), int(d.high), log=d.log)
    return trial.suggest_float(d.name, d.low, d.high, log=d.log)


def _local_minimum(f, x: list[float]) -> float:
    """The value L-BFGS-B reaches from `x` on `f` (which basin `x` lies in)."""
    from scipy.optimize import minimize

    def value_and_grad(z):
        t = torch.tensor(z, dtype=torch.float64, requires_grad=True)
        v = f.fn(t.unsqueeze(0)).sum()
        (g,) = torch.autograd.grad(v, t)
        return float(v), g.numpy()

    lo, hi = f.bounds.tolist()
    res = minimize(value_and_grad, x, jac=True, method="L-BFGS-B", bounds=list(zip(lo, hi)))
    return float(res.fun)


def _table(runs: dict, problem: str, budget: int, methods: list[str]) -> dict[str, dict]:
    half = min(50, budget)
    rows = {}
    print(f"\n{problem}, {budget} evaluations ({N_INIT} initial), log10 simple regret over seeds")
    head = f"{'method':13s} {'seeds':>5s} {'median@' + str(half):>10s} {'q75@' + str(half):>8s} "
    print(
        head
        + f"{'median@' + str(budget):>11s} {'q75@' + str(budget):>9s} {'stuck':>6s} {'s/ask':>7s} {'s/ask@end':>9s}"
    )
    for method in methods:
        rs = [r for (p, m, _, b), r in runs.items() if p == problem and m == method and b == budget]
        if not rs:
            continue
        at_half = [math.log10(r["regret"][half - 1]) for r in rs]
        at_end = [math.log10(r["regret"][-1]) for r in rs]
        rows[method] = {
            "half": statistics.median(at_half),
            "half_q75": _q75(at_half),
            "end": statistics.median(at_end),
            "end_q75": _q75(at_end),
            "stuck": sum(r["stuck"] for r in rs),
            "n": len(rs),
        }
        t_all = statistics.median(statistics.median(r["times"]) for r in rs)
        t_end = statistics.median(statistics.median(r["times"][-10:]) for r in rs)
        row = rows[method]
        print(f"{method:13s} {len(rs):5d} {row['half']:+10.2f} {row['half_q75']:+8.2f} {row['end']:+11.2f} "
              f"{row['end_q75']:+9.2f} {row['stuck']:3d}/{len(rs):<2d} {t_all:7.3f} {t_end:9.3f}")  # fmt: skip
    return rows


def _q75(values: list[float]) -> float:
    """The worst-quartile value (75th percentile, linear interpolation) of log10 regrets (higher is worse)."""
    return statistics.quantiles(values, n=4, method="inclusive")[2] if len(values) > 1 else values[0]


def _paired_time_ratio(runs: dict, budget: int) -> dict | None:
    """Per seed, the median time of the last 10 proposals of ours_logei and optuna_gp on Hartmann6 runs of `budget`
    evaluations; the median over seeds of their ratio. The two runs of a seed are back to back."""
    per_seed = {}
    for (problem, method, seed, b), r in runs.items():
        peer = runs.get((problem, "optuna_gp", seed, b))
        if problem == "hartmann6" and method == "ours_logei" and b == budget and peer:
            per_seed[seed] = (statistics.median(r["times"][-10:]), statistics.median(peer["times"][-10:]))
    if not per_seed:
        return None
    return {"per_seed": per_seed, "ratio": round(statistics.median(a / b for a, b in per_seed.values()), 3)}


def _append(cache: Path, record: dict) -> None:
    with cache.open("a") as fh:
        fh.write(json.dumps(record) + "\n")


def _nullable(costs: dict[str, float]) -> dict[str, float | None]:
    return {k: None if math.isinf(v) else v for k, v in costs.items()}


if __name__ == "__main__":
    main()
