"""The evaluation callback: best checkpoint by the gold metric (ties keep the earliest), the guard stops the run
when asked, a resumed run keeps its baseline and history."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from transformers import TrainerControl, TrainerState

from rlsurrogate import eval_callback
from rlsurrogate.eval_callback import HeldOutEvaluation
from rlsurrogate.evaluation import EvalRewards
from rlsurrogate.recipe import EvalConfig


class _StubTrainer:
    def __init__(self):
        self.accelerator = SimpleNamespace(is_main_process=True, wait_for_everyone=lambda: None)
        self.processing_class = None
        self.state = None
        self.saved: list[tuple[str, int]] = []
        self.step = 0
        self.logged: list[dict] = []

    def save_model(self, path):
        self.saved.append((path, self.step))


@pytest.fixture
def scripted(monkeypatch):
    """Evaluations return scripted metrics, one per call: (trained reward, gold accuracy)."""
    script: list[tuple[float, float]] = []

    def fake_evaluate(
        rows, generate, tokenizer, rewards, max_new_tokens, batch_size, progress, step, trainer_state, multi_turn=None
    ):
        assert multi_turn is None  # single-turn runs evaluate without the tool loop
        hack, accuracy = script.pop(0)
        metrics = {"hack": hack, "accuracy": accuracy, "boxed_rate": hack, "mean_length": 20.0, "clipped_share": 0.0}
        return {"step": step, "num_prompts": 4, "metrics": metrics, "samples": [], "completions": [], "wall_s": 0.1}

    monkeypatch.setattr(eval_callback, "evaluate", fake_evaluate)
    monkeypatch.setattr(eval_callback, "trainer_generator", lambda trainer, n, **kwargs: None)
    monkeypatch.setattr(eval_callback, "_log", lambda trainer, logs: trainer.logged.append(logs))
    return script


def _callback(tmp_path, **config):
    trainer = _StubTrainer()
    rewards = EvalRewards(["hack", "accuracy"], [None, None], gold=[False, True], weights=[1.0, 0.0])
    settings = EvalConfig(every_steps=2, **config)
    return trainer, HeldOutEvaluation(trainer, [{"prompt": "q"}], rewards, settings, 48, tmp_path)


def _run(trainer, callback, steps, start=0):
    state, control = TrainerState(), TrainerControl()
    state.global_step, state.max_steps = start, steps
    callback.on_train_begin(None, state, control)
    while state.global_step < steps and not control.should_training_stop:
        state.global_step += 1
        trainer.step = state.global_step
        callback.on_step_end(None, state, control)
    callback.on_train_end(None, state, control)
    return state, control


def test_best_checkpoint_follows_gold_not_the_trained_reward(tmp_path, scripted):
    # steps 0, 2, 4, 6: the trained reward keeps rising; accuracy peaks at step 2, ties at step 4
    scripted += [(0.0, 0.1), (0.3, 0.5), (0.6, 0.5), (0.9, 0.2)]
    trainer, callback = _callback(tmp_path)
    _run(trainer, callback, 6)
    assert [step for _, step in trainer.saved] == [0, 2]  # improved at 0 and 2; the tie at 4 keeps step 2
    assert callback.best["step"] == 2 and callback.best["metrics"]["accuracy"] == 0.5
    assert json.loads((tmp_path / "best.json").read_text())["step"] == 2
    assert callback.after["step"] == 6 and json.loads((tmp_path / "eval_after.json").read_text())["step"] == 6
    assert [json.loads(line)["step"] for line in (tmp_path / "evaluations.jsonl").read_text().splitlines()] == [
        0,
        2,
        4,
        6,
    ]
    assert all("eval/accuracy" in logs for logs in trainer.logged)


def test_guard_stops_the_run_when_asked(tmp_path, scripted, capsys):
    scripted += [(0.0, 0.0), (0.5, 0.0), (0.9, 0.0), (1.0, 0.0)]
    trainer, callback = _callback(tmp_path, stop_on_hack=True)
    state, control = _run(trainer, callback, 10)
    assert callback.guard_fired_at_step == 2 and state.global_step == 2 and control.should_training_stop
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[guard]")]
    assert len(lines) == 1 and "hack" in lines[0] and "accuracy" in lines[0] and "stopping" in lines[0]
    assert callback.summary()["guard_fired_at_step"] == 2
    assert (tmp_path / "eval.png").stat().st_size > 1000


def test_guard_only_warns_by_default(tmp_path, scripted, capsys):
    scripted += [(0.0, 0.0), (0.5, 0.0), (0.9, 0.0)]
    trainer, callback = _callback(tmp_path)
    state, _ = _run(trainer, callback, 4)
    assert callback.guard_fired_at_step == 2 and state.global_step == 4
    assert sum(line.startswith("[guard]") for line in capsys.readouterr().out.splitlines()) == 1


def test_resumed_run_keeps_baseline_history_and_best(tmp_path, scripted):
    scripted += [(0.0, 0.2), (0.3, 0.4), (0.6, 0.1)]  # steps 0, 2, 4; "killed" after step 4's evaluation
    trainer, callback = _callback(tmp_path)
    _run(trainer, callback, 4)
    baseline = (tmp_path / "eval_before.json").read_text()
    scripted += [(0.7, 0.3), (0.8, 0.6)]  # resumed from checkpoint-2: steps 4, 6 again; no new baseline
    trainer, callback = _callback(tmp_path)
    _run(trainer, callback, 6, start=2)
    assert (tmp_path / "eval_before.json").read_text() == baseline
    assert [h["step"] for h in callback.history] == [0, 2, 4, 6]  # step 4 of the killed run is dropped
    assert callback.best["step"] == 6 and [step for _, step in trainer.saved] == [6]


def test_fresh_run_in_a_used_directory_starts_its_records_afresh(tmp_path, scripted):
    scripted += [(0.0, 0.9), (0.1, 0.9), (0.0, 0.1), (0.1, 0.1)]
    trainer, callback = _callback(tmp_path)
    _run(trainer, callback, 2)
    trainer, callback = _callback(tmp_path)
    _run(trainer, callback, 2)
    assert callback.best["metrics"]["accuracy"] == 0.1  # not compared against the previous run's 0.9
    assert len((tmp_path / "evaluations.jsonl").read_text().splitlines()) == 2
