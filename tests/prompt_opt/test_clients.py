"""The real `openai` client over real HTTP against `rlsurrogate serve`'s server, with injected faults."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rlsurrogate.errors import ConfigError
from rlsurrogate.prompt_opt.chat_server import ChatServer, Faults, hf_generate_fn
from rlsurrogate.prompt_opt.clients import BlackBoxError, LocalHFClient, OpenAIChatClient, make_client, parse_target

MSG = [{"role": "user", "content": "hello"}]


def _echo(messages, max_tokens, temperature):
    text = messages[-1]["content"].upper()
    return text, len(messages[-1]["content"].split()), len(text.split())


def _client(server, **kwargs):
    kwargs = {"timeout": 2.0, "max_retries": 4, **kwargs}
    return OpenAIChatClient("echo", base_url=server.base_url, **kwargs)


class FakeOpenAI:
    """A local endpoint that answers like OpenAI's API, records every body, and can refuse parameters the way a
    reasoning model does (400 with `param` naming the parameter)."""

    def __init__(self, refuse=()):
        self.refuse, self.bodies = set(refuse), []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                fake.bodies.append(body)
                refused = next((p for p in ("max_tokens", "temperature") if p in fake.refuse and p in body), None)
                if refused == "max_tokens":
                    status, reply = 400, {"error": {
                        "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                        "'max_completion_tokens' instead.", "type": "invalid_request_error", "param": "max_tokens",
                        "code": "unsupported_parameter"}}  # fmt: skip
                elif refused == "temperature":
                    status, reply = 400, {"error": {
                        "message": "Unsupported value: 'temperature' does not support 0.0 with this model. Only the "
                        "default (1) value is supported.", "type": "invalid_request_error", "param": "temperature",
                        "code": "unsupported_value"}}  # fmt: skip
                elif "bad" in body["messages"][-1]["content"]:
                    status, reply = 400, {"error": {"message": "something else is wrong", "type": "x"}}
                else:
                    status, reply = 200, {
                        "id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
                    }  # fmt: skip
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_round_trip_and_token_accounting():
    with ChatServer(_echo, "echo") as server:
        client = _client(server, price_per_1k_prompt=1.0, price_per_1k_completion=2.0)
        out = client.complete([[{"role": "user", "content": "a b c"}], [{"role": "user", "content": "d e"}]])
    assert [c.text for c in out] == ["A B C", "D E"]
    assert (client.usage.calls, client.usage.prompt_tokens, client.usage.completion_tokens) == (2, 5, 5)
    assert client.usage.cost == pytest.approx((5 * 1.0 + 5 * 2.0) / 1000)
    assert client.usage.retries == 0


def test_faults_are_survived_with_one_retry_each():
    faults = Faults(script=["429", "500", "malformed", "slow", "ok"], slow_seconds=1.5, retry_after=0.01)
    with ChatServer(_echo, "echo", faults=faults) as server:
        client = _client(server, timeout=0.5)
        out = client.complete([MSG])
        counts = dict(server.counts)
    assert out[0].text == "HELLO"
    assert client.usage.retries == 4  # one per injected fault, none more
    assert counts == {"ok": 1, "429": 1, "500": 1, "malformed": 1, "slow": 1}


@pytest.mark.parametrize("fault", ["500", "429", "malformed"])
def test_retries_are_bounded(fault):
    rates = {"500": {"rate_500": 1.0}, "429": {"rate_429": 1.0}, "malformed": {"rate_malformed": 1.0}}[fault]
    with ChatServer(_echo, "echo", faults=Faults(**rates, retry_after=0.01)) as server:
        client = _client(server, max_retries=2)
        with pytest.raises(BlackBoxError, match="max_retries = 2"):
            client.complete([MSG])
        assert server.counts[fault] == 3  # the first attempt plus exactly max_retries retries
        assert client.usage.retries == 2


def test_retry_after_of_a_429_is_honoured_and_counted():
    with ChatServer(_echo, "echo", faults=Faults(script=["429", "ok"], retry_after=0.8)) as server:
        client = _client(server)
        start = time.perf_counter()
        out = client.complete([MSG])
        elapsed = time.perf_counter() - start
    assert out[0].text == "HELLO" and client.usage.retries == 1 and client.usage.calls == 1
    assert 0.8 <= elapsed < 5.0  # waited as long as the server asked, not the SDK's own backoff


def test_client_errors_are_not_retried():
    with ChatServer(_echo, "echo") as server:
        client = OpenAIChatClient("echo", base_url=server.base_url + "/wrong", max_retries=3)
        with pytest.raises(BlackBoxError, match="HTTP 404"):
            client.complete([MSG])
        assert client.usage.retries == 0


def test_requests_run_concurrently():
    with ChatServer(_echo, "echo", faults=Faults(slow_rate=1.0, slow_seconds=0.4)) as server:
        client = _client(server, concurrency=4)
        start = time.perf_counter()
        out = client.complete([[{"role": "user", "content": f"m{i}"}] for i in range(4)])
        elapsed = time.perf_counter() - start
    assert [c.text for c in out] == ["M0", "M1", "M2", "M3"]  # in request order
    assert elapsed < 4 * 0.4 * 0.75  # serial would take 1.6 s


def test_api_key_value_is_never_shown(monkeypatch):
    secret = "sk-test-SECRET-value-123"
    monkeypatch.setenv("MY_KEY", secret)
    with ChatServer(_echo, "echo", faults=Faults(rate_500=1.0)) as server:
        client = OpenAIChatClient("echo", base_url=server.base_url, api_key_env="MY_KEY", max_retries=1)
        with pytest.raises(BlackBoxError) as err:
            client.complete([MSG])
    assert secret not in repr(client) and secret not in str(err.value)
    assert "MY_KEY" in repr(client)


def test_missing_key_for_remote_endpoint_names_the_variable(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(ConfigError, match="NO_SUCH_KEY"):
        OpenAIChatClient("gpt", base_url="https://api.example.com/v1", api_key_env="NO_SUCH_KEY")


def test_make_client_parses_targets_and_rejects_bad_ones():
    client = make_client("openai:echo@http://127.0.0.1:9/v1")
    assert (client.name, client.base_url) == ("echo", "http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="openai:<model>@<base_url>"):
        make_client("gpt-4o")


@pytest.mark.parametrize(
    "target, model, url",
    [
        ("openai:org/model@v2@http://127.0.0.1:9/v1", "org/model@v2", "http://127.0.0.1:9/v1"),
        ("openai:a@b@c@https://h.example/v1", "a@b@c", "https://h.example/v1"),
        ("openai:user@host-model", "user@host-model", None),
        ("hf:smollm2-135m-instruct", "smollm2-135m-instruct", None),
    ],
)
def test_model_names_with_at_signs_parse(target, model, url):
    assert parse_target(target)[1:] == (model, url)


def test_at_sign_model_name_reaches_the_server_unchanged():
    with FakeOpenAI() as fake:
        client = make_client(f"openai:org/model@v2@{fake.base_url}", max_retries=0)
        assert client.complete([MSG])[0].text == "ok"
    assert fake.bodies[0]["model"] == "org/model@v2"


def test_base_url_and_key_come_from_the_openai_environment(monkeypatch):
    with FakeOpenAI() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
        client = make_client("openai:gpt-4o-mini")
        assert client.base_url == fake.base_url and client.complete([MSG])[0].text == "ok"
    assert fake.bodies[0]["max_tokens"] == 16 and fake.bodies[0]["temperature"] == 0.0


def test_reasoning_model_gets_max_completion_tokens_and_no_temperature():
    with FakeOpenAI(refuse=("max_tokens", "temperature")) as fake:
        client = OpenAIChatClient("o3-mini", base_url=fake.base_url, max_retries=0)
        assert client.complete([MSG], max_tokens=7)[0].text == "ok"
    assert fake.bodies == [{"model": "o3-mini", "messages": MSG, "max_completion_tokens": 7}]


def test_a_400_naming_parameters_is_retried_once_per_parameter_and_remembered():
    with FakeOpenAI(refuse=("max_tokens", "temperature")) as fake:
        client = OpenAIChatClient("my-reasoner", base_url=fake.base_url, max_retries=0)
        with pytest.warns(UserWarning, match="temperature"):
            assert client.complete([MSG], max_tokens=7)[0].text == "ok"
        sent = [sorted(k for k in b if k not in ("model", "messages")) for b in fake.bodies]
        assert sent == [["max_tokens", "temperature"], ["max_completion_tokens", "temperature"],
                        ["max_completion_tokens"]]  # fmt: skip
        client.complete([MSG])  # the next call goes through at once
        assert len(fake.bodies) == 4 and client.usage.retries == 2 and client.usage.calls == 2


def test_a_400_naming_no_parameter_fails_at_once():
    with FakeOpenAI() as fake:
        client = OpenAIChatClient("gpt-4o", base_url=fake.base_url, max_retries=3)
        with pytest.raises(BlackBoxError, match="HTTP 400: something else is wrong"):
            client.complete([[{"role": "user", "content": "bad"}]])
    assert len(fake.bodies) == 1


def test_tiny_model_served_over_http_matches_local_client(tiny):
    model_factory, tokenizer = tiny
    model = model_factory(seed=0)
    local = LocalHFClient(model, tokenizer, name="tiny").complete([MSG], max_tokens=6)[0]
    with ChatServer(hf_generate_fn(model, tokenizer), "tiny") as server:
        remote = _client(server).complete([MSG], max_tokens=6)[0]
    assert remote.text == local.text  # greedy decoding: same model, same answer
    assert remote.prompt_tokens == local.prompt_tokens > 0
    assert 0 < remote.completion_tokens <= 6
