"""`rm:<path>`: a sequence-classification reward model scores as TRL's GRPOTrainer scores the same model."""

from __future__ import annotations

import pickle

import pytest

from rlsurrogate.errors import ConfigError
from rlsurrogate.rewards import GuardedReward, build_reward, check_reward_spec

PROMPTS = [[{"role": "user", "content": "What is 2 + 2?"}], [{"role": "user", "content": "Name a colour."}]]
COMPLETIONS = [[{"role": "assistant", "content": "4"}], [{"role": "assistant", "content": "A long answer: blue."}]]


@pytest.fixture(scope="module")
def rm_dir(tmp_path_factory, tiny, tiny_reward_model):
    _, tokenizer = tiny
    path = tmp_path_factory.mktemp("rm") / "tiny-rm"
    tiny_reward_model(seed=1).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _trl_scores(rm_dir, tiny, tmp_path, prompts, completions):
    """TRL 1.16's own reward-model path: GRPOTrainer loads the model from the string and scores in
    `_calculate_rewards`."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    factory, tokenizer = tiny
    args = GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=2,
        num_generations=2,
        report_to="none",
    )
    trainer = GRPOTrainer(
        model=factory(),
        reward_funcs=[str(rm_dir)],
        args=args,
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        processing_class=tokenizer,
    )
    inputs = [{"prompt": p} for p in prompts]
    return trainer._calculate_rewards(inputs, prompts, completions, [[1]] * len(prompts))[:, 0].tolist()


def test_scores_match_trls_reward_model_path(rm_dir, tiny, tmp_path):
    reward = build_reward(f"rm:{rm_dir}", {"batch_size": 1})
    ours = reward(prompts=PROMPTS, completions=COMPLETIONS, completion_ids=[[1], [2]])
    assert ours == pytest.approx(_trl_scores(rm_dir, tiny, tmp_path, PROMPTS, COMPLETIONS), abs=1e-5)
    assert ours[0] != pytest.approx(ours[1])  # two different texts: the model is really read
    plain = build_reward(f"rm:{rm_dir}")(prompts=["2 + 2 = "], completions=["4"])
    assert plain == pytest.approx(_trl_scores(rm_dir, tiny, tmp_path / "b", ["2 + 2 = "], ["4"]), abs=1e-5)


def test_batching_does_not_change_scores(rm_dir):
    one = build_reward(f"rm:{rm_dir}", {"batch_size": 1})(prompts=PROMPTS * 3, completions=COMPLETIONS * 3)
    all_ = build_reward(f"rm:{rm_dir}", {"batch_size": 16})(prompts=PROMPTS * 3, completions=COMPLETIONS * 3)
    assert one == pytest.approx(all_, abs=1e-5)


def test_name_version_guard_and_pickle(rm_dir):
    reward = build_reward(f"rm:{rm_dir}")
    assert reward.__name__ == "tiny-rm" and reward.version == "1"  # TRL's name: the last path component
    guarded = GuardedReward(reward, timeout_s=60)
    values = guarded(prompts=PROMPTS, completions=COMPLETIONS, completion_ids=[[1], [2]])
    assert len(values) == 2 and all(isinstance(v, float) for v in values)
    copy = pickle.loads(pickle.dumps(reward))  # the loaded model is not pickled; the copy reloads it
    assert copy._loaded is None and copy(prompts=PROMPTS, completions=COMPLETIONS) == pytest.approx(values)


def test_bad_specs_are_recipe_problems(tmp_path):
    (tmp_path / "not-a-model").mkdir()
    assert "no config.json" in check_reward_spec(f"rm:{tmp_path / 'not-a-model'}")[0]
    assert "batch_size = 0" in check_reward_spec(f"rm:{tmp_path}", {"batch_size": 0})[-1]
    assert "unknown param 'temperature'" in check_reward_spec("rm:org/rm", {"temperature": 1.0})[0]
    with pytest.raises(ConfigError, match="rm: needs a hub id"):
        build_reward("rm:")
