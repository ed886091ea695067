"""The durable query log: replay, torn writes, budget, and a run killed mid-way then resumed without repeats."""

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
from rlsurrogate.prompt_opt.query_log import Budget, QueryLog, request_key
from rlsurrogate.prompt_opt.serve import ChatServer, Faults, hf_generate_fn


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


def test_torn_last_line_is_dropped_and_cut(tmp_path):
    path = tmp_path / "q.jsonl"
    with QueryLog(path) as log:
        log.append_call(_call("a"))
    with open(path, "a") as f:
        f.write('{"type": "call", "key": "b", "te')  # the process died mid-write
    with QueryLog(path, resume=True) as log:
        assert set(log.calls) == {"a"}
        log.append_call(_call("c"))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["key"] for r in lines] == ["a", "c"]


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
