"""Held-out evaluation during training: before, every `eval.every_steps`, at the last step; the guard; `best/`.

`HeldOutEvaluation` is a `TrainerCallback` run by every process. Its evaluations use `evaluation.evaluate` on the
trainer's devices (after `accelerator.prepare`, so never on a CPU copy of a GPU run), log `eval/<metric>` to
`log_history.json` and every tracker in `report_to`, and feed the hacking guard (`hacking_guard.check_hacking`).
When the first gold metric improves, the model is saved to `output_dir/best/` (ties keep the earliest), while
`final/` stays the last model. Files written into `output_dir` by the main process:
- `eval_before.json`, `eval_after.json`: the first and last evaluations with sample completions;
- `evaluations.jsonl`: one line of metrics per evaluation (a resumed run reads back the steps it keeps);
- `best.json`: step and metrics of `best/`;
- `eval.png`: trained rewards and gold metrics per evaluation, the guard's firing marked.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from rlsurrogate.evaluation import EvalRewards, evaluate, trainer_generator
from rlsurrogate.hacking_guard import check_hacking

__all__ = ["HeldOutEvaluation"]


class HeldOutEvaluation(TrainerCallback):
    """Evaluates the trainer's model on held-out rows on every process, guards against hacking, keeps the best.

    Args:
        trainer: the RLTrainer (its devices, generation path and save_model are used).
        rows: held-out rows (prompt + dataset columns).
        rewards: the recipe's rewards with their gold flags.
        config: the recipe's `eval` section (every_steps, before, after, batch_size, guard_window, guard_min_rise,
            stop_on_hack).
        max_new_tokens: generation budget per prompt.
        output_dir: the run's output directory.
        multi_turn: the tool-calling loop (`rlsurrogate.environments.multi_turn.MultiTurn`) for runs with tools or
            environments; None: single-turn.
    """

    def __init__(
        self,
        trainer: Any,
        rows: list[dict[str, Any]],
        rewards: EvalRewards,
        config: Any,
        max_new_tokens: int,
        output_dir: str | Path,
        multi_turn: Any = None,
    ):
        self.trainer = trainer
        self.multi_turn = multi_turn
        self.rows = rows
        self.rewards = rewards
        self.config = config
        self.max_new_tokens = max_new_tokens
        self.out = Path(output_dir)
        self.history: list[dict[str, Any]] = []  # {"step", "metrics", "guard"} per evaluation
        self.before: dict[str, Any] | None = None
        self.after: dict[str, Any] | None = None
        self.best: dict[str, Any] | None = None
        self.guard_fired_at_step: int | None = None

    # -- TrainerCallback hooks (called on every process) ----------------------------------------------------------

    def on_train_begin(self, args, state, control, **kwargs):
        resumed = state.global_step > 0
        if resumed:
            self._restore(state.global_step)
        elif self._is_main:  # a fresh run in a used output_dir starts its records afresh
            for name in ("evaluations.jsonl", "best.json", "eval_before.json", "eval_after.json"):
                (self.out / name).unlink(missing_ok=True)
        if not (self.config.before and self.rows):
            return control
        stored = self.out / "eval_before.json"
        if resumed and stored.is_file():  # a resumed run keeps its baseline
            self.before = json.loads(stored.read_text())
            return control
        self.before = self._evaluate(state.global_step, "before training")
        if self._is_main:
            _write_json(stored, self.before)
        return control

    def on_step_end(self, args, state, control, **kwargs):
        every = self.config.every_steps
        if not (every and self.rows) or (state.global_step % every and state.global_step < state.max_steps):
            return control
        self._evaluate(state.global_step, f"step {state.global_step}")
        if self.guard_fired_at_step is not None and self.config.stop_on_hack:
            control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if not (self.config.after and self.rows):
            return control
        last = self.history[-1] if self.history else None
        if last is None or last["step"] != state.global_step or last.get("result") is None:
            self._evaluate(state.global_step, "after training")
        self.after = self.history[-1]["result"]
        if self._is_main:
            _write_json(self.out / "eval_after.json", self.after)
        return control

    # -- results -----------------------------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The figures the run's summary reports: guard, best checkpoint, number of evaluations."""
        walls = [h["wall_s"] for h in self.history if h.get("wall_s") is not None]
        return {
            "evaluations": len(self.history),
            "mean_eval_wall_s": sum(walls) / len(walls) if walls else None,
            "gold_metrics": self.rewards.gold_names,
            "guard_fired_at_step": self.guard_fired_at_step,
            "best_checkpoint": self.best,
        }

    # -- internals ---------------------------------------------------------------------------------------------------

    @property
    def _is_main(self) -> bool:
        return self.trainer.accelerator.is_main_process

    def _evaluate(self, step: int, title: str) -> dict[str, Any]:
        result = evaluate(
            self.rows,
            trainer_generator(self.trainer, self.max_new_tokens, keep_eos=self.multi_turn is not None),
            self.trainer.processing_class,
            self.rewards,
            self.max_new_tokens,
            self.config.batch_size,
            progress=True,
            step=step,
            trainer_state=self.trainer.state,
            multi_turn=self.multi_turn,
        )
        result.pop("completions")
        metrics = result["metrics"]
        verdict = check_hacking(
            [h["metrics"] for h in self.history] + [metrics],
            self.rewards.trained_names,
            self.rewards.gold_names,
            self.config.guard_window,
            self.config.guard_min_rise,
            self.max_new_tokens,
        )
        record = {"step": step, "metrics": metrics, "guard": verdict.metrics, "wall_s": result["wall_s"]}
        self.history.append({**record, "result": result})
        logs = {f"eval/{k}": v for k, v in metrics.items() if v is not None} | verdict.metrics
        logs["eval/wall_s"] = result["wall_s"]
        _log(self.trainer, logs)
        if self._is_main:
            _print_eval(title, result)
            self.out.mkdir(parents=True, exist_ok=True)
            with (self.out / "evaluations.jsonl").open("a") as f:
                f.write(json.dumps(record) + "\n")
        if verdict.fired and self.guard_fired_at_step is None:
            self.guard_fired_at_step = step
            if self._is_main:
                action = (
                    "stopping the run (eval.stop_on_hack)"
                    if self.config.stop_on_hack
                    else ("set eval.stop_on_hack: true to stop such runs")
                )
                print(f"[guard] step {step}: likely reward hacking: {verdict.reason}; {action}.", flush=True)
        self._keep_if_best(step, metrics)
        if self._is_main:
            _plot(self.history, self.rewards, self.guard_fired_at_step, self.out / "eval.png")
        return result

    def _keep_if_best(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.rewards.gold_names:
            return
        gold = self.rewards.gold_names[0]
        value = metrics.get(gold)
        if value is None or (self.best is not None and value <= self.best["metrics"][gold]):
            return
        path = self.out / "best"
        if self._is_main:
            shutil.rmtree(path, ignore_errors=True)
        self.trainer.accelerator.wait_for_everyone()
        self.trainer.save_model(str(path))  # every process: sharded weights are gathered collectively
        self.best = {"path": str(path), "step": step, "metrics": metrics}
        if self._is_main:
            _write_json(self.out / "best.json", self.best)

    def _restore(self, step: int) -> None:
        """On resume: the evaluations and the best checkpoint up to the resumed step."""
        log = self.out / "evaluations.jsonl"
        if not log.is_file():
            return
        for line in log.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill; the evaluations before it stay
            if record.get("step", step + 1) <= step:
                self.history.append({**record, "result": None})
                if record.get("guard", {}).get("guard/fired") and self.guard_fired_at_step is None:
                    self.guard_fired_at_step = record["step"]
        best = self.out / "best.json"
        if best.is_file():
            stored = json.loads(best.read_text())
            self.best = stored if stored.get("step", step + 1) <= step else None


# ---------------------------------------------------------------------------------------------------------------


def _log(trainer: Any, logs: dict[str, float]) -> None:
    """Logs through the HF Trainer (log_history and every report_to tracker), bypassing GRPOTrainer.log, which
    would flush its pending training metrics into this row. The HF callback handler clears `should_log` on every
    log; restoring it keeps this step's training log, which is written after the step-end callbacks."""
    from transformers import Trainer

    should_log = trainer.control.should_log
    Trainer.log(trainer, dict(logs))
    trainer.control.should_log = should_log


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    tmp.replace(path)


def _print_eval(title: str, result: dict[str, Any]) -> None:
    parts = [f"{name} {value:.3f}" for name, value in result["metrics"].items() if value is not None]
    print(f"[eval {title}] {'  '.join(parts)}  ({result['num_prompts']} held-out prompts, {result['wall_s']:.1f} s)")


def _plot(history: list[dict[str, Any]], rewards: EvalRewards, fired_at: int | None, path: Path) -> None:
    names = rewards.trained_names + rewards.gold_names
    if len(history) < 2 or not names:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [h["step"] for h in history]
    for name in names:
        values = [h["metrics"].get(name) for h in history]
        style = "-" if name in rewards.gold_names else "--"
        label = f"{name} ({'gold' if name in rewards.gold_names else 'trained'})"
        ax.plot(steps, [float("nan") if v is None else v for v in values], style, marker="o", label=label)
    if fired_at is not None:
        ax.axvline(fired_at, color="red", ls=":", label=f"guard fired (step {fired_at})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("held-out mean (greedy)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
