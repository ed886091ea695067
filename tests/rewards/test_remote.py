"""`http(s)://...` rewards against a local server on 127.0.0.1: payload, replies, retries, timeouts, clear errors."""

from __future__ import annotations

import json
import pickle
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rlsurrogate.errors import ConfigError, RewardError
from rlsurrogate.rewards import GuardedReward, build_reward, check_reward_spec


class RewardServer:
    """Scores each completion by its length; `script` holds (status, body, headers, delay) replies served first."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list[tuple[int, str, dict, float]] = []
        self.reply_as_dict = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"payload": payload, "headers": dict(self.headers), "t": time.monotonic()})
                if server.script:
                    status, body, headers, delay = server.script.pop(0)
                else:
                    values = [float(len(_text(c))) for c in payload["completions"]]
                    status, body, headers, delay = 200, json.dumps(values), {}, 0.0
                    if server.reply_as_dict:
                        body = json.dumps({"rewards": values})
                time.sleep(delay)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/score"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def _text(completion) -> str:
    return completion if isinstance(completion, str) else completion[-1]["content"]


@pytest.fixture
def server(monkeypatch):
    from rlsurrogate.rewards import remote

    monkeypatch.setattr(remote, "BACKOFF_S", 0.01)  # the retry logic, without the waits
    s = RewardServer()
    yield s
    s.httpd.shutdown()


def _call(reward, n=2, **columns):
    prompts = [f"p{i}" for i in range(n)]
    completions = ["x" * (i + 1) for i in range(n)]
    return reward(prompts=prompts, completions=completions, completion_ids=[[1]] * n, **columns)


def test_posts_prompts_completions_and_columns_and_reads_a_list(server):
    reward = build_reward(server.url)
    assert reward.__name__ == f"remote_127_0_0_1_{server.url.split(':')[2].split('/')[0]}_score"
    state = object()  # TRL also passes trainer_state and log callbacks: not data, not sent
    assert _call(reward, 3, answer=["1", "2", "3"], trainer_state=state, log_metric=print) == [1.0, 2.0, 3.0]
    payload = server.requests[0]["payload"]
    assert set(payload) == {"prompts", "completions", "completion_ids", "answer"}
    assert payload["answer"] == ["1", "2", "3"] and payload["prompts"][2] == "p2"
    assert server.requests[0]["headers"]["Content-Type"] == "application/json"


def test_openrlhf_reply_chat_completions_and_headers(server):
    server.reply_as_dict = True
    reward = build_reward(server.url, {"headers": {"Authorization": "Bearer t"}, "name": "judge"})
    chat = [[{"role": "assistant", "content": "abc"}]]
    assert reward(prompts=[[{"role": "user", "content": "q"}]], completions=chat) == [3.0]
    assert reward.__name__ == "judge" and server.requests[0]["headers"]["Authorization"] == "Bearer t"


def test_busy_server_is_retried_with_retry_after(server):
    server.script = [(503, "busy", {}, 0.0), (429, "slow down", {"Retry-After": "0.3"}, 0.0)]
    assert _call(build_reward(server.url, {"max_retries": 2})) == [1.0, 2.0]
    assert len(server.requests) == 3
    assert server.requests[2]["t"] - server.requests[1]["t"] >= 0.3  # Retry-After honoured


def test_errors_name_the_url_and_status(server):
    server.script = [(400, '{"error": "bad field"}', {}, 0.0)]
    with pytest.raises(RewardError, match=rf"remote reward {server.url}: HTTP 400: .*bad field"):
        _call(build_reward(server.url))
    assert len(server.requests) == 1  # a client error is not retried
    server.script = [(500, "boom", {}, 0.0)] * 2
    with pytest.raises(RewardError, match=r"HTTP 500: 'boom' \(after 2 attempts\)"):
        _call(build_reward(server.url, {"max_retries": 1}))
    server.script = [(200, "[1.0]", {}, 0.0), (200, '["a", 1]', {}, 0.0), (200, "not json", {}, 0.0)]
    with pytest.raises(RewardError, match="returned 1 rewards for 2 completions"):
        _call(build_reward(server.url))
    with pytest.raises(RewardError, match='reward 0 is "a", not a number or null'):
        _call(build_reward(server.url))
    with pytest.raises(RewardError, match="the reply is not JSON"):
        _call(build_reward(server.url))


def test_timeout_and_connection_refused_are_bounded(server):
    server.script = [(200, "[1, 2]", {}, 1.0)] * 2
    start = time.monotonic()
    with pytest.raises(RewardError, match=r"no reply within request_timeout_s = 0.2 s \(after 2 attempts\)"):
        _call(build_reward(server.url, {"request_timeout_s": 0.2, "max_retries": 1}))
    assert time.monotonic() - start < 3
    server.httpd.shutdown()
    server.httpd.server_close()
    with pytest.raises(RewardError, match=r"cannot connect .* is the server running\? \(after 1 attempts\)"):
        _call(build_reward(server.url, {"max_retries": 0}))


def test_guarded_and_picklable(server):
    reward = build_reward(server.url)
    _call(reward)
    copy = pickle.loads(pickle.dumps(reward))  # the HTTP client is not pickled; the copy opens its own
    assert _call(GuardedReward(copy, timeout_s=30)) == [1.0, 2.0]
    server.script = [(200, "[null, 2]", {}, 0.0)]
    assert _call(GuardedReward(copy)) == [None, 2.0]  # null: not applicable, as TRL's None


def test_bad_parameters_are_recipe_problems():
    assert "not an http(s) URL" in check_reward_spec("http://")[0]
    assert "max_retries = -1" in check_reward_spec("http://127.0.0.1:1/x", {"max_retries": -1})[0]
    with pytest.raises(ConfigError, match="request_timeout_s = 0"):
        build_reward("https://example.org/score", {"request_timeout_s": 0})
