"""DisCO or SSO through RLTrainer on 1 or 2 CPU processes; writes per-step loss, grad norm and the objective's
metric (DisCO: KL; SSO: the targets' shift) to a JSON file.

Launched by `test_disco.py::test_two_processes_equal_one` and `test_sso.py::test_two_processes_equal_one`:
    accelerate launch --multi_gpu --num_processes 2 tests/objectives/objective_distributed.py --out two.json \
        --objective disco --per-device 4 --accumulation 2 --steps-per-generation 2
    accelerate launch --num_processes 1 tests/objectives/objective_distributed.py --out one.json \
        --objective sso --base dapo --per-device 4 --accumulation 4 --steps-per-generation 4
(`--cpu --num_processes 2` would start a single process.) Generation is replaced by a deterministic function of
(prompt, position in the group), so both layouts train on the same completions; TRL's shuffle and split still run
and differ between the layouts, which is what the full-batch loss must be invariant to.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile

import torch
from datasets import Dataset
from trl import GRPOConfig

from rlsurrogate.models import tiny_model
from rlsurrogate.objectives import build_objective
from rlsurrogate.process_exit import exit_process
from rlsurrogate.trainer import RLTrainer

G = 4


class _FixedCompletions(RLTrainer):
    """Completions depend only on the prompt and the completion's index within its group."""

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        offset = self.accelerator.process_index * len(prompt_ids)
        completions = []
        for i, ids in enumerate(prompt_ids):
            rng = random.Random(hash((tuple(ids), (offset + i) % G)) % 2**31)
            length = rng.randint(2, 8)
            tokens = [rng.randrange(100, 5000) for _ in range(length)]
            if length < 8:
                tokens.append(self._tokenizer.eos_token_id)
            completions.append(tokens)
        return completions, None


def _first_token_parity(completion_ids, **kwargs):
    return [float(ids[0] % 2 == 0) for ids in completion_ids]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--per-device", type=int, default=4)
    parser.add_argument("--accumulation", type=int, default=2)
    parser.add_argument("--steps-per-generation", type=int, default=2)
    parser.add_argument("--objective", choices=("disco", "sso"), default="disco")
    parser.add_argument("--base", default="dapo", help="SSO's base objective")
    parser.add_argument("--max-steps", type=int, default=None, help="default: DisCO 2, SSO 4")
    args = parser.parse_args()

    torch.use_deterministic_algorithms(True)
    model, tokenizer = tiny_model(seed=0)
    dataset = Dataset.from_list([{"prompt": f"What is {a} plus {2 * a + 1}?"} for a in range(32)])
    if args.objective == "disco":
        objective = build_objective("disco", {"label_reward": "_first_token_parity", "tau": 0.5, "delta": 1e-7})
        metric, max_steps = "kl", args.max_steps or 2
    else:
        # 2 inner steps: steps 1 and 3 start a generation (at theta_t), steps 2 and 4 are inner steps with z != z_t
        params = {"base": args.base, "inner_steps": 2, "eta": 0.5}
        if args.base == "disco":
            params.update(label_reward="_first_token_parity", tau=0.5)
        objective = build_objective("sso", params)
        metric, max_steps = "target_shift", args.max_steps or 4
    with tempfile.TemporaryDirectory() as out_dir:
        config = GRPOConfig(
            output_dir=out_dir,
            bf16=False,
            use_cpu=True,  # with --multi_gpu and no GPU, this selects the gloo backend
            report_to="none",
            max_steps=max_steps,
            num_generations=G,
            max_completion_length=8,
            per_device_train_batch_size=args.per_device,
            gradient_accumulation_steps=args.accumulation,
            steps_per_generation=args.steps_per_generation,
            learning_rate=5e-3,
            logging_steps=1,
            save_strategy="no",
            seed=0,
            data_seed=0,
            **objective.config_overrides(),
        )
        trainer = _FixedCompletions(
            model=model,
            reward_funcs=[_first_token_parity],
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            objective=objective,
        )
        trainer.train()
    if trainer.accelerator.is_main_process:
        steps = [
            {"loss": h["loss"], "grad_norm": h["grad_norm"], metric: h[f"objective/{metric}"]}
            for h in trainer.state.log_history
            if "loss" in h
        ]
        checksum = sum(float((p.detach().double() ** 2).sum()) for p in trainer.model.parameters())
        result = {"world_size": trainer.accelerator.num_processes, "steps": steps, "param_checksum": checksum}
        with open(args.out, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main()
    exit_process(0)  # closes the gloo group; its worker threads cannot abort the finished process at teardown
