"""One small registry: `register(name)` decorator, `get(name)`, `names()`; used for rewards, objectives, optimizers."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

from rlsurrogate.errors import ConfigError

__all__ = ["Registry", "did_you_mean"]

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
