"""Reward registry and loading: a recipe names a reward by registry name, `package.module:attr` or `path/file.py:attr`.

- A registry name (`format`, `length`, `format_length`, `accuracy`, `boxed_number`) maps to a FACTORY; the recipe's
  `params` are its keyword arguments, validated at once.
- A user reference `package.module:attr` or `path/to/file.py:attr` (path relative to the working directory) names
  a reward function when `params` is empty, and a factory called with `**params` otherwise.
- `rm:<hub id or path>` names a sequence-classification reward model (`rewards/reward_model.py`) and
  `http(s)://...` a reward server (`rewards/remote.py`); `params` go to their factories.
- Every built reward has a stable `__name__` (the metric key TRL logs: `rewards/<name>/mean`) and a `version`.
  A user reward without a `version` attribute gets `sha256:<8 hex>` of its source file, so the log shows when the
  file changed.

`check_reward_spec` reports the problems of a spec as one-line strings without calling the reward, so recipe
validation can collect every problem before anything expensive starts; `build_reward` raises them as one
`ConfigError`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from rlsurrogate.errors import ConfigError
from rlsurrogate.registry import did_you_mean, import_file_module
from rlsurrogate.rewards.builtin import REWARDS
from rlsurrogate.rewards.remote import make_remote_reward
from rlsurrogate.rewards.reward_model import RM_PREFIX, make_reward_model

__all__ = ["REWARDS", "build_reward", "check_reward_spec"]


# Keywords TRL 1.16 passes to every reward (TRL_NOTES.md §1.3); dataset columns come on top of these.
TRL_REWARD_KEYWORDS = ("prompts", "completions", "completion_ids")
# Prefix of the sys.modules names of reward files loaded by path; a top-level name (no dots) so that pickle can
# find the module and pickle its functions and classes by reference (in this process and in forked workers).
_FILE_MODULE_PREFIX = "rlsurrogate_user_reward_"


def build_reward(spec: str, params: dict[str, Any] | None = None) -> Callable[..., list[float | None]]:
    """Build the reward callable a recipe entry names.

    Args:
        spec: a registry name (`"format_length"`), `"package.module:function"`, `"path/to/file.py:function"`
            (relative to the current working directory), `"rm:<hub id or path>"` or an `http(s)://` URL.
        params: keyword arguments for the factory (built-ins always have one; for user references, non-empty
            params mean `spec` names a factory).

    Returns:
        A callable with TRL's reward signature, a stable `__name__` and a `version` attribute.

    Raises:
        ConfigError: listing every problem (unknown name, missing file or function, invalid params).

    Example:
        >>> reward = build_reward("format_length", {"max_length": 64})
        >>> reward.__name__, reward.version
        ('format_length', '1')
    """
    params = dict(params or {})
    target, version, problems = _resolve(spec)
    if target is None:
        raise ConfigError(problems)
    is_factory = _is_builtin(spec) or bool(params)
    problems = _param_problems(spec, target, params) if is_factory else _reward_signature_problems(spec, target)
    if problems:
        raise ConfigError(problems)
    if not is_factory:
        _set_attrs(target, getattr(target, "__name__", None) or type(target).__name__, version)
        return target
    try:
        reward = target(**params)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"reward {spec!r}: its factory rejected params {params!r}: {err}") from err
    except (Exception, SystemExit) as err:  # noqa: BLE001 - any failure in user code becomes one clear line
        raise ConfigError(f"reward {spec!r}: its factory raised {type(err).__name__}: {err}") from err
    if not callable(reward):
        raise ConfigError(
            f"reward {spec!r}: its factory returned {type(reward).__name__}, not a callable; a factory "
            "must return the reward function (or give no params to use the function itself)."
        )
    default_name = spec if _is_builtin(spec) else _factory_base_name(target)
    _set_attrs(reward, getattr(reward, "__name__", None) or default_name, getattr(reward, "version", None) or version)
    return reward


def check_reward_spec(spec: str, params: dict[str, Any] | None = None) -> list[str]:
    """The problems of one recipe reward entry, one line each, without calling the reward ([] when fine).

    Built-in factories are called (they only validate and store their params); user files are imported, but user
    factories and rewards are not called.

    Example:
        >>> check_reward_spec("format_lenght")[0].split(".")[0]
        'unknown reward "format_lenght"'
        >>> check_reward_spec("format_length", {"max_length": 64, "p": 0.5})
        []
    """
    params = dict(params or {})
    target, _, problems = _resolve(spec)
    if target is None:
        return problems
    if not _is_builtin(spec):
        return _param_problems(spec, target, params) if params else _reward_signature_problems(spec, target)
    problems = _param_problems(spec, target, params)
    if any("missing required param" in p for p in problems):
        return problems
    accepted = inspect.signature(target).parameters
    known = {k: v for k, v in params.items() if k in accepted}  # still check the values of the known params
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # build_reward warns again when the recipe is really built
            target(**known)
    except ConfigError as err:
        problems.extend(err.problems)
    return problems


# ----------------------------------------------------------------------------------------------------------------

_URL_PREFIXES = ("http://", "https://")


def _is_builtin(spec: str) -> bool:
    """Registry names, reward models and reward servers: always built by a factory of ours from `params`."""
    return spec in REWARDS or spec.startswith((RM_PREFIX, *_URL_PREFIXES))


def _resolve(spec: str) -> tuple[Any | None, str, list[str]]:
    # -> (the factory or reward object, a version for user code, problems); object None when problems.
    if not isinstance(spec, str) or not spec.strip():
        return (
            None,
            "",
            [
                f"reward name {spec!r}: must be a registry name, 'package.module:function' or "
                "'path/to/file.py:function'."
            ],
        )
    if spec in REWARDS:
        return REWARDS.get(spec), "", []
    if spec.startswith(RM_PREFIX):
        return functools.partial(make_reward_model, spec.removeprefix(RM_PREFIX)), "", []
    if spec.startswith(_URL_PREFIXES):
        return functools.partial(make_remote_reward, spec), "", []
    if ":" not in spec:
        valid = ", ".join(REWARDS.names())
        return (
            None,
            "",
            [
                f'unknown reward "{spec}".{did_you_mean(spec, REWARDS.names())} Valid: {valid}. A user '
                "reward is named 'path/to/file.py:function' or 'package.module:function', a reward model "
                "'rm:<hub id or path>', a reward server 'http(s)://...'."
            ],
        )
    location, _, attr = spec.rpartition(":")
    if not location or not attr.isidentifier():
        return (
            None,
            "",
            [
                f"reward {spec!r}: expected 'path/to/file.py:function' or 'package.module:function' "
                f"with a Python identifier after the colon."
            ],
        )
    is_file = location.endswith(".py") or "/" in location or os.sep in location
    module, problem = _load_file(spec, location) if is_file else _import_module(spec, location)
    if module is None:
        return None, "", [problem]
    if not hasattr(module, attr):
        names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        return (
            None,
            "",
            [
                f"reward {spec!r}: {location} has no attribute {attr!r}.{did_you_mean(attr, names)} "
                f"Callables there: {', '.join(sorted(names)) or 'none'}."
            ],
        )
    target = getattr(module, attr)
    if not callable(target):
        return None, "", [f"reward {spec!r}: {attr} is a {type(target).__name__}, not a function or factory."]
    return target, getattr(target, "version", None) or _source_hash(module), []


def _load_file(spec: str, location: str) -> tuple[ModuleType | None, str]:
    module, problem = import_file_module(location, _FILE_MODULE_PREFIX, f"importing reward file {location}")
    return module, problem and f"reward {spec!r}: {problem}"


def _import_module(spec: str, location: str) -> tuple[ModuleType | None, str]:
    try:
        return importlib.import_module(location), ""
    except (Exception, SystemExit) as err:  # noqa: BLE001 - any failure in user code becomes one recipe problem
        return None, (
            f"reward {spec!r}: cannot import module {location!r}: {type(err).__name__}: {err}. "
            "Install the package or use 'path/to/file.py:function'."
        )


def _param_problems(spec: str, factory: Callable[..., Any], params: dict[str, Any]) -> list[str]:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return []
    accepted = [n for n, p in signature.parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_any = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    problems = []
    for name in params:
        if name not in accepted and not takes_any:
            problems.append(
                f"reward {spec!r}: unknown param {name!r}.{did_you_mean(name, accepted)} Valid params: "
                f"{', '.join(accepted) or 'none'}."
            )
    for name, p in signature.parameters.items():
        if name in accepted and p.default is p.empty and name not in params:
            problems.append(f"reward {spec!r}: missing required param {name!r}; add it under params.")
    return problems


def _reward_signature_problems(spec: str, reward: Callable[..., Any]) -> list[str]:
    if inspect.isclass(reward):
        return [f"reward {spec!r} is a class; give params so it is built as a factory, or reference an instance."]
    try:
        signature = inspect.signature(reward)
    except (TypeError, ValueError):
        return []
    parameters = signature.parameters.values()
    if not any(p.kind == p.VAR_KEYWORD for p in parameters):
        return [
            f"reward {spec!r} must accept **kwargs: TRL passes {', '.join(TRL_REWARD_KEYWORDS)} and every "
            "dataset column as keywords; add **kwargs to its parameters."
        ]
    positional_only = [p.name for p in parameters if p.kind == p.POSITIONAL_ONLY and p.default is p.empty]
    if positional_only:
        return [
            f"reward {spec!r}: parameters {positional_only} are positional-only, but TRL passes everything by "
            "keyword; remove the '/'."
        ]
    return []


def _set_attrs(reward: Any, name: str, version: str) -> None:
    for attr, value in (("__name__", name), ("version", version)):
        if getattr(reward, attr, None) == value:
            continue
        try:
            setattr(reward, attr, value)
        except (AttributeError, TypeError):  # e.g. __slots__; TRL then falls back to the class name
            pass


def _factory_base_name(factory: Callable[..., Any]) -> str:
    name = getattr(factory, "__name__", type(factory).__name__)
    for prefix in ("make_", "get_", "build_", "create_"):
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix) :]
    return name


def _source_hash(module: ModuleType) -> str:
    try:
        source = Path(inspect.getsourcefile(module) or "").read_bytes()
    except (OSError, TypeError):
        return "unversioned"
    return "sha256:" + hashlib.sha256(source).hexdigest()[:8]
