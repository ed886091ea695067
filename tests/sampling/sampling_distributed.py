"""A sampler through RLTrainer on 2 CPU processes (gloo); each process writes what it decided and trained on.

Launched by `test_distributed.py`:
    accelerate launch --multi_gpu --num_processes 2 tests/sampling/sampling_distributed.py --out DIR --objective grpo \
        --sampler dynamic --params '{"max_rounds": 6}'
Completions are fixed (completion j of a group starts with token 100 + j) and a prompt's reward pattern decides
whether its group has signal, so which groups must be kept is known.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import torch
from datasets import Dataset
from trl import GRPOConfig

from rlsurrogate.models import tiny_model
from rlsurrogate.objectives import build_objective
from rlsurrogate.objectives.base import Objective
from rlsurrogate.process_exit import exit_process
from rlsurrogate.sampling import build_sampler
from rlsurrogate.trainer import RLTrainer

G = 4


class _Fixed(RLTrainer):
    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        eos = self.processing_class.eos_token_id
        return [[100 + i % num_generations, 300 + sum(ids) % 50, eos] for i, ids in enumerate(prompt_ids)], None


def pattern_reward(completion_ids, pattern, **kwargs):
    return [float((ids[0] - 100) % 2) if p == "signal" else 1.0 for ids, p in zip(completion_ids, pattern)]


class _Watch(Objective):
    """Wraps an objective and records, per generation, the ScoredBatch and this process's trained prompts."""

    def __init__(self, inner: Objective, tokenizer):
        self.inner, self.tokenizer, self.seen = inner, tokenizer, []

    def config_overrides(self):
        return self.inner.config_overrides()

    def on_scored(self, trainer, scored, batch):
        keep = batch.get("sampling_keep", torch.ones(batch["prompt_ids"].shape[0]))
        prompts = self.tokenizer.batch_decode(batch["prompt_ids"], skip_special_tokens=True)
        self.seen.append(
            {
                "rewards": [None if math.isnan(v) else v for v in scored.rewards_per_func[:, 0].tolist()],
                "group_ids": scored.group_ids.tolist(),
                "prompts": [p for p, k in zip(prompts, keep.tolist()) if k == 1],
            }
        )
        return self.inner.on_scored(trainer, scored, batch)

    def compute_loss(self, trainer, model, inputs):
        return self.inner.compute_loss(trainer, model, inputs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--objective", default="grpo")
    parser.add_argument("--sampler", default="dynamic")
    parser.add_argument("--params", default='{"max_rounds": 6}', help="the sampler's settings (JSON)")
    args = parser.parse_args()

    model, tokenizer = tiny_model(seed=0)
    patterns = ["flat", "signal", "flat", "flat", "signal", "flat"] * 6
    dataset = Dataset.from_list([{"prompt": f"question {k} is {p}", "pattern": p} for k, p in enumerate(patterns)])
    params = {"label_reward": "pattern_reward"} if args.objective.startswith("disco") else {}
    objective = _Watch(build_objective(args.objective, params), tokenizer)
    with tempfile.TemporaryDirectory() as out_dir:
        config = GRPOConfig(
            output_dir=out_dir,
            bf16=False,
            use_cpu=True,  # with --multi_gpu and no GPU, this selects the gloo backend
            report_to="none",
            max_steps=3,
            num_generations=G,
            max_completion_length=4,
            per_device_train_batch_size=4,
            gradient_accumulation_steps=1,
            steps_per_generation=2,
            learning_rate=1e-3,
            logging_steps=1,
            save_strategy="no",
            seed=0,
            **objective.config_overrides(),
        )
        trainer = _Fixed(
            model=model,
            reward_funcs=[pattern_reward],
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            objective=objective,
            sampler=build_sampler(args.sampler, json.loads(args.params)),
        )
        trainer.train()
    logs = [  # every figure but the timings (`*_s`), which differ by process
        {k: v for k, v in h.items() if k.startswith("sampling/") and not k.endswith("_s")}
        for h in trainer.state.log_history
        if "sampling/rounds" in h
    ]
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    rank = trainer.accelerator.process_index
    result = {"world_size": trainer.accelerator.num_processes, "seen": objective.seen, "logs": logs, "losses": losses}
    Path(args.out, f"rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
    exit_process(0)  # closes the gloo group; its worker threads cannot abort the finished process at teardown
