"""Small-task benchmark for the second surrogate core: SSO, FZooS and EnsLoss against their baselines.

Three sections, each over `--seeds` seeds (default 3), medians reported:
1. SSO vs tuned SGD and Adam: expensive-gradient calls (mini-batch dL/dz evaluations; one per SGD/Adam step, one
   per SSO outer step) until the full-training loss first reaches a target. Logistic regression on the scikit-learn
   breast-cancer data (standardised, 30 features) and a 64-32-10 tanh MLP on scikit-learn digits, batch 128.
   Each method gets a small grid (SGD / Adam learning rates, SSO target step eta) and reports its best grid point by
   median calls; runs that never reach the target count as the budget + 1.
2. FZooS vs FedZO on heterogeneous federated quadratics (d = 10, N = 5): client queries until F - F* <= target.
3. EnsLoss vs cross-entropy test accuracy on breast cancer (70/30 stratified split per seed, 1-hidden-layer MLP, SGD
   with momentum 0.9 and cosine schedule as in the EnsLoss tabular setup, same settings for both losses).

Usage: nice -n 10 python scripts/bench_small_tasks.py [--seeds 3] [--quick]
Prints readable tables, then one JSON line with the key medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split

from rlsurrogate.losses.ensloss import EnsLoss
from rlsurrogate.optim.sso import SSO
from rlsurrogate.zoo.fzoos import FedZO, FedZOConfig, FZooS, FZooSConfig, make_quadratic_clients

# Targets: reachable by every method within the budget on every seed we tried, but not in the first few calls.
SSO_TASKS = {
    "logreg": dict(target=0.06, budget=400, eta_grid=[4.0, 8.0, 16.0]),
    "mlp": dict(target=0.02, budget=400, eta_grid=[2.0, 4.0, 8.0]),
}
SGD_GRID = [0.3, 1.0, 3.0, 10.0]
ADAM_GRID = [0.003, 0.01, 0.03, 0.1]
BATCH = 128
FED = dict(d=10, n_clients=5, heterogeneity=0.3, rounds=8, local_iters=10, n_features=1000, target_gap=0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one grid point per method (for a smoke run)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny models: threads only add contention
    seeds = list(range(args.seeds))
    t0 = time.time()
    sso_rows = sso_section(seeds, args.quick)
    fed_rows = federated_section(seeds)
    ens_rows = ensloss_section(seeds)
    print(f"\ntotal wall time {time.time() - t0:.0f} s")
    summary = {
        "sso_grad_calls": sso_rows["logreg"]["SSO"]["median"],
        "sgd_grad_calls": sso_rows["logreg"]["SGD"]["median"],
        "adam_grad_calls": sso_rows["logreg"]["Adam"]["median"],
        "sso_grad_calls_mlp": sso_rows["mlp"]["SSO"]["median"],
        "sgd_grad_calls_mlp": sso_rows["mlp"]["SGD"]["median"],
        "adam_grad_calls_mlp": sso_rows["mlp"]["Adam"]["median"],
        "fzoos_queries": fed_rows["FZooS"],
        "fedzo_queries": fed_rows["FedZO"],
        "ensloss_test_acc": ens_rows["EnsLoss"],
        "ce_test_acc": ens_rows["cross-entropy"],
        "sso_budget": SSO_TASKS["logreg"]["budget"],
        "seeds": len(seeds),
    }
    print(json.dumps(summary))


# ---------------------------------------------------------------------------------------------------- SSO


def sso_section(seeds: list[int], quick: bool) -> dict[str, dict[str, dict]]:
    print(f"== SSO vs SGD / Adam: expensive-gradient calls to reach the full-train loss target (batch {BATCH}) ==")
    print(f"{'task':<8}{'method':<22}{'best setting':<16}{'median calls':>13}{'per seed':>22}{'cheap fwd/call':>16}")
    out: dict[str, dict[str, dict]] = {}
    for task, spec in SSO_TASKS.items():
        methods = {
            "SGD": [("lr", v) for v in (SGD_GRID[1:3] if quick else SGD_GRID)],
            "Adam": [("lr", v) for v in (ADAM_GRID[2:3] if quick else ADAM_GRID)],
            "SSO": [("eta", v) for v in (spec["eta_grid"][-1:] if quick else spec["eta_grid"])],
            "SSO-Armijo (code)": [("eta", spec["eta_grid"][0])],
        }
        out[task] = {}
        for name, grid in methods.items():
            best = None
            for key, value in grid:
                runs = [_sso_run(task, name, value, seed, spec["budget"], spec["target"]) for seed in seeds]
                calls = [r[0] for r in runs]
                med = statistics.median(calls)
                if best is None or med < best["median"]:
                    fwd = statistics.median(r[1] for r in runs)
                    best = dict(median=med, calls=calls, setting=f"{key}={value:g}", fwd=fwd)
            out[task][name] = best
            shown = [str(c) if c <= spec["budget"] else f">{spec['budget']}" for c in best["calls"]]
            med = best["median"] if best["median"] <= spec["budget"] else f">{spec['budget']}"
            setting = best["setting"] if best["median"] <= spec["budget"] else "(none reached)"
            print(f"{task:<8}{name:<22}{setting:<16}{med:>13}{','.join(shown):>22}{best['fwd']:>16.0f}")
    print(
        f"targets: logreg BCE <= {SSO_TASKS['logreg']['target']}, mlp CE <= {SSO_TASKS['mlp']['target']}; "
        f"budget {SSO_TASKS['logreg']['budget']} calls (>budget = not reached; budget + 1 in the JSON); "
        "SSO = inner Adam (lr 0.02, m = 10); SSO-Armijo = code default inner Armijo SGD (m = 10)\n"
    )
    return out


def _sso_data(task: str) -> tuple[torch.Tensor, torch.Tensor]:
    if task == "logreg":
        X, y = load_breast_cancer(return_X_y=True)
        X = (X - X.mean(0)) / X.std(0)
        return torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    X, y = load_digits(return_X_y=True)
    return torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(y)


def _sso_model(task: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    if task == "logreg":
        return torch.nn.Linear(30, 1)
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10))


def _task_loss(task: str, z: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    if task == "logreg":
        return F.binary_cross_entropy_with_logits(z.squeeze(-1), y, reduction=reduction)
    return F.cross_entropy(z, y, reduction=reduction)


def _sso_run(task: str, method: str, value: float, seed: int, budget: int, target: float) -> tuple[int, float]:
    """Returns (expensive-gradient calls to reach the target or budget + 1, cheap forward passes per call)."""
    X, y = _sso_data(task)
    net = _sso_model(task, seed)
    g = torch.Generator().manual_seed(seed)
    if method == "SGD":
        opt = torch.optim.SGD(net.parameters(), lr=value)
    elif method == "Adam":
        opt = torch.optim.Adam(net.parameters(), lr=value)
    elif method == "SSO":
        opt = SSO(net.parameters(), target_lr=value, inner_steps=10, inner_optimizer="adam", inner_lr=0.02)
    else:
        opt = SSO(net.parameters(), target_lr=value, inner_steps=10)
    calls = budget + 1
    for step in range(1, budget + 1):
        idx = torch.randint(0, len(y), (BATCH,), generator=g)
        if isinstance(opt, SSO):
            opt.step(lambda idx=idx: net(X[idx]), lambda z, idx=idx: _task_loss(task, z, y[idx], "sum"))
        else:
            opt.zero_grad()
            _task_loss(task, net(X[idx]), y[idx]).backward()
            opt.step()
        with torch.no_grad():
            if _task_loss(task, net(X), y).item() <= target:
                calls = step
                break
    fwd = opt.counts["target_evals"] / max(opt.counts["grad_calls"], 1) if isinstance(opt, SSO) else 1.0
    return calls, fwd


# ---------------------------------------------------------------------------------------------------- FZooS


def federated_section(seeds: list[int]) -> dict[str, float]:
    print(
        f"== FZooS vs FedZO: client queries until F - F* <= {FED['target_gap']} "
        f"(d={FED['d']}, N={FED['n_clients']}, {FED['rounds']} rounds x {FED['local_iters']} local steps) =="
    )
    print(f"{'method':<8}{'median queries':>16}{'per seed':>26}{'final gap (median)':>20}{'floats sent':>14}")
    out = {}
    results: dict[str, list] = {"FZooS": [], "FedZO": []}
    for seed in seeds:
        clients, F_star = make_quadratic_clients(FED["d"], FED["n_clients"], FED["heterogeneity"], seed=seed)
        x0 = torch.full((FED["d"],), 0.05, dtype=torch.float64)
        fz = FZooS(
            clients,
            FZooSConfig(rounds=FED["rounds"], local_iters=FED["local_iters"], n_features=FED["n_features"], seed=seed),
        ).run(x0)
        fe = FedZO(clients, FedZOConfig(rounds=FED["rounds"], local_iters=FED["local_iters"], seed=seed)).run(x0)
        for name, r in (("FZooS", fz), ("FedZO", fe)):
            q = r.queries_to_reach(F_star + FED["target_gap"])
            results[name].append((q if q is not None else r.queries[-1] + 1, r.F[-1] - F_star, r.floats_sent[-1]))
    for name, rows in results.items():
        med = statistics.median(r[0] for r in rows)
        out[name] = med
        per_seed = ",".join(str(r[0]) for r in rows)
        gap = statistics.median(r[1] for r in rows)
        print(f"{name:<8}{med:>16}{per_seed:>26}{gap:>20.4f}{rows[0][2]:>14}")
    print()
    return out


# ---------------------------------------------------------------------------------------------------- EnsLoss


def ensloss_section(seeds: list[int]) -> dict[str, float]:
    print("== EnsLoss vs cross-entropy: test accuracy on breast cancer (70/30 split per seed) ==")
    X, y = load_breast_cancer(return_X_y=True)
    accs: dict[str, list[float]] = {"EnsLoss": [], "cross-entropy": []}
    for seed in seeds:
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
        mu, sd = Xtr.mean(0), Xtr.std(0)
        data = [torch.tensor(a, dtype=torch.float32) for a in ((Xtr - mu) / sd, (Xte - mu) / sd)]
        labels = [torch.tensor(a, dtype=torch.float32) for a in (ytr, yte)]
        for name in accs:
            accs[name].append(_train_binary(name, *data, *labels, seed))
    print(f"{'loss':<16}{'median acc':>12}{'mean acc':>10}{'per seed':>30}")
    out = {}
    for name, a in accs.items():
        out[name] = statistics.median(a)
        print(f"{name:<16}{out[name]:>12.4f}{statistics.mean(a):>10.4f}{','.join(f'{v:.3f}' for v in a):>30}")
    print()
    return out


def _train_binary(
    name: str, Xtr: torch.Tensor, Xte: torch.Tensor, ytr: torch.Tensor, yte: torch.Tensor, seed: int
) -> float:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(Xtr.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    epochs, batch = 100, 32
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-6)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    g = torch.Generator().manual_seed(seed)
    loss_fn = EnsLoss(generator=torch.Generator().manual_seed(seed)) if name == "EnsLoss" else None
    for _ in range(epochs):
        for idx in torch.randperm(len(ytr), generator=g).split(batch):
            opt.zero_grad()
            f = net(Xtr[idx]).squeeze(-1)
            loss = loss_fn(f, ytr[idx]) if loss_fn else F.binary_cross_entropy_with_logits(f, ytr[idx])
            loss.backward()
            opt.step()
        sched.step()
    with torch.no_grad():
        return ((net(Xte).squeeze(-1) > 0).float() == yte).float().mean().item()


if __name__ == "__main__":
    main()
