"""Held-out evaluation on every process and device: greedy completions scored by every reward of the recipe.

One function serves before, during and after training and the `rlsurrogate eval` command. The prompts are sorted
by length and cut into batches of `batch_size` (smaller when there are fewer prompts than `batch_size` x P, so that
every process has work); batch b goes to process b mod P. Every process generates its batches on its own device
(TRL's vLLM engine when the run generates with vLLM, else the trainer's model inside the context TRL generates in,
so ZeRO-3 / FSDP shards are used as TRL uses them), scores them, and the results are gathered on every process. With
enough prompts the batches do not depend on P, so one process and several give the same completions; no process
waits while another generates alone. Every process runs the same number of batches (a process with fewer repeats one
and discards it), because sharded weights need every process in every forward pass.

Each completion is scored by every reward of the recipe with that reward's own parameters (so `answer_column` and
the like are honoured), trained and gold alike, and by three format statistics.

Metrics (keys of `result["metrics"]`; logged during training as `eval/<key>`):
- `<reward name>`: mean of that reward over the held-out prompts (None values skipped).
- `boxed_rate`: share of completions whose last `\\boxed{}` is non-empty.
- `mean_length`: mean completion length in tokens (EOS excluded).
- `clipped_share`: share of completions that used all `max_new_tokens`.
- `tool_call_rate`, `tool_failure_rate` (runs with tools or an environment): share of completions with at least one
  tool call; share of tool calls that raised or named no tool.

With tools or an environment (`multi_turn`), each batch runs TRL's tool-calling loop greedily
(`rlsurrogate.environments.multi_turn`): one fresh environment per row, its `reset(**row)` appended to the prompt,
tool results between the model's turns. The rewards get the completion as TRL's chat messages and `environments`
(the rows' environment instances), and the length counts the model's tokens only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from rlsurrogate.rewards.boxed import completion_text, last_boxed

__all__ = [
    "EvalRewards",
    "any_process",
    "evaluate",
    "evaluate_model",
    "hf_generator",
    "process_state",
    "prompt_token_ids",
    "shard_batches",
    "trainer_generator",
]

# Completions kept in the result for a person to read (the first prompts in dataset order).
NUM_SAMPLES = 8

GenerateFn = Callable[[list[list[int]]], list[list[int]]]


@dataclass
class EvalRewards:
    """The rewards an evaluation scores with, in the recipe's order.

    Attributes:
        names: metric names (each reward's `__name__`).
        funcs: callables with TRL's reward signature.
        gold: True for the gold metrics (what the run is really for), False for the rest.
        weights: the training weights; a reward with weight != 0 that is not gold is a trained reward.
    """

    names: list[str]
    funcs: list[Callable[..., list[float | None]]]
    gold: list[bool]
    weights: list[float]

    @property
    def gold_names(self) -> list[str]:
        return [n for n, g in zip(self.names, self.gold) if g]

    @property
    def trained_names(self) -> list[str]:
        return [n for n, g, w in zip(self.names, self.gold, self.weights) if not g and w != 0]


def shard_batches(lengths: Sequence[int], batch_size: int, num_processes: int) -> list[list[list[int]]]:
    """Row indices of each process's batches: sorted by length, cut into batches, batch b to process b mod P.

    The batches do not depend on P (so any number of processes generates the same completions) unless there are
    fewer rows than `batch_size` x P: then batches shrink to ceil(rows / P) so that every process has work.

    Returns:
        `[process][batch]` lists of row indices; processes may hold one batch fewer than others.
    """
    batch_size = max(1, min(batch_size, -(-len(lengths) // num_processes)))
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return [batches[rank::num_processes] for rank in range(num_processes)]


def evaluate(
    rows: Sequence[dict[str, Any]],
    generate: GenerateFn,
    tokenizer: Any,
    rewards: EvalRewards,
    max_new_tokens: int,
    batch_size: int = 16,
    progress: bool = False,
    step: int | None = None,
    trainer_state: Any = None,
    multi_turn: Any = None,
) -> dict[str, Any]:
    """Greedy completions for `rows` on every process, scored by every reward; the same result on every process.

    Args:
        rows: held-out rows with a `prompt` (chat messages or text) and the dataset's other columns.
        generate: prompt token ids -> completion token ids (cut at EOS), e.g. `trainer_generator(trainer, n)`.
        tokenizer: renders chat prompts and decodes completions.
        rewards: the recipe's rewards.
        max_new_tokens: generation budget per prompt (for `clipped_share`).
        batch_size: prompts per generate call.
        progress: show a progress bar (main process).
        step: the training step the weights belong to, recorded in the result.
        trainer_state: passed to the rewards as TRL does.
        multi_turn: a `rlsurrogate.environments.multi_turn.MultiTurn` for runs with tools or environments; then
            `generate` must keep the EOS token (`keep_eos=True`).

    Returns:
        {"step", "num_prompts", "metrics", "gold", "trained", "samples", "completions", "prompts_per_rank",
        "rank_wall_s", "wall_s"}; `completions` holds every (prompt, completion, scores) row in dataset order.
    """
    state = process_state()
    started = time.perf_counter()
    ids = [prompt_token_ids(tokenizer, row["prompt"], multi_turn) for row in rows]
    shares = shard_batches([len(x) for x in ids], batch_size, state.num_processes)
    mine = shares[state.process_index]
    # Sharded weights need every process in every forward pass: a process short of batches repeats one as filler.
    filler = (mine or [b for share in shares for b in share] or [[]])[:1] * (max(map(len, shares)) - len(mine))
    records = []
    for k, batch in enumerate(_progress(mine + filler, progress and state.is_main_process, step)):
        if multi_turn is not None:
            batch_rows = [rows[i] for i in batch]
            rollouts = multi_turn.rollout(batch_rows, generate)
            if k < len(mine):
                records += _score_rollouts(batch_rows, batch, rollouts, tokenizer, rewards, trainer_state)
            continue
        completion_ids = generate([ids[i] for i in batch]) if batch else []
        if k < len(mine):
            batch_rows = [rows[i] for i in batch]
            records += _score(batch_rows, batch, completion_ids, tokenizer, rewards, trainer_state)
    wall = time.perf_counter() - started
    everything, walls, counts = _gather(records, wall, len(records), state.num_processes)
    everything.sort(key=lambda r: r["index"])
    return {
        "step": step,
        "num_prompts": len(everything),
        "metrics": _metrics(everything, rewards.names, max_new_tokens),
        "gold": rewards.gold_names,
        "trained": rewards.trained_names,
        "samples": [_sample(r) for r in everything[:NUM_SAMPLES]],
        "completions": everything,
        "prompts_per_rank": counts,
        "rank_wall_s": [round(w, 3) for w in walls],
        "wall_s": round(time.perf_counter() - started, 3),
    }


def evaluate_model(
    model: Any,
    tokenizer: Any,
    rows: Sequence[dict[str, Any]],
    rewards: EvalRewards | None = None,
    max_new_tokens: int = 256,
    batch_size: int = 16,
    progress: bool = False,
    bf16: bool = False,
    multi_turn: Any = None,
) -> dict[str, Any]:
    """`evaluate` for a plain model outside a trainer (on its own device); `rewards` default to gold `accuracy`.

    `bf16` generates under bf16 autocast, as a run with `training.bf16` on evaluates during training, so that the
    same weights give the same held-out figures in `rlsurrogate eval` as in the run's evaluations. `multi_turn` runs
    the tool-calling loop (`rlsurrogate.environments.multi_turn.MultiTurn`) for recipes with tools or environments.

    Example:
        >>> result = evaluate_model(model, tokenizer, rows, max_new_tokens=48)  # doctest: +SKIP
        >>> result["metrics"]["accuracy"], result["metrics"]["boxed_rate"]  # doctest: +SKIP
    """
    if rewards is None:
        from rlsurrogate.rewards import build_reward

        rewards = EvalRewards(["accuracy"], [build_reward("accuracy")], gold=[True], weights=[0.0])
    eos = [tokenizer.eos_token_id, *_as_list(getattr(model.generation_config, "eos_token_id", None))]
    context = (lambda: _bf16_autocast(model)) if bf16 else (lambda: nullcontext(model))
    generate = hf_generator(context, tokenizer, max_new_tokens, model.device, eos, keep_eos=multi_turn is not None)
    return evaluate(rows, generate, tokenizer, rewards, max_new_tokens, batch_size, progress, multi_turn=multi_turn)


@contextmanager
def _bf16_autocast(model: Any) -> Iterator[Any]:
    """Yields `model`, under bf16 autocast on its device."""
    import torch

    with torch.autocast(model.device.type, dtype=torch.bfloat16):
        yield model


def process_state() -> Any:
    """accelerate's process state; CPU processes (no GPU) join one gloo group instead of each running alone."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def any_process(flag: bool) -> bool:
    """Whether `flag` is True on any process (collective when several processes run)."""
    state = process_state()
    if state.num_processes == 1:
        return flag
    from accelerate.utils import gather_object

    return any(gather_object([bool(flag)]))


def prompt_token_ids(tokenizer: Any, prompt: Any, multi_turn: Any = None) -> list[int]:
    """Token ids of a prompt as the policy sees it: the chat template with the generation prompt for messages (and
    the run's standalone tools, which set the prompt's length for batching)."""
    if multi_turn is not None and isinstance(prompt, list):
        tools = multi_turn.tools or None
        return list(tokenizer.apply_chat_template(prompt, tools=tools, add_generation_prompt=True, return_dict=False))
    if isinstance(prompt, list):
        prompt = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return list(tokenizer(prompt, add_special_tokens=False)["input_ids"])


def hf_generator(
    model_context: Callable[[], AbstractContextManager[Any]],
    tokenizer: Any,
    max_new_tokens: int,
    device: Any,
    eos_token_ids: Sequence[int] | None = None,
    keep_eos: bool = False,
) -> GenerateFn:
    """Greedy `generate` with left padding; `model_context()` yields the model to generate with.

    Args:
        model_context: a context manager factory yielding the model (e.g. `trl_compat.generation_model`).
        tokenizer: gives the pad token.
        max_new_tokens: generation budget.
        device: where the inputs go.
        eos_token_ids: tokens that end a completion (default: the tokenizer's EOS).
        keep_eos: keep the EOS token that ended a completion (a multi-turn loop appends the next turn after it).
    """
    import torch
    from transformers import GenerationConfig

    eos = list(eos_token_ids or [tokenizer.eos_token_id])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    config = GenerationConfig(
        do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=eos, disable_compile=True
    )

    def generate(prompt_ids: list[list[int]]) -> list[list[int]]:
        width = max(len(p) for p in prompt_ids)
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompt_ids], device=device)
        attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids], device=device)
        with model_context() as model, torch.no_grad():
            was_training = model.training
            model.eval()
            try:
                out = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
            finally:
                model.train(was_training)
        return [_cut_at_eos(row.tolist(), eos, keep_eos) for row in out[:, width:].cpu()]

    return generate


def trainer_generator(trainer: Any, max_new_tokens: int, keep_eos: bool = False) -> GenerateFn:
    """Greedy generation the way the trainer generates: its vLLM engine, else its (possibly sharded) model."""
    from rlsurrogate import trl_compat

    if trl_compat.uses_vllm(trainer):
        eos = list(trainer.eos_token_ids)

        def generate(prompt_ids: list[list[int]]) -> list[list[int]]:
            completions = trl_compat.vllm_greedy_generate(trainer, prompt_ids, max_new_tokens)
            return [_cut_at_eos(ids, eos, keep_eos) for ids in completions]

        return generate
    return hf_generator(
        lambda: trl_compat.generation_model(trainer),
        trainer.processing_class,
        max_new_tokens,
        trainer.accelerator.device,
        trainer.eos_token_ids,
        keep_eos,
    )


# ---------------------------------------------------------------------------------------------------------------


def _progress(batches: list[list[int]], show: bool, step: int | None) -> Iterator[list[int]]:
    if not show:
        yield from batches
        return
    from rich.progress import track

    label = "evaluating" if step is None else f"evaluating (step {step})"
    yield from track(batches, description=label, transient=True)


def _as_list(value: Any) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _cut_at_eos(ids: list[int], eos: Sequence[int], keep_eos: bool = False) -> list[int]:
    for position, token in enumerate(ids):
        if token in eos:
            return ids[: position + keep_eos]
    return ids


def _score(
    rows: list[dict[str, Any]],
    indices: list[int],
    completion_ids: list[list[int]],
    tokenizer: Any,
    rewards: EvalRewards,
    trainer_state: Any,
) -> list[dict[str, Any]]:
    """One record per row: its completion, length and every reward's score (the rewards see TRL's keywords)."""
    if not rows:
        return []
    texts = tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
    prompts = [row["prompt"] for row in rows]
    completions = [[{"role": "assistant", "content": t}] if isinstance(p, list) else t for p, t in zip(prompts, texts)]
    columns = {key: [row.get(key) for row in rows] for key in rows[0] if key not in ("prompt", "completion")}
    scores: dict[str, list[Any]] = {}
    for name, func in zip(rewards.names, rewards.funcs):
        scores[name] = list(
            func(
                prompts=prompts,
                completions=completions,
                completion_ids=completion_ids,
                trainer_state=trainer_state,
                log_extra=lambda *a, **k: None,
                log_metric=lambda *a, **k: None,
                **columns,
            )
        )
    return [
        {
            "index": index,
            "prompt": completion_text(row["prompt"]),
            "completion": text,
            "length": len(ids),
            "answer": row.get("answer"),
            "scores": {name: _plain(scores[name][k]) for name in rewards.names},
        }
        for k, (index, row, text, ids) in enumerate(zip(indices, rows, texts, completion_ids))
    ]


def _score_rollouts(
    rows: list[dict[str, Any]],
    indices: list[int],
    rollouts: list[Any],
    tokenizer: Any,
    rewards: EvalRewards,
    trainer_state: Any,
) -> list[dict[str, Any]]:
    """`_score` for multi-turn rollouts: TRL's message completions, the environments, model tokens as length."""
    from rlsurrogate.environments.multi_turn import render_completion

    if not rows:
        return []
    prompts = [row["prompt"] for row in rows]
    completions = [r.messages for r in rollouts]
    columns = {key: [row.get(key) for row in rows] for key in rows[0] if key not in ("prompt", "completion")}
    if any(r.environment is not None for r in rollouts):
        columns["environments"] = [r.environment for r in rollouts]
    completion_ids = [r.completion_ids for r in rollouts]
    scores = {
        name: list(
            func(
                prompts=prompts,
                completions=completions,
                completion_ids=completion_ids,
                trainer_state=trainer_state,
                log_extra=lambda *a, **k: None,
                log_metric=lambda *a, **k: None,
                **columns,
            )
        )
        for name, func in zip(rewards.names, rewards.funcs)
    }
    eos = tokenizer.eos_token_id
    return [
        {
            "index": index,
            "prompt": completion_text(row["prompt"]),
            "completion": render_completion(r.messages),
            "length": sum(r.tool_mask) - (bool(r.completion_ids) and r.completion_ids[-1] == eos),
            "answer": row.get("answer"),
            "tool_calls": r.tool_calls,
            "tool_failures": r.tool_failures,
            "scores": {name: _plain(scores[name][k]) for name in rewards.names},
        }
        for k, (index, row, r) in enumerate(zip(indices, rows, rollouts))
    ]


def _plain(value: Any) -> float | None:
    if value is None:
        return None
    return float(value.item() if hasattr(value, "item") else value)


def _gather(
    records: list[dict], wall: float, count: int, num_processes: int
) -> tuple[list[dict], list[float], list[int]]:
    if num_processes == 1:
        return list(records), [wall], [count]
    from accelerate.utils import gather_object

    everything = gather_object(records)
    per_rank = gather_object([(wall, count)])
    return everything, [w for w, _ in per_rank], [c for _, c in per_rank]


def _metrics(records: list[dict[str, Any]], names: list[str], max_new_tokens: int) -> dict[str, float | None]:
    n = len(records)
    metrics: dict[str, float | None] = {}
    for name in names:
        values = [r["scores"][name] for r in records if r["scores"][name] is not None]
        metrics[name] = sum(values) / len(values) if values else None
    if not n:
        return metrics | {"boxed_rate": None, "mean_length": None, "clipped_share": None}
    metrics |= {
        "boxed_rate": sum(bool((last_boxed(r["completion"]) or "").strip()) for r in records) / n,
        "mean_length": sum(r["length"] for r in records) / n,
        "clipped_share": sum(r["length"] >= max_new_tokens for r in records) / n,
    }
    if "tool_calls" in records[0]:
        calls = sum(r["tool_calls"] for r in records)
        metrics["tool_call_rate"] = sum(r["tool_calls"] > 0 for r in records) / n
        metrics["tool_failure_rate"] = sum(r["tool_failures"] for r in records) / calls if calls else 0.0
    return metrics


def _sample(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("prompt", "completion", "answer", "scores", "tool_calls")
    return {key: record[key] for key in keys if key in record}
