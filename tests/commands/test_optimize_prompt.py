"""`rlsurrogate optimize-prompt` the way openai users call it: `--model --base-url`, the OPENAI_* variables, model
names with `@`, and the best instruction scored on the test split beside its validation score."""

from __future__ import annotations

import argparse
import json

import pytest

from rlsurrogate.commands import optimize_prompt
from rlsurrogate.errors import ConfigError
from rlsurrogate.prompt_opt.chat_server import ChatServer
from rlsurrogate.prompt_opt.tasks import load_task


class Antonym:
    """A fake black box that knows the antonyms task's answers; counts the requests it answers."""

    def __init__(self):
        task = load_task("antonyms")
        self.answers = {e.input: e.output for e in task.examples}
        self.calls = 0

    def __call__(self, messages, max_tokens, temperature):
        self.calls += 1
        word = messages[-1]["content"].split("Input: ")[-1].split("\n")[0]
        return self.answers.get(word, "?"), 10, 1


def _run(argv, tmp_path):
    parser = argparse.ArgumentParser()
    optimize_prompt.add_arguments(parser)
    base = ["--task", "antonyms", "--white-box", "tiny", "--pool-size", "4", "--n-val", "3", "--budget", "2",
            "--method", "random", "--answer-tokens", "3", "--no-progress",
            "--output-dir", str(tmp_path / "run")]  # fmt: skip
    assert optimize_prompt.run(parser.parse_args(base + argv)) == 0
    return json.loads((tmp_path / "run" / "result.json").read_text())


def test_model_and_base_url_run_and_the_best_is_scored_on_test(tmp_path, capsys):
    black_box = Antonym()
    with ChatServer(black_box, "served") as server:
        result = _run(["--model", "org/antonym@v2", "--base-url", server.base_url], tmp_path)
    n_test = len(load_task("antonyms", n_val=3).split()[2])
    assert result["target"] == f"openai:org/antonym@v2@{server.base_url}"
    assert result["validation_score"] == pytest.approx(1.0) and result["test_score"] == pytest.approx(1.0)
    assert result["test_examples"] == n_test > 0
    assert black_box.calls == result["queries"] * 3 + n_test  # test calls are made once, outside the budget
    assert "test score" in capsys.readouterr().out


def test_base_url_from_the_environment_and_n_test(tmp_path, monkeypatch):
    with ChatServer(Antonym(), "served") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = _run(["--model", "antonym", "--n-test", "5"], tmp_path)
    assert result["target"] == "openai:antonym" and result["test_examples"] == 5


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "no black box"),
        (["--target", "hf:tiny", "--model", "x"], "not both"),
        (["--model", "x", "--base-url", "127.0.0.1:8000"], "http://"),
        (["--model", "x", "--base-url", "http://127.0.0.1:9/v1", "--n-test", "-1"], "--n-test"),
    ],
)
def test_bad_black_box_flags_get_one_clear_line(argv, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        _run(argv, tmp_path)
