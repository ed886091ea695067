"""One small registry: `register(name)` decorator, `get(name)`, `names()`; used for rewards, objectives, optimizers.
Also the one importer of user files named by path (`file.py:name` in a recipe: rewards, tools, environments)."""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Generic, TypeVar

from rlsurrogate.errors import ConfigError

__all__ = ["Registry", "did_you_mean", "import_file_module"]

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Returns ' Did you mean "x"?' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f' Did you mean "{close[0]}"?' if close else ""


class Registry(Generic[T]):
    """Maps names to objects; registering a name twice raises, an unknown name lists the valid ones.

    Each package builds its registries in its `__init__.py` from an explicit table of the entries its method
    modules define, e.g. `OBJECTIVES = Registry("objective", {"grpo": ..., "disco": DisCO})`; method modules never
    import the registry they belong to. `register` stays for users adding entries at run time.
    """

    def __init__(self, kind: str, entries: dict[str, T] | None = None):
        self.kind = kind
        self._entries: dict[str, T] = {}
        for name, obj in (entries or {}).items():
            self.register(name)(obj)

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        if name not in self._entries:
            valid = ", ".join(sorted(self._entries))
            raise ConfigError(f'unknown {self.kind} "{name}".{did_you_mean(name, self.names())} Valid: {valid}.')
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


def import_file_module(
    location: str, module_prefix: str, announce: str | None = None
) -> tuple[ModuleType | None, str]:
    """Imports the Python file at `location` once per process; returns (module, "") or (None, one-line problem).

    The module is named `module_prefix` + the file's stem + a hash of its resolved path, and registered in
    `sys.modules` before it runs, so functions and classes defined there pickle by reference. `announce`, if given,
    is printed to stderr before the file's code runs, so a file that blocks at import is not a silent hang.
    """
    path = Path(location)
    if not path.is_file():
        return None, (
            f"file {location} not found (paths are relative to the working directory {Path.cwd()}); fix the path or "
            "run from the directory that contains it."
        )
    resolved = path.resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:8]
    stem = "".join(ch if ch.isalnum() else "_" for ch in resolved.stem)
    name = f"{module_prefix}{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name], ""
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    if module_spec is None or module_spec.loader is None:
        return None, f"cannot load {location} as a Python module."
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    if announce:
        print(announce, file=sys.stderr, flush=True)
    try:
        module_spec.loader.exec_module(module)
    except (Exception, SystemExit) as err:  # noqa: BLE001 - any failure in user code becomes one recipe problem
        del sys.modules[name]
        return None, f"importing {location} failed: {type(err).__name__}: {err}"
    return module, ""
