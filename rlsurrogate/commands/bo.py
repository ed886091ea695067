"""`rlsurrogate bo`: optimise a named benchmark or a user function with any registered surrogate optimizer.

Examples:
    rlsurrogate bo --objective hartmann6 --budget 60 --seed 0 --output-dir runs/h6
    rlsurrogate bo --objective my_pkg.objectives:loss --bounds=-5:10,0:15 --budget 30 --output-dir runs/mine
    rlsurrogate bo --objective ./objective.py:f --bounds 0:1,0:1 --maximize --method random --output-dir runs/rs

A user function receives one point as a 1-D float64 tensor (length d) and returns a float. Bounds come from
`--bounds lo:hi,lo:hi,...` or from a `bounds` attribute on the function (`[[lo, ...], [hi, ...]]`). Benchmarks
are minimised; user functions are minimised unless `--maximize` is given.

Writes into `--output-dir`: `log.json` (settings, every evaluation, the best point, regret when the optimum is
known) and `convergence.png` (best value, or log10 simple regret for benchmarks, against evaluations).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rlsurrogate.blackbox import BENCHMARKS, OPTIMIZERS, get_benchmark
from rlsurrogate.blackbox.loop import optimize
from rlsurrogate.errors import ConfigError
from rlsurrogate.registry import did_you_mean

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--objective",
        required=True,
        help=f"a benchmark ({', '.join(BENCHMARKS.names())}), 'package.module:fn' or 'path/to/file.py:fn'",
    )
    parser.add_argument("--bounds", default=None, help="user function bounds 'lo:hi,lo:hi,...' (one pair per input)")
    parser.add_argument("--dim", type=int, default=None, help="dimension of ackley/levy/rosenbrock/styblinski_tang")
    parser.add_argument("--budget", type=int, default=50, help="total number of evaluations")
    parser.add_argument("--method", default="bo", help="surrogate optimizer: bo, random, neural_ucb, neural_ts")
    parser.add_argument("--acquisition", default="logei", help="for --method bo: logei, ei, nei, ucb, kg, mes")
    parser.add_argument("--n-init", type=int, default=None, help="initial Sobol points (default 2 d, at least 5)")
    parser.add_argument("--batch-size", type=int, default=1, help="candidates proposed per step (q)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--maximize", action="store_true", help="maximise a user function (benchmarks minimise)")
    parser.add_argument("--output-dir", required=True, help="where log.json and convergence.png are written")


def run(args: argparse.Namespace) -> int:
    fn, bounds, optimum, maximize = _resolve_objective(args)
    if args.method in ("mfbo",):
        raise ConfigError("--method mfbo needs a fidelity-aware objective; use the Python API (MultiFidelityBO).")
    if args.budget < 1 or args.batch_size < 1:
        raise ConfigError(f"--budget {args.budget} / --batch-size {args.batch_size}: both must be >= 1.")
    kwargs: dict[str, Any] = {"maximize": maximize, "seed": args.seed}
    if args.method == "bo":
        kwargs.update(acquisition=args.acquisition, n_init=args.n_init)
    elif args.n_init is not None and args.method.startswith("neural"):
        kwargs["n_init"] = args.n_init
    opt = OPTIMIZERS.get(args.method)(bounds, **kwargs)

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("best {task.fields[best]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns) as progress:
        task = progress.add_task(f"{args.method} on {args.objective}", total=args.budget, best="-")

        def on_step(n: int, best: float) -> None:
            progress.update(task, advance=n, best=f"{best:.6g}")

        records = optimize(opt, fn, args.budget, batch_size=args.batch_size, on_step=on_step)

    x_best, y_best = opt.best()
    log = {
        "objective": args.objective,
        "method": args.method,
        "acquisition": args.acquisition if args.method == "bo" else None,
        "seed": args.seed,
        "budget": args.budget,
        "maximize": maximize,
        "bounds": bounds.tolist(),
        "best_x": x_best.tolist(),
        "best_y": y_best,
        "optimal_value": optimum,
        "regret": None if optimum is None else abs(y_best - optimum),
        "wall_time_s": round(time.perf_counter() - start, 3),
        "evaluations": records,
    }
    (out / "log.json").write_text(json.dumps(log, indent=2))
    _plot(records, optimum, out / "convergence.png", title=f"{args.method} on {args.objective} (seed {args.seed})")
    regret = "" if optimum is None else f", regret {abs(y_best - optimum):.3g}"
    print(
        f"best {y_best:.6g} at {[round(v, 6) for v in x_best.tolist()]}{regret}; wrote {out}/log.json, convergence.png"
    )
    return 0


# ---------------------------------------------------------------------------------------------------------------------
def _resolve_objective(args: argparse.Namespace) -> tuple[Callable, torch.Tensor, float | None, bool]:
    """Returns (fn on a 1-D tensor, 2 x d bounds, known optimum or None, maximize)."""
    if args.objective in BENCHMARKS:
        kwargs = {"dim": args.dim} if args.dim is not None else {}
        try:
            bench = get_benchmark(args.objective, **kwargs)
        except TypeError as err:
            raise ConfigError(f"--dim {args.dim}: benchmark {args.objective!r} has a fixed dimension.") from err
        if bench.fidelity_dim is not None:
            raise ConfigError(f"--objective {args.objective} is multi-fidelity; use MultiFidelityBO from Python.")
        return (lambda x: float(bench(x))), bench.bounds, bench.optimal_value, False
    fn = _load_callable(args.objective)
    raw = args.bounds if args.bounds is not None else getattr(fn, "bounds", None)
    if raw is None:
        raise ConfigError(
            f"--objective {args.objective}: pass --bounds lo:hi,lo:hi,... or set {args.objective}.bounds."
        )
    return fn, _parse_bounds(raw), None, bool(args.maximize)


def _load_callable(spec: str) -> Callable:
    if ":" not in spec:
        raise ConfigError(
            f"--objective {spec!r}: not a benchmark and not 'module:fn' / 'file.py:fn'."
            f"{did_you_mean(spec, BENCHMARKS.names())} Benchmarks: {', '.join(BENCHMARKS.names())}."
        )
    target, attr = spec.rsplit(":", 1)
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ConfigError(f"--objective {spec!r}: file {path} does not exist.")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as err:
            raise ConfigError(f"--objective {spec!r}: cannot import {target!r} ({err}).") from err
    if not callable(getattr(module, attr, None)):
        raise ConfigError(f"--objective {spec!r}: {target} has no callable {attr!r}.")
    return getattr(module, attr)


def _parse_bounds(raw: str | list) -> torch.Tensor:
    if isinstance(raw, str):
        try:
            pairs = [tuple(float(v) for v in part.split(":")) for part in raw.split(",")]
            bounds = torch.tensor(pairs, dtype=torch.float64).T
        except (ValueError, RuntimeError) as err:
            raise ConfigError(f"--bounds {raw!r}: expected 'lo:hi,lo:hi,...' with numbers.") from err
    else:
        bounds = torch.as_tensor(raw, dtype=torch.float64)
    if bounds.ndim != 2 or bounds.shape[0] != 2 or not (bounds[0] < bounds[1]).all():
        raise ConfigError(f"bounds {raw!r}: need one lo < hi pair per input.")
    return bounds


def _plot(records: list[dict[str, Any]], optimum: float | None, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = [r["best"] for r in records]
    fig, ax = plt.subplots(figsize=(6, 4))
    if optimum is not None:
        ax.plot(range(1, len(best) + 1), [math.log10(max(abs(b - optimum), 1e-12)) for b in best])
        ax.set_ylabel("log10 simple regret")
    else:
        ax.plot(range(1, len(best) + 1), best)
        ax.set_ylabel("best value")
    ax.set_xlabel("evaluations")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
