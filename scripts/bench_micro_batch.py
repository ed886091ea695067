"""Forward + backward of TRL's GRPO loss on micro-batches with and without their trailing completion padding.

TRL pads every completion of a generation to the longest; RLTrainer hands TRL each micro-batch without the trailing
columns that are masked in every row (`rlsurrogate/micro_batch.py`). This samples real generations with TRL's
GRPOTrainer in the quickstart's shape (2 arithmetic prompts x 8 completions of at most 48 tokens, T 0.6, micro-batches
of 2, the quickstart's prompt template), then times TRL's `_compute_loss` + backward over their micro-batches both
ways, alternating, on the same weights and tokens, and checks that the losses agree.

    python scripts/bench_micro_batch.py                                   # embedded SmolLM2-135M, ~3 min on 2 cores
    python scripts/bench_micro_batch.py --model outputs/quickstart/final  # a trained model's (shorter) completions
    python scripts/bench_micro_batch.py --model tiny --generations 1      # a tiny random model: seconds, smoke check

The last line is JSON: {"ratio": trimmed / padded seconds, "padded_s": ..., "trimmed_s": ..., ...}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

TEMPLATE = " Put the final answer in \\boxed{ }."  # the quickstart's prompt suffix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help='model name or path, or "tiny"')
    parser.add_argument("--generations", type=int, default=2, help="generations of 2 prompts x 8 completions")
    parser.add_argument("--max-tokens", type=int, default=48, help="max completion tokens")
    parser.add_argument("--repeats", type=int, default=3, help="alternating (padded, trimmed) repeats")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rlsurrogate import trl_compat
    from rlsurrogate.micro_batch import trim_completion_padding
    from rlsurrogate.models import load_model, tiny_model
    from rlsurrogate.tasks import build_task

    model, tokenizer = tiny_model(seed=0) if args.model == "tiny" else load_model(args.model)
    rows = [
        {"prompt": [{"role": "user", "content": row["question"] + TEMPLATE}], "answer": row["answer"]}
        for row in build_task("arithmetic", "train", 2 * args.generations)
    ]
    with tempfile.TemporaryDirectory() as out:
        config = GRPOConfig(
            output_dir=out,
            per_device_train_batch_size=2,
            gradient_accumulation_steps=8,
            num_generations=8,
            max_completion_length=args.max_tokens,
            temperature=0.6,
            report_to="none",
            bf16=False,
            save_strategy="no",
            loss_type="grpo",
            seed=args.seed,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[lambda completions, **kw: [float(len(c[0]["content"]) % 3) for c in completions]],
            args=config,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
        )
    trainer.current_gradient_accumulation_steps = 8
    model = trainer.model.train()
    torch.manual_seed(args.seed)
    micro_batches = []
    for g in range(args.generations):
        trainer._buffered_inputs = None  # TRL generates again when its buffer is empty
        trainer._prepare_inputs([row for row in rows[2 * g : 2 * g + 2] for _ in range(8)])
        micro_batches += trl_compat.generation_buffer(trainer)

    def one_pass(trim: bool) -> tuple[float, float]:
        model.zero_grad(set_to_none=True)
        start, total = time.perf_counter(), 0.0
        for micro in micro_batches:
            loss = GRPOTrainer._compute_loss(trainer, model, trim_completion_padding(micro) if trim else micro)
            loss.backward()
            total += loss.detach().item()
        return time.perf_counter() - start, total

    one_pass(False)  # warm-up
    seconds: dict[bool, list[float]] = {False: [], True: []}
    losses: dict[bool, float] = {}
    for repeat in range(args.repeats):
        for trim in (False, True) if repeat % 2 == 0 else (True, False):
            elapsed, losses[trim] = one_pass(trim)
            seconds[trim].append(elapsed)
        padded_s, trimmed_s = seconds[False][-1], seconds[True][-1]
        print(f"repeat {repeat + 1}/{args.repeats}: padded {padded_s:.2f} s  trimmed {trimmed_s:.2f} s")

    padded, trimmed = statistics.median(seconds[False]), statistics.median(seconds[True])
    lengths = torch.cat([m["completion_mask"].sum(dim=1) for m in micro_batches]).float()
    columns = {
        False: statistics.mean(float(m["completion_ids"].shape[1]) for m in micro_batches),
        True: statistics.mean(float(trim_completion_padding(m)["completion_ids"].shape[1]) for m in micro_batches),
    }
    print()
    print(
        f"{len(micro_batches)} micro-batches of 2 from {args.generations} generation(s) of 2 x 8; completion length "
        f"mean {lengths.mean():.1f}, max {lengths.max():.0f} tokens; prompt width "
        f"{statistics.mean(m['prompt_ids'].shape[1] for m in micro_batches):.1f}"
    )
    print(f"{'micro-batches':<22}{'completion columns (mean)':>27}{'s per pass (median)':>22}")
    for trim, name in ((False, "padded (TRL)"), (True, "trimmed (RLTrainer)")):
        print(f"{name:<22}{columns[trim]:>27.1f}{statistics.median(seconds[trim]):>22.3f}")
    diff = abs(losses[True] - losses[False])
    print(f"ratio trimmed / padded {trimmed / padded:.3f}; summed loss difference {diff:.2e}")
    print(
        json.dumps(
            {
                "ratio": round(trimmed / padded, 4),
                "padded_s": round(padded, 4),
                "trimmed_s": round(trimmed, 4),
                "completion_columns": {"padded": columns[False], "trimmed": round(columns[True], 2)},
                "completion_length_mean": round(float(lengths.mean()), 2),
                "loss_abs_diff": diff,
                "model": args.model,
                "micro_batches": len(micro_batches),
                "repeats": args.repeats,
            }
        )
    )


if __name__ == "__main__":
    main()
