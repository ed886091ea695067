"""Keyword reward: the fraction of the given keywords that a completion contains (0.0 to 1.0).

An example of a reward with parameters. The recipe names the FACTORY and passes `params`; the factory checks them
once and returns the reward:

    rewards:
      - {name: rewards/keywords.py:make_keyword_reward, weight: 0.5, params: {keywords: [total, answer]}}

The reward is an instance of a small class rather than a closure so that it can be pickled (TRL may send rewards
to other processes), and it sets `__name__`, which TRL uses for its metric key (`rewards/keywords/mean`).
This file does not import rlsurrogate: any file with functions of this shape works.
"""

from __future__ import annotations

from typing import Any


def make_keyword_reward(keywords: list[str], case_sensitive: bool = False) -> KeywordReward:
    """Reward = (number of `keywords` found in the completion) / len(keywords).

    Example:
        >>> reward = make_keyword_reward(["total", "answer"])
        >>> reward(completions=["The Total is 5.", "no", [{"role": "assistant", "content": "answer: 5, total 5"}]])
        [0.5, 0.0, 1.0]
    """
    if isinstance(keywords, str) or not keywords or not all(isinstance(k, str) and k for k in keywords):
        raise ValueError(f"keywords = {keywords!r}: must be a non-empty list of non-empty strings, e.g. [total]")
    return KeywordReward(list(keywords), bool(case_sensitive))


class KeywordReward:
    __name__ = "keywords"
    version = "1"

    def __init__(self, keywords: list[str], case_sensitive: bool):
        self.keywords = keywords if case_sensitive else [k.lower() for k in keywords]
        self.case_sensitive = case_sensitive

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float]:
        rewards = []
        for completion in completions:
            if not isinstance(completion, str):  # chat format: a list of messages
                completion = "".join(str(message.get("content", "")) for message in completion)
            text = completion if self.case_sensitive else completion.lower()
            rewards.append(sum(k in text for k in self.keywords) / len(self.keywords))
        return rewards
