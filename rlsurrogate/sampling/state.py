"""A sampler's state in checkpoints: `sampler_state.json` and `sampler_state.safetensors`, never pickle.

`SamplerCheckpoint` is a TrainerCallback: at each save it writes the sampler's state (its prompt stream's position,
and for `predictive` the feature basis, the cached prompt features, the GP's observations and hyper-parameters)
into `output_dir/checkpoint-N/`, beside TRL's files, from the main process (every process holds the same state).
`load_sampler_state` restores it before training resumes (RLTrainer calls it from `train(resume_from_checkpoint=)`).
A checkpoint without these files (written by an older version), or written by another sampler, resumes with a fresh
sampler and a warning; a damaged state file stops the run with one line naming it.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from rlsurrogate.errors import ConfigError
from rlsurrogate.sampling.base import Sampler

__all__ = ["STATE_JSON", "STATE_TENSORS", "SamplerCheckpoint", "save_sampler_state", "load_sampler_state"]

STATE_JSON = "sampler_state.json"
STATE_TENSORS = "sampler_state.safetensors"


def save_sampler_state(sampler: Sampler, directory: str | os.PathLike) -> None:
    """Writes the sampler's state into `directory` (atomically: a temporary file, then a rename)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    state, tensors = sampler.state_dict()
    if tensors:
        tmp = directory / (STATE_TENSORS + ".tmp")
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
        tmp.replace(directory / STATE_TENSORS)
    tmp = directory / (STATE_JSON + ".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(directory / STATE_JSON)


def load_sampler_state(sampler: Sampler, directory: str | os.PathLike) -> bool:
    """Restores the sampler from `directory`; False (with a warning) when it holds no sampler state."""
    from safetensors.torch import load_file

    directory = Path(directory)
    path = directory / STATE_JSON
    if not path.is_file():
        if sampler.needs_dataset:
            warnings.warn(
                f"{directory} has no {STATE_JSON}: the {sampler.name} sampler starts afresh (its prompt stream and "
                "observations are not restored).",
                UserWarning,
                stacklevel=2,
            )
        return False
    try:
        state = json.loads(path.read_text())
        tensors = load_file(str(directory / STATE_TENSORS)) if (directory / STATE_TENSORS).is_file() else {}
    except (OSError, ValueError) as err:
        problem = f"{path}: the sampler state cannot be read ({err}); resume from an earlier checkpoint."
        raise ConfigError(problem) from None
    if not isinstance(state, dict) or state.get("name") != sampler.name:
        saved = state.get("name") if isinstance(state, dict) else None
        warnings.warn(
            f"{path} was saved by sampler {saved!r}; this run uses {sampler.name!r}, which starts afresh.",
            UserWarning,
            stacklevel=2,
        )
        return False
    try:
        sampler.load_state_dict(state, tensors)
    except (KeyError, TypeError, RuntimeError) as err:
        raise ConfigError(f"{path}: the sampler state is damaged ({type(err).__name__}: {err}).") from None
    return True


class SamplerCheckpoint(TrainerCallback):
    """Saves the sampler's state into each checkpoint directory the Trainer writes."""

    def __init__(self, sampler: Sampler):
        self.sampler = sampler

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        directory = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if directory.is_dir():
            save_sampler_state(self.sampler, directory)
