"""Forward + backward of TRL's GRPO loss on the CPU: as TRL runs it, and as RLTrainer hands it its micro-batches.

Three ways, alternating, on the same weights and tokens:
- TRL: the micro-batch as TRL buffered it, every completion padded to the generation's longest; TRL's fused LM head
  projects every position (prompt and padding included) onto the vocabulary, as it does on devices without Triton;
- trimmed: without the trailing completion columns masked in every row (`rlsurrogate/micro_batch.py`);
- trimmed + scored only: and the LM head projects only the completion tokens it scores
  (`trl_compat.score_only_labelled_positions`, which RLTrainer turns on; what TRL does on a GPU).
The generations are real: TRL's GRPOTrainer samples them in the quickstart's shape (2 arithmetic prompts x 8
completions of at most 48 tokens, T 0.6, micro-batches of 2, the quickstart's prompt template). The losses must agree.

    python scripts/bench_micro_batch.py                                   # embedded SmolLM2-135M, ~4 min on 2 cores
    python scripts/bench_micro_batch.py --model outputs/quickstart/final  # a trained model's (shorter) completions
    python scripts/bench_micro_batch.py --model tiny --generations 1      # a tiny random model: seconds, smoke check

The last line is JSON: {"ratio": trimmed / TRL seconds, "ratio_rl_trainer": trimmed + scored only / TRL seconds,
"ratio_scored_only": trimmed + scored only / trimmed seconds, ...}.
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

    import trl.trainer.utils as trl_utils

    trl_decides = trl_utils._use_triton
    trl_compat.score_only_labelled_positions()
    scored_only = trl_utils._use_triton
    arms = {"trl": "TRL", "trimmed": "trimmed", "scored": "trimmed + scored only (RLTrainer)"}

    def one_pass(arm: str) -> tuple[float, float]:
        trl_utils._use_triton = scored_only if arm == "scored" else trl_decides
        model.zero_grad(set_to_none=True)
        start, total = time.perf_counter(), 0.0
        for micro in micro_batches:
            loss = GRPOTrainer._compute_loss(trainer, model, micro if arm == "trl" else trim_completion_padding(micro))
            loss.backward()
            total += loss.detach().item()
        return time.perf_counter() - start, total

    one_pass("trl")  # warm-up
    seconds: dict[str, list[float]] = {arm: [] for arm in arms}
    losses: dict[str, float] = {}
    for repeat in range(args.repeats):
        for arm in list(arms) if repeat % 2 == 0 else list(arms)[::-1]:
            elapsed, losses[arm] = one_pass(arm)
            seconds[arm].append(elapsed)
        print(f"repeat {repeat + 1}/{args.repeats}: " + "  ".join(f"{arm} {seconds[arm][-1]:.2f} s" for arm in arms))

    median = {arm: statistics.median(values) for arm, values in seconds.items()}
    lengths = torch.cat([m["completion_mask"].sum(dim=1) for m in micro_batches]).float()
    columns = statistics.mean(float(m["completion_ids"].shape[1]) for m in micro_batches)
    trimmed_columns = statistics.mean(
        float(trim_completion_padding(m)["completion_ids"].shape[1]) for m in micro_batches
    )
    prompt_width = statistics.mean(float(m["prompt_ids"].shape[1]) for m in micro_batches)
    projected = {
        "trl": 2 * (prompt_width + columns) - 2,
        "trimmed": 2 * (prompt_width + trimmed_columns) - 2,
        "scored": float(lengths.sum()) / len(micro_batches),
    }
    print()
    print(
        f"{len(micro_batches)} micro-batches of 2 from {args.generations} generation(s) of 2 x 8; completion length "
        f"mean {lengths.mean():.1f}, max {lengths.max():.0f} tokens; prompt width {prompt_width:.1f}"
    )
    print(f"{'micro-batches':<36}{'completion columns':>20}{'LM head rows':>14}{'s per pass (median)':>22}")
    for arm, name in arms.items():
        width = columns if arm == "trl" else trimmed_columns
        print(f"{name:<36}{width:>20.1f}{projected[arm]:>14.1f}{median[arm]:>22.3f}")
    diff = max(abs(losses[arm] - losses["trl"]) for arm in arms)
    ratio, ratio_scored = median["trimmed"] / median["trl"], median["scored"] / median["trl"]
    print(
        f"ratio to TRL: trimmed {ratio:.3f}, trimmed + scored only {ratio_scored:.3f}; "
        f"largest summed loss difference {diff:.2e}"
    )
    print(
        json.dumps(
            {
                "ratio": round(ratio, 4),
                "ratio_rl_trainer": round(ratio_scored, 4),
                "ratio_scored_only": round(median["scored"] / median["trimmed"], 4),
                "seconds": {arm: round(value, 4) for arm, value in median.items()},
                "completion_columns": {"padded": columns, "trimmed": round(trimmed_columns, 2)},
                "lm_head_rows": {arm: round(value, 1) for arm, value in projected.items()},
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
