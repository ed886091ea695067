"""The package's layering (docs/architecture.md): no import cycle, nothing imports a layer above it, the surrogate
core never imports transformers or TRL. Imports are read from the source (module level and inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rlsurrogate"

# Lowest layer first; a module may import its own layer or a lower one. Prefixes match module names.
LAYERS: list[tuple[str, ...]] = [
    ("rlsurrogate.errors", "rlsurrogate.registry", "rlsurrogate.process_exit"),
    ("rlsurrogate.recipe",),
    (
        "rlsurrogate.models",
        "rlsurrogate.tasks",
        "rlsurrogate.blackbox",
        "rlsurrogate.optim",
        "rlsurrogate.losses",
        "rlsurrogate.zoo",
        "rlsurrogate.checkpoints",
        "rlsurrogate.hacking_guard",
        "rlsurrogate.trl_compat",
        "rlsurrogate.vllm_weights",
        "rlsurrogate.micro_batch",
        "rlsurrogate.environments",
    ),
    (
        "rlsurrogate.rewards",
        "rlsurrogate.objectives",
        "rlsurrogate.evaluation",
        "rlsurrogate.eval_callback",
        "rlsurrogate.diagnostics",
        "rlsurrogate.sampling",
        "rlsurrogate.trainer",
        "rlsurrogate.prompt_opt",
    ),
    ("rlsurrogate.build", "rlsurrogate.train", "rlsurrogate.trl_config", "rlsurrogate.machine"),
    ("rlsurrogate.commands", "rlsurrogate.cli", "rlsurrogate.__main__"),
]
SURROGATE_CORE = ("rlsurrogate.blackbox", "rlsurrogate.optim", "rlsurrogate.losses", "rlsurrogate.zoo")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module an import statement in `path` names (absolute and relative, at any depth of the file)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return found


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: {m for m in _imports(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def _layer(module: str) -> int:
    for index, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} is in no layer of tests/test_layering.py; place it in docs/architecture.md too")


def test_every_module_has_a_layer():
    for module in MODULES:
        if module != "rlsurrogate":
            _layer(module)


def test_no_module_imports_a_layer_above_it():
    upward = [
        f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
        for a, targets in GRAPH.items()
        if a != "rlsurrogate"
        for b in targets
        if b != "rlsurrogate" and _layer(b) > _layer(a)
    ]
    assert not upward, upward


def test_no_import_cycle():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not cycles, cycles


@pytest.mark.parametrize("prefix", SURROGATE_CORE)
def test_surrogate_core_never_imports_transformers_or_trl(prefix):
    offenders = [
        f"{name}: {sorted(m for m in _imports(path) if m.split('.')[0] in ('transformers', 'trl', 'vllm'))}"
        for name, path in MODULES.items()
        if name.startswith(prefix) and any(m.split(".")[0] in ("transformers", "trl", "vllm") for m in _imports(path))
    ]
    assert not offenders, offenders


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    """A function-level import and a relative import both count (the check would miss cycles otherwise)."""
    source = tmp_path / "rlsurrogate" / "pkg" / "mod.py"
    source.parent.mkdir(parents=True)
    source.write_text("from . import sibling\n\ndef f():\n    from rlsurrogate.train import train\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "rlsurrogate"
    try:
        assert {"rlsurrogate.pkg.sibling", "rlsurrogate.train", "rlsurrogate.train.train"} <= _imports(source)
    finally:
        PACKAGE = saved
