"""What an optimize-prompt run leaves in its directory besides the query log: `result.json` and `best_score.png`.

`result.json` holds the history, the best instruction and the spend (`run_summary`); `best_score.png` the best
validation score vs queries (`plot_best_curves`, also used by `scripts/bench_prompt_opt.py` for several runs).
Both are replaced atomically (a temporary file in the same directory, fsync, rename), so a crash leaves the old
file or the new one, never half of one. The command is `rlsurrogate optimize-prompt`
(`rlsurrogate.commands.optimize_prompt`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlsurrogate.prompt_opt.evaluator import InstructionEvaluator
    from rlsurrogate.prompt_opt.instinct import OptimizationResult
    from rlsurrogate.prompt_opt.query_log import QueryLog

__all__ = ["plot_best_curves", "run_summary", "write_results"]


def run_summary(
    result: OptimizationResult,
    evaluator: InstructionEvaluator,
    log: QueryLog,
    task: str,
    method: str,
    target: str,
    test: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of `result.json`: what was asked, the best instruction, the spend and the history.

    Args:
        result: what `optimize` returned.
        evaluator: the evaluator it ran with (its count of calls actually sent).
        log: the query log of the run (calls replayed from it, lines skipped).
        task: the task name.
        method: the method name.
        target: the black-box target string.
        test: `{"score", "examples", "tokens"}` of the best instruction on the test split, or None.
    """
    return {
        "task": task, "method": method, "target": target, "stopped": result.stopped,
        "best_instruction": result.best.instruction if result.best else None,
        "validation_score": result.best.score if result.best else None,
        "test_score": test["score"] if test else None, "test_examples": test["examples"] if test else 0,
        "test_tokens": test["tokens"] if test else 0,
        "queries": result.queries, "tokens": result.tokens, "new_calls": evaluator.new_calls,
        "replayed_calls": log.replayed_calls, "skipped_log_lines": [n for n, _ in log.skipped],
        "best_curve": result.best_curve(),
        "history": [{"query": e.query, "instruction": e.instruction, "score": e.score} for e in result.history],
    }  # fmt: skip


def write_results(out: Path, summary: dict[str, Any], title: str = "") -> None:
    """Replaces `out/result.json` (the summary) and `out/best_score.png` (its best curve), each atomically."""
    _write_atomic(out / "result.json", json.dumps(summary, indent=2).encode() + b"\n")
    plot_best_curves({summary["method"]: [summary["best_curve"]]}, out / "best_score.png", title=title)


def plot_best_curves(curves: dict[str, list[list[float]]], path: str | Path, title: str = "") -> None:
    """PNG of best validation score vs queries: per method the median over runs, with a min-max band.

    Args:
        curves: method -> list of runs, each the best score after query 1, 2, ...
        path: the PNG file.
        title: the plot title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, runs in curves.items():
        runs = [r for r in runs if r]
        if not runs:
            continue
        n = max(len(r) for r in runs)
        Y = np.array([r + [r[-1]] * (n - len(r)) for r in runs])  # (runs, n): a run that stopped early stays flat
        x = np.arange(1, n + 1)
        (line,) = ax.plot(x, np.median(Y, 0), label=method)
        if len(runs) > 1:
            ax.fill_between(x, Y.min(0), Y.max(0), alpha=0.15, color=line.get_color())
    ax.set_xlabel("black-box queries")
    ax.set_ylabel("best validation score")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=120)
    plt.close(fig)
    _write_atomic(Path(path), png.getvalue())


# ---- private helpers ---------------------------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes) -> None:
    """Replaces `path` with `data` all at once: a temporary file in the same directory, fsync, `os.replace`."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644  # mkstemp would leave 0600
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # make the rename durable too; some systems cannot fsync a directory
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
