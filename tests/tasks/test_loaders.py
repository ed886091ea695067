"""tasks.loaders: every file format, globs, directories, hf_dataset options, streams, splits and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rlsurrogate.errors import ConfigError
from rlsurrogate.recipe import DataConfig
from rlsurrogate.tasks.loaders import default_num_eval, load_data, load_rows

ROWS = [{"prompt": f"What is {i} + 1?", "answer": i + 1} for i in range(20)]


def _write(path: Path, rows: list[dict], fmt: str) -> Path:
    frame = pd.DataFrame(rows)
    if fmt == "parquet":
        frame.to_parquet(path)
    elif fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows))
    elif fmt == "json":
        path.write_text(json.dumps(rows))
    elif fmt == "arrow":
        from datasets import Dataset

        Dataset.from_list(rows).save_to_disk(str(path.parent / "_arrow"))
        next((path.parent / "_arrow").glob("*.arrow")).rename(path)
    return path


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl", "json", "arrow"])
def test_each_file_format_loads_with_all_rows(tmp_path, fmt):
    path = _write(tmp_path / f"data.{fmt}", ROWS, fmt)
    loaded = load_data(DataConfig(path=str(path), num_eval=4))
    train, held_out = loaded.train.to_list(), loaded.eval_rows
    assert len(train) == 16 and len(held_out) == 4  # num_train null: every row not held out
    assert {r["prompt"] for r in train} | {r["prompt"] for r in held_out} == {r["prompt"] for r in ROWS}
    assert isinstance(train[0]["answer"], str)  # csv/parquet integers reach rewards as text
    assert "16 training prompts and 4 held-out" in loaded.description


def test_directory_and_glob_read_every_file(tmp_path):
    (tmp_path / "d").mkdir()
    _write(tmp_path / "d" / "a.parquet", ROWS[:12], "parquet")
    _write(tmp_path / "d" / "b.parquet", ROWS[12:], "parquet")
    for spec in (tmp_path / "d", tmp_path / "d" / "*.parquet"):
        train, held_out = load_rows(DataConfig(path=str(spec), num_eval=2))
        assert len(train) + len(held_out) == 20


def test_mixed_formats_and_unknown_types_are_refused(tmp_path):
    _write(tmp_path / "a.parquet", ROWS, "parquet")
    _write(tmp_path / "b.csv", ROWS, "csv")
    with pytest.raises(ConfigError, match="mixes formats"):
        load_rows(DataConfig(path=str(tmp_path / "*"), num_eval=2))
    (tmp_path / "c.txt").write_text("x")
    with pytest.raises(ConfigError, match="c.txt: unsupported file type"):
        load_rows(DataConfig(path=str(tmp_path / "c.txt"), num_eval=2))


def test_a_broken_file_is_named_with_its_problem(tmp_path):
    (tmp_path / "bad.parquet").write_text("hello, not parquet\n")
    with pytest.raises(ConfigError, match=r"bad.parquet: cannot read it as parquet \(ArrowInvalid"):
        load_rows(DataConfig(path=str(tmp_path / "bad.parquet")))
    (tmp_path / "bad.jsonl").write_text('{"prompt": "a"}\nnot json\n')
    with pytest.raises(ConfigError, match="bad.jsonl:2: not valid JSON"):
        load_rows(DataConfig(path=str(tmp_path / "bad.jsonl")))
    (tmp_path / "latin.jsonl").write_bytes(b'{"prompt": "caf\xe9"}\n')
    with pytest.raises(ConfigError, match="latin.jsonl:1: not UTF-8"):
        load_rows(DataConfig(path=str(tmp_path / "latin.jsonl")))


def test_held_out_split_is_train_test_split_under_the_seed(tmp_path):
    from datasets import Dataset

    path = _write(tmp_path / "d.jsonl", ROWS, "jsonl")
    _, a = load_rows(DataConfig(path=str(path), num_eval=5, seed=1))
    _, b = load_rows(DataConfig(path=str(path), num_eval=5, seed=1))
    _, c = load_rows(DataConfig(path=str(path), num_eval=5, seed=2))
    expected = Dataset.from_list(ROWS).train_test_split(test_size=5, seed=1)["test"]["prompt"]
    assert [r["prompt"] for r in a] == [r["prompt"] for r in b] == expected
    assert [r["prompt"] for r in c] != expected


def test_asking_for_more_rows_than_exist_is_an_error(tmp_path):
    path = _write(tmp_path / "d.csv", ROWS, "csv")
    with pytest.raises(ConfigError, match="data.num_eval = 20: .* has only 20 rows"):
        load_rows(DataConfig(path=str(path), num_eval=20))
    with pytest.raises(ConfigError, match="data.num_train = 50: .* has 18 training rows"):
        load_rows(DataConfig(path=str(path), num_eval=2, num_train=50))
    train, _ = load_rows(DataConfig(path=str(path), num_eval=2, num_train=5, seed=3))
    assert len(train) == 5


def test_default_held_out_share_leaves_training_rows_at_every_size():
    """num_eval null: 10 % up to 32, nothing under 10 rows, never every row."""
    for total in range(0, 2000):
        held = default_num_eval(total)
        assert 0 <= held <= 32 and held <= 0.1 * total and (held == 0) == (total < 10)
        assert held == 32 or held == total // 10
    assert default_num_eval(10**9) == 32


def test_default_num_eval_adapts_and_an_explicit_one_is_kept(tmp_path):
    rows = [{"prompt": f"q{i}", "answer": i} for i in range(32)]
    path = _write(tmp_path / "d.parquet", rows, "parquet")
    loaded = load_data(DataConfig(path=str(path)))
    assert (len(loaded.train), len(loaded.eval_rows)) == (29, 3)
    assert "3 held out of 32 rows: the default, 10%, at most 32; data.num_eval sets it" in loaded.description
    assert {r["prompt"] for r in loaded.train}.isdisjoint(r["prompt"] for r in loaded.eval_rows)
    assert len(load_data(DataConfig(path=str(path), num_eval=8)).eval_rows) == 8
    with pytest.raises(ConfigError, match=r"^data.num_eval = 32: .* has only 32 rows, none would be left"):
        load_data(DataConfig(path=str(path), num_eval=32))


def test_too_few_rows_for_the_default_train_on_all_and_say_how_to_evaluate(tmp_path):
    path = _write(tmp_path / "d.jsonl", ROWS[:8], "jsonl")
    loaded = load_data(DataConfig(path=str(path)))
    assert (len(loaded.train), loaded.eval_rows) == (8, [])
    assert "\n" not in loaded.description and "no held-out evaluation: 8 rows are too few" in loaded.description
    assert "set data.num_eval or data.eval_split" in loaded.description
    assert "too few" not in load_data(DataConfig(path=str(path), num_eval=0)).description  # asked for: no hint


def test_default_num_eval_takes_up_to_32_from_a_split_or_a_task(tmp_path):
    (tmp_path / "ds").mkdir()
    _write(tmp_path / "ds" / "train.jsonl", ROWS, "jsonl")
    _write(tmp_path / "ds" / "test.jsonl", ROWS[:6], "jsonl")
    loaded = load_data(DataConfig(hf_dataset=str(tmp_path / "ds"), eval_split="test"))
    assert (len(loaded.train), len(loaded.eval_rows)) == (20, 6)  # the split is not training data: all of it
    with pytest.raises(ConfigError, match="data.num_eval = 7: split 'test' .* has 6 rows"):
        load_data(DataConfig(hf_dataset=str(tmp_path / "ds"), eval_split="test", num_eval=7))
    assert len(load_data(DataConfig(task="arithmetic", num_train=4)).eval_rows) == 32


def test_standard_and_conversational_prompts_stay_as_the_dataset_has_them(tmp_path):
    chat = [{"prompt": [{"role": "user", "content": f"q{i}"}], "answer": "1"} for i in range(4)]
    path = _write(tmp_path / "chat.jsonl", chat, "jsonl")
    train, _ = load_rows(DataConfig(path=str(path), num_eval=1))
    assert train[0]["prompt"][0]["role"] == "user"
    text = _write(tmp_path / "text.jsonl", ROWS[:4], "jsonl")
    train, _ = load_rows(DataConfig(path=str(text), num_eval=1))
    assert isinstance(train[0]["prompt"], str)  # TRL's standard format: no chat template
    train, _ = load_rows(DataConfig(path=str(text), num_eval=1, system_prompt="Be brief."))
    assert train[0]["prompt"][0] == {"role": "system", "content": "Be brief."}
    assert train[0]["prompt"][1]["role"] == "user"
    train, _ = load_rows(DataConfig(path=str(text), num_eval=1, template="{prompt} Box it."))
    assert train[0]["prompt"][-1]["content"].endswith("Box it.")


def test_hf_dataset_directory_with_splits_and_eval_split(tmp_path):
    (tmp_path / "ds").mkdir()
    _write(tmp_path / "ds" / "train.jsonl", ROWS, "jsonl")
    _write(tmp_path / "ds" / "test.jsonl", ROWS[:6], "jsonl")
    loaded = load_data(DataConfig(hf_dataset=str(tmp_path / "ds"), eval_split="test", num_eval=3))
    assert len(loaded.train) == 20 and [r["prompt"] for r in loaded.eval_rows] == [r["prompt"] for r in ROWS[:3]]
    assert "split test" in loaded.description
    with pytest.raises(ConfigError, match=r"split 'validation'.*Unknown split"):
        load_data(DataConfig(hf_dataset=str(tmp_path / "ds"), eval_split="validation"))


def test_hf_dataset_single_file_and_data_files_never_reach_the_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = _write(tmp_path / "one.parquet", ROWS, "parquet")
    assert len(load_data(DataConfig(hf_dataset=str(path), num_eval=2)).train) == 18
    jsonl = _write(tmp_path / "d.jsonl", ROWS, "jsonl")
    loaded = load_data(DataConfig(hf_dataset="json", data_files={"train": str(jsonl)}, num_eval=2, num_train=4))
    assert len(loaded.train) == 4


def test_streaming_holds_out_the_first_rows_and_takes_num_train(tmp_path):
    from datasets import IterableDataset

    (tmp_path / "ds").mkdir()
    _write(tmp_path / "ds" / "train.jsonl", ROWS, "jsonl")
    loaded = load_data(DataConfig(hf_dataset=str(tmp_path / "ds"), streaming=True, num_eval=3, num_train=5))
    assert isinstance(loaded.train, IterableDataset) and loaded.num_train is None
    assert [r["prompt"] for r in loaded.eval_rows] == [r["prompt"] for r in ROWS[:3]]
    assert [r["prompt"] for r in loaded.train] == [r["prompt"] for r in ROWS[3:8]]
    assert all(isinstance(r["answer"], str) for r in loaded.train)


def test_columns_are_renamed_for_rewards(tmp_path):
    rows = [{"question": f"q{i}", "solution": i} for i in range(5)]
    path = _write(tmp_path / "d.jsonl", rows, "jsonl")
    train, _ = load_rows(DataConfig(path=str(path), num_eval=1, columns={"answer": "solution"}, template="{question}"))
    assert set(train[0]) == {"prompt", "answer", "question"} and isinstance(train[0]["answer"], str)
