"""Dynamic sampling on a fake world of 1-2 processes: exactly the zero-variance groups are dropped, every process
agrees, refills come from the stream, and when the rounds run out the filler stays out of the loss."""

from __future__ import annotations

import math

import pytest
import torch

from rlsurrogate.errors import ConfigError
from rlsurrogate.sampling import build_sampler
from rlsurrogate.sampling.base import group_variance, has_signal
from rlsurrogate.sampling.batch import filler_loss_scale
from tests.sampling.fake_world import FakeWorld, first_inputs, make_rows

G = 4


def _run(world: FakeWorld, sampler_params: dict, share: int):
    """Binds one dynamic sampler per fake process and runs one generation on each."""

    def one(ctx):
        sampler = build_sampler("dynamic", sampler_params)
        sampler.bind(ctx)
        return sampler.sample(ctx, first_inputs(world, ctx.process_index, share)), sampler

    return world.run(one)


def _indices(batch) -> list[int]:
    """Dataset index of each local row (the fake world writes it into the last prompt token)."""
    return batch["prompt_ids"][:, -1].tolist()


@pytest.mark.parametrize("processes", [1, 2])
def test_keeps_exactly_the_groups_with_signal_and_every_process_agrees(processes):
    patterns = ["flat", "signal", "flat", "flat"] + ["flat", "signal", "nan", "signal", "flat"] * 8
    world = FakeWorld(make_rows(patterns), processes, G)
    results = _run(world, {"max_rounds": 10}, share=2)
    (first, _), *others = results
    for sampled, _ in others:  # identical decisions: the same trained groups and figures on every process
        assert torch.equal(sampled.scored.rewards_per_func, first.scored.rewards_per_func)
        assert torch.equal(sampled.scored.group_ids, first.scored.group_ids)
        assert sampled.metrics.keys() == first.metrics.keys()
        assert all(sampled.metrics[k] == first.metrics[k] for k in first.metrics if k != "sampling/overhead_s"), (
            "processes disagree"
        )
    var = group_variance(first.scored)
    assert has_signal(var).all() and len(var) == 2 * processes  # a full batch, every group with signal
    m = first.metrics
    assert m["sampling/groups_kept"] == 2 * processes and m["sampling/short"] == 0.0
    assert m["sampling/zero_var_share_after"] == 0.0 and m["sampling/zero_var_share_before"] > 0.0
    assert m["sampling/rounds"] > 1 and m["sampling/rounds"] == world.calls
    generated = m["sampling/prompts_generated"]
    # every generated group with signal is trained on or discarded (a process's share was full); no flat one is
    with_signal = round(generated * (1 - m["sampling/zero_var_share_before"]))
    assert with_signal == m["sampling/groups_kept"] + m["sampling/groups_discarded"]
    for sampled, _ in results:
        rows = [world.rows[i] for i in _indices(sampled.batch)]
        assert {row["pattern"] for row in rows} == {"signal"}
        assert sampled.batch["sampling_keep"].eq(1).all()
        assert sampled.batch["completion_ids"].shape[0] == 2 * G


def test_local_batch_is_padded_like_trl_and_counts_the_kept_tokens():
    patterns = ["flat", "signal"] + ["signal", "flat"] * 10
    world = FakeWorld(make_rows(patterns), 1, G)
    ((sampled, _),) = _run(world, {"max_rounds": 5}, share=2)
    batch = sampled.batch
    width = batch["prompt_ids"].shape[1]
    assert batch["prompt_mask"].shape == (2 * G, width)
    left_padded = batch["prompt_mask"][:, 0] == 0
    assert left_padded.any(), "rounds of different prompt widths are left-padded to one width"
    assert (batch["prompt_ids"][left_padded, 0] == 0).all()
    assert batch["prompt_mask"].sum(1).tolist() == (batch["prompt_ids"] != 0).sum(1).tolist()
    assert batch["completion_ids"].shape == batch["completion_mask"].shape == batch["old_per_token_logps"].shape
    assert float(batch["num_items_in_batch"]) == float(batch["completion_mask"].sum())
    assert float(batch["sampling_kept_tokens"]) == float(batch["completion_mask"].sum())
    assert sampled.metrics["sampling/completion_tokens"] > float(batch["completion_mask"].sum())


@pytest.mark.parametrize("processes", [1, 2])
def test_rounds_exhausted_fill_with_masked_filler_that_borrows_a_kept_group(processes):
    patterns = ["signal", "flat"] * 2 + ["flat"] * 40
    world = FakeWorld(make_rows(patterns), processes, G)
    results = _run(world, {"max_rounds": 2}, share=2)
    for sampled, _ in results:
        batch, scored, m = sampled.batch, sampled.scored, sampled.metrics
        assert m["sampling/short"] == 1.0 and m["sampling/groups_kept"] == processes
        assert m["sampling/zero_var_share_after"] == 0.5
        filler = batch["sampling_keep"] == 0
        assert filler.sum() == G  # one kept group and one filler group per process
        assert batch["completion_mask"][filler].sum() == 0 and batch["advantages"][filler].eq(0).all()
        local = scored.rewards_per_func[scored.local_slice]
        assert torch.isnan(local[filler]).all() and not torch.isnan(local[~filler]).any()
        ids = scored.group_ids[scored.local_slice]
        assert set(ids[filler].tolist()) <= set(scored.group_ids[~torch.isnan(scored.rewards_per_func[:, 0])].tolist())
        assert float(batch["sampling_rows"]) == 2 * G * processes
        assert float(batch["sampling_kept_rows"]) == G * processes
        assert float(batch["num_items_in_batch"]) == float(batch["sampling_kept_tokens"])


def test_no_signal_anywhere_gives_a_zero_policy_gradient():
    world = FakeWorld(make_rows(["flat"] * 30), 1, G)
    ((sampled, _),) = _run(world, {"max_rounds": 3}, share=2)
    assert sampled.metrics["sampling/groups_kept"] == 0 and sampled.metrics["sampling/rounds"] == 3
    assert filler_loss_scale("grpo", sampled.batch, 1, 1) == 0.0
    assert float(sampled.batch["num_items_in_batch"]) == 0.0


def test_unscored_groups_count_as_no_signal():
    world = FakeWorld(make_rows(["nan", "signal", "nan", "signal"] * 5), 1, G)
    ((sampled, _),) = _run(world, {"max_rounds": 4}, share=2)
    assert not torch.isnan(sampled.scored.rewards_per_func).any()
    assert {world.rows[i]["pattern"] for i in _indices(sampled.batch)} == {"signal"}


def test_refill_rounds_are_sized_by_the_keep_rate():
    sampler = build_sampler("dynamic")
    sampler.generated_groups, sampler.signal_groups = 98, 49  # smoothed keep rate (49 + 1) / (98 + 2) = 0.5
    assert sampler._refill_size(deficit=1, share=8) == 2
    assert sampler._refill_size(deficit=3, share=8) == 6
    assert sampler._refill_size(deficit=8, share=8) == 8  # never more than a full share
    sampler.generated_groups, sampler.signal_groups = 10, 0  # nothing kept so far: a full share
    assert sampler._refill_size(deficit=1, share=4) == 4


def test_refills_draw_fresh_prompts_from_a_resumable_stream():
    world = FakeWorld(make_rows(["flat", "flat"] + ["signal", "flat", "flat"] * 10), 1, G)
    ((sampled, sampler),) = _run(world, {"max_rounds": 10}, share=2)
    state, tensors = sampler.state_dict()
    again = build_sampler("dynamic", {"max_rounds": 10})
    again.bind(_OneProcess(world))
    again.load_state_dict(state, tensors)
    assert again.stream.draw(5) == sampler.stream.draw(5)
    assert math.isclose(again.signal_groups / again.generated_groups, sampler.signal_groups / sampler.generated_groups)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"max_rounds": 0}, "max_rounds = 0: must be a whole number of generation rounds in \\[1, 1000\\]"),
        ({"max_rounds": "3"}, "max_rounds = '3'"),
        ({"max_rounds": True}, "max_rounds = True"),
        ({"rounds": 3}, "sampling.params.rounds: unknown for dynamic. Valid: max_rounds"),
    ],
)
def test_bad_settings_are_one_line_each(params, message):
    with pytest.raises(ConfigError, match=message):
        build_sampler("dynamic", params)


def test_check_wants_whole_groups_on_every_process():
    values = {"per_device_train_batch_size": 6, "gradient_accumulation_steps": 1, "steps_per_generation": None}
    problems = build_sampler("dynamic").check(values.get, num_processes=2, num_generations=4)
    assert len(problems) == 1 and "6 x 1 = 6 completions, not a multiple of num_generations 4" in problems[0]
    assert build_sampler("uniform").check(values.get, 2, 4) == []
    values["per_device_train_batch_size"] = 8
    assert build_sampler("dynamic").check(values.get, 2, 4) == []


class _OneProcess:
    def __init__(self, world):
        self.world, self.seed = world, 0

    def dataset_size(self) -> int:
        return len(self.world.rows)
