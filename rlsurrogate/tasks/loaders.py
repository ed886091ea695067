"""Recipe `data` section → training dataset and held-out rows, read through `datasets.load_dataset`.

Sources (exactly one):
- `task`: a built-in generator (`arithmetic`); its held-out split is disjoint by construction.
- `path`: a file, a glob (`data/*.parquet`) or a directory of `.jsonl`/`.json`/`.parquet`/`.csv`/`.arrow` files,
  all of one format, read as one dataset with the matching packaged builder.
- `hf_dataset`: anything `datasets.load_dataset` takes (a hub id, a local dataset directory, a builder such as
  `json` with `data_files`), with `hf_config`, `split`, `data_files` and `streaming`; a single local file is read
  like `path`.

Held-out rows come from `eval_split` when it is set; otherwise `num_eval` rows are split off the training rows with
`Dataset.train_test_split(test_size=num_eval, seed=seed)` (a stream holds out its first `num_eval` rows). `num_train`
then keeps that many training rows (a seeded shuffle first; null keeps them all). Asking for more rows than exist is
an error, never a silent cut.

`num_eval: null` (the default) sizes the held-out rows to the data, so that a small dataset still trains (TRL holds
nothing out unless told to): 10 % of the rows, at most 32, split off (`default_num_eval`); a dataset under 10 rows
keeps every row for training and the run's data line says evaluation is off and how to turn it on. With
`eval_split`, the default takes up to 32 of that split's rows; a built-in task generates 32 and a stream (whose
length is unknown) holds out its first 32.

Prompts: a `template` such as `"{question} Put the final answer in \\boxed{{}}."` builds a user message from the
row's columns (conversational format); without one, the row's `prompt` column is used as the dataset has it: a
list of messages (conversational; the model's chat template is applied) or a string (TRL's standard format: the
text is the model's input). `system_prompt` prepends a system message, which makes a text prompt conversational.
Columns are renamed by `columns` (`{answer: solution}` exposes `solution` as `answer`) and every column reaches the
rewards as a keyword argument.
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlsurrogate.errors import ConfigError
from rlsurrogate.recipe import DataConfig
from rlsurrogate.tasks import build_task

if TYPE_CHECKING:
    from datasets import Dataset, IterableDataset

__all__ = ["LoadedData", "default_num_eval", "load_data", "load_rows"]

# File extension -> datasets' packaged builder.
BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv", ".arrow": "arrow"}
# Training rows a built-in task generates when `num_train` is null (a generator has no "whole dataset").
DEFAULT_TASK_ROWS = 1024
# `num_eval: null`: held-out prompts when the count is free (a task, a stream, an eval split), and the cap and share
# of the training rows split off otherwise. 32 prompts keep an evaluation to a minute on a CPU; 10 % is the usual
# hold-out share and leaves 90 % (at least 9 rows) to train on.
DEFAULT_NUM_EVAL = 32
DEFAULT_EVAL_SHARE = 0.1


@dataclass
class LoadedData:
    """A recipe's data, ready for the trainer.

    Attributes:
        train: the training prompts (`datasets.IterableDataset` when streaming).
        eval_rows: the held-out rows.
        description: one line saying where both came from and how many there are.
    """

    train: Dataset | IterableDataset
    eval_rows: list[dict[str, Any]]
    description: str

    @property
    def num_train(self) -> int | None:
        """Training rows, or None for a stream."""
        return len(self.train) if hasattr(self.train, "__len__") else None


def load_data(data: DataConfig) -> LoadedData:
    """Loads a recipe's `data` section; raises ConfigError naming the file, field or row at fault.

    Example:
        >>> loaded = load_data(DataConfig(task="arithmetic", num_train=8, num_eval=2))
        >>> len(loaded.train), len(loaded.eval_rows)
        (8, 2)
    """
    from datasets import Dataset

    if data.task:
        n = data.num_train or DEFAULT_TASK_ROWS
        train = _finish(build_task(data.task, "train", n, seed=data.seed), data)
        num_eval = DEFAULT_NUM_EVAL if data.num_eval is None else data.num_eval
        task_eval = build_task(data.task, "eval", num_eval, seed=data.seed) if num_eval else []
        task_eval = _finish(task_eval, data)
        where = f"task {data.task} (seed {data.seed})"
        return LoadedData(Dataset.from_list(train), task_eval, _describe(where, len(train), len(task_eval), ""))
    if data.streaming:
        return _load_stream(data)
    held_out: Dataset | None = None
    if data.path:
        where, dataset = data.path, _read_files(data.path, "data.path")
    else:
        where = f"{data.hf_dataset}" + (f" ({data.hf_config})" if data.hf_config else "")
        dataset = _read_hf(data, data.split)
        held_out = _read_hf(data, data.eval_split) if data.eval_split else None
    total = len(dataset)
    if held_out is None:
        num_eval = default_num_eval(total) if data.num_eval is None else data.num_eval
        if num_eval >= total:
            raise ConfigError(
                f"data.num_eval = {num_eval}: {where} has only {total} rows, none would be left to train on; "
                "lower num_eval (null sizes it to the data) or set data.eval_split."
            )
        if num_eval:
            parts = dataset.train_test_split(test_size=num_eval, seed=data.seed)
            dataset, eval_rows = parts["train"], parts["test"].to_list()
            note = f"{num_eval} held out of {total} rows" + (_DEFAULT_SHARE_NOTE if data.num_eval is None else "")
        elif data.num_eval is None:
            eval_rows, note = [], _too_few_note(total)
        else:
            eval_rows, note = [], "no held-out rows (num_eval 0)"
    else:
        num_eval = min(DEFAULT_NUM_EVAL, len(held_out)) if data.num_eval is None else data.num_eval
        if num_eval > len(held_out):
            raise ConfigError(
                f"data.num_eval = {num_eval}: split {data.eval_split!r} of {where} has {len(held_out)} rows; "
                "lower num_eval (null takes up to 32 of them)."
            )
        eval_rows = held_out.select(range(num_eval)).to_list()
        note = f"the first {len(eval_rows)} of {len(held_out)} rows of split {data.eval_split}"
    if data.num_train is not None:
        if data.num_train > len(dataset):
            raise ConfigError(
                f"data.num_train = {data.num_train}: {where} has {len(dataset)} training rows; lower num_train or "
                "set it to null to train on all of them."
            )
        if data.num_train < len(dataset):
            dataset = dataset.shuffle(seed=data.seed).select(range(data.num_train))
    train = _finish(dataset.to_list(), data)
    held_out_rows = _finish(eval_rows, data)
    return LoadedData(Dataset.from_list(train), held_out_rows, _describe(where, len(train), len(held_out_rows), note))


def default_num_eval(total: int) -> int:
    """Rows `num_eval: null` splits off a dataset of `total` rows: 10 %, at most 32; 0 under 10 rows.

    Example:
        >>> default_num_eval(32), default_num_eval(5000), default_num_eval(9)
        (3, 32, 0)
    """
    return min(DEFAULT_NUM_EVAL, int(total * DEFAULT_EVAL_SHARE))


def load_rows(data: DataConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train rows, held-out rows) as lists; a stream is read up to `num_train` rows (which it must set)."""
    loaded = load_data(data)
    if loaded.num_train is None:
        if data.num_train is None:
            raise ConfigError("data.streaming: reading a stream into a list needs data.num_train.")
        return list(loaded.train.take(data.num_train)), loaded.eval_rows
    return loaded.train.to_list(), loaded.eval_rows


# ---------------------------------------------------------------------------------------------------------------


def _load_stream(data: DataConfig) -> LoadedData:
    stream = _read_hf(data, data.split, streaming=True)
    num_eval = DEFAULT_NUM_EVAL if data.num_eval is None else data.num_eval
    if data.eval_split:
        eval_rows = list(_read_hf(data, data.eval_split, streaming=True).take(num_eval))
        note = f"the first {len(eval_rows)} rows of split {data.eval_split}"
    else:
        eval_rows = list(stream.take(num_eval))
        stream = stream.skip(num_eval)
        note = f"the stream's first {len(eval_rows)} rows held out"
    if data.num_train is not None:
        stream = stream.take(data.num_train)
    renamed = [c for c in data.columns.values() if c not in data.columns]  # dropped after the rename
    stream = stream.map(lambda row, i: _finish_row(row, i, data), with_indices=True, remove_columns=renamed or None)
    size = "a stream of" if data.num_train is None else f"{data.num_train:,} streamed"
    return LoadedData(stream, _finish(eval_rows, data), _describe(str(data.hf_dataset), size, len(eval_rows), note))


def _read_hf(data: DataConfig, split: str, streaming: bool = False) -> Any:
    import datasets

    name = str(data.hf_dataset)
    if Path(name).is_file():  # one local file: its format's builder, never a hub lookup
        if streaming:
            return _read_files(name, "data.hf_dataset").to_iterable_dataset()
        return _read_files(name, "data.hf_dataset")
    try:
        return datasets.load_dataset(
            name, data.hf_config, split=split, data_files=data.data_files, streaming=streaming
        )
    except ConfigError:
        raise
    except Exception as err:  # datasets raises many types; the user needs the name, the split and the cause
        raise ConfigError(f'data.hf_dataset = "{name}" (split {split!r}): cannot load it ({_cause(err)}).') from None


def _read_files(spec: str, field: str) -> Dataset:
    """One dataset from a file, glob or directory of files of one format, through its packaged builder."""
    import datasets

    files = _expand(spec, field)
    bad = [f for f in files if _suffix(f) not in BUILDERS]
    if bad:
        raise ConfigError(f"{field} {bad[0]}: unsupported file type; use one of {', '.join(BUILDERS)}.")
    builders = {BUILDERS[_suffix(f)] for f in files}
    if len(builders) > 1:
        raise ConfigError(
            f"{field} = {spec!r} mixes formats ({', '.join(sorted(builders))}); point it at files of one format."
        )
    (builder,) = builders
    for file in files:  # pyarrow's JSON reader lets invalid UTF-8 through; name the file and line instead
        problem = _jsonl_problem(file) if _suffix(file) == ".jsonl" else None
        if problem:
            raise ConfigError(f"{field} {problem}")
    try:
        return datasets.load_dataset(builder, data_files=files, split="train")
    except Exception:  # noqa: BLE001 - find the file at fault and say what is wrong with it
        raise ConfigError(_diagnose(files, builder, field)) from None


def _expand(spec: str, field: str) -> list[str]:
    path = Path(spec)
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*") if p.is_file() and _suffix(str(p)) in BUILDERS)
        if not files:
            raise ConfigError(f"{field} {spec}: the directory holds no {'/'.join(BUILDERS)} files.")
        return files
    if path.is_file():
        return [spec]
    files = sorted(f for f in glob.glob(spec, recursive=True) if Path(f).is_file())
    if not files:
        raise ConfigError(f"{field} = {spec!r}: no such file, directory or glob match.")
    return files


def _suffix(file: str) -> str:
    return Path(file).suffix.lower()


def _diagnose(files: list[str], builder: str, field: str) -> str:
    """The first file that fails to load on its own, with the innermost cause."""
    import datasets

    for file in files:
        try:
            rows = datasets.load_dataset(builder, data_files=[file], split="train")
        except Exception as err:  # noqa: BLE001
            return f"{field} {file}: cannot read it as {builder} ({_cause(err)})."
        if len(rows) == 0:
            return f"{field} {file}: no examples."
    return f"{field}: the files load one by one but not together (their columns differ?): {', '.join(files[:5])}."


def _jsonl_problem(path: str) -> str | None:
    """`file:line: problem` for the first line that is not a UTF-8 JSON object; None when every line is."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                return f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[err.start]:02x}); save the file as UTF-8."
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                return f"{path}:{lineno}: not valid JSON ({err.msg})."
            if not isinstance(row, dict):
                return f"{path}:{lineno}: each line must be a JSON object."
    return None


def _cause(err: BaseException) -> str:
    """The innermost exception of a chain, on one line: datasets wraps the real problem in generic errors."""
    while True:
        inner = err.__cause__ or (None if err.__suppress_context__ else err.__context__)
        if inner is None:
            break
        err = inner
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:300]}"


def _finish(rows: list[dict[str, Any]], data: DataConfig) -> list[dict[str, Any]]:
    return [_finish_row(row, i, data) for i, row in enumerate(rows)]


def _finish_row(row: dict[str, Any], i: int, data: DataConfig) -> dict[str, Any]:
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
        row["prompt"] = [{"role": "user", "content": text}]
    if "prompt" not in row:
        raise ConfigError(
            f"data: row {i} has no prompt; set data.template or map a column with data.columns.prompt. "
            f"Columns: {sorted(row)}."
        )
    prompt = row["prompt"]
    if not (isinstance(prompt, str) or (isinstance(prompt, list) and all(isinstance(m, dict) for m in prompt))):
        raise ConfigError(
            f"data: row {i}'s prompt is {type(prompt).__name__}; it must be text or a list of "
            '{"role": ..., "content": ...} messages.'
        )
    if data.system_prompt:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        if not messages or messages[0].get("role") != "system":
            messages = [{"role": "system", "content": data.system_prompt}, *messages]
        row["prompt"] = messages
    if "answer" in row and not isinstance(row["answer"], str):
        row["answer"] = str(row["answer"])
    return row


_DEFAULT_SHARE = f"{DEFAULT_EVAL_SHARE:.0%}, at most {DEFAULT_NUM_EVAL}"
_DEFAULT_SHARE_NOTE = f": the default, {_DEFAULT_SHARE}; data.num_eval sets it"


def _too_few_note(total: int) -> str:
    """The data line's note when `num_eval: null` holds nothing out: evaluation is off, and how to turn it on."""
    return (
        f"no held-out evaluation: {total} rows are too few for the default held-out share ({_DEFAULT_SHARE}); set "
        "data.num_eval or data.eval_split (TRL: test_split_size or dataset_test_split) to evaluate"
    )


def _describe(where: str, num_train: int | str, num_eval: int, note: str) -> str:
    count = f"{num_train:,}" if isinstance(num_train, int) else num_train
    return f"data: {count} training prompts and {num_eval} held-out from {where}" + (f" ({note})" if note else "")
