"""Which checkpoint a resumed run starts from: the newest one that is intact.

A run killed while saving, a full disk or a copy gone wrong leaves a `checkpoint-N` that `Trainer` cannot load
(truncated weights, garbage `trainer_state.json` or `optimizer.pt`, an empty directory), and resuming from it fails
with a traceback although an intact earlier checkpoint sits beside it. `newest_intact_checkpoint` checks each
checkpoint, newest first, without loading any weights: `trainer_state.json` parses and has a step, every
`.safetensors` file's header covers the file, every torch-saved file (`*.pt`, `*.pth`, `*.bin`) is a complete zip
archive, and some model weights are present. The caller warns about each broken one it skips.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

__all__ = ["checkpoint_problem", "newest_intact_checkpoint"]

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# Files and folders that hold model weights in a Trainer checkpoint (full model, adapter, FSDP shards, DeepSpeed).
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors", "pytorch_model.bin")
_WEIGHT_DIRS = ("pytorch_model_fsdp_0", "global_step")


def newest_intact_checkpoint(output_dir: str | Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest intact `checkpoint-N` in `output_dir`, and the (path, problem) of each newer broken one.

    Example:
        >>> newest_intact_checkpoint("outputs/run")  # doctest: +SKIP
        (PosixPath('outputs/run/checkpoint-10'), [(PosixPath('outputs/run/checkpoint-15'), 'optimizer.pt: ...')])
    """
    root = Path(output_dir)
    if not root.is_dir():
        return None, []
    numbered = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    broken = []
    for _, path in sorted(numbered, reverse=True):
        problem = checkpoint_problem(path)
        if problem is None:
            return path, broken
        broken.append((path, problem))
    return None, broken


def checkpoint_problem(path: str | Path) -> str | None:
    """What makes `path` unusable as a checkpoint, in a few words; None when it looks intact."""
    path = Path(path)
    state = path / "trainer_state.json"
    try:
        step = json.loads(state.read_text()).get("global_step")
    except FileNotFoundError:
        return "no trainer_state.json"
    except (OSError, ValueError, AttributeError):
        return "trainer_state.json is not valid JSON"
    if not isinstance(step, int):
        return "trainer_state.json has no global_step"
    if not any((path / name).is_file() for name in _WEIGHTS) and not any(
        p.is_dir() and p.name.startswith(_WEIGHT_DIRS) for p in path.iterdir()
    ):
        return "no model weights"
    for file in sorted(path.rglob("*")):
        problem = _file_problem(file)
        if problem:
            return f"{file.relative_to(path)}: {problem}"
    return None


# ---------------------------------------------------------------------------------------------------------------


def _file_problem(file: Path) -> str | None:
    if file.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(file), "pt"):
                return None
        except (SafetensorError, OSError) as err:
            return f"unreadable ({' '.join(str(err).split())})"
    if file.suffix in (".pt", ".pth", ".bin") and file.is_file():
        if file.stat().st_size == 0:
            return "empty"
        try:
            with zipfile.ZipFile(file) as archive:
                archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return "not a complete torch-saved file (truncated or overwritten)"
    return None
