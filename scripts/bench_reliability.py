"""Bad inputs against every surface a user or a policy can reach: how many get a clear answer, how many a traceback.

    python scripts/bench_reliability.py [--surface rewards --surface recipes ...] [--verbose]

The corpus lives in `scripts/reliability/<surface>.py` (rewards, recipes, serve, query_log, checkpoints, ask_tell,
reward_calls): each case feeds one bad input to one surface and reports a clear error, a correct handling, or a
traceback (see `scripts/reliability/__init__.py`). Each surface runs in its own worker process; a case that outlives
its deadline is a hang (the worker is killed and a fresh one takes the next case). Run it alone on the machine:
reward cases report their slowest call in ms.

Prints a table per surface, the cases that were not clean, and last one JSON line:
{"inputs": N, "clear_errors": N, "handled": N, "tracebacks": N, "hangs": N, "records_lost": N,
"worst_reward_ms": ...}. Goal: 0 tracebacks, 0 hangs, 0 records lost, worst reward <= 100 ms.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
SURFACES = ("rewards", "reward_calls", "recipes", "checkpoints", "query_log", "serve", "ask_tell")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--surface", action="append", choices=SURFACES, help="run only these surfaces (repeatable)")
    parser.add_argument("--verbose", action="store_true", help="print every case")
    args = parser.parse_args()

    rows, bad = [], []
    for surface in args.surface or SURFACES:
        started = time.perf_counter()
        results = _run_surface(surface)
        counts = {kind: sum(r["kind"] == kind for r in results) for kind in ("clear_error", "handled", "traceback")}
        counts["hang"] = sum(r["kind"] == "hang" for r in results)
        reward_ms = [r["reward_ms"] for r in results if r.get("reward_ms") is not None]
        rows.append(
            {
                "surface": surface,
                "inputs": len(results),
                **counts,
                "records_lost": sum(r.get("records_lost", 0) for r in results),
                "worst_reward_ms": max(reward_ms) if reward_ms else None,
                "wall_s": time.perf_counter() - started,
            }
        )
        bad += [r for r in results if r["kind"] in ("traceback", "hang") or r.get("records_lost")]
        if args.verbose:
            for r in results:
                print(f"  {surface:12s} {r['kind']:12s} {r['name'][:50]:50s} {r['detail'][:90]}")

    header = f"{'surface':14s}{'inputs':>8s}{'clear':>8s}{'handled':>9s}{'tracebk':>9s}{'hangs':>7s}{'lost':>6s}"
    print(header + f"{'worst ms':>10s}{'wall s':>8s}")
    for r in rows:
        worst = "-" if r["worst_reward_ms"] is None else f"{r['worst_reward_ms']:.1f}"
        print(
            f"{r['surface']:14s}{r['inputs']:>8d}{r['clear_error']:>8d}{r['handled']:>9d}{r['traceback']:>9d}"
            f"{r['hang']:>7d}{r['records_lost']:>6d}{worst:>10s}{r['wall_s']:>8.1f}"
        )
    for r in bad:
        print(f"NOT CLEAN  {r['surface']}: {r['name']}: {r['kind']}: {r['detail']}")
    worst_ms = [r["worst_reward_ms"] for r in rows if r["worst_reward_ms"] is not None]
    summary = {
        "inputs": sum(r["inputs"] for r in rows),
        "clear_errors": sum(r["clear_error"] for r in rows),
        "handled": sum(r["handled"] for r in rows),
        "tracebacks": sum(r["traceback"] for r in rows),
        "hangs": sum(r["hang"] for r in rows),
        "records_lost": sum(r["records_lost"] for r in rows),
        "worst_reward_ms": round(max(worst_ms), 2) if worst_ms else None,
    }
    print(json.dumps(summary))


def _run_surface(surface: str) -> list[dict]:
    """Every case of one surface, in a worker process; a case past its deadline kills the worker (a hang)."""
    context = mp.get_context("spawn")
    results: list[dict] = []
    index, total = 0, None
    while total is None or index < total:
        parent, child = context.Pipe()
        worker = context.Process(target=_worker, args=(surface, index, child), daemon=True)
        worker.start()
        child.close()
        if not parent.poll(180):  # importing the surface (torch, TRL) takes seconds, never minutes
            worker.kill()
            raise SystemExit(f"bench_reliability: the {surface} cases did not load")
        message = parent.recv()
        if "load_error" in message:
            raise SystemExit(f"bench_reliability: cannot load the {surface} cases: {message['load_error']}")
        total, timeouts, names = message["total"], message["timeouts"], message["names"]
        while index < total:
            if not parent.poll(timeouts[index]):
                worker.kill()
                worker.join()
                results.append(
                    {"surface": surface, "name": names[index], "kind": "hang", "detail": f">{timeouts[index]} s"}
                )
                index += 1
                break
            try:
                outcome = parent.recv()
            except EOFError:  # the worker died (e.g. a case called os._exit or crashed the interpreter)
                results.append(
                    {"surface": surface, "name": names[index], "kind": "traceback", "detail": "the process died"}
                )
                index += 1
                break
            results.append({"surface": surface, "name": names[index], **outcome})
            index += 1
        else:
            parent.send(None)
            worker.join(10)
            if worker.is_alive():
                worker.kill()
    return results


def _worker(surface: str, start: int, conn) -> None:
    sys.path.insert(0, str(SCRIPTS))
    try:
        cases = importlib.import_module(f"reliability.{surface}").CASES
    except Exception as err:  # noqa: BLE001 - reported by the parent
        conn.send({"load_error": f"{type(err).__name__}: {err}"})
        return
    conn.send({"total": len(cases), "timeouts": [c.timeout_s for c in cases], "names": [c.name for c in cases]})
    for case in cases[start:]:
        try:
            outcome = case.run()
            result = {
                "kind": outcome.kind,
                "detail": outcome.detail,
                "records_lost": outcome.records_lost,
                "reward_ms": outcome.reward_ms,
            }
        except BaseException as err:  # noqa: BLE001 - an exception escaping a case is what this counts
            result = {"kind": "traceback", "detail": f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"}
        conn.send(result)
    conn.recv()


if __name__ == "__main__":
    main()
