"""Functions for tests/rewards/test_bounded_worker.py to call in a worker process (importable as `worker_calls`)."""

from __future__ import annotations

import os
import time

SET_UP = []


def set_up() -> None:
    SET_UP.append(os.getpid())


def square(x: int) -> int:
    return x * x


def was_set_up() -> bool:
    return bool(SET_UP)  # set in the template, inherited by each fork


def pid() -> int:
    return os.getpid()


def burn_python(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def burn_in_c() -> int:
    return sum(range(10**12))  # one C call of minutes: no bytecode boundary for a Python-level deadline


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def fail() -> None:
    raise ValueError("bad input")
