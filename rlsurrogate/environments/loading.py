"""Tools and environments named by a recipe: imported once, checked as TRL 1.16 will use them, calls bounded in time.

A recipe names a tool as `package.module:function` or `path/to/file.py:function`, and an environment class the same
way (`package.module:Class`). TRL 1.16's GRPOTrainer renders every tool, and every public method of an environment,
into the prompt with transformers' `get_json_schema`, which needs a type hint for every argument and a Google-style
docstring describing the function and each argument; `check_tool` asks it the same question, so a missing hint or
docstring is a recipe problem, not a failure at the first generation. An environment class must define `reset`; its
`__init__` takes the recipe's `params`.

Every call into user code during training is bounded: `TimedTool` and the classes `EnvironmentFactory` builds stop a
tool, `reset` or `get_reward` call that outlives `timeout_s` with `ToolTimeout`, naming the tool and its arguments.
TRL hands a tool's exception to the model as `{"error": ...}` (and counts it in `tools/failure_frequency`); a `reset`
or `get_reward` that times out or raises stops the run with that line. The call runs in a daemon thread that is
abandoned on timeout (a thread cannot be killed), as the reward guard does.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import os
import threading
import types
from collections.abc import Callable, Mapping
from typing import Any

from rlsurrogate.errors import RLSurrogateError
from rlsurrogate.registry import did_you_mean, import_file_module

__all__ = [
    "EnvironmentFailure",
    "EnvironmentFactory",
    "TimedTool",
    "ToolTimeout",
    "check_environment_class",
    "check_tool",
    "load_object",
    "public_methods",
]

# Methods of an environment TRL does not expose as tools (grpo_trainer.py: `reset`, `get_reward`, `_private`).
_NOT_TOOLS = ("reset", "get_reward")
# sys.modules prefix of files loaded by path: a top-level name so that pickle finds their classes by reference.
_FILE_MODULE_PREFIX = "rlsurrogate_user_env_"


class ToolTimeout(RLSurrogateError, TimeoutError):
    """A tool, `reset` or `get_reward` call outlived its `timeout_s`."""


class EnvironmentFailure(RLSurrogateError, RuntimeError):
    """An environment's `reset` or `get_reward` raised; the message names the environment and the row or sample."""


def load_object(spec: Any, kind: str) -> tuple[Any | None, list[str]]:
    """(the object `spec` names, problems): `package.module:attr` or `path/to/file.py:attr`.

    Args:
        spec: the recipe's string.
        kind: "tool" or "environment", for the messages.
    """
    form = f"'package.module:{'Class' if kind == 'environment' else 'function'}' or 'path/to/file.py:...'"
    if not isinstance(spec, str) or ":" not in spec:
        return None, [f"{kind} {spec!r}: must be {form}."]
    location, _, attr = spec.rpartition(":")
    if not location or not attr.isidentifier():
        return None, [f"{kind} {spec!r}: must be {form}, with a Python identifier after the colon."]
    is_file = location.endswith(".py") or "/" in location or os.sep in location
    module, problem = _load_file(location) if is_file else _import_module(location)
    if module is None:
        return None, [f"{kind} {spec!r}: {problem}"]
    if not hasattr(module, attr):
        names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        return None, [
            f"{kind} {spec!r}: {location} has no attribute {attr!r}.{did_you_mean(attr, names)} "
            f"Callables there: {', '.join(sorted(names)) or 'none'}."
        ]
    return getattr(module, attr), []


def check_tool(func: Any, where: str) -> list[str]:
    """The problems TRL would meet rendering `func` as a tool (transformers' `get_json_schema`), one line each."""
    from transformers.utils import get_json_schema

    if not callable(func) or inspect.isclass(func):
        return [f"{where}: is a {type(func).__name__}, not a function; a tool is a plain function."]
    try:
        get_json_schema(func)
    except Exception as err:  # noqa: BLE001 - DocstringParsingException, TypeHintParsingException, ...
        return [
            f"{where}: cannot be described to the model ({err}); give every argument a type hint and a Google-style "
            'docstring: a summary line, then "Args:" with one "name: description" line per argument.'
        ]
    return []


def public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    """The methods of an environment class TRL exposes as tools (listed on the class, as TRL does)."""
    return {
        name: func
        for name, func in inspect.getmembers(cls, predicate=inspect.isfunction)
        if not name.startswith("_") and name not in _NOT_TOOLS
    }


def check_environment_class(cls: Any, params: Mapping[str, Any], where: str) -> list[str]:
    """The problems of an environment class as TRL will use it: a class, a `reset`, tools it can describe, params
    that `__init__` accepts. Nothing is instantiated."""
    if not inspect.isclass(cls):
        return [f"{where}: is a {type(cls).__name__}, not a class; name the environment class (module:Class)."]
    problems = []
    if not callable(getattr(cls, "reset", None)):
        problems.append(
            f"{where}: {cls.__name__} has no reset method; TRL calls reset(**row) before each rollout (return the "
            "text to append to the last user message, or None)."
        )
    methods = public_methods(cls)
    if not methods:
        problems.append(f"{where}: {cls.__name__} has no public methods, so the model has no tool to call.")
    probe = object.__new__(cls) if isinstance(cls, type) and cls.__new__ is object.__new__ else None
    for name, func in methods.items():
        bound = types.MethodType(func, probe) if probe is not None else func
        problems += check_tool(bound, f"{where}: method {name}")
    problems += _init_problems(cls, params, where)
    return problems


class TimedTool:
    """A tool bounded in time, with the wrapped function's name, signature, hints and docstring (TRL's schema).

    Picklable as long as the function is. Raises `ToolTimeout` naming the tool and its arguments after `timeout_s`.
    """

    def __init__(self, func: Callable[..., Any], timeout_s: float | None):
        self.func = func
        self.timeout_s = timeout_s
        functools.update_wrapper(self, func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return call_with_deadline(self.func, args, kwargs, self.timeout_s, f"tool {self.__name__}")


class EnvironmentFactory:
    """`environment_factory` for TRL: builds `cls(**params)` with every tool, `reset` and `get_reward` bounded.

    Instances are of a subclass of `cls` with the same name (TRL logs `get_reward` under it); a `reset` or
    `get_reward` that raises becomes `EnvironmentFailure` naming the environment and the row.
    """

    def __init__(self, cls: type, params: Mapping[str, Any] | None = None, timeout_s: float | None = None):
        self.cls = cls
        self.params = dict(params or {})
        self.timeout_s = timeout_s
        self.bounded_cls = _bounded_class(cls, timeout_s)
        self.__name__ = cls.__name__

    def __call__(self) -> Any:
        return self.bounded_cls(**self.params)


def call_with_deadline(
    func: Callable[..., Any], args: tuple, kwargs: dict[str, Any], timeout_s: float | None, what: str
) -> Any:
    """`func(*args, **kwargs)`, or `ToolTimeout` naming `what` and the arguments after `timeout_s` seconds."""
    if not timeout_s:
        return func(*args, **kwargs)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = func(*args, **kwargs)
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = err

    worker = threading.Thread(target=target, name="tool-call", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        raise ToolTimeout(f"{what}({_short(shown)}) did not return within timeout_s = {timeout_s} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# ---------------------------------------------------------------------------------------------------------------


def _bounded_class(cls: type, timeout_s: float | None) -> type:
    """A subclass of `cls`, same name and module, whose tools, `reset` and `get_reward` are bounded in time."""
    members: dict[str, Any] = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    for name, func in inspect.getmembers(cls, predicate=inspect.isfunction):
        if name.startswith("_"):
            continue
        members[name] = _bounded_method(func, cls.__name__, name, timeout_s)
    if inspect.iscoroutinefunction(getattr(cls, "get_reward", None)):
        members.pop("get_reward")  # TRL awaits it on its own loop; a thread cannot bound a coroutine
    return type(cls.__name__, (cls,), members)


def _bounded_method(func: Callable[..., Any], env: str, name: str, timeout_s: float | None) -> Callable[..., Any]:
    what = f"environment {env}.{name}"

    @functools.wraps(func)
    def bounded(self: Any, *args: Any, **kwargs: Any) -> Any:
        if name not in _NOT_TOOLS:
            return call_with_deadline(func, (self, *args), kwargs, timeout_s, what)
        try:
            return call_with_deadline(func, (self, *args), kwargs, timeout_s, what)
        except EnvironmentFailure:
            raise
        except Exception as err:  # noqa: BLE001 - user code; one line naming the environment and its input
            detail = f" for row {_short(repr(kwargs))}" if name == "reset" else ""
            raise EnvironmentFailure(f"{what}(){detail} raised {type(err).__name__}: {err}") from err

    return bounded


def _init_problems(cls: type, params: Mapping[str, Any], where: str) -> list[str]:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return []
    parameters = signature.parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in parameters.values())
    accepted = [n for n, p in parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    valid = ", ".join(accepted) or "none"
    problems = [
        f"{where}: unknown param {name!r}.{did_you_mean(name, accepted)} Valid params: {valid}."
        for name in params
        if name not in accepted and not takes_any
    ]
    problems += [
        f"{where}: missing required param {name!r} of {cls.__name__}(); add it under environment params."
        for name, p in parameters.items()
        if name in accepted and p.default is p.empty and name not in params
    ]
    return problems


def _load_file(location: str) -> tuple[types.ModuleType | None, str]:
    return import_file_module(location, _FILE_MODULE_PREFIX)


def _import_module(location: str) -> tuple[types.ModuleType | None, str]:
    try:
        return importlib.import_module(location), ""
    except (Exception, SystemExit) as err:  # noqa: BLE001 - any failure in user code becomes one recipe problem
        return None, (
            f"cannot import module {location!r}: {type(err).__name__}: {err}. Install the package or use "
            "'path/to/file.py:...'."
        )


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
