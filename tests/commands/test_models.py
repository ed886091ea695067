"""`rlsurrogate models`: one line per embedded model with its state; `--prepare` refuses a bad name at once."""

from __future__ import annotations

import argparse

import pytest

from rlsurrogate.commands import models as command
from rlsurrogate.errors import ConfigError
from rlsurrogate.models import EMBEDDED_MODELS


def _args(argv):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(argv)


def test_lists_every_embedded_model_with_its_state(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("RLSURROGATE_CACHE", str(tmp_path))  # an empty cache: nothing converted yet
    assert command.run(_args([])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(EMBEDDED_MODELS)
    assert all(line.split()[2] in ("installed", "missing:") for line in lines)


def test_prepare_refuses_a_missing_directory_before_loading(capsys):
    with pytest.raises(ConfigError, match="no such directory"):
        command.run(_args(["--prepare", "./no/such/model"]))
    assert capsys.readouterr().out == ""
