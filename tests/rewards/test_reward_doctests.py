"""The docstring examples of the reward modules and plug-ins run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULES = ["boxed", "sympy_guard", "format_length", "accuracy", "boxed_number", "majority_vote", "guard", "loading"]
PLUGINS = sorted((REPO / "rewards").glob("*.py"))


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name):
    module = importlib.import_module(f"rlsurrogate.rewards.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("path", PLUGINS, ids=[p.name for p in PLUGINS])
def test_plugin_doctests(path):
    spec = importlib.util.spec_from_file_location(f"_doctest_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
