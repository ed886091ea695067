"""Damaged checkpoints beside an intact one: resume must pick the intact one and name the broken one.

Each case copies a small intact checkpoint to `checkpoint-1`, a damaged copy to `checkpoint-9`, and asks
`newest_intact_checkpoint` (what `rlsurrogate train --resume` uses) which to resume from: "handled" when it is
`checkpoint-1` with `checkpoint-9` named as broken; anything else (the broken one chosen, an exception) is a traceback.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from . import Case, Outcome, handled, traceback

__all__ = ["CASES"]

SURFACE = "checkpoints"


def _intact(path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    path.mkdir(parents=True)
    save_file({"w": torch.zeros(64, 64)}, str(path / "model.safetensors"))
    (path / "config.json").write_text("{}")
    (path / "trainer_state.json").write_text(json.dumps({"global_step": int(path.name.split("-")[1])}))
    torch.save({"state": {0: {"exp_avg": torch.zeros(64)}}}, path / "optimizer.pt")
    torch.save({"lr": 1e-5}, path / "scheduler.pt")
    torch.save({"python": 1}, path / "rng_state.pth")


def _truncate(file: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        data = (path / file).read_bytes()
        (path / file).write_bytes(data[: len(data) // 3])

    return damage


def _overwrite(file: str, content: bytes) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        (path / file).write_bytes(content)

    return damage


def _remove(*files: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        for file in files:
            (path / file).unlink()

    return damage


def _empty(path: Path) -> None:
    shutil.rmtree(path)
    path.mkdir()


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated weights": _truncate("model.safetensors"),
    "zeroed weights file": _overwrite("model.safetensors", b""),
    "garbage weights": _overwrite("model.safetensors", b"\x00\xff" * 500),
    "garbage trainer_state.json": _overwrite("trainer_state.json", b"{not json"),
    "trainer_state.json a list": _overwrite("trainer_state.json", b"[1, 2]"),
    "trainer_state.json without step": _overwrite("trainer_state.json", b'{"epoch": 1}'),
    "non-UTF-8 trainer_state.json": _overwrite("trainer_state.json", b"\xff\xfe{}"),
    "garbage optimizer.pt": _overwrite("optimizer.pt", b"garbage"),
    "truncated optimizer.pt": _truncate("optimizer.pt"),
    "empty optimizer.pt": _overwrite("optimizer.pt", b""),
    "truncated scheduler.pt": _truncate("scheduler.pt"),
    "garbage rng_state.pth": _overwrite("rng_state.pth", b"\x80\x04garbage"),
    "no weights": _remove("model.safetensors"),
    "no trainer_state.json": _remove("trainer_state.json"),
    "empty checkpoint directory": _empty,
}


def _run(damage: Callable[[Path], None]) -> Outcome:
    from rlsurrogate.checkpoints import newest_intact_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _intact(root / "checkpoint-1")
        _intact(root / "checkpoint-9")
        damage(root / "checkpoint-9")
        found, broken = newest_intact_checkpoint(root)
        if found is None or found.name != "checkpoint-1":
            return traceback(f"resumed from {found}")
        if [p.name for p, _ in broken] != ["checkpoint-9"]:
            return traceback(f"broken checkpoints not named: {broken}")
        return handled(f"resumes from checkpoint-1; checkpoint-9: {broken[0][1]}")


CASES: list[Case] = [Case(SURFACE, name, functools.partial(_run, damage)) for name, damage in DAMAGE.items()]
