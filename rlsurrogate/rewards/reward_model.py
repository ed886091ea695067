"""A reward model as a reward: `rm:<hub id or path>`, a sequence-classification model scored the way TRL scores one.

TRL 1.16 accepts a reward model in `reward_funcs` (a hub id or path of an `AutoModelForSequenceClassification` with
`num_labels=1`) and scores it in `GRPOTrainer._calculate_rewards`: a conversational prompt plus its completion
through `trl.data_utils.apply_chat_template` with the reward model's tokenizer, a standard (text) prompt
concatenated with its completion; tokenized with right padding and no added special tokens; the reward is
`logits[:, 0]`. `RewardModelReward` does the same as a plain callable with TRL's reward signature, so the reward
guard, the dry run, held-out evaluation and the variance diagnostics treat it like every other reward.

Deviations from TRL: completions are scored in batches of `batch_size` (TRL scores a whole generation batch at once)
to bound memory; the model sits unsharded on this process's device (`cuda:LOCAL_RANK`, else the CPU) instead of
being prepared by accelerate (under ZeRO-3 TRL shards it); it is loaded on first use (the dry run before training),
so recipe validation stays cheap, and dropped when the reward is pickled.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from rlsurrogate.errors import ConfigError

__all__ = ["RM_PREFIX", "RewardModelReward", "make_reward_model"]

RM_PREFIX = "rm:"
_DTYPES = ("float32", "bfloat16", "float16", "auto")


def make_reward_model(
    model: str,
    batch_size: int = 16,
    revision: str | None = None,
    dtype: str = "float32",
    trust_remote_code: bool = False,
) -> RewardModelReward:
    """The reward of a sequence-classification reward model (one logit per text).

    Args:
        model: a hub id or a local directory saved with `save_pretrained` (the text after `rm:` in a recipe).
        batch_size: completions per forward pass.
        revision: hub branch, tag or commit.
        dtype: float32 | bfloat16 | float16 | auto.
        trust_remote_code: run the model repository's own code (printed when on).

    Returns:
        A callable with TRL's reward signature whose metric name is the model's last path component, as in TRL.

    Example:
        >>> reward = make_reward_model("OpenAssistant/reward-model-deberta-v3-large-v2")
        >>> reward.__name__
        'reward-model-deberta-v3-large-v2'
    """
    problems = []
    if not isinstance(model, str) or not model.strip():
        problems.append("rm: needs a hub id or a local directory after the colon, e.g. rm:org/reward-model.")
    elif model.startswith((".", "/", "~")) or Path(model).expanduser().exists():
        path = Path(model).expanduser()
        if not (path / "config.json").is_file():
            problems.append(
                f"rm:{model}: no config.json in that directory; give a directory written by save_pretrained or a "
                "hub id."
            )
    if not (isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1):
        problems.append(f"batch_size = {batch_size!r}: must be an integer >= 1.")
    if dtype not in _DTYPES:
        problems.append(f'dtype = "{dtype}": must be one of {", ".join(_DTYPES)}.')
    if problems:
        raise ConfigError(problems)
    return RewardModelReward(model, batch_size, revision, dtype, trust_remote_code)


class RewardModelReward:
    """Scores each prompt + completion with a reward model; one float per completion (TRL's `logits[:, 0]`)."""

    version = "1"

    def __init__(self, model: str, batch_size: int, revision: str | None, dtype: str, trust_remote_code: bool):
        self.model_name = model
        self.batch_size = batch_size
        self.revision = revision
        self.dtype = dtype
        self.trust_remote_code = trust_remote_code
        self.__name__ = model.rstrip("/").split("/")[-1]  # TRL: get_config_model_id(config).split("/")[-1]
        self._loaded: tuple[Any, Any] | None = None

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
        import torch

        model, tokenizer = self._load()
        texts = [_text(tokenizer, prompt, completion) for prompt, completion in zip(prompts, completions)]
        device = next(model.parameters()).device
        scores: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            batch = tokenizer(
                text=texts[start : start + self.batch_size],
                return_tensors="pt",
                padding=True,
                padding_side="right",
                add_special_tokens=False,
            ).to(device)
            with torch.inference_mode():
                scores += model(**batch).logits[:, 0].float().tolist()  # (b,)
        return scores

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_loaded": None}  # a pickled copy reloads the model where it is used

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is not None:
            return self._loaded
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = str(Path(self.model_name).expanduser()) if Path(self.model_name).expanduser().exists() else None
        source = path or self.model_name
        if self.trust_remote_code:
            print(f"rm:{self.model_name}: trust_remote_code is on; its repository's code may run.", file=sys.stderr)
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                source, revision=self.revision, trust_remote_code=self.trust_remote_code
            )
            model = AutoModelForSequenceClassification.from_pretrained(
                source,
                num_labels=1,
                revision=self.revision,
                trust_remote_code=self.trust_remote_code,
                dtype=self.dtype if self.dtype == "auto" else getattr(torch, self.dtype),
            )
        except (OSError, ValueError) as err:
            detail = " ".join(str(err).split())[:300]
            raise ConfigError(f"rm:{self.model_name}: cannot load a reward model ({detail}).") from None
        if tokenizer.pad_token_id is None:  # as TRL: the score is read at the last non-pad token
            tokenizer.pad_token = tokenizer.eos_token
        model.config.pad_token_id = tokenizer.pad_token_id
        model.to(_device()).eval()
        self._loaded = (model, tokenizer)
        return self._loaded


# ---------------------------------------------------------------------------------------------------------------


def _text(tokenizer: Any, prompt: Any, completion: Any) -> str:
    """TRL's reward-model input: the chat template over prompt + completion messages, or the two texts joined."""
    if isinstance(prompt, list):
        from trl.data_utils import apply_chat_template

        reply = completion if isinstance(completion, list) else [{"role": "assistant", "content": completion}]
        messages = prompt + reply
        return apply_chat_template({"messages": messages}, tokenizer)["text"]
    return prompt + completion


def _device() -> str:
    import torch

    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
