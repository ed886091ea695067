"""check_reward_output: one-line errors naming the reward, the sample, the prompt and the completion."""

from __future__ import annotations

import math

import pytest

from rlsurrogate.errors import RewardError
from rlsurrogate.rewards.guard import SNIPPET_CHARS, check_reward_output

PROMPTS = ["What is 1 + 1?", [{"role": "user", "content": "What is\n2 + 2?"}], "p" * 200]
COMPLETIONS = ["\\boxed{2}", [{"role": "assistant", "content": "four"}], "c" * 200]


@pytest.mark.parametrize("values", [[1.0, None, 0.5], [1, 0, -3], [None, None, None], (0.0, 1.0, 2.0)])
def test_valid_outputs_pass(values):
    check_reward_output("r", values, 3, PROMPTS, COMPLETIONS)


@pytest.mark.parametrize(
    ("values", "index", "fragment"),
    [
        ([1.0, math.nan, 0.0], 1, "nan"),
        ([1.0, 0.0, math.inf], 2, "inf"),
        ([-math.inf, 0.0, 0.0], 0, "-inf"),
        ([1.0, "1.0", 0.0], 1, "str"),
        ([1.0, 0.0, True], 2, "bool"),
        ([[1.0], 0.0, 0.0], 0, "list"),
        ([1.0, 10**400, 0.0], 1, "integer of 401 digits"),
        ([10**100_000, 0.0, 0.0], 0, "integer of over 3,000 digits"),
    ],
)
def test_bad_values_name_reward_sample_prompt_and_completion(values, index, fragment):
    with pytest.raises(RewardError) as err:
        check_reward_output("my_reward", values, 3, PROMPTS, COMPLETIONS)
    message = str(err.value)
    assert "\n" not in message
    assert "'my_reward'" in message and f"at sample {index}" in message and fragment in message
    assert "prompt: " in message and "completion: " in message
    if index == 1:
        assert "What is 2 + 2?" in message and "four" in message  # chat messages shown as one line of text
    if index == 2:
        assert "p" * SNIPPET_CHARS + "..." in message and "p" * (SNIPPET_CHARS + 1) not in message


def test_wrong_count_and_wrong_container():
    with pytest.raises(RewardError, match="returned 2 values for 3 completions"):
        check_reward_output("r", [1.0, 2.0], 3, PROMPTS, COMPLETIONS)
    with pytest.raises(RewardError, match="returned float"):
        check_reward_output("r", 1.0, 3, PROMPTS, COMPLETIONS)
    with pytest.raises(RewardError, match="returned str"):
        check_reward_output("r", "abc", 3, PROMPTS, COMPLETIONS)
    with pytest.raises(RewardError, match="returned NoneType"):
        check_reward_output("r", None, 3, None, None)


def test_numpy_and_torch_scalars_are_numbers():
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    check_reward_output("r", [np.float32(1.0), np.int64(2), torch.tensor(0.5)], 3, PROMPTS, COMPLETIONS)
    with pytest.raises(RewardError, match="nan"):
        check_reward_output("r", [np.float64("nan"), 0.0, 0.0], 3, PROMPTS, COMPLETIONS)
    with pytest.raises(RewardError, match="inf at sample 1|inf, expected"):
        check_reward_output("r", [0.0, torch.tensor(float("inf")), 0.0], 3, PROMPTS, COMPLETIONS)
    with pytest.raises(RewardError, match="Tensor"):
        check_reward_output("r", [0.0, torch.tensor([1.0, 2.0]), 0.0], 3, PROMPTS, COMPLETIONS)
