"""Call a function in a worker process whose CPU time the kernel bounds; a worker over its budget is abandoned.

A deadline inside the grading process has to interrupt pure-Python third-party code (math-verify's ANTLR parser,
SymPy). A trace function that raises does, but it triples the cost of every Python call, an exception it raises
inside a generator that is being closed is printed ("Exception ignored in ...") and dropped, and it can leave a
parser's shared caches half updated. Here the work runs in a worker process instead, under
`setitimer(ITIMER_PROF, budget)`: once the worker has used `budget` seconds of CPU the kernel ends it with SIGPROF
(the signal's default action), even inside C code. Nothing is printed, nothing in the calling process is touched,
and the caller's next call gets a fresh worker.

Layout: the calling process starts one template process (a new session, so a terminal's Ctrl-C does not reach it)
that imports the module and runs its set-up once (imports, warm-up). Each worker is an `os.fork()` of the template,
so it starts warm in milliseconds, and talks to the caller over its own socket pair, whose end the template hands
over with `socket.send_fds`. A worker serves calls until one overruns. Template and workers exit when the caller's
ends close, however the caller exits. A wall-clock cap backs the CPU budget for a worker that stalls without using
CPU (swapped out, stopped): then the caller kills it.

POSIX only (fork, SCM_RIGHTS, ITIMER_PROF): `AVAILABLE` says whether this platform has them.
"""

from __future__ import annotations

import atexit
import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
import weakref
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

__all__ = ["AVAILABLE", "BoundedWorker", "WorkerError", "WorkerOverrun"]

AVAILABLE = hasattr(os, "fork") and hasattr(socket, "send_fds") and hasattr(signal, "ITIMER_PROF")
# A worker runs on CPU unless the machine is overloaded; past this many times its CPU budget (and at least
# `_MIN_WALL_CAP_S`), it is taken to have stalled.
_WALL_CAP_FACTOR = 20
_MIN_WALL_CAP_S = 2.0
# The template imports the module and runs its set-up (math-verify: about 2 s on a 2-core CPU, more under load).
_START_TIMEOUT_S = 300.0


class WorkerOverrun(Exception):
    """The call used more than its CPU budget (or stalled past the wall-clock cap); its worker is gone."""


class WorkerError(Exception):
    """The function raised in the worker; the message names the exception."""


class BoundedWorker:
    """Calls `module.function(*args)` in a forked worker process under a CPU-time budget.

    Args:
        module: importable module holding the functions to call (and `setup`).
        setup: name of a function of `module` run once in the template, e.g. imports and warm-up.

    Thread-safe (one call at a time), fork-safe (a forked caller starts its own template, even when another thread
    was mid-call at the fork) and picklable (only the names travel). The template starts on the first call.

    Example:
        >>> worker = BoundedWorker("math", setup="sqrt")  # doctest: +SKIP
        >>> worker.call("factorial", (5,), cpu_seconds=0.1)  # doctest: +SKIP
        120
    """

    def __init__(self, module: str, setup: str):
        self.module = module
        self.setup = setup
        self._lock = threading.Lock()
        self._owner: int | None = None  # pid of the process whose sockets these are
        self._template: subprocess.Popen | None = None
        self._control: socket.socket | None = None
        self._worker: tuple[int, Connection] | None = None
        self._closes_at_exit = False
        # A fork of the caller gets a fresh lock (another thread may hold this one at the fork) and no sockets.
        this = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (worker := this()) is not None and worker._after_fork())

    def __getstate__(self) -> dict[str, str]:
        return {"module": self.module, "setup": self.setup}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.__init__(**state)

    def call(self, function: str, args: tuple[Any, ...], cpu_seconds: float) -> Any:
        """`module.function(*args)` in the worker; `WorkerOverrun` after `cpu_seconds` of its CPU time.

        Raises:
            WorkerOverrun: the budget (or the wall-clock cap) ran out; the next call uses a fresh worker.
            WorkerError: the function raised.
        """
        with self._lock:
            if self._owner != os.getpid():
                self._forget()  # inherited through fork: the parent's sockets are not ours to use
            pid, connection = self._worker or self._new_worker()
            try:
                connection.send((function, args, cpu_seconds))
                if not connection.poll(max(_MIN_WALL_CAP_S, _WALL_CAP_FACTOR * cpu_seconds)):
                    _kill(pid)
                    raise WorkerOverrun(f"{function} stalled past the wall-clock cap")
                ok, value = connection.recv()
            except (EOFError, OSError):  # the kernel ended the worker: CPU budget spent
                self._drop_worker()
                raise WorkerOverrun(f"{function} used more than {cpu_seconds:g} s of CPU") from None
            except WorkerOverrun:
                self._drop_worker()
                raise
        if not ok:
            raise WorkerError(value)
        return value

    def close(self) -> None:
        """End the worker and the template now (they also end by themselves when this process exits)."""
        with self._lock:
            if self._owner == os.getpid():
                self._drop_worker()
                if self._control is not None:
                    self._control.close()  # the template reads EOF and exits
                if self._template is not None:
                    try:
                        self._template.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        self._template.kill()
                        self._template.wait()
            self._forget()

    # ------------------------------------------------------------------------------------------------------------

    def _new_worker(self) -> tuple[int, Connection]:
        if self._control is None or self._template is None or self._template.poll() is not None:
            try:
                self._start_template()
            except RuntimeError:  # once more, for a start cut short from outside (e.g. killed under memory pressure)
                self._start_template()
        assert self._control is not None
        try:
            self._control.sendall(b"f")
            message, fds, _, _ = socket.recv_fds(self._control, 32, 1)
        except OSError:
            message, fds = b"", []
        if not fds:
            self._template = None
            raise RuntimeError(f"the worker template for {self.module} stopped; see its error above")
        self._worker = int(message), Connection(fds[0])
        return self._worker

    def _start_template(self) -> None:
        control, template_end = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[2])  # the caller's rlsurrogate, installed or not
        code = (
            f"import sys; sys.path.insert(0, {package_root!r}); "
            f"from rlsurrogate.rewards.bounded_worker import _template_main; "
            f"_template_main({template_end.fileno()}, {self.module!r}, {self.setup!r})"
        )
        self._template = subprocess.Popen(
            [sys.executable, "-c", code],
            pass_fds=(template_end.fileno(),),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        template_end.close()
        control.settimeout(_START_TIMEOUT_S)
        try:
            ready = control.recv(1)
        except OSError:
            ready = b""
        control.settimeout(None)
        if ready != b"r":
            control.close()
            self._template.kill()
            code, self._template = self._template.wait(), None
            raise RuntimeError(
                f"the worker template for {self.module} did not start (exit status {code}); see its error above"
            )
        self._control, self._owner = control, os.getpid()
        if not self._closes_at_exit:
            atexit.register(self.close)  # an orderly exit ends template and worker before the interpreter goes
            self._closes_at_exit = True

    def _drop_worker(self) -> None:
        if self._worker is not None:
            pid, connection = self._worker
            connection.close()  # a live worker reads EOF and exits
            self._worker = None

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._forget()

    def _forget(self) -> None:
        # Drop references without touching the processes: they belong to the process that started them.
        self._template = self._control = self._worker = None
        self._owner = os.getpid()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ----------------------------------------------------------------------------------------------------------------
# The template and worker processes.


def _template_main(control_fd: int, module_name: str, setup: str) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps ended workers
    control = socket.socket(fileno=control_fd)
    module = importlib.import_module(module_name)
    getattr(module, setup)()
    control.sendall(b"r")
    while control.recv(1) == b"f":  # b"" once the caller's end closes
        caller_end, worker_end = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            control.close()
            caller_end.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _serve(Connection(worker_end.detach()), module)
        worker_end.close()
        socket.send_fds(control, [str(pid).encode()], [caller_end.fileno()])
        caller_end.close()
    os._exit(0)


def _serve(connection: Connection, module: Any) -> None:
    signal.signal(signal.SIGPROF, signal.SIG_DFL)  # its default action ends the process
    while True:
        try:
            function, args, cpu_seconds = connection.recv()
        except (EOFError, OSError):
            os._exit(0)
        signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
        try:
            reply = (True, getattr(module, function)(*args))
        except Exception as error:  # noqa: BLE001 - reported to the caller as WorkerError
            reply = (False, f"{function} raised {type(error).__name__}: {error}")
        signal.setitimer(signal.ITIMER_PROF, 0)
        connection.send(reply)
