"""DisCO vs GRPO (TRL's default loss) on the built-in arithmetic task with the embedded SmolLM2-135M-Instruct.

Both objectives train the same model from the same seeds for the same number of steps on one CPU process, in the
format-only quickstart's setting (recipes/quickstart_format_only.yaml): the `boxed_number` reward (1 for exactly one
plain boxed number, 0.2 for any other box, 0 otherwise) is GRPO's reward, and DisCO's 0/1 label is that reward
binarized at `--label-threshold` (default 1.0: "one plain boxed number"). The model starts at 0 held-out accuracy and 0
boxed rate, and neither reward sees the answer; the strict accuracy reward gives both objectives no signal at all on
this model (no sampled completion is correct), so it cannot separate them. Each optimizer step takes `--prompts` prompt
groups in one micro-batch. Printed per objective: held-out greedy accuracy and boxed rate after training, mean training
reward over all steps and over the last third, steps until the 3-step running mean of the training reward first reaches
`--target`, and the median step time (TRL's `step_time`: generation, scoring, forward and backward). The last line is
JSON.

    nice -n 10 python scripts/bench_objectives.py                      # 3 seeds x 15 steps, ~45 min on 2 cores
    nice -n 10 python scripts/bench_objectives.py --seeds 0 --steps 4  # smoke run

`step_time_ratio` is the median over seeds of DisCO's median step time divided by GRPO's on the same seed (the two
runs of a seed are back to back, so pairing cancels load that changed between seeds; `step_time_ratio_pooled`
divides medians pooled over seeds); `loss_time_ratio` does the same for the objective's `compute_loss` alone (the
forward pass and the loss, without generation or backward), and
`ab_loss_backward_ratio` for compute_loss + backward timed A/B on one shared batch after training (less noisy on a
shared machine). `--eval-prompts 0` skips the held-out evaluation.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from typing import Any

REWARD = ("boxed_number", {"single_box": True, "partial_credit": 0.2})  # the format-only quickstart's reward


def objectives(label_threshold: float) -> dict[str, tuple[str, dict[str, Any]]]:
    """Registry name and params per benchmarked objective."""
    return {
        # log-L, tau 10, delta 1e-4, beta 1e3 (the paper's defaults)
        "disco": ("disco", {"label_reward": REWARD[0], "label_threshold": label_threshold}),
        "grpo": ("dapo", {}),  # TRL 1.16's default loss_type
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--prompts", type=int, default=2, help="prompt groups per optimizer step")
    parser.add_argument("--completions", type=int, default=8, help="completions per prompt")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--label-threshold", type=float, default=1.0, help="DisCO label = reward >= threshold")
    parser.add_argument("--eval-prompts", type=int, default=32)
    parser.add_argument("--target", type=float, default=0.5, help="training-reward level for steps-to-target")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--time-repeats", type=int, default=5, help="A/B repeats of the loss timing on one batch")
    args = parser.parse_args()

    from rlsurrogate.models import load_model
    from rlsurrogate.recipe import DataConfig
    from rlsurrogate.tasks.loaders import load_rows

    train_rows, eval_rows = load_rows(DataConfig(task="arithmetic", num_train=256, num_eval=args.eval_prompts))
    model, tokenizer = load_model(args.model)
    nan = {"accuracy": float("nan"), "boxed_rate": float("nan")}
    before = _heldout(model, tokenizer, eval_rows, args.max_tokens) if eval_rows else nan
    del model
    print(
        f"before training: held-out accuracy {before['accuracy']:.3f}, boxed rate {before['boxed_rate']:.3f} "
        f"({len(eval_rows)} prompts, greedy)",
        flush=True,
    )

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in objectives(args.label_threshold)}
    last: dict[str, Any] = {}
    for seed in args.seeds:
        for name in runs:
            run, last[name] = _train(name, seed, args, train_rows, eval_rows)
            runs[name].append(run)
            print(
                f"seed {seed} {name:5s}: acc {run['acc']:.3f}  boxed {run['boxed']:.3f}  "
                f"mean reward {statistics.mean(run['rewards']):.3f}  "
                f"step time {statistics.median(run['step_times']):.2f} s",
                flush=True,
            )

    ab = _time_loss_and_backward(last, args.time_repeats)
    summary = {name: _summarise(rs, args.target) for name, rs in runs.items()}
    _print_table(summary, args)
    print(
        f"compute_loss + backward on one shared batch (A/B, median of {args.time_repeats}): "
        f"disco {ab['disco']:.3f} s, grpo {ab['grpo']:.3f} s, ratio {ab['disco'] / ab['grpo']:.3f}"
    )
    result = {
        "disco_acc": summary["disco"]["acc"],
        "grpo_acc": summary["grpo"]["acc"],
        "acc_before": before["accuracy"],
        "disco_boxed_rate": summary["disco"]["boxed"],
        "grpo_boxed_rate": summary["grpo"]["boxed"],
        "boxed_rate_before": before["boxed_rate"],
        "disco_reward": summary["disco"]["reward"],
        "grpo_reward": summary["grpo"]["reward"],
        "disco_steps_to_target": summary["disco"]["steps_to_target"],
        "grpo_steps_to_target": summary["grpo"]["steps_to_target"],
        "step_time_ratio": statistics.median(
            statistics.median(d["step_times"]) / statistics.median(g["step_times"])
            for d, g in zip(runs["disco"], runs["grpo"])
        ),
        "step_time_ratio_pooled": summary["disco"]["step_time"] / summary["grpo"]["step_time"],
        "loss_time_ratio": summary["disco"]["loss_time"] / summary["grpo"]["loss_time"],
        "ab_loss_backward_s": ab,
        "ab_loss_backward_ratio": ab["disco"] / ab["grpo"],
        "seeds": args.seeds,
        "steps": args.steps,
        "target": args.target,
    }
    # NaN (no held-out evaluation) is not JSON: print null instead
    print(json.dumps({k: None if isinstance(v, float) and math.isnan(v) else v for k, v in result.items()}))


def _train(
    name: str, seed: int, args: argparse.Namespace, train_rows: list, eval_rows: list
) -> tuple[dict[str, Any], Any]:
    from datasets import Dataset
    from trl import GRPOConfig

    from rlsurrogate.models import load_model
    from rlsurrogate.objectives import build_objective
    from rlsurrogate.rewards import build_reward
    from rlsurrogate.trainer import RLTrainer

    registry_name, params = objectives(args.label_threshold)[name]
    objective = build_objective(registry_name, params)
    model, tokenizer = load_model(args.model)
    with tempfile.TemporaryDirectory() as out:
        config = GRPOConfig(
            output_dir=out,
            bf16=False,
            report_to="none",
            max_steps=args.steps,
            num_generations=args.completions,
            max_completion_length=args.max_tokens,
            per_device_train_batch_size=args.prompts * args.completions,
            gradient_accumulation_steps=1,
            learning_rate=args.lr,
            temperature=1.0,
            logging_steps=1,
            save_strategy="no",
            gradient_checkpointing=False,
            seed=seed,
            data_seed=seed,
            **objective.config_overrides(),
        )
        trainer = RLTrainer(
            model=model,
            reward_funcs=[build_reward(*REWARD)],
            args=config,
            train_dataset=Dataset.from_list(train_rows),
            processing_class=tokenizer,
            objective=objective,
        )
        loss_times: list[float] = []
        compute_loss = trainer.compute_loss

        def timed(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            out = compute_loss(*a, **k)
            loss_times.append(time.perf_counter() - start)
            return out

        trainer.compute_loss = timed
        trainer.train()
    history = trainer.state.log_history
    rewards = [h["reward"] for h in history if "reward" in h]
    step_times = [h["step_time"] for h in history if "step_time" in h][1:]  # the first step warms up
    after = _heldout(trainer.model, tokenizer, eval_rows, args.max_tokens) if eval_rows else {}
    trainer.compute_loss = compute_loss
    run = {
        "acc": after.get("accuracy", float("nan")),
        "boxed": after.get("boxed_rate", float("nan")),
        "rewards": rewards,
        "step_times": step_times or [float("nan")],
        "loss_times": loss_times[1:],
    }
    return run, trainer


def _heldout(model: Any, tokenizer: Any, rows: list, max_tokens: int) -> dict[str, Any]:
    from rlsurrogate.evaluation import evaluate_model

    return evaluate_model(model, tokenizer, rows, max_new_tokens=max_tokens)["metrics"]


def _time_loss_and_backward(trainers: dict[str, Any], repeats: int) -> dict[str, float]:
    """Median seconds of compute_loss + backward of each objective on one shared batch, alternating A/B.

    Step times on a shared machine are noisy; this isolates what the objective adds. The batch is GRPO's last
    micro-batch; DisCO gets alternating 0/1 labels on it (one question), so its weights are not all zero.
    """
    import torch

    inputs = dict(trainers["grpo"]._buffered_inputs[0])
    n = inputs["completion_ids"].shape[0]
    inputs["disco_label"] = (torch.arange(n) % 2).float()
    inputs["disco_group"] = torch.zeros(n, dtype=torch.long)
    trainers["disco"]._buffered_inputs = [inputs]
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(repeats + 1):  # the first round warms up
        for name, trainer in trainers.items():
            trainer.model.train()
            trainer._step = 0
            start = time.perf_counter()
            trainer.compute_loss(trainer.model, inputs).backward()
            times[name].append(time.perf_counter() - start)
            trainer.model.zero_grad()
    return {name: statistics.median(t[1:]) for name, t in times.items()}


def _summarise(runs: list[dict[str, Any]], target: float) -> dict[str, Any]:
    reaches = [_steps_to(r["rewards"], target) for r in runs]
    reached = [s for s in reaches if s is not None]
    tail = max(1, len(runs[0]["rewards"]) // 3)
    return {
        "acc": statistics.mean(r["acc"] for r in runs),
        "boxed": statistics.mean(r["boxed"] for r in runs),
        "acc_sd": statistics.pstdev(r["acc"] for r in runs) if not math.isnan(runs[0]["acc"]) else float("nan"),
        "reward": statistics.mean(statistics.mean(r["rewards"]) for r in runs),
        "reward_last": statistics.mean(statistics.mean(r["rewards"][-tail:]) for r in runs),
        "steps_to_target": statistics.mean(reached) if reached else None,
        "reached": f"{len(reached)}/{len(runs)}",
        "step_time": statistics.median(t for r in runs for t in r["step_times"]),
        "loss_time": statistics.median([t for r in runs for t in r["loss_times"]] or [float("nan")]),
    }


def _steps_to(rewards: list[float], target: float, window: int = 3) -> int | None:
    for i in range(len(rewards)):
        if statistics.mean(rewards[max(0, i - window + 1) : i + 1]) >= target:
            return i + 1
    return None


def _print_table(summary: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\n{len(args.seeds)} seeds x {args.steps} steps, {args.prompts} prompts x {args.completions} completions x "
        f"{args.max_tokens} tokens per step, lr {args.lr:g}, DisCO label = reward >= {args.label_threshold}, "
        f"target reward {args.target}"
    )
    header = f"{'objective':10s} {'held-out acc':>14s} {'boxed rate':>11s} {'reward':>8s} {'reward (last 1/3)':>18s} "
    header += f"{'steps to target':>16s} {'step time s':>12s} {'loss time s':>12s}"
    print(header)
    for name, s in summary.items():
        to_target = (
            f"{s['steps_to_target']:.1f} ({s['reached']})" if s["steps_to_target"] is not None else "not reached"
        )
        print(
            f"{name:10s} {s['acc']:>8.3f}±{s['acc_sd']:.3f} {s['boxed']:>11.3f} {s['reward']:>8.3f} "
            f"{s['reward_last']:>18.3f} {to_target:>16s} {s['step_time']:>12.2f} {s['loss_time']:>12.3f}"
        )


if __name__ == "__main__":
    main()
