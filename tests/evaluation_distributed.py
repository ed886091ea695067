"""Held-out evaluation on 1 or 2 CPU processes, with plain or FSDP2-sharded weights; writes the result as JSON.

Launched by `test_evaluation.py`:
    python tests/evaluation_distributed.py --out one.json
    accelerate launch --multi_gpu --num_processes 2 tests/evaluation_distributed.py --out two.json [--fsdp2]
`--fsdp2` shards the tiny model with `torch.distributed.fsdp.fully_shard` (gloo), so every greedy step all-gathers
weights: a process that generated fewer steps than the other would hang. One row's batch is made to stop after its
second token (that token is declared an EOS), so the processes finish their batches at different steps. The tiny
model's weights are drawn large enough that its greedy completions differ between prompts.
"""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext

import torch

from rlsurrogate.evaluation import EvalRewards, evaluate, hf_generator, process_state, prompt_token_ids
from rlsurrogate.models import tiny_model
from rlsurrogate.process_exit import exit_process
from rlsurrogate.rewards import build_reward
from rlsurrogate.tasks import build_task


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--fsdp2", action="store_true")
    parser.add_argument("--rows", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=6)
    parser.add_argument("--early-eos", action="store_true", help="declare row 0's first greedy token an EOS")
    args = parser.parse_args()

    state = process_state()
    model, tokenizer = tiny_model(seed=0)
    torch.manual_seed(0)
    for parameter in model.parameters():
        parameter.data.normal_(0.0, 0.5)
    model.eval()
    rows = build_task("arithmetic", "eval", args.rows, seed=1)
    eos = [tokenizer.eos_token_id]
    if args.early_eos:
        probe = hf_generator(lambda: nullcontext(model), tokenizer, 2, "cpu", eos)
        eos.append(probe([prompt_token_ids(tokenizer, rows[0]["prompt"])])[0][-1])
    if args.fsdp2:
        from torch.distributed.fsdp import fully_shard

        for layer in model.model.layers:
            fully_shard(layer)
        fully_shard(model)
    funcs = [build_reward("accuracy"), build_reward("boxed_number")]
    rewards = EvalRewards(["accuracy", "boxed_number"], funcs, gold=[True, False], weights=[0.0, 1.0])
    generate = hf_generator(lambda: nullcontext(model), tokenizer, args.max_new_tokens, "cpu", eos)
    with torch.no_grad():
        result = evaluate(rows, generate, tokenizer, rewards, args.max_new_tokens, args.batch_size)
    if state.is_main_process:
        result["num_processes"] = state.num_processes
        result["sharded"] = args.fsdp2
        with open(args.out, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main()
    exit_process(0)  # closes the gloo group; its worker threads cannot abort the finished process at teardown
