"""The files of an optimize-prompt run: result.json and the plot are replaced atomically."""

from __future__ import annotations

import pytest

from rlsurrogate.prompt_opt import results


def test_result_files_are_replaced_atomically(tmp_path, monkeypatch):
    path = tmp_path / "result.json"
    results._write_atomic(path, b'{"old": 1}')
    monkeypatch.setattr(results.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(OSError, match="No space left"):
        results._write_atomic(path, b'{"new": 2, "history": [')
    assert path.read_bytes() == b'{"old": 1}'  # the old file whole, not half of the new one
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary file left behind
