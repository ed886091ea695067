"""Bad recipes, overrides and data files: each must be refused with one short line (exit 2 on the command line).

In-process cases call `rlsurrogate.build.load` / `validate` (what `rlsurrogate train` does first) and `load_rows`
(the data it loads before the model); command-line cases run `rlsurrogate train` and check the exit code, that
stderr holds `error:` lines and no traceback, and that nothing was written. A refusal of more than `MAX_LINE`
characters counts as a traceback: a 351 MB error line is no clear answer.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from rlsurrogate.errors import RLSurrogateError

from . import Case, Outcome, clear_error, handled, traceback

__all__ = ["CASES"]

SURFACE = "recipes"
MAX_LINE = 600
GOOD: dict[str, Any] = {
    "model": {"name": "smollm2-135m-instruct"},
    "data": {"task": "arithmetic", "num_train": 16, "num_eval": 4},
    "rewards": [{"name": "format_length"}, {"name": "accuracy", "weight": 0.0}],
    "generation": {"num_generations": 4, "max_completion_length": 16},
    "training": {"per_device_train_batch_size": 4, "max_steps": 1},
}
NAN, INF = float("nan"), float("inf")


def _bomb(levels: int, width: int) -> str:
    letters = "abcdefghijklmnop"
    text = f"a: &a [{', '.join(['lol'] * width)}]\n"
    for previous, name in zip(letters, letters[1 : levels + 1]):
        text += f"{name}: &{name} [{', '.join([f'*{previous}'] * width)}]\n"
    return text + "model: {name: x}\n"


# name -> raw YAML text of the recipe file
TEXTS: dict[str, str | bytes] = {
    "alias bomb (9x9)": _bomb(8, 9),
    "alias bomb (10x10)": _bomb(9, 10),
    "deep nesting [[[...]]]": "model: " + "[" * 20_000 + "]" * 20_000 + "\n",
    "deep nesting {a: {a: ...}}": "model: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
    "non-UTF-8 bytes": "model: {name: caf\xe9}\n".encode("latin-1"),
    "NUL bytes": b"model: {name: x}\x00\x00\n",
    "not YAML": "model: [unclosed\n",
    "a list at the top": "- model\n- data\n",
    "empty file": "",
    "huge file": "# " + "x" * 2_000_000 + "\n",
    "tab indentation": "model:\n\tname: x\n",
    "duplicate python tag": "model: !!python/object/apply:os.system ['true']\n",
}

# name -> (dotted changes to GOOD)
CHANGES: dict[str, dict[str, Any]] = {
    "temperature NaN": {"generation.temperature": NAN},
    "temperature inf": {"generation.temperature": INF},
    "temperature 0": {"generation.temperature": 0.0},
    "reward weight NaN": {"rewards": [{"name": "format_length", "weight": NAN}]},
    "reward weight inf": {"rewards": [{"name": "format_length", "weight": INF}]},
    "reward weight string": {"rewards": [{"name": "format_length", "weight": "high"}]},
    "reward timeout negative": {"rewards": [{"name": "format_length", "timeout_s": -1.0}]},
    "max_steps 0": {"training.max_steps": 0},
    "max_steps negative": {"training.max_steps": -7},
    "learning_rate NaN": {"training.learning_rate": NAN},
    "learning_rate negative": {"training.learning_rate": -1e-5},
    "num_prompts negative": {"eval.num_prompts": -3},
    "max_new_tokens negative": {"eval.max_new_tokens": -1},
    "eval batch 0": {"eval.batch_size": 0},
    "every_steps negative": {"eval.every_steps": -2},
    "top_k negative": {"generation.top_k": -5},
    "top_p 2": {"generation.top_p": 2.0},
    "num_generations 1": {"generation.num_generations": 1},
    "num_generations 1e9": {"generation.num_generations": 10**9},
    "max_completion_length 0": {"generation.max_completion_length": 0},
    "flat_steps negative": {"diagnostics.flat_steps": -1},
    "flat_threshold 2": {"diagnostics.flat_threshold": 2.0},
    "buffer_size negative": {"optimizer": {"name": "adam_cm", "params": {"buffer_size": -3}}},
    "unknown optimizer param": {"optimizer": {"name": "adam_cm", "params": {"bufer_size": 3}}},
    "output_dir null": {"output_dir": None},
    "output_dir empty": {"output_dir": ""},
    "output_dir a number": {"output_dir": 5},
    "num_train 1e9": {"data.num_train": 10**9},
    "num_train float 1e9": {"data.num_train": 1e9},
    "num_eval negative": {"data.num_eval": -1},
    "template unclosed": {"data.template": "{question"},
    "template positional": {"data.template": "{} + {0}"},
    "template attribute": {"data.template": "{question.__class__}"},
    "unknown section": {"trainng": {"max_steps": 1}},
    "GRPOConfig field at the top": {"learning_rate": 1e-5},
    "unknown reward": {"rewards": [{"name": "format_lenght"}]},
    "reward not a mapping": {"rewards": [[1, 2]]},
    "rewards empty": {"rewards": []},
    "reward file missing": {"rewards": [{"name": "no/such/file.py:fn"}]},
    "reward name with NUL": {"rewards": [{"name": "a\x00b.py:f"}]},
    "model path missing": {"model.name": "./no/such/model"},
    "dtype unknown": {"model.dtype": "float8"},
    "lora r 0": {"model.lora": {"r": 0}},
    "data path missing": {"data": {"path": "missing.jsonl"}},
    "two data sources": {"data.path": "x.jsonl"},
    "eval_strategy epoch": {"training.eval_strategy": "epoch"},
    "eval_strategy steps without steps": {"training.eval_strategy": "steps"},
    "batch not divisible": {"training.per_device_train_batch_size": 6},
    "objective unknown": {"objective": {"name": "dispo"}},
    "objective param unknown": {"objective": {"name": "grpo", "params": {"betta": 0.1}}},
    "disco without label reward": {"objective": {"name": "disco"}, "rewards": [{"name": "format_length"}]},
}

OVERRIDES: dict[str, list[str]] = {
    "--set value not YAML": ["training.max_steps=[1, 2"],
    "--set list index out of range": ["rewards.5.weight=1"],
    "--set list index not a number": ["rewards.x.weight=1"],
    "--set into a value": ["training.max_steps.x=1"],
    "--set without =": ["training.max_steps"],
    "--set empty key": ["=3"],
    "--set alias bomb value": ["training.x=" + _bomb(8, 9).replace("\n", " ")],
}

# name -> (JSONL bytes, a template or None)
DATA_FILES: dict[str, tuple[bytes, str | None]] = {
    "jsonl non-UTF-8": (b'{"prompt": "caf\xe9"}\n', None),
    "jsonl garbage line": (b'{"prompt": "a"}\nnot json\n', None),
    "jsonl not objects": (b"[1, 2]\n", None),
    "jsonl empty": (b"", None),
    "jsonl without prompt": (b'{"question": "q"}\n{"question": "r"}\n', None),
    "jsonl template missing column": (b'{"question": "q"}\n{"question": "r"}\n', "{problem}"),
}

# name -> (reward file source, reward spec params, expected problem fragment): through the CLI
CLI: dict[str, tuple[str | None, dict[str, Any]]] = {
    "CLI: unknown section": (None, {"trainng": {"max_steps": 1}}),
    "CLI: reward factory raises": ("def make_r(x):\n    raise RuntimeError('boom')\n", {"x": 1}),
    "CLI: reward file sys.exit at import": ("import sys\nsys.exit(0)\ndef r(completions, **kw):\n    return []\n", {}),
    "CLI: reward file raises at import": ("raise ImportError('no module named torchvision')\n", {}),
}


def _set(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _one_line(err: BaseException) -> Outcome:
    text = str(err)
    longest = max((len(line) for line in text.splitlines()), default=0)
    if longest > MAX_LINE:
        return traceback(f"refused, but with a {longest:,}-character line")
    return clear_error(text.splitlines()[-1] if text else type(err).__name__)


def _load_text(text: str | bytes) -> Outcome:
    from rlsurrogate.build import load

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        try:
            load(path)
        except RLSurrogateError as err:
            return _one_line(err)
    return traceback("accepted")


def _load_changes(changes: dict[str, Any]) -> Outcome:
    import copy

    from rlsurrogate.build import validate

    raw = copy.deepcopy(GOOD)
    for dotted, value in changes.items():
        _set(raw, dotted, value)
    try:
        validate(raw)
    except RLSurrogateError as err:
        return _one_line(err)
    return traceback("accepted")


def _load_overrides(overrides: list[str]) -> Outcome:
    from rlsurrogate.build import load

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.yaml"
        path.write_text(yaml.safe_dump(GOOD))
        try:
            load(path, overrides=overrides)
        except RLSurrogateError as err:
            return _one_line(err)
    return traceback("accepted")


def _load_data(content: bytes, template: str | None) -> Outcome:
    from rlsurrogate.recipe import DataConfig
    from rlsurrogate.tasks.loaders import load_rows

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.jsonl"
        path.write_bytes(content)
        try:
            load_rows(DataConfig(path=str(path), template=template, num_eval=1))
        except RLSurrogateError as err:
            return _one_line(err)
    return traceback("accepted")


def _cli(source: str | None, top_level: dict[str, Any]) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        raw = {**GOOD, "output_dir": str(Path(tmp) / "out")}
        if source is not None:
            (Path(tmp) / "user_reward.py").write_text(source)
            params = top_level
            name = "user_reward.py:make_r" if params else "user_reward.py:r"
            raw["rewards"] = [{"name": name, "params": params}]
        else:
            raw.update(top_level)
        (Path(tmp) / "recipe.yaml").write_text(yaml.safe_dump(raw))
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        proc = subprocess.run(
            [sys.executable, "-m", "rlsurrogate", "train", "recipe.yaml"],
            capture_output=True,
            text=True,
            cwd=tmp,
            env=env,
            timeout=120,
        )
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:") or line.startswith("  - ")]
        if "Traceback" in proc.stderr:
            return traceback(proc.stderr.strip().splitlines()[-1])
        if proc.returncode != 2 or not errors:
            return traceback(f"exit {proc.returncode}: {proc.stderr.strip()[-200:]}")
        if (Path(tmp) / "out").exists():
            return traceback("refused, but only after writing into output_dir")
        return clear_error(errors[-1])


def _blocking_reward_file() -> Outcome:
    """A reward file that blocks at import: the user must see which file before the wait starts."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "user_reward.py").write_text("import time\ntime.sleep(600)\n")
        raw = {**GOOD, "rewards": [{"name": "user_reward.py:r"}], "output_dir": str(Path(tmp) / "out")}
        (Path(tmp) / "recipe.yaml").write_text(yaml.safe_dump(raw))
        proc = subprocess.Popen(
            [sys.executable, "-m", "rlsurrogate", "train", "recipe.yaml"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            cwd=tmp,
        )
        try:
            line = proc.stderr.readline() if proc.stderr else ""
            while line and "user_reward.py" not in line and "Traceback" not in line:
                line = proc.stderr.readline() if proc.stderr else ""
        finally:
            proc.kill()
            proc.wait()
        if "importing reward file user_reward.py" in line:
            return handled(line.strip())
        return traceback(f"nothing named the blocking file: {line.strip()!r}")


def _cases() -> list[Case]:
    cases = [Case(SURFACE, name, functools.partial(_load_text, text)) for name, text in TEXTS.items()]
    cases += [Case(SURFACE, name, functools.partial(_load_changes, ch)) for name, ch in CHANGES.items()]
    cases += [Case(SURFACE, name, functools.partial(_load_overrides, ov)) for name, ov in OVERRIDES.items()]
    cases += [Case(SURFACE, name, functools.partial(_load_data, *args)) for name, args in DATA_FILES.items()]
    cases += [Case(SURFACE, name, functools.partial(_cli, *args), timeout_s=150) for name, args in CLI.items()]
    cases.append(Case(SURFACE, "CLI: reward file blocks at import", _blocking_reward_file, timeout_s=90))
    return cases


CASES: list[Case] = _cases()
