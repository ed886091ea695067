"""BoundedWorker: calls in a forked worker, ended by the kernel past its CPU budget, quietly, and replaced."""

from __future__ import annotations

import os
import pickle
import threading
import time

import pytest

from rlsurrogate.rewards.bounded_worker import AVAILABLE, BoundedWorker, WorkerError, WorkerOverrun
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="needs fork, SCM_RIGHTS and ITIMER_PROF (POSIX)")

# Wall-clock slack over a CPU budget on a loaded 2-core machine (the kernel counts CPU time, tests see wall time).
MARGIN_S = 3.0


@pytest.fixture
def worker(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", f"{REPO / 'tests' / 'assets'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    worker = BoundedWorker("worker_calls", setup="set_up")
    yield worker
    worker.close()


def test_calls_return_their_value_and_the_set_up_ran_once_in_the_template(worker):
    assert worker.call("square", (7,), cpu_seconds=1.0) == 49
    assert worker.call("was_set_up", (), cpu_seconds=1.0) is True
    assert worker.call("pid", (), cpu_seconds=1.0) != os.getpid()


@pytest.mark.parametrize(("function", "args"), [("burn_python", (30.0,)), ("burn_in_c", ())])
def test_overrun_ends_within_budget_prints_nothing_and_the_next_call_gets_a_fresh_worker(
    worker, capfd, function, args
):
    first = worker.call("pid", (), cpu_seconds=1.0)
    start = time.perf_counter()
    with pytest.raises(WorkerOverrun, match="CPU"):
        worker.call(function, args, cpu_seconds=0.2)
    assert time.perf_counter() - start < 0.2 + MARGIN_S
    assert worker.call("square", (3,), cpu_seconds=1.0) == 9
    assert worker.call("pid", (), cpu_seconds=1.0) != first
    assert capfd.readouterr().err == ""


def test_a_worker_that_stalls_without_cpu_is_killed_at_the_wall_clock_cap(worker):
    start = time.perf_counter()
    with pytest.raises(WorkerOverrun, match="wall-clock"):
        worker.call("sleep", (60.0,), cpu_seconds=0.01)  # cap: max(2 s, 20 x budget)
    assert time.perf_counter() - start < 2.0 + MARGIN_S
    assert worker.call("square", (4,), cpu_seconds=1.0) == 16


def test_an_exception_in_the_worker_is_reported_and_the_worker_stays(worker):
    first = worker.call("pid", (), cpu_seconds=1.0)
    with pytest.raises(WorkerError, match="ValueError: bad input"):
        worker.call("fail", (), cpu_seconds=1.0)
    assert worker.call("pid", (), cpu_seconds=1.0) == first


def test_threads_share_one_worker_safely(worker):
    results = {}

    def run(i):
        results[i] = [worker.call("square", (i * 10 + k,), cpu_seconds=1.0) for k in range(10)]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == {i: [(i * 10 + k) ** 2 for k in range(10)] for i in range(4)}


def test_pickles_by_name_and_a_forked_caller_starts_its_own_template(worker):
    parent_worker = worker.call("pid", (), cpu_seconds=1.0)
    clone = pickle.loads(pickle.dumps(worker))
    assert (clone.module, clone.setup) == ("worker_calls", "set_up")
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child must not use the parent's sockets
        try:
            os.write(write, str(worker.call("pid", (), cpu_seconds=5.0)).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    child_worker = int(os.read(read, 64) or b"0")
    os.close(read)
    assert child_worker not in (0, parent_worker)
    assert worker.call("pid", (), cpu_seconds=1.0) == parent_worker  # the parent's worker is untouched


def test_a_template_that_cannot_start_is_a_clear_error():
    worker = BoundedWorker("no_such_module_for_bounded_worker", setup="set_up")
    with pytest.raises(RuntimeError, match="worker template for no_such_module_for_bounded_worker did not start"):
        worker.call("square", (2,), cpu_seconds=1.0)


def test_a_fork_taken_while_another_thread_is_mid_call_works_in_the_child(worker):
    worker.call("pid", (), cpu_seconds=1.0)
    busy = threading.Thread(target=lambda: worker.call("burn_python", (1.5,), cpu_seconds=5.0))
    busy.start()
    time.sleep(0.3)  # the thread now holds the worker's lock
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.write(write, str(worker.call("square", (6,), cpu_seconds=5.0)).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    assert os.read(read, 64) == b"36"
    os.close(read)
    busy.join(timeout=60)
