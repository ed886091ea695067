"""The learned instruction scorer as a TRL reward: predicted black-box score (+ optional UCB bonus) of an instruction.

INSTINCT (Lin et al., ICML 2024) learns a neural network f(h; theta) that predicts an instruction's black-box score
from white-box hidden states. Exposed as a reward, the same kind of scorer lets a recipe RL-train a model to WRITE
instructions against the learned surrogate instead of paying for a black-box call per sample:

    r(instruction) = mu(h(instruction)) + ucb_weight * sigma(h(instruction))        (METHODS.md §4.1 step 8)

where h(instruction) is the final-layer hidden state of the white-box model at the last token of
"Instruction: <instruction>" (`InstructionFeaturizer`), mu the scorer's prediction and sigma its NeuralUCB bonus.

Deviation: INSTINCT's features are those of soft prompts (the text is generated afterwards); a reward sees only the
generated text, so this scorer is fitted on features of the instruction *texts* in a query log
(`fit_instruction_scorer`).
Output range: that of the task metric for mu (usually [0, 1]) plus a non-negative bonus; not clipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from rlsurrogate.errors import ConfigError
from rlsurrogate.rewards.boxed import completion_text

__all__ = ["InstructionFeaturizer", "fit_instruction_scorer", "make_instruction_reward"]

FEATURE_TEMPLATE = "Instruction: {instruction}"


class InstructionFeaturizer:
    """Instruction texts -> `(n, hidden)` last-token final-layer hidden states of a white-box model.

    Args:
        model: a causal LM (eval mode is set here).
        tokenizer: its tokenizer.
        batch_size: texts per forward pass.
    """

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 32):
        self.model, self.tokenizer, self.batch_size = model.eval(), tokenizer, batch_size

    @torch.no_grad()
    def __call__(self, instructions: list[str]) -> Tensor:
        from rlsurrogate.prompt_opt.clients import _encode_left_padded

        out = []
        for start in range(0, len(instructions), self.batch_size):
            texts = [FEATURE_TEMPLATE.format(instruction=t) for t in instructions[start : start + self.batch_size]]
            enc = _encode_left_padded(self.tokenizer, texts)  # left padding: the last position is a real token
            positions = (enc["attention_mask"].cumsum(-1) - 1).clamp_min(0)  # (b, T): padding must not shift positions
            out_ = self.model(**enc, position_ids=positions, output_hidden_states=True)
            out.append(out_.hidden_states[-1][:, -1, :].float())  # (b, hidden)
        return torch.cat(out)  # (n, hidden)


def fit_instruction_scorer(
    instructions: list[str],
    scores: list[float],
    featurize: Callable[[list[str]], Tensor],
    bandit_factory: Callable[[int], Any],
) -> _Scorer:
    """Fits a neural-bandit scorer on (instruction, black-box score) pairs, e.g. those of a query log.

    Args:
        instructions: n evaluated instructions.
        scores: their n black-box scores.
        featurize: texts -> `(n, hidden)` features (an `InstructionFeaturizer`).
        bandit_factory: feature dim -> a scorer with `update(feature, value)` and `predict(features)`.

    Returns:
        A scorer with `predict(instructions) -> (mean, bonus)`, both `(n,)`.
    """
    if len(instructions) != len(scores) or not instructions:
        raise ConfigError(
            f"need equally many instructions and scores, at least one: got {len(instructions)} and {len(scores)}."
        )
    H = featurize(list(instructions)).double()  # (n, hidden)
    mu, sd = H.mean(0), H.std(0).clamp_min(1e-8) if len(H) > 1 else torch.ones(H.shape[1], dtype=H.dtype)
    bandit = bandit_factory(H.shape[1])
    for h, y in zip((H - mu) / sd, scores):
        bandit.update(h, float(y))
    return _Scorer(featurize, bandit, mu, sd)


def make_instruction_reward(
    scorer: _Scorer, ucb_weight: float = 0.0, name: str = "instinct_scorer"
) -> _InstructionReward:
    """A TRL reward scoring each completion (an instruction) by the learned surrogate.

    `r = mu + ucb_weight * sigma` (METHODS.md §4.1 step 8); one float per completion.

    Args:
        scorer: from `fit_instruction_scorer`.
        ucb_weight: weight of the exploration bonus; 0 gives the plain predicted score.
        name: the reward's `__name__` (its metric key).

    Example:
        >>> reward = make_instruction_reward(scorer, ucb_weight=0.5)  # doctest: +SKIP
        >>> reward(prompts=["p"], completions=["Write the opposite of the word."])  # doctest: +SKIP
        [0.41]
    """
    if ucb_weight < 0:
        raise ConfigError(f"ucb_weight = {ucb_weight}: must be >= 0 (an exploration bonus, UCB = mu + w sigma).")
    return _InstructionReward(scorer, float(ucb_weight), name)


# ---- private helpers ---------------------------------------------------------------------------------------------


class _Scorer:
    def __init__(self, featurize: Callable[[list[str]], Tensor], bandit: Any, mu: Tensor, sd: Tensor):
        self.featurize, self.bandit, self.mu, self.sd = featurize, bandit, mu, sd

    def predict(self, instructions: list[str]) -> tuple[Tensor, Tensor]:
        H = (self.featurize(list(instructions)).double() - self.mu) / self.sd  # (n, hidden)
        mean, bonus = self.bandit.predict(H)
        return torch.as_tensor(mean).reshape(-1), torch.as_tensor(bonus).reshape(-1)


class _InstructionReward:
    version = 1

    def __init__(self, scorer: _Scorer, ucb_weight: float, name: str):
        self.scorer, self.ucb_weight, self.__name__ = scorer, ucb_weight, name

    def __call__(
        self, prompts: list[Any] | None = None, completions: list[Any] | None = None, **kwargs: Any
    ) -> list[float]:
        texts = [completion_text(c) for c in completions or []]
        if not texts:
            return []
        mean, bonus = self.scorer.predict(texts)
        return [float(m + self.ucb_weight * b) for m, b in zip(mean, bonus)]
