"""Which reward is the better teacher for this policy? The offline report (Razin et al. 2025, arXiv 2503.15477).

Samples K completions per prompt from the model ONCE (HF generate, sampling, batched with left padding), scores
them with every candidate reward and an optional gold reward, and reports per candidate (METHODS.md §3.3-3.4):
the within-prompt reward variance (raw, and whitened by the global mean/std of the candidate's reward matrix;
mean and quartiles over prompts), the share of prompts with zero variance, the on-policy pairwise accuracy
against the gold reward and variance x accuracy. Candidates are ranked by whitened variance among those whose
accuracy reaches `accuracy_floor` (our reading of the paper's advice, not its rule), then the rest.

`write_report` writes `report.json` (everything, including per-prompt values), `samples.jsonl` (each completion
with every candidate's reward; `load_samples` reads it back to score again without the model) and `variance.png`
(per-prompt distributions). The command is `rlsurrogate diagnose` (`rlsurrogate.commands.diagnose`).

Deviations from the paper's `RMEval` recipe: completions come from HF generate only (no vLLM path yet); prompts
come from our task loaders; the paper samples K=10 at temperature 1 with 512 new tokens, our defaults are sized
for a CPU (K=8, 64 new tokens). Caveat for GRPO: TRL's default `scale_rewards="group"` divides each group's
advantages by its std, which removes the variance *scale* and leaves only the zero-variance share; the raw
variance matters as the paper says for unnormalised objectives (RLOO, `scale_rewards="none"`, Dr. GRPO).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from rlsurrogate.diagnostics.candidates import Candidate, Samples
from rlsurrogate.diagnostics.reward_variance import TeacherStats, teacher_stats
from rlsurrogate.errors import ConfigError

__all__ = ["sample_completions", "load_samples", "diagnose", "rank", "write_report"]


def sample_completions(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    k: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_size: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> Samples:
    """Samples K completions per prompt with HF generate (the trainer's CPU generation path).

    Prompts are chat-templated with the generation prompt, left-padded and generated `batch_size` at a time with
    `num_return_sequences=K`, so row p*K + k is completion k of prompt p (TRL's grouping). Completion ids stop at
    the first EOS (kept, as TRL passes them); texts are decoded without special tokens.

    Args:
        rows: P rows with a chat `prompt` (a list of messages) or a string prompt.
        k: completions per prompt.
        seed: seeds torch's global RNG, which HF generate samples from.
    """
    from rich.progress import Progress

    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos = {tokenizer.eos_token_id} | set(_as_list(getattr(model.generation_config, "eos_token_id", None)))
    texts = [
        tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False)
        if isinstance(r["prompt"], list)
        else r["prompt"]
        for r in rows
    ]
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    device = next(model.parameters()).device
    model.eval()
    completions: list[str] = []
    completion_ids: list[list[int]] = []
    with Progress(disable=not progress, transient=False) as bar, torch.no_grad():
        task = bar.add_task(f"sampling {k} completions x {len(rows)} prompts", total=len(rows))
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            out = model.generate(
                **enc,
                do_sample=True,
                temperature=temperature,
                top_p=top_p,
                top_k=0,
                max_new_tokens=max_new_tokens,
                num_return_sequences=k,
                pad_token_id=tokenizer.pad_token_id,
            )  # (b*K, L + T)
            for seq in out[:, enc["input_ids"].shape[1] :].tolist():
                ids = _until_eos(seq, eos)
                completion_ids.append(ids)
                completions.append(tokenizer.decode(ids, skip_special_tokens=True))
            bar.advance(task, len(chunk))
            if progress and not bar.console.is_terminal:  # a log file gets a line per batch instead of a bar
                done = min(start + batch_size, len(texts))
                print(f"sampled {done}/{len(texts)} prompts ({time.perf_counter() - t0:.0f} s)", flush=True)
    return Samples(rows=rows, k=k, completions=completions, completion_ids=completion_ids)


def diagnose(
    samples: Samples, candidates: list[Candidate], gold: Candidate | None = None, unbiased: bool = True
) -> tuple[dict[str, TeacherStats], dict[str, torch.Tensor]]:
    """Scores the samples with every candidate and summarises each one (§3.4).

    Returns:
        (name -> TeacherStats, name -> `(P, K)` reward matrix).
    """
    matrices = {c.name: c.score(samples) for c in candidates}
    gold_matrix = gold.score(samples) if gold is not None else None
    stats = {name: teacher_stats(r, gold_matrix, unbiased) for name, r in matrices.items()}
    return stats, matrices


def rank(stats: dict[str, TeacherStats], accuracy_floor: float = 0.5) -> list[str]:
    """Candidate names, best teacher first: whitened variance among those with accuracy >= floor, then the rest.

    Without a gold reward (accuracy None) every candidate passes the floor.
    """

    def key(name: str) -> tuple[bool, float]:
        s = stats[name]
        passes = s.accuracy is None or s.accuracy >= accuracy_floor
        return passes, _finite(s.whitened_var_mean)

    return sorted(stats, key=key, reverse=True)


def load_samples(path: str | Path) -> Samples:
    """Reads the `samples.jsonl` a previous report wrote (each line keeps its dataset row and token ids)."""
    by_prompt: dict[int, list[dict[str, Any]]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, text in enumerate(f, 1):
            line = json.loads(text)
            if "row" not in line or "completion_ids" not in line:
                raise ConfigError(f"--samples {path}:{lineno}: no 'row' or 'completion_ids'; rerun diagnose.")
            by_prompt.setdefault(line["prompt_index"], []).append(line)
    groups = [by_prompt[p] for p in sorted(by_prompt)]
    k = len(groups[0]) if groups else 0
    if k < 2 or any(len(g) != k for g in groups):
        raise ConfigError(f"--samples {path}: every prompt needs the same number (>= 2) of completions.")
    return Samples(
        rows=[g[0]["row"] for g in groups],
        k=k,
        completions=[line["completion"] for g in groups for line in g],
        completion_ids=[line["completion_ids"] for g in groups for line in g],
    )


def write_report(
    out_dir: Path,
    stats: dict[str, TeacherStats],
    order: list[str],
    samples: Samples,
    matrices: dict[str, torch.Tensor],
    meta: dict[str, Any],
) -> dict[str, str]:
    """Writes report.json, samples.jsonl and variance.png; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "meta": meta,
        "ranking": order,
        "candidates": {name: {"rank": order.index(name) + 1, **_clean(vars(stats[name]))} for name in order},
    }
    paths = {
        "json": str(out_dir / "report.json"),
        "samples": str(out_dir / "samples.jsonl"),
        "plot": str(out_dir / "variance.png"),
    }
    Path(paths["json"]).write_text(json.dumps(report, indent=2) + "\n")
    with open(paths["samples"], "w", encoding="utf-8") as f:
        for p, row in enumerate(samples.rows):
            for j in range(samples.k):
                i = p * samples.k + j
                rewards = {name: _clean(m[p, j].item()) for name, m in matrices.items()}
                prompt = row["prompt"][-1]["content"] if isinstance(row["prompt"], list) else row["prompt"]
                line = {
                    "prompt_index": p,
                    "prompt": prompt,
                    "answer": row.get("answer"),
                    "completion": samples.completions[i],
                    "tokens": len(samples.completion_ids[i]),
                    "rewards": rewards,
                    "completion_ids": samples.completion_ids[i],
                    "row": row,
                }
                f.write(json.dumps(line) + "\n")
    _plot(Path(paths["plot"]), stats, order)
    return paths


# ---------------------------------------------------------------------------------------------------------------


def _until_eos(seq: list[int], eos: set[int]) -> list[int]:
    for i, token in enumerate(seq):
        if token in eos:
            return seq[: i + 1]
    return seq


def _as_list(value: Any) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _finite(x: float | None) -> float:
    return x if x is not None and math.isfinite(x) else -math.inf


def _clean(value: Any) -> Any:
    """JSON has no NaN: NaN becomes None."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _plot(path: Path, stats: dict[str, TeacherStats], order: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("raw within-prompt variance", "per_prompt_var"), ("whitened variance", "per_prompt_whitened_var")]
    if all(stats[n].per_prompt_accuracy is not None for n in order):
        panels.append(("on-policy accuracy vs gold", "per_prompt_accuracy"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 0.5 * len(order) + 2.5), squeeze=False)
    labels = list(reversed(order))  # best at the top
    for ax, (title, attr) in zip(axes[0], panels):
        data = [[v for v in getattr(stats[n], attr) if not math.isnan(v)] or [float("nan")] for n in labels]
        ax.boxplot(data, vert=False, widths=0.6, showmeans=True)
        for y, values in enumerate(data, 1):  # every prompt as a dot, jittered vertically
            jitter = [y + 0.15 * math.sin(7.0 * i) for i in range(len(values))]
            ax.scatter(values, jitter, s=8, alpha=0.4)
        ax.set_yticks(range(1, len(labels) + 1), labels if ax is axes[0][0] else [""] * len(labels))
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("per-prompt distributions over prompts (box: quartiles, triangle: mean); best teacher at the top")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
