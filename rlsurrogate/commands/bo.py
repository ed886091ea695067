"""`rlsurrogate bo`: optimise a named benchmark or a user function with any registered surrogate optimizer.

Examples:
    rlsurrogate bo --objective hartmann6 --budget 60 --seed 0 --output-dir runs/h6
    rlsurrogate bo --objective my_pkg.objectives:loss --bounds=-5:10,0:15 --direction minimize --output-dir runs/mine
    rlsurrogate bo --objective ./train.py:val_loss --space space.json --direction minimize --output-dir runs/tune
    rlsurrogate bo --objective ./train.py:val_loss --space space.json --direction minimize --output-dir runs/tune \\
        --budget 80 --resume                                   # continue runs/tune to 80 evaluations

A user function receives one point: a 1-D float64 tensor (length d) with `--bounds lo:hi,lo:hi,...` (or a `bounds`
attribute on the function), or a `{name: value}` dict with `--space space.json` (or a `space` attribute), where the
file maps each name to `{"type": "float" | "int" | "categorical", "low", "high", "log", "step" | "choices"}`. It
returns a float, or None / NaN when the evaluation failed (the run records it and goes on). With
`--constraint NAME<=BOUND` (repeatable) it returns `{"value": ..., "NAME": ...}`; the best point is the best one
whose outcomes stay within the bounds. Benchmarks are minimised; a user function needs `--direction minimize` or
`--direction maximize` (the Python API's `maximize=`), stated once and recorded in the log.

Writes into `--output-dir`: `log.json`, rewritten atomically after every evaluation (settings, every evaluation,
the best point, regret when the optimum is known, and the optimizer's state as JSON), and `convergence.png` at the
end. `--resume` continues a run from its `log.json`: the state holds every evaluation made, so none is repeated, and
a run killed mid-way has lost at most the evaluation that was running.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rlsurrogate.blackbox import BENCHMARKS, OPTIMIZERS, SearchSpace, get_benchmark
from rlsurrogate.blackbox.base import state_from_json, state_to_json
from rlsurrogate.blackbox.loop import optimize
from rlsurrogate.errors import ConfigError
from rlsurrogate.registry import did_you_mean

__all__ = ["add_arguments", "run"]

# Settings a resumed run must share with the log it continues (the budget may grow).
_RESUME_KEYS = (
    "objective",
    "method",
    "acquisition",
    "seed",
    "direction",
    "space",
    "outcome_constraints",
    "n_init",
    "stall_window",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--objective",
        required=True,
        help=f"a benchmark ({', '.join(BENCHMARKS.names())}), 'package.module:fn' or 'path/to/file.py:fn'",
    )
    parser.add_argument("--bounds", default=None, help="user function bounds 'lo:hi,lo:hi,...' (one pair per input)")
    parser.add_argument("--space", default=None, help="JSON file of a named search space (the function gets a dict)")
    parser.add_argument("--dim", type=int, default=None, help="dimension of ackley/levy/rosenbrock/styblinski_tang")
    parser.add_argument("--budget", type=int, default=50, help="total number of evaluations")
    parser.add_argument("--method", default="bo", help="surrogate optimizer: bo, random, neural_ucb, neural_ts")
    parser.add_argument("--acquisition", default=None, help="for --method bo: logei (default), ei, nei, ucb, kg, mes")
    parser.add_argument("--n-init", type=int, default=None, help="initial Sobol points (default 2 d, at least 5)")
    parser.add_argument(
        "--stall-window",
        default=None,
        help="for --method bo: evaluations without improvement before the search restarts from a fresh design, "
        "avoiding the basin it found: an int, 'off', or 'auto' (default: 10 in a space of plain floats, off with "
        "integer or categorical parameters)",
    )
    parser.add_argument("--batch-size", type=int, default=1, help="candidates proposed per step (q)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--direction", choices=("minimize", "maximize"), default=None, help="required for a function")
    parser.add_argument("--maximize", action="store_true", help="the same as --direction maximize")
    parser.add_argument(
        "--constraint", action="append", default=[], metavar="NAME<=BOUND", help="outcome constraint (repeatable)"
    )
    parser.add_argument("--output-dir", required=True, help="where log.json and convergence.png are written")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output-dir from its log.json")


def run(args: argparse.Namespace) -> int:
    fn, space, optimum, maximize, named = _resolve_objective(args)
    if args.method in ("mfbo",):
        raise ConfigError("--method mfbo needs a fidelity-aware objective; use the Python API (MultiFidelityBO).")
    if args.budget < 1 or args.batch_size < 1:
        raise ConfigError(f"--budget {args.budget} / --batch-size {args.batch_size}: both must be >= 1.")
    _refuse_unused(args)
    args.acquisition = args.acquisition or "logei"
    constraints = _parse_constraints(args.constraint)
    kwargs: dict[str, Any] = {"maximize": maximize, "seed": args.seed}
    kwargs.update({"outcome_constraints": constraints} if constraints else {})
    stall_window = _parse_stall_window(args.stall_window)
    if args.method == "bo":
        kwargs.update(acquisition=args.acquisition, n_init=args.n_init, stall_window=stall_window)
    elif args.n_init is not None and args.method.startswith("neural"):
        kwargs["n_init"] = args.n_init
    opt = OPTIMIZERS.get(args.method)(space, **kwargs)

    out = Path(args.output_dir)
    settings = {
        "objective": args.objective,
        "method": args.method,
        "acquisition": args.acquisition if args.method == "bo" else None,
        "seed": args.seed,
        "budget": args.budget,
        "batch_size": args.batch_size,
        "n_init": args.n_init,
        "stall_window": ("off" if stall_window is None else stall_window) if args.method == "bo" else None,
        "direction": "maximize" if maximize else "minimize",
        "maximize": maximize,
        "space": space.to_dict(),
        "bounds": space.bounds.tolist(),
        "outcome_constraints": constraints,
        "optimal_value": optimum,
    }
    records, elapsed = _resume(out / "log.json", settings, opt) if args.resume else _fresh(out / "log.json")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter() - elapsed

    def write(complete: bool = False) -> None:
        _write_json(out / "log.json", _log(settings, opt, records, optimum, time.perf_counter() - start, complete))

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("best {task.fields[best]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns) as progress:
        task = progress.add_task(
            f"{args.method} on {args.objective}", total=args.budget, completed=len(records), best="-"
        )

        def on_record(record: dict[str, Any]) -> None:
            records.append(record)
            write()
            best = "-" if record["best"] is None else f"{record['best']:.6g}"
            progress.update(task, advance=1, best=best)

        remaining = args.budget - len(records)
        if remaining > 0:
            optimize(opt, fn, remaining, batch_size=args.batch_size, params=named, on_record=on_record)
    write(complete=True)
    _plot(records, optimum, out / "convergence.png", title=f"{args.method} on {args.objective} (seed {args.seed})")
    if opt.Y.numel() == 0 or not opt.feasible.any():
        print(f"no successful feasible evaluation in {len(records)}; wrote {out}/log.json")
        return 0
    params, y_best = opt.best_params()
    regret = "" if optimum is None else f", regret {abs(y_best - optimum):.3g}"
    print(f"best {y_best:.6g} at {params}{regret}; wrote {out}/log.json, convergence.png")
    return 0


# ---------------------------------------------------------------------------------------------------------------------
def _resolve_objective(args: argparse.Namespace) -> tuple[Callable, SearchSpace, float | None, bool, bool]:
    """Returns (fn, search space, known optimum or None, maximize, whether fn takes {name: value} dicts)."""
    direction = "maximize" if args.maximize else args.direction
    if args.maximize and args.direction == "minimize":
        raise ConfigError("--maximize and --direction minimize disagree; pass one of them.")
    if args.objective in BENCHMARKS:
        kwargs = {"dim": args.dim} if args.dim is not None else {}
        try:
            bench = get_benchmark(args.objective, **kwargs)
        except TypeError as err:
            raise ConfigError(f"--dim {args.dim}: benchmark {args.objective!r} has a fixed dimension.") from err
        if bench.fidelity_dim is not None:
            raise ConfigError(f"--objective {args.objective} is multi-fidelity; use MultiFidelityBO from Python.")
        if direction == "maximize" or args.space or args.bounds:
            raise ConfigError(f"--objective {args.objective}: a benchmark is minimised on its own bounds.")
        space = bench.space or SearchSpace.box(bench.bounds)
        return (lambda x: float(bench(x))), space, bench.optimal_value, False, False
    fn = _load_callable(args.objective)
    if direction is None:
        raise ConfigError(
            f"--objective {args.objective}: say which way to optimise it with --direction minimize or "
            "--direction maximize."
        )
    if args.space is not None or (args.bounds is None and getattr(fn, "space", None) is not None):
        return fn, _read_space(args.space, fn), None, direction == "maximize", True
    raw = args.bounds if args.bounds is not None else getattr(fn, "bounds", None)
    if raw is None:
        raise ConfigError(
            f"--objective {args.objective}: pass --bounds lo:hi,... or --space space.json, or set "
            f"{args.objective}.bounds / .space."
        )
    return fn, SearchSpace.box(_parse_bounds(raw)), None, direction == "maximize", False


def _refuse_unused(args: argparse.Namespace) -> None:
    """Refuses options the chosen objective or method would silently ignore."""
    OPTIMIZERS.get(args.method)  # an unknown method is named first
    if args.dim is not None and args.objective not in BENCHMARKS:
        raise ConfigError(
            f"--dim {args.dim}: only a benchmark takes it; a user function's dimension comes from its space."
        )
    if args.space is not None and args.bounds is not None:
        raise ConfigError("--space and --bounds both given: pass one (--space for named parameters).")
    if args.acquisition is not None and args.method != "bo":
        raise ConfigError(f"--acquisition {args.acquisition}: only --method bo takes it; drop it for {args.method}.")
    if args.n_init is not None and not (args.method == "bo" or args.method.startswith("neural")):
        raise ConfigError(f"--n-init {args.n_init}: --method {args.method} has no initial design; drop it.")
    if args.stall_window is not None and args.method != "bo":
        raise ConfigError(f"--stall-window {args.stall_window}: only --method bo restarts; drop it for {args.method}.")


def _parse_stall_window(text: str | None) -> int | str | None:
    """`--stall-window`: None or 'auto' -> "auto", 'off' -> None (no restarts), a positive int -> that int."""
    if text is None or text == "auto":
        return "auto"
    if text == "off":
        return None
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise ConfigError(f"--stall-window {text!r}: must be a positive int, 'off' (no restarts) or 'auto'.")


def _read_space(path: str | None, fn: Callable) -> SearchSpace:
    if path is None:
        return SearchSpace.from_dict(fn.space)  # type: ignore[attr-defined]
    try:
        spec = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"--space {path}: cannot read it as JSON ({err}).") from err
    return SearchSpace.from_dict(spec)


def _parse_constraints(items: list[str]) -> dict[str, float]:
    constraints = {}
    for item in items:
        match = re.fullmatch(r"\s*([A-Za-z_][\w.-]*)\s*<=\s*(\S+)\s*", item)
        try:
            bound = float(match.group(2)) if match else math.nan
        except ValueError:
            bound = math.nan
        if not match or not math.isfinite(bound):
            raise ConfigError(f"--constraint {item!r}: expected NAME<=BOUND with a finite number, e.g. latency<=100.")
        name = match.group(1)
        if name == "value" or name in constraints:
            why = "is the objective's key" if name == "value" else "is already constrained"
            raise ConfigError(f"--constraint {item!r}: {name!r} {why}; give each outcome constraint its own name.")
        constraints[name] = bound
    return constraints


def _fresh(path: Path) -> tuple[list[dict[str, Any]], float]:
    if path.is_file():
        raise ConfigError(
            f"{path} exists: pass --resume to continue that run, or choose another --output-dir to start a new one."
        )
    return [], 0.0


def _resume(path: Path, settings: dict[str, Any], opt: Any) -> tuple[list[dict[str, Any]], float]:
    """Loads the optimizer state and the records of `path`; refuses a log of other settings."""
    if not path.is_file():
        raise ConfigError(f"--resume: {path} does not exist; drop --resume to start a new run there.")
    try:
        log = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"--resume: cannot read {path} ({err}).") from err
    saved = log if isinstance(log, dict) else {}
    defaults = {"stall_window": "auto" if saved.get("method") == "bo" else None}  # a log from before --stall-window
    differ = [k for k in _RESUME_KEYS if saved.get(k, defaults.get(k)) != settings[k]]
    if differ:
        diffs = ", ".join(f"{k} {saved.get(k)!r} (log) vs {settings[k]!r}" for k in differ)
        raise ConfigError(f"--resume: {path} was written with other settings: {diffs}; pass the log's settings.")
    opt.load_state_dict(state_from_json(log["state"]))
    return list(log["evaluations"]), float(log.get("wall_time_s", 0.0))


def _log(
    settings: dict[str, Any], opt: Any, records: list, optimum: float | None, elapsed: float, complete: bool
) -> dict[str, Any]:
    best_params, best_x, best_y = None, None, None
    if opt.Y.numel() and opt.feasible.any():
        best_params, best_y = opt.best_params()
        best_x = opt.best()[0].tolist()
    return {
        **settings,
        "complete": complete,
        "n_evaluations": len(records),
        "n_failed": int(opt.X_failed.shape[0]),
        "best_params": best_params,
        "best_x": best_x,
        "best_y": best_y,
        "regret": None if optimum is None or best_y is None else abs(best_y - optimum),
        "wall_time_s": round(elapsed, 3),
        "evaluations": records,
        "state": state_to_json(opt.state_dict()),
    }


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    """Writes `obj` via a temporary file and a rename, so a kill mid-write leaves the previous log intact."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


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
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(f"--objective {spec!r}: cannot load {path} as a Python module.")
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

    points = [(i + 1, r["best"]) for i, r in enumerate(records) if r["best"] is not None]
    fig, ax = plt.subplots(figsize=(6, 4))
    if optimum is not None:
        ax.plot([i for i, _ in points], [math.log10(max(abs(b - optimum), 1e-12)) for _, b in points])
        ax.set_ylabel("log10 simple regret")
    else:
        ax.plot([i for i, _ in points], [b for _, b in points])
        ax.set_ylabel("best value")
    ax.set_xlabel("evaluations")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
