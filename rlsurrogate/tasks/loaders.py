"""Recipe `data` section → (train rows, held-out rows): built-in tasks, JSONL files, Hugging Face datasets.

Every row ends up with a `prompt` (chat format: a list with one user message, plus a system message when the
recipe sets `system_prompt`) and keeps its other columns, renamed by `columns` (e.g. `{answer: solution}`), so
rewards receive them as keyword arguments. A `template` such as `"{question} Put the final answer in \\boxed{}."`
builds the prompt text from the row's columns; without one, the `prompt` column is used as it is.
"""

from __future__ import annotations

import json
import random
from typing import Any

from rlsurrogate.errors import ConfigError
from rlsurrogate.recipe import DataConfig
from rlsurrogate.tasks import build_task

__all__ = ["load_rows"]


def load_rows(data: DataConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Returns (train_rows, eval_rows) for a recipe's `data` section."""
    if data.task:
        train = build_task(data.task, "train", data.num_train or 1024, seed=data.seed)
        held_out = build_task(data.task, "eval", data.num_eval, seed=data.seed) if data.num_eval else []
        return _finish(train, data), _finish(held_out, data)
    if data.path:
        rows = _read_jsonl(data.path)
        train_rows, eval_rows = _split_tail(rows, data)
    else:
        train_rows, eval_rows = _read_hf(data)
    if data.num_train is not None:
        train_rows = train_rows[: data.num_train]
    return _finish(train_rows, data), _finish(eval_rows[: data.num_eval], data)


def _finish(rows: list[dict[str, Any]], data: DataConfig) -> list[dict[str, Any]]:
    out = []
    for i, row in enumerate(rows):
        row = {ours: row[theirs] for ours, theirs in data.columns.items() if theirs in row} | {
            k: v for k, v in row.items() if k not in data.columns.values()
        }
        if data.template is not None:
            try:
                text = data.template.format(**row)
            except KeyError as err:
                raise ConfigError(
                    f"data.template uses {{{err.args[0]}}}, but row {i} has no such column; columns: {sorted(row)}."
                ) from None
            except (ValueError, IndexError, AttributeError) as err:
                raise ConfigError(f"data.template = {data.template!r} cannot format row {i}: {err}.") from None
            row["prompt"] = text
        if "prompt" not in row:
            raise ConfigError(
                f"data: row {i} has no prompt; set data.template or map a column with data.columns.prompt. "
                f"Columns: {sorted(row)}."
            )
        if isinstance(row["prompt"], str):
            row["prompt"] = [{"role": "user", "content": row["prompt"]}]
        if data.system_prompt and row["prompt"][0].get("role") != "system":
            row["prompt"] = [{"role": "system", "content": data.system_prompt}, *row["prompt"]]
        if "answer" in row and not isinstance(row["answer"], str):
            row["answer"] = str(row["answer"])
        out.append(row)
    return out


def _read_jsonl(path: str) -> list[dict[str, Any]]:
    rows = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ConfigError(
                    f"data.path {path}:{lineno}: not UTF-8 text (byte 0x{raw[err.start]:02x}); save the file as UTF-8."
                ) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ConfigError(f"data.path {path}:{lineno}: not valid JSON ({err.msg}).") from None
            if not isinstance(row, dict):
                raise ConfigError(f"data.path {path}:{lineno}: each line must be a JSON object.")
            rows.append(row)
    if not rows:
        raise ConfigError(f"data.path {path}: no examples.")
    return rows


def _split_tail(rows: list[dict[str, Any]], data: DataConfig) -> tuple[list[dict], list[dict]]:
    """Shuffles with the recipe seed, then keeps the last `num_eval` rows apart as the held-out set."""
    rows = list(rows)
    random.Random(data.seed).shuffle(rows)
    n_eval = min(data.num_eval, len(rows) // 2)
    return rows[: len(rows) - n_eval], rows[len(rows) - n_eval :]


def _read_hf(data: DataConfig) -> tuple[list[dict], list[dict]]:
    import datasets

    try:
        train = datasets.load_dataset(data.hf_dataset, data.hf_config, split=data.split)
        held_out = (
            datasets.load_dataset(data.hf_dataset, data.hf_config, split=data.eval_split) if data.eval_split else None
        )
    except Exception as err:  # datasets raises many types; the user needs the name and the cause
        raise ConfigError(
            f'data.hf_dataset = "{data.hf_dataset}": cannot load ({type(err).__name__}: {err}).'
        ) from None
    train_rows = [dict(r) for r in train]
    if held_out is None:
        return _split_tail(train_rows, data)
    return train_rows, [dict(r) for r in held_out]
