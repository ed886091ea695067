"""Resume picks the newest intact checkpoint; each kind of damage is named."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from rlsurrogate.checkpoints import checkpoint_problem, newest_intact_checkpoint


@pytest.fixture(scope="module")
def intact(tmp_path_factory, tiny):
    make_model, _ = tiny
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint-1"
    make_model(0).save_pretrained(path)
    (path / "trainer_state.json").write_text(json.dumps({"global_step": 1}))
    torch.save({"state": {0: {"exp_avg": torch.zeros(3)}}}, path / "optimizer.pt")
    torch.save({"python": 1}, path / "rng_state.pth")
    return path


def _damage(path, kind):
    if kind == "truncated weights":
        data = (path / "model.safetensors").read_bytes()
        (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif kind == "garbage trainer_state":
        (path / "trainer_state.json").write_text("{not json")
    elif kind == "garbage optimizer":
        (path / "optimizer.pt").write_bytes(b"\x00garbage" * 100)
    elif kind == "truncated optimizer":
        data = (path / "optimizer.pt").read_bytes()
        (path / "optimizer.pt").write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        shutil.rmtree(path)
        path.mkdir()
    elif kind == "no weights":
        (path / "model.safetensors").unlink()


KINDS = {
    "truncated weights": "model.safetensors: unreadable",
    "garbage trainer_state": "trainer_state.json is not valid JSON",
    "garbage optimizer": "optimizer.pt: not a complete torch-saved file",
    "truncated optimizer": "optimizer.pt: not a complete torch-saved file",
    "empty": "no trainer_state.json",
    "no weights": "no model weights",
}


def test_intact_checkpoint_has_no_problem(intact):
    assert checkpoint_problem(intact) is None


@pytest.mark.parametrize("kind", KINDS)
def test_broken_latest_falls_back_to_the_intact_one(tmp_path, intact, kind):
    shutil.copytree(intact, tmp_path / "checkpoint-1")
    shutil.copytree(intact, tmp_path / "checkpoint-20")
    _damage(tmp_path / "checkpoint-20", kind)
    (tmp_path / "checkpoint-notanumber").mkdir()  # ignored, like Trainer does
    found, broken = newest_intact_checkpoint(tmp_path)
    assert found == tmp_path / "checkpoint-1"
    assert [(p.name, KINDS[kind] in problem) for p, problem in broken] == [("checkpoint-20", True)]


def test_numeric_order_and_nothing_intact(tmp_path, intact):
    for step in (2, 10):
        shutil.copytree(intact, tmp_path / f"checkpoint-{step}")
    assert newest_intact_checkpoint(tmp_path)[0] == tmp_path / "checkpoint-10"  # 10 > 2 numerically
    for step in (2, 10):
        _damage(tmp_path / f"checkpoint-{step}", "empty")
    found, broken = newest_intact_checkpoint(tmp_path)
    assert found is None and [p.name for p, _ in broken] == ["checkpoint-10", "checkpoint-2"]
    assert newest_intact_checkpoint(tmp_path / "missing") == (None, [])
