"""`exit_process`: the exit code, atexit handlers and buffered output survive; a torch.distributed group is closed
before the process leaves, and without one the interpreter exits normally."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest

PROGRAM = """
import atexit, os, sys
import torch
from rlsurrogate.process_exit import exit_process
atexit.register(lambda: print("atexit: group open =", torch.distributed.is_initialized()))
if sys.argv[1] == "group":
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[2], RANK="0", WORLD_SIZE="1")
    torch.distributed.init_process_group("gloo")
    torch.distributed.all_reduce(torch.ones(3))
class Finaliser:
    def __del__(self):
        print("finalised")
keep = Finaliser()
sys.stdout.write("work done")  # no newline: stays in the pipe's buffer until flushed
exit_process(int(sys.argv[3]))
print("unreachable")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(mode: str, code: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", textwrap.dedent(PROGRAM), mode, str(_free_port()), str(code)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("code", [0, 3])
def test_after_a_gloo_group_the_group_is_closed_and_output_and_code_survive(code):
    proc = _run("group", code)
    assert proc.returncode == code, proc.stderr[-2000:]
    assert proc.stdout.startswith("work done"), proc.stdout
    assert "atexit: group open = False" in proc.stdout  # closed before the handlers ran
    assert "finalised" not in proc.stdout and "unreachable" not in proc.stdout  # no interpreter finalisation


def test_without_a_group_the_interpreter_exits_normally():
    proc = _run("plain", 4)
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert proc.stdout.startswith("work done")
    assert "atexit: group open = False" in proc.stdout and "unreachable" not in proc.stdout


def test_the_cli_program_exits_with_the_command_code(tmp_path):
    """`python -m rlsurrogate` hands the command's return code to `exit_process`: a command that rejects its input
    returns 2, and the program exits 2 with the error printed."""
    args = ["bo", "--objective", "no_such_benchmark", "--output-dir", str(tmp_path)]
    cmd = [sys.executable, "-m", "rlsurrogate", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "error: --objective 'no_such_benchmark'" in proc.stderr
