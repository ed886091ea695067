"""The durable query log: replay, bad and torn lines, budget, and a run killed mid-way then resumed without repeats."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rlsurrogate.errors import ConfigError
from rlsurrogate.prompt_opt.chat_server import ChatServer, Faults, hf_generate_fn
from rlsurrogate.prompt_opt.clients import Completion, Usage
from rlsurrogate.prompt_opt.evaluator import InstructionEvaluator
from rlsurrogate.prompt_opt.query_log import Budget, QueryLog, request_key
from rlsurrogate.prompt_opt.tasks import Example, Task


def _call(key, tokens=3):
    return {"key": key, "text": "x", "prompt_tokens": tokens, "completion_tokens": 1}


def test_replay_restores_calls_evals_and_tokens(tmp_path):
    path = tmp_path / "q.jsonl"
    with QueryLog(path) as log:
        log.write_meta({"task": "t"})
        log.append_call(_call("a"))
        log.append_call(_call("b", tokens=5))
        log.append_eval({"instruction": "Do it.", "score": 0.5, "scores": [0.5]})
    with QueryLog(path, resume=True) as log:
        assert log.cached_call("a")["text"] == "x" and log.cached_call("c") is None
        assert log.cached_eval("Do it.")["score"] == 0.5
        assert (log.tokens, log.queries, log.replayed_calls) == (4 + 6, 1, 2)
        log.write_meta({"task": "t"})  # same settings: accepted
        with pytest.raises(ConfigError, match="task: logged 't', now 'other'"):
            log.write_meta({"task": "other"})


def test_existing_log_needs_resume(tmp_path):
    path = tmp_path / "q.jsonl"
    with QueryLog(path) as log:
        log.append_call(_call("a"))
    with pytest.raises(ConfigError, match="--resume"):
        QueryLog(path)


class CountingBlackBox:
    """Answers "yes" to every request and counts the calls it is paid for."""

    name = "counting"

    def __init__(self):
        self.usage = Usage()

    def complete(self, requests, *, max_tokens=16, temperature=0.0, on_result=None):
        out = []
        for i, _ in enumerate(requests):
            c = Completion("yes", 10, 1)
            self.usage.calls += 1
            if on_result is not None:
                on_result(i, c)
            out.append(c)
        return out


INSTRUCTIONS = [f"Instruction {i}." for i in range(4)]


def _paid_run(path):
    """A run that evaluates 4 instructions on 3 validation examples each: 12 paid calls, 4 evaluations."""
    task = Task("yesno", [Example(f"x{i}", "yes") for i in range(5)], metric="exact_match", n_demo=2, n_val=3)
    black_box = CountingBlackBox()
    with QueryLog(path, resume=path.exists()) as log:
        log.write_meta({"task": "yesno"})
        evaluator = InstructionEvaluator(task, black_box, Budget(max_queries=10), log)
        scores = [evaluator.evaluate(instruction).score for instruction in INSTRUCTIONS]
    return black_box.usage.calls, scores, log


BAD_LINES = {
    "garbage": b"garbage{{ not json",
    "torn": b'{"type": "call", "key": "0123abc", "te',
    "nul_bytes": b"\x00" * 512,
    "not_utf8": b'{"type": "call", "text": "\xff\xfe"}',
    "not_a_record": b"[1, 2, 3]",
    "missing_field": b'{"type": "call", "key": "k", "text": "x"}',
    "bad_token_count": b'{"type": "call", "key": "k", "text": "x", "prompt_tokens": "abc", "completion_tokens": 1}',
    "unknown_type": b'{"type": "refund", "amount": 3}',
    "deep_nesting": b"[" * 100_000,
}


@pytest.mark.parametrize("bad", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_bad_middle_line_is_skipped_reported_and_nothing_is_rebought(tmp_path, bad):
    path = tmp_path / "q.jsonl"
    paid, scores, _ = _paid_run(path)
    assert paid == 12
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[:4] + [bad] + lines[4:]))  # line 5 is bad; 12 records follow it
    damaged = path.read_bytes()
    with pytest.warns(UserWarning, match=r"1 unusable line\(s\) skipped .*\(line 5: "):
        rebought, resumed_scores, log = _paid_run(path)
    assert rebought == 0 and resumed_scores == scores  # every call after the bad line was replayed, none re-sent
    assert [n for n, _ in log.skipped] == [5] and log.replayed_calls == 12
    assert path.read_bytes() == damaged  # nothing truncated, rewritten or appended


def test_torn_last_line_is_dropped_and_the_file_continues_on_a_fresh_line(tmp_path):
    path = tmp_path / "q.jsonl"
    with QueryLog(path) as log:
        log.append_call(_call("a"))
    with open(path, "ab") as f:
        f.write(b'{"type": "call", "key": "b", "te')  # the process died mid-write
    before = path.read_bytes()
    with pytest.warns(UserWarning, match="line 2: torn last line"):
        log = QueryLog(path, resume=True)
    with log:
        assert set(log.calls) == {"a"} and log.skipped[0][0] == 2
        log.append_call(_call("c"))
    after = path.read_bytes()
    assert after.startswith(before)  # earlier bytes untouched, the torn bytes included
    assert after[len(before) :].startswith(b"\n") and after.endswith(b"\n")
    with pytest.warns(UserWarning, match="line 2: not JSON"):  # now a middle line: skipped, "c" kept
        log = QueryLog(path, resume=True)
    with log:
        assert set(log.calls) == {"a", "c"}


def test_unterminated_last_record_is_kept(tmp_path):
    path = tmp_path / "q.jsonl"
    with QueryLog(path) as log:
        log.append_call(_call("a"))
    path.write_bytes(path.read_bytes().rstrip(b"\n"))  # died between the record and its newline
    with QueryLog(path, resume=True) as log:
        assert set(log.calls) == {"a"} and not log.skipped
        log.append_call(_call("b"))
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()] == ["a", "b"]


def test_nul_block_before_a_record_keeps_the_record(tmp_path):
    path = tmp_path / "q.jsonl"
    with QueryLog(path) as log:
        log.append_call(_call("a"))
    record = json.dumps({"type": "call", **_call("b")}).encode()
    with open(path, "ab") as f:
        f.write(b"\x00" * 4096 + record + b"\n")  # a crash lost a write; the filesystem left zeros
    with pytest.warns(UserWarning, match="line 2: NUL bytes before a good record"):
        log = QueryLog(path, resume=True)
    with log:
        assert set(log.calls) == {"a", "b"} and not log.skipped


def test_a_second_run_on_the_same_log_is_refused(tmp_path):
    path = tmp_path / "q.jsonl"
    with QueryLog(path) as log:
        log.append_call(_call("a"))
        with pytest.raises(ConfigError, match="in use by another run"):
            QueryLog(path, resume=True)
    with QueryLog(path, resume=True) as log:  # the lock went with the first run
        assert set(log.calls) == {"a"}


def test_resume_without_a_log_warns(tmp_path):
    with pytest.warns(UserWarning, match="--resume: no query log at"):  # a mistyped --output-dir pays again
        QueryLog(tmp_path / "typo" / "q.jsonl", resume=True).close()


def test_a_directory_is_not_a_log(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        QueryLog(tmp_path, resume=True)


def test_budget():
    assert Budget(max_queries=3).exhausted(3, 0) and not Budget(max_queries=3).exhausted(2, 10**9)
    assert Budget(max_tokens=100).exhausted(0, 100) and not Budget(max_tokens=100).exhausted(99, 99)
    with pytest.raises(ConfigError, match="never stops"):
        Budget()
    with pytest.raises(ConfigError, match=">= 1"):
        Budget(max_queries=0)


def test_request_key_is_stable_and_sensitive():
    m = [{"role": "user", "content": "hi"}]
    assert request_key("a", m, temperature=0.0) == request_key("a", [dict(m[0])], temperature=0.0)
    assert request_key("a", m, temperature=0.0) != request_key("b", m, temperature=0.0)
    assert request_key("a", m, temperature=0.0) != request_key("a", m, temperature=1.0)


def test_kill_mid_run_then_resume_repeats_no_query(tmp_path, tiny):
    """SIGKILL the CLI mid-run, resume it, and check that no logged call reached the server again."""
    model_factory, tokenizer = tiny
    requests = tmp_path / "server_requests.jsonl"
    out = tmp_path / "run"
    faults = Faults(slow_rate=1.0, slow_seconds=0.25)  # slow answers, so the kill lands mid-run
    with ChatServer(
        hf_generate_fn(model_factory(seed=1), tokenizer), "tiny", faults=faults, request_log=requests
    ) as srv:
        cmd = [sys.executable, "-m", "rlsurrogate", "optimize-prompt", "--task", "antonyms", "--target",
               f"openai:tiny@{srv.base_url}", "--budget", "4", "--method", "ape", "--white-box", "tiny",
               "--pool-size", "8", "--n-val", "3", "--answer-tokens", "3", "--concurrency", "1",
               "--output-dir", str(out), "--no-progress"]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        log_path = out / "queries.jsonl"
        deadline = time.time() + 120
        while time.time() < deadline and first.poll() is None:
            if log_path.exists() and sum('"type": "call"' in line for line in log_path.read_text().splitlines()) >= 4:
                break
            time.sleep(0.05)
        assert first.poll() is None, first.stdout.read().decode()[-2000:]
        first.send_signal(signal.SIGKILL)
        first.wait()
        logged = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
        logged_keys = {r["key"] for r in logged if r["type"] == "call"}
        assert 4 <= len(logged_keys) < 4 * 3  # mid-run: some, not all, of the 12 calls
        assert not (out / "result.json").exists()

        resumed_at = time.time()
        second = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=180)
        assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]

    served = [json.loads(line) for line in requests.read_text().splitlines()]
    after_resume = [r["key"] for r in served if r["time"] >= resumed_at]
    logged_messages = {_message_key(r["messages"]) for r in logged if r["type"] == "call"}
    result = json.loads((out / "result.json").read_text())
    assert result["queries"] == 4 and result["stopped"] == "budget"
    assert result["replayed_calls"] == len(logged_keys)
    assert result["new_calls"] == len(after_resume) > 0
    # No call whose answer was logged before the kill reached the model again after the resume.
    assert not set(after_resume) & logged_messages
    assert len(after_resume) == len(set(after_resume))
    # All 4 x 3 calls were answered once, except at most the one in flight when the process was killed.
    assert len(served) - len({r["key"] for r in served}) <= 1


def _message_key(messages):
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
