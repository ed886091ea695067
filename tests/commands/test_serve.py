"""`rlsurrogate serve`: the flags reach the server, the API key comes from the environment, startup lines."""

from __future__ import annotations

import argparse

from rlsurrogate.commands import serve
from rlsurrogate.prompt_opt.chat_server import API_KEY_ENV, ChatServer


class Echo:
    """A fake model: upper-cases the last message."""

    def __call__(self, messages, max_tokens, temperature):
        text = messages[-1]["content"].upper()
        return text, len(messages[-1]["content"].split()), len(text.split())


def test_cli_reads_the_key_from_the_environment_and_warns_only_off_loopback(monkeypatch, capsys):
    monkeypatch.setenv(API_KEY_ENV, "from-env")
    monkeypatch.setattr(serve, "load_named_model", lambda name: (None, None))
    monkeypatch.setattr(serve, "hf_generate_fn", lambda model, tokenizer: Echo())
    seen = {}
    monkeypatch.setattr(ChatServer, "serve_forever", lambda self: (seen.update(key=self.api_key), self.start()))

    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    assert serve.run(parser.parse_args(["--port", "0", "--max-workers", "2"])) == 0
    assert seen["key"] == "from-env"
    out = capsys.readouterr()
    assert "API key required" in out.out and out.err == ""  # loopback: no warning
    # the warning text itself: tests/prompt_opt/test_chat_server.py::test_bind_warning_only_off_loopback
