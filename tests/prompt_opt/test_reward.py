"""The learned scorer as a TRL reward: contract, UCB bonus, pickling, and the white-box featurizer."""

from __future__ import annotations

import pickle
import string

import pytest
import torch

from rlsurrogate.errors import ConfigError
from rlsurrogate.prompt_opt.reward import InstructionFeaturizer, fit_instruction_scorer, make_instruction_reward

neural_bandit = pytest.importorskip("rlsurrogate.blackbox.neural_bandit")


class LetterCounts:
    """A deterministic, picklable featurizer: letter frequencies (stands in for the white-box model)."""

    def __call__(self, texts):
        return torch.tensor(
            [[t.lower().count(c) for c in string.ascii_lowercase[:8]] for t in texts], dtype=torch.float64
        )


def _bandit(dim):
    return neural_bandit.NeuralUCB(dim, width=16, train_steps=50, n_eval=None, seed=0)


@pytest.fixture(scope="module")
def scorer():
    instructions = ["add the numbers", "write a cat", "be bad", "dig deep", "each face", "feed a bee"]
    scores = [0.1, 0.5, 0.9, 0.2, 0.7, 0.4]
    return fit_instruction_scorer(instructions, scores, LetterCounts(), _bandit)


def test_reward_returns_one_float_per_completion_in_text_and_chat_format(scorer):
    reward = make_instruction_reward(scorer)
    texts = ["be a bad cab", "hello", "deaf face"]
    plain = reward(prompts=["p"] * 3, completions=texts)
    chat = reward(
        prompts=["p"] * 3, completions=[[{"role": "assistant", "content": t}] for t in texts], extra=[1, 2, 3]
    )
    assert len(plain) == 3 and all(isinstance(r, float) for r in plain)
    assert plain == chat
    assert reward(prompts=[], completions=[]) == []


def test_reward_is_the_predicted_mean_plus_weighted_bonus(scorer):
    texts = ["be a bad cab", "hello", "deaf face"]
    mean, bonus = scorer.predict(texts)
    assert torch.all(bonus >= 0)
    torch.testing.assert_close(
        torch.tensor(make_instruction_reward(scorer)(completions=texts), dtype=torch.float64), mean
    )
    ucb = make_instruction_reward(scorer, ucb_weight=2.0)(completions=texts)
    torch.testing.assert_close(torch.tensor(ucb, dtype=torch.float64), mean + 2.0 * bonus)


def test_scorer_fits_its_training_data(scorer):
    mean, _ = scorer.predict(["be bad", "add the numbers"])
    assert float(mean[0]) > float(mean[1])  # 0.9 vs 0.1 in the training data


def test_reward_is_picklable_and_named(scorer):
    reward = make_instruction_reward(scorer, ucb_weight=0.5, name="my_scorer")
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.__name__ == "my_scorer" and clone.version == 1
    assert clone(completions=["face"]) == reward(completions=["face"])


def test_bad_arguments_raise():
    with pytest.raises(ConfigError, match="ucb_weight"):
        make_instruction_reward(object(), ucb_weight=-1)
    with pytest.raises(ConfigError, match="equally many"):
        fit_instruction_scorer(["a"], [0.1, 0.2], LetterCounts(), _bandit)


def test_featurizer_is_padding_invariant(tiny):
    model_factory, tokenizer = tiny
    featurize = InstructionFeaturizer(model_factory(seed=0), tokenizer)
    alone = featurize(["Add."])
    batched = featurize(["Add.", "Write the opposite of every word you are given, please."])
    assert batched.shape == (2, featurize.model.config.hidden_size)
    torch.testing.assert_close(batched[:1], alone, rtol=1e-4, atol=1e-4)
