"""The real `openai` client over real HTTP against `rlsurrogate serve`'s server, with injected faults."""

from __future__ import annotations

import time

import pytest

from rlsurrogate.errors import ConfigError
from rlsurrogate.prompt_opt.chat_server import ChatServer, Faults, hf_generate_fn
from rlsurrogate.prompt_opt.clients import BlackBoxError, LocalHFClient, OpenAIChatClient, make_client

MSG = [{"role": "user", "content": "hello"}]


def _echo(messages, max_tokens, temperature):
    text = messages[-1]["content"].upper()
    return text, len(messages[-1]["content"].split()), len(text.split())


def _client(server, **kwargs):
    kwargs = {"timeout": 2.0, "max_retries": 4, "backoff": 0.01, **kwargs}
    return OpenAIChatClient("echo", base_url=server.base_url, **kwargs)


def test_round_trip_and_token_accounting():
    with ChatServer(_echo, "echo") as server:
        client = _client(server, price_per_1k_prompt=1.0, price_per_1k_completion=2.0)
        out = client.complete([[{"role": "user", "content": "a b c"}], [{"role": "user", "content": "d e"}]])
    assert [c.text for c in out] == ["A B C", "D E"]
    assert (client.usage.calls, client.usage.prompt_tokens, client.usage.completion_tokens) == (2, 5, 5)
    assert client.usage.cost == pytest.approx((5 * 1.0 + 5 * 2.0) / 1000)
    assert client.usage.retries == 0


def test_faults_are_survived_with_one_retry_each():
    faults = Faults(script=["429", "500", "malformed", "slow", "ok"], slow_seconds=1.5)
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
    with ChatServer(_echo, "echo", faults=Faults(**rates)) as server:
        client = _client(server, max_retries=2)
        with pytest.raises(BlackBoxError, match="max_retries = 2"):
            client.complete([MSG])
        assert server.counts[fault] == 3  # the first attempt plus exactly max_retries retries


def test_client_errors_are_not_retried():
    with ChatServer(_echo, "echo") as server:
        client = OpenAIChatClient("echo", base_url=server.base_url + "/wrong", max_retries=3, backoff=0.01)
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
        client = OpenAIChatClient("echo", base_url=server.base_url, api_key_env="MY_KEY", max_retries=1, backoff=0.01)
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


def test_tiny_model_served_over_http_matches_local_client(tiny):
    model_factory, tokenizer = tiny
    model = model_factory(seed=0)
    local = LocalHFClient(model, tokenizer, name="tiny").complete([MSG], max_tokens=6)[0]
    with ChatServer(hf_generate_fn(model, tokenizer), "tiny") as server:
        remote = _client(server).complete([MSG], max_tokens=6)[0]
    assert remote.text == local.text  # greedy decoding: same model, same answer
    assert remote.prompt_tokens == local.prompt_tokens > 0
    assert 0 < remote.completion_tokens <= 6
