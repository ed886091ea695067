"""Ending a process that joined a torch.distributed group, without the gloo teardown abort.

Gloo's worker threads outlive `destroy_process_group()`: the group's C++ object stays referenced, so its threads are
never joined. A worker that finished the last collective may still be dropping its reference to that collective's
tensors when the interpreter finalises; releasing a tensor that has a Python object takes the GIL, which a finalising
interpreter refuses by ending the thread, and the unwind through C++ aborts the whole process ("terminate called
without an active exception", exit -6) after all of its work was done. With two busy CPU ranks this happens to a few
runs in a hundred.

`exit_process(code)` closes the group, runs the `atexit` handlers (logging, trackers) and flushes the standard
streams, then leaves without interpreter finalisation, where the abort happens. A process that never joined a group
exits normally.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import NoReturn

__all__ = ["exit_process"]


def _close_process_group() -> bool:
    """Destroys the initialised torch.distributed group, if any; True when there was one."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return False
    torch.distributed.destroy_process_group()
    return True


def exit_process(code: int = 0) -> NoReturn:
    """Exits with `code`; after a torch.distributed group, skips the interpreter's finalisation (see module doc)."""
    if not _close_process_group():
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing left to save
            pass
    os._exit(code)
