"""Held-out evaluation: batches independent of the process count, every reward with its params, 1 = 2 processes."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest

from rlsurrogate.evaluation import EvalRewards, evaluate, hf_generator, shard_batches

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "evaluation_distributed.py"


@pytest.mark.parametrize(
    "n, batch_size, processes", [(7, 2, 2), (64, 16, 2), (5, 4, 3), (4, 16, 2), (1, 16, 2), (0, 4, 2)]
)
def test_shards_are_disjoint_cover_everything_and_do_not_depend_on_the_process_count(n, batch_size, processes):
    lengths = [(7 * i) % 11 for i in range(n)]
    shares = shard_batches(lengths, batch_size, processes)
    assert len(shares) == processes
    flat = [i for share in shares for batch in share for i in batch]
    assert sorted(flat) == list(range(n))  # disjoint and complete
    batches = sorted(tuple(b) for share in shares for b in share)
    if n >= batch_size * processes:  # enough prompts: the same batches as one process
        assert batches == sorted(tuple(b) for b in shard_batches(lengths, batch_size, 1)[0])
    else:  # few prompts: smaller batches keep every process busy
        assert all(share for share in shares[: min(n, processes)])
    counts = [len(share) for share in shares]
    assert max(counts) - min(counts) <= 1
    for share in shares:  # each batch holds prompts of similar length (sorted before cutting)
        for batch in share:
            assert [lengths[i] for i in batch] == sorted(lengths[i] for i in batch)


def _rows():
    return [
        {"prompt": [{"role": "user", "content": f"What is {i} + 1?"}], "solution": str(i + 1), "answer": "999"}
        for i in range(5)
    ]


def _column_reward(completions, solution, **kwargs):
    """1.0 when the dataset's `solution` column is odd: a reward that reads a column by keyword."""
    return [float(int(s) % 2) for s in solution]


def _none_reward(completions, **kwargs):
    return [None] * len(completions)


def test_every_reward_scores_with_its_own_params_and_columns(tiny):
    from rlsurrogate.rewards import build_reward

    make_model, tokenizer = tiny
    model = make_model(0)
    funcs = [build_reward("accuracy", {"answer_column": "solution"}), _column_reward, _none_reward]
    rewards = EvalRewards(["accuracy", "odd", "na"], funcs, gold=[True, False, False], weights=[0.0, 1.0, 1.0])
    generate = hf_generator(lambda: nullcontext(model), tokenizer, 5, "cpu")
    result = evaluate(_rows(), generate, tokenizer, rewards, max_new_tokens=5, batch_size=2)
    metrics = result["metrics"]
    assert metrics["odd"] == pytest.approx(3 / 5)  # solutions 1..5: three odd
    assert metrics["na"] is None  # None values are skipped, not counted as 0
    assert 0.0 <= metrics["accuracy"] <= 1.0 and 0 <= metrics["boxed_rate"] <= 1
    assert 0 <= metrics["mean_length"] <= 5 and 0 <= metrics["clipped_share"] <= 1
    assert result["gold"] == ["accuracy"] and result["trained"] == ["odd", "na"]
    assert [r["index"] for r in result["completions"]] == list(range(5))
    assert result["prompts_per_rank"] == [5] and len(result["samples"]) == 5
    assert result["samples"][0]["prompt"].startswith("What is 0 + 1?")


def test_answer_column_is_honoured(tiny):
    """The accuracy reward grades against the column its params name, not `answer`."""
    from rlsurrogate.rewards import build_reward

    _, tokenizer = tiny
    rows = _rows()
    right = [list(tokenizer(f"\\boxed{{{r['solution']}}}", add_special_tokens=False)["input_ids"]) for r in rows]
    rewards = EvalRewards(
        ["accuracy"], [build_reward("accuracy", {"answer_column": "solution"})], gold=[True], weights=[0.0]
    )
    by_prompt = {}
    from rlsurrogate.evaluation import prompt_token_ids

    for row, ids in zip(rows, right):
        by_prompt[tuple(prompt_token_ids(tokenizer, row["prompt"]))] = ids
    result = evaluate(rows, lambda batch: [by_prompt[tuple(p)] for p in batch], tokenizer, rewards, 16)
    assert result["metrics"]["accuracy"] == pytest.approx(1.0)  # graded against `solution` ("answer" is 999)
    assert result["metrics"]["boxed_rate"] == pytest.approx(1.0)


def _launch(tmp_path: Path, name: str, *flags: str, processes: int = 1) -> dict:
    out = tmp_path / f"{name}.json"
    if processes == 1:
        cmd = [sys.executable, str(SCRIPT)]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes)]
        cmd.append(str(SCRIPT))
    proc = subprocess.run([*cmd, "--out", str(out), *flags], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("sharded", [False, True], ids=["ddp", "fsdp2"])
def test_two_processes_generate_disjoint_shares_and_equal_one_process(tmp_path, sharded):
    """Each rank generates its own share (nobody waits on a main-process-only generation); gathered results equal
    one process's. With FSDP2-sharded weights every greedy step is collective: one batch stops after one token and
    one rank holds a batch fewer, which hangs unless the ranks stay in step."""
    flags = ["--early-eos", "--batch-size", "1"]
    one = _launch(tmp_path, "one", *flags)
    two = _launch(tmp_path, "two", *flags, *(["--fsdp2"] if sharded else []), processes=2)
    assert two["num_processes"] == 2 and two["sharded"] is sharded
    assert two["prompts_per_rank"] == [4, 3] and sum(two["prompts_per_rank"]) == one["num_prompts"] == 7
    assert all(wall > 0 for wall in two["rank_wall_s"])
    assert [c["completion"] for c in two["completions"]] == [c["completion"] for c in one["completions"]]
    assert [c["length"] for c in one["completions"]][0] < max(c["length"] for c in one["completions"])
    assert two["metrics"] == pytest.approx(one["metrics"], nan_ok=True)


def test_bf16_generates_under_autocast_and_leaves_the_weights_in_fp32(tiny):
    """`evaluate_model(bf16=True)` runs the forward passes in bf16 (as a bf16 run evaluates during training); the
    model's weights stay fp32 and its greedy text is still produced for every prompt."""
    import torch

    from rlsurrogate.evaluation import evaluate_model

    make_model, tokenizer = tiny
    model = make_model(0)
    seen = []
    handle = model.lm_head.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    try:
        fp32 = evaluate_model(model, tokenizer, _rows(), max_new_tokens=3, batch_size=2)
        n_fp32 = len(seen)
        bf16 = evaluate_model(model, tokenizer, _rows(), max_new_tokens=3, batch_size=2, bf16=True)
    finally:
        handle.remove()
    assert set(seen[:n_fp32]) == {torch.float32} and set(seen[n_fp32:]) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not torch.is_autocast_enabled("cpu")  # the autocast region ends with the evaluation
    assert len(fp32["completions"]) == len(bf16["completions"]) == len(_rows())
