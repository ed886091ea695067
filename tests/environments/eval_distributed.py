"""Multi-turn held-out evaluation on 1 or 2 CPU processes with a scripted tool-calling model; writes JSON.

Launched by `test_multi_turn.py`:
    python tests/environments/eval_distributed.py --out one.json
    accelerate launch --multi_gpu --num_processes 2 tests/environments/eval_distributed.py --out two.json
Some prompts are answered at once and others after a tool call, so the processes' batches need different numbers of
turns: every process must still run the same number of generate calls and collectives.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rlsurrogate.environments import EnvironmentFactory  # noqa: E402
from rlsurrogate.environments.multi_turn import MultiTurn  # noqa: E402
from rlsurrogate.evaluation import EvalRewards, any_process, evaluate, hf_generator, process_state  # noqa: E402
from rlsurrogate.process_exit import exit_process  # noqa: E402
from rlsurrogate.rewards import build_reward  # noqa: E402
from rlsurrogate.tasks import build_task  # noqa: E402
from tests.environments import envs  # noqa: E402
from tests.environments.scripted import scripted_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--rows", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=2)
    args = parser.parse_args()

    state = process_state()
    model, tokenizer = scripted_model(seed=0, skip_odd=True)
    model.eval()
    rows = build_task("arithmetic", "eval", args.rows, seed=1)
    factory = EnvironmentFactory(envs.Counter, {"start": 0}, timeout_s=5)

    def counter_reward(environments, **kwargs):
        return [e.get_reward() for e in environments]

    rewards = EvalRewards(
        ["accuracy", "Counter"], [build_reward("accuracy"), counter_reward], gold=[True, False], weights=[1.0, 1.0]
    )
    eos = tokenizer.eos_token_id
    multi_turn = MultiTurn(tokenizer, [], factory, 2, 64, eos, any_process)
    generate = hf_generator(lambda: nullcontext(model), tokenizer, 64, "cpu", [eos], keep_eos=True)
    with torch.no_grad():
        result = evaluate(rows, generate, tokenizer, rewards, 64, args.batch_size, multi_turn=multi_turn)
    if state.is_main_process:
        result["num_processes"] = state.num_processes
        with open(args.out, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main()
    exit_process(0)  # closes the gloo group; its worker threads cannot abort the finished process at teardown
