"""RLTrainer's sampling seam on a tiny model with fixed completions: real TRL generation batches, real losses."""

from __future__ import annotations

import json
import math

import pytest
import torch
from datasets import Dataset, IterableDataset
from trl import GRPOConfig

from rlsurrogate.errors import ConfigError, UnsupportedError
from rlsurrogate.objectives import build_objective
from rlsurrogate.objectives.base import Objective
from rlsurrogate.sampling import build_sampler
from rlsurrogate.sampling.base import group_variance, has_signal
from rlsurrogate.sampling.batch import LOSS_NORMALISERS
from rlsurrogate.sampling.state import STATE_JSON, STATE_TENSORS
from rlsurrogate.trainer import RLTrainer

G = 4


class _Fixed(RLTrainer):
    """Completion j of a group starts with token 100 + j; lengths vary, so rounds pad to different widths."""

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        eos = self.processing_class.eos_token_id
        out = []
        for i, ids in enumerate(prompt_ids):
            j = i % num_generations
            out.append([100 + j] + [300 + sum(ids) % 50] * (1 + (j + len(ids)) % 4) + [eos])
        return out, None


def pattern_reward(completion_ids, pattern, **kwargs):
    """A "signal" prompt's completions score 0, 1, 0, 1 (variance > 0); a "flat" prompt's all score 1."""
    return [float((ids[0] - 100) % 2) if p == "signal" else 1.0 for ids, p in zip(completion_ids, pattern)]


class _Recorder(Objective):
    def __init__(self):
        self.scored, self.batches = [], []

    def on_scored(self, trainer, scored, batch):
        self.scored.append(scored)
        self.batches.append({k: v for k, v in batch.items() if isinstance(v, torch.Tensor)})
        return {}


def _dataset(patterns):
    return Dataset.from_list([{"prompt": f"What is {k} plus {k}?", "pattern": p} for k, p in enumerate(patterns)])


def _config(tmp_path, **overrides):
    kwargs = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        num_generations=G,
        max_completion_length=8,
        max_steps=2,
        learning_rate=1e-2,
        logging_steps=1,
        report_to="none",
        bf16=False,
        use_cpu=True,
        save_strategy="no",
        seed=0,
    )
    return GRPOConfig(**{**kwargs, **overrides})


def _trainer(tmp_path, tiny, patterns, sampler, objective=None, **config):
    make_model, tokenizer = tiny
    return _Fixed(
        model=make_model(0),
        reward_funcs=[pattern_reward],
        args=_config(tmp_path, **config),
        train_dataset=_dataset(patterns),
        processing_class=tokenizer,
        objective=objective or build_objective("grpo"),
        sampler=sampler,
    )


def test_dynamic_trains_only_on_groups_with_signal(tmp_path, tiny):
    recorder = _Recorder()
    patterns = ["flat", "signal", "flat", "flat"] * 6
    trainer = _trainer(tmp_path, tiny, patterns, build_sampler("dynamic", {"max_rounds": 8}), recorder)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    assert len(recorder.scored) == 2
    for scored, batch in zip(recorder.scored, recorder.batches):
        assert has_signal(group_variance(scored)).all()
        assert batch["completion_ids"].shape[0] == 8 and batch["sampling_keep"].eq(1).all()
    logged = [h for h in trainer.state.log_history if "sampling/rounds" in h]
    assert len(logged) == 2 and all(h["sampling/zero_var_share_after"] == 0.0 for h in logged)
    assert any(h["sampling/rounds"] > 1 for h in logged) and all(h["sampling/completion_tokens"] > 0 for h in logged)
    moved = [n for n, p in trainer.model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert moved


def test_uniform_hands_trl_batch_through_and_logs_the_same_figures(tmp_path, tiny):
    recorder = _Recorder()
    trainer = _trainer(tmp_path, tiny, ["flat", "signal"] * 8, None, recorder)
    trainer.train()
    assert trainer.sampler.name == "uniform"
    assert all(not any(k.startswith("sampling_") for k in b) for b in recorder.batches)
    logged = [h for h in trainer.state.log_history if "sampling/rounds" in h]
    assert [h["sampling/rounds"] for h in logged] == [1.0, 1.0]


def _micro_batch(trainer, kept: int, filler: int) -> dict:
    """A hand-made micro-batch: `kept` rows with loss tokens, then `filler` masked rows, with the sampling counts."""
    g = torch.Generator().manual_seed(0)
    n = kept + filler
    completion_mask = torch.zeros(n, 6, dtype=torch.long)
    for i in range(kept):
        completion_mask[i, : 2 + i % 4] = 1
    tokens = float(completion_mask.sum())
    prompt_ids, completion_ids = (
        torch.randint(5, 200, (kept, 5), generator=g),
        torch.randint(5, 200, (kept, 6), generator=g),
    )
    return {
        "prompt_ids": torch.cat([prompt_ids, torch.randint(5, 200, (filler, 5), generator=g)]),
        "prompt_mask": torch.ones(n, 5, dtype=torch.long),
        "completion_ids": torch.cat([completion_ids, torch.randint(5, 200, (filler, 6), generator=g)]),
        "completion_mask": completion_mask,
        "advantages": torch.cat([torch.linspace(-1.0, 1.0, kept), torch.zeros(filler)]),
        "num_items_in_batch": torch.tensor(tokens),
        "sampling_keep": torch.cat([torch.ones(kept), torch.zeros(filler)]),
        "sampling_rows": torch.tensor(float(n)),
        "sampling_kept_rows": torch.tensor(float(kept)),
        "sampling_kept_tokens": torch.tensor(tokens),
    }


@pytest.mark.parametrize("loss_type", sorted(LOSS_NORMALISERS))
def test_filler_rows_do_not_change_the_loss_of_the_kept_ones(tmp_path, tiny, loss_type):
    objective = build_objective(loss_type)
    trainer = _trainer(
        tmp_path, tiny, ["signal"] * 8, build_sampler("dynamic"), objective, **objective.config_overrides()
    )
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    results = []
    for filler in (0, 4):
        trainer.model.zero_grad()
        batch = _micro_batch(trainer, kept=4, filler=filler)
        real = batch if filler else {k: v for k, v in batch.items() if not k.startswith("sampling_")}
        loss = trainer.compute_loss(trainer.model, real)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in trainer.model.parameters() if p.grad is not None]))
    (loss_kept, grads_kept), (loss_filler, grads_filler) = results
    assert math.isfinite(float(loss_kept)) and any(g.abs().sum() > 0 for g in grads_kept)
    torch.testing.assert_close(loss_filler, loss_kept, rtol=1e-5, atol=1e-7)
    for a, b in zip(grads_filler, grads_kept, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


def test_dynamic_state_is_saved_and_restored_on_resume(tmp_path, tiny):
    patterns = ["flat", "signal", "flat", "flat"] * 6
    first = _trainer(tmp_path, tiny, patterns, build_sampler("dynamic"), save_strategy="steps", save_steps=1)
    first.train()
    saved = json.loads((tmp_path / "checkpoint-2" / STATE_JSON).read_text())
    assert saved["name"] == "dynamic" and saved["generated"] == first.sampler.generated_groups
    second = _trainer(tmp_path, tiny, patterns, build_sampler("dynamic"), max_steps=3)
    second.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    assert second.state.global_step == 3
    assert second.sampler.generated_groups >= saved["generated"] + 2  # continued from the saved count
    assert second.sampler.stream.epoch * len(patterns) + second.sampler.stream.position >= (
        saved["stream"]["epoch"] * len(patterns) + saved["stream"]["position"]
    )


@pytest.mark.parametrize("layer", [0, -1])
def test_predictive_computes_prompt_features_and_checkpoints_them(tmp_path, tiny, layer):
    patterns = ["flat", "signal", "flat"] * 8
    params = {"feature_layer": layer, "warmup": 2, "basis_prompts": 8, "feature_dims": 3}
    trainer = _trainer(
        tmp_path, tiny, patterns, build_sampler("predictive", params), save_strategy="steps", save_steps=2
    )
    trainer.train()
    sampler = trainer.sampler
    assert sampler.basis is not None and sampler.basis.components.shape == (32, 3)  # tiny model: hidden size 32
    assert len(sampler.cache) >= 8 and len(sampler.Y) == 4  # 2 steps x 2 prompts observed
    assert (tmp_path / "checkpoint-2" / STATE_TENSORS).is_file()
    logged = [h for h in trainer.state.log_history if "sampling/features_s" in h]
    assert len(logged) == 2
    restored = _trainer(tmp_path, tiny, patterns, build_sampler("predictive", params), max_steps=3)
    restored.train(resume_from_checkpoint=True)
    assert set(sampler.cache) <= set(restored.sampler.cache)
    torch.testing.assert_close(restored.sampler.basis.components, sampler.basis.components)


@pytest.mark.parametrize("layer", [3, -4])
def test_predictive_refuses_a_feature_layer_the_model_does_not_have(tmp_path, tiny, layer):
    params = {"feature_layer": layer, "basis_prompts": 4}  # tiny model: 2 layers, hidden states 0..2 or -1..-3
    trainer = _trainer(tmp_path, tiny, ["flat", "signal"] * 4, build_sampler("predictive", params), max_steps=1)
    with pytest.raises(ConfigError, match=f"feature_layer = {layer}: this model has 2 layers"):
        trainer.train()


def test_refuses_a_streamed_dataset(tmp_path, tiny):
    make_model, tokenizer = tiny
    stream = IterableDataset.from_generator(lambda: iter([{"prompt": "What is 1 plus 1?", "pattern": "flat"}] * 8))
    with pytest.raises(UnsupportedError, match="streamed"):
        _Fixed(
            model=make_model(0),
            reward_funcs=[pattern_reward],
            args=_config(tmp_path, max_steps=1),
            train_dataset=stream,
            processing_class=tokenizer,
            objective=build_objective("grpo"),
            sampler=build_sampler("dynamic"),
        )


@pytest.mark.parametrize("name", ["pass_rate", "greso"])
def test_history_samplers_log_per_step_and_resume_from_their_checkpoint(tmp_path, tiny, name):
    patterns = ["flat", "signal", "flat"] * 8  # "signal" prompts pass half their completions, "flat" ones all
    params = {"feature_dims": 3, "basis_prompts": 8} if name == "pass_rate" else {"max_rounds": 3}
    trainer = _trainer(tmp_path, tiny, patterns, build_sampler(name, params), save_strategy="steps", save_steps=2)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "sampling/rounds" in h]
    assert len(logged) == 2
    if name == "pass_rate":
        assert all(0.0 <= h["sampling/brier"] <= 1.0 and 0.0 <= h["sampling/signal_share"] <= 1.0 for h in logged)
    saved = json.loads((tmp_path / "checkpoint-2" / STATE_JSON).read_text())
    assert saved["name"] == name
    restored = _trainer(tmp_path, tiny, patterns, build_sampler(name, params), max_steps=3)
    sampler = restored.sampler
    restored.train(resume_from_checkpoint=True)
    assert restored.state.global_step == 3
    if name == "pass_rate":
        assert sampler.clock == saved["clock"] + 1  # continued from the saved generation count
        assert {int(i) for i, *_ in saved["evidence"]} <= set(sampler.evidence)
    else:
        assert sampler.calls > saved["calls"] and {int(i) for i, *_ in saved["history"]} <= set(sampler.history)
