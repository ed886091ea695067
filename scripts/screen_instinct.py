"""Screening on synthetic pools: INSTINCT's exploration scale nu, then INSTINCT vs random and GP-BO on held-out pools.

No language model: each pool is `rlsurrogate.prompt_opt.synthetic` (576-d features with a large offset and uneven
coordinate scales, a hidden score of a few latent directions, binomial noise per query), so the truth is known.
Every method runs through `search_pool` on the same pool, seed and budget of distinct black-box calls.

1. Screening: INSTINCT with each nu of `--nus` on the screening pools (seeds `--screen-pools`, disjoint from the
   held-out ones); the nu with the best mean best-found score is printed (`NU_DEFAULT` is set from it).
2. Held out: on pools `--pools` (one pool per seed, the run seed = the pool seed), INSTINCT with the library
   defaults, INSTINCT in the paper's setting (N(0, 1) weights, raw features standardised with the observed ones,
   nu 1: `instinct-paper`), random search and GP-BO; paired differences INSTINCT - random with bootstrap CIs.

Per run: `best_found` = hidden score of the candidate with the best observed score (what the method returns);
`hit_rate` = share of the queries after the `n_init` random ones whose candidate is in the pool's top share by hidden
score (base rate = `top_share`). The last line is JSON.

    python scripts/screen_instinct.py            # 20 held-out pools; 2-core CPU under load: ~20 min without
                                                 # instinct-paper (576-d gradients, several times slower)
    python scripts/screen_instinct.py --nus 0.1 --screen-pools 1000 --screen-seeds 0 --methods instinct random
    python scripts/screen_instinct.py --quick    # a tiny check of the script, well under a minute
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from rlsurrogate.prompt_opt.comparison import paired_bootstrap_ci
from rlsurrogate.prompt_opt.instinct import NU_DEFAULT, INSTINCTConfig, search_pool
from rlsurrogate.prompt_opt.synthetic import SyntheticPool, SyntheticPoolConfig, make_synthetic_pool

# method name -> (pool method, INSTINCTConfig overrides)
VARIANTS = {
    "instinct": ("instinct", {}),
    "instinct-paper": ("instinct", {"init": "normal", "feature_stats": "observed", "nu": 1.0}),
    "random": ("random", {}),
    "gp-bo": ("gp-bo", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nus", nargs="+", type=float, default=[0.0, 0.001, 0.01, 0.1, 1.0])
    parser.add_argument("--screen-pools", nargs="+", type=int, default=[1000, 1001, 1002])
    parser.add_argument("--screen-seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--pools", nargs="+", type=int, default=list(range(20)), help="held-out pool seeds")
    parser.add_argument("--methods", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--pool-size", type=int, default=300)
    parser.add_argument("--budget-queries", type=int, default=24, help="queries per run (x n_val distinct calls)")
    parser.add_argument("--n-init", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=100, help="Adam steps per refit (library: 1000)")
    parser.add_argument("--quick", action="store_true", help="tiny settings: checks that the script runs")
    args = parser.parse_args()
    if args.quick:
        args.nus, args.screen_pools, args.screen_seeds, args.pools = [0.0, 0.01], [1000], [0], [0, 1, 2]
        args.pool_size, args.budget_queries, args.train_steps = 60, 8, 10
    torch.set_num_threads(1)
    t0 = time.time()

    screen = {}
    print(f"screening nu on pools {args.screen_pools} x seeds {args.screen_seeds}")
    print(f"{'nu':>8s} {'best_found':>10s} {'hit_rate':>8s}")
    for nu in args.nus:
        runs = [run(pool_of(p, args), "instinct", seed, args, {"nu": nu}) for p in args.screen_pools
                for seed in args.screen_seeds]  # fmt: skip
        screen[nu] = {k: statistics.mean(r[k] for r in runs) for k in ("best_found", "hit_rate")}
        print(f"{nu:8.3g} {screen[nu]['best_found']:10.3f} {screen[nu]['hit_rate']:8.3f}", flush=True)
    nu_chosen = max(args.nus, key=lambda nu: (screen[nu]["best_found"], screen[nu]["hit_rate"]))
    print(f"chosen nu = {nu_chosen:g} (library default NU_DEFAULT = {NU_DEFAULT:g})\n")

    runs = {m: [] for m in args.methods}
    for p in args.pools:
        synthetic = pool_of(p, args)
        for m in args.methods:
            runs[m].append(run(synthetic, m, p, args, {}))
        print(f"pool {p}: " + ", ".join(f"{m} {rs[-1]['best_found']:.3f}/{rs[-1]['hit_rate']:.2f}"
                                       for m, rs in runs.items()), flush=True)  # fmt: skip
    top_share = SyntheticPoolConfig().top_share
    print(f"held-out pools {args.pools[0]}..{args.pools[-1]} ({len(args.pools)}), {args.budget_queries} queries "
          f"({args.budget_queries * SyntheticPoolConfig().n_val} calls), base rate {top_share:.2f}")  # fmt: skip
    print(f"{'method':15s} {'best_found':>10s} {'hit_rate':>8s} {'wall s':>7s}")
    held_out = {}
    for m, rs in runs.items():
        held_out[m] = {k: statistics.mean(r[k] for r in rs) for k in ("best_found", "hit_rate", "wall_s")}
        print(f"{m:15s} {held_out[m]['best_found']:10.3f} {held_out[m]['hit_rate']:8.3f} {held_out[m]['wall_s']:7.1f}")
    paired = {}
    for m in (m for m in args.methods if m.startswith("instinct")):
        for baseline in (b for b in ("random", "gp-bo") if b in runs):
            for k in ("best_found", "hit_rate"):
                ci = paired_bootstrap_ci([r[k] for r in runs[m]], [r[k] for r in runs[baseline]])
                paired[f"{m}_minus_{baseline}/{k}"] = {key: round(v, 4) for key, v in ci.items()}
                print(f"{m} - {baseline} {k}: {ci['mean']:+.3f} [{ci['ci_low']:+.3f}, {ci['ci_high']:+.3f}]")
    print(f"\nwall time {time.time() - t0:.0f} s (2-core CPU, measured under load)")
    print(json.dumps({
        "screen": {str(nu): {k: round(v, 4) for k, v in s.items()} for nu, s in screen.items()},
        "nu_chosen": nu_chosen, "nu_default": NU_DEFAULT,
        "held_out": {m: {k: round(v, 4) for k, v in s.items()} for m, s in held_out.items()},
        "paired": paired, "base_rate": top_share, "pools": len(args.pools), "budget_queries": args.budget_queries,
        "pool_size": args.pool_size, "train_steps": args.train_steps,
    }))  # fmt: skip


def pool_of(seed: int, args) -> SyntheticPool:
    return make_synthetic_pool(SyntheticPoolConfig(size=args.pool_size, seed=seed))


def run(synthetic: SyntheticPool, method: str, seed: int, args, overrides: dict) -> dict[str, float]:
    """One search; its best-found hidden score, hit rate and wall time."""
    pool_method, variant = VARIANTS[method]
    config = INSTINCTConfig(n_init=args.n_init, train_steps=args.train_steps, seed=seed, **{**variant, **overrides})
    start = time.time()
    calls = args.budget_queries * synthetic.config.n_val
    result = search_pool(pool_method, synthetic.pool, synthetic.task, synthetic.client, calls, config)
    guided = result.history[args.n_init :]
    return {
        "best_found": synthetic.scores[result.best.instruction],
        "hit_rate": sum(e.instruction in synthetic.top for e in guided) / max(1, len(guided)),
        "wall_s": time.time() - start,
    }


if __name__ == "__main__":
    main()
