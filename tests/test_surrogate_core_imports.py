"""The surrogate core (`blackbox/`, `optim/`, `losses/`, `zoo/`) imports without transformers or TRL, each package
in a fresh interpreter, so a stray import in any of them (or in what they import) shows up."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CORE = ["rlsurrogate.blackbox", "rlsurrogate.optim", "rlsurrogate.losses", "rlsurrogate.zoo.fzoos"]


@pytest.mark.parametrize("package", CORE)
def test_surrogate_core_never_imports_transformers_or_trl(package):
    code = textwrap.dedent(f"""
        import importlib, pkgutil, sys
        module = importlib.import_module("{package}")
        for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=module.__name__ + "."):
            importlib.import_module(info.name)
        print([m for m in ("transformers", "trl", "vllm") if m in sys.modules])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
