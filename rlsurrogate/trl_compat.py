"""Every access to TRL's private members, in one place, pinned to TRL 1.16.

RLTrainer and the modules around it talk to TRL's `GRPOTrainer` through its documented hooks wherever one exists.
Where none does (greedy generation through the run's own vLLM engine, the generation context TRL uses for ZeRO-3 /
FSDP weights, which positions TRL's fused LM head projects on a CPU), the access is written here, once, against TRL
1.16 (`trl/trainer/grpo_trainer.py`, `trl/generation/vllm_generation.py`, `trl/trainer/utils.py`).
`tests/test_trl_compat.py` checks that each member still exists, so a TRL upgrade that removes one fails loudly there
instead of deep inside a run.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

__all__ = [
    "TRL_PRIVATE_MEMBERS",
    "append_metric",
    "generation_buffer",
    "generation_model",
    "micro_step",
    "score_only_labelled_positions",
    "token_logps",
    "uses_vllm",
    "vllm_engine_overrides",
    "vllm_greedy_generate",
]

# (owner, attribute) pairs this module reads, and the private hooks RLTrainer overrides; the test of this module
# checks each against the installed TRL.
TRL_PRIVATE_MEMBERS: tuple[tuple[str, str], ...] = (
    ("GRPOTrainer", "_calculate_rewards"),  # overridden by RLTrainer: keeps the (N, F) reward matrix
    ("GRPOTrainer", "_generate_and_score_completions"),  # overridden by RLTrainer: the objective's on_scored
    ("GRPOTrainer", "_step"),  # micro-batches since training started; indexes the generation buffer
    ("GRPOTrainer", "_buffered_inputs"),  # the current generation's micro-batches
    ("GRPOTrainer", "_get_per_token_logps_and_entropies"),
    ("GRPOTrainer", "_metrics"),  # {"train"|"eval": {key: [values]}}, averaged by GRPOTrainer.log
    ("GRPOTrainer", "_last_loaded_step"),  # set in __init__ when use_vllm; the step whose weights vLLM holds
    ("VLLMGeneration", "sync_weights"),  # replaced per engine on a CPU (rlsurrogate.vllm_weights)
    ("VLLMGeneration", "_iter_named_params"),  # TRL's walk over the weights under vLLM's names
    ("trl.generation.vllm_generation", "VLLMClient"),  # the client class server mode builds (vllm_engine_overrides)
    ("VLLMGeneration", "generate"),
    ("VLLMGeneration", "temperature"),
    ("VLLMGeneration", "repetition_penalty"),
    ("VLLMGeneration", "max_completion_length"),
    ("trl.trainer.utils", "_use_triton"),  # whether the fused LM head projects only the labelled positions
)

# Sampling attributes of TRL's VLLMGeneration that `generate` reads; greedy evaluation overrides these for one call
# (temperature 0 is vLLM's greedy decoding; top-p / top-k do not change an argmax; a repetition penalty would).
_VLLM_GREEDY = {"temperature": 0.0, "repetition_penalty": 1.0}


def uses_vllm(trainer: Any) -> bool:
    """Whether the trainer generates with vLLM (colocate or server)."""
    return bool(getattr(trainer, "use_vllm", False)) and getattr(trainer, "vllm_generation", None) is not None


@contextmanager
def generation_model(trainer: Any) -> Iterator[Any]:
    """The trainer's model, ready for `generate`, inside the context TRL 1.16 generates in.

    DDP is unwrapped, ZeRO-3 parameters are gathered (unless `ds3_gather_for_generation` is off), FSDP1 parameters
    are summoned (FSDP2 needs nothing: its forward all-gathers), gradient checkpointing is off while generating.
    Every process must enter it and run the same number of forward passes (sharded weights).
    """
    import torch
    from trl.distributed import DistributedBackend
    from trl.models import unwrap_model_for_generation

    with ExitStack() as stack:
        model = stack.enter_context(
            unwrap_model_for_generation(
                trainer.model_wrapped,
                trainer.accelerator,
                gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
                gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs,
            )
        )
        stack.enter_context(torch.no_grad())
        stack.enter_context(
            DistributedBackend(trainer.accelerator).summon_full_params(trainer.model_wrapped, recurse=False)
        )
        yield model


def vllm_greedy_generate(trainer: Any, prompt_ids: list[list[int]], max_new_tokens: int) -> list[list[int]]:
    """Greedy completions (token ids) from the run's own vLLM engine, with the trainer's current weights.

    Colocate: each process generates its own prompts on its engine. Server: TRL gathers every process's prompts,
    the main process asks the server and each process gets its slice back; so every process must call this the same
    number of times.
    """
    engine = trainer.vllm_generation
    if trainer.state.global_step != trainer._last_loaded_step:
        engine.sync_weights()
        trainer._last_loaded_step = trainer.state.global_step
    overrides = {**_VLLM_GREEDY, "max_completion_length": max_new_tokens}
    saved = {name: getattr(engine, name) for name in overrides}
    try:
        for name, value in overrides.items():
            setattr(engine, name, value)
        _, completion_ids, _, _ = engine.generate(prompts=prompt_ids, images=None, num_generations=1)
    finally:
        for name, value in saved.items():
            setattr(engine, name, value)
    return [list(ids) for ids in completion_ids]


@contextmanager
def vllm_engine_overrides(client_cls: type | None = None, llm_kwargs: dict[str, Any] | None = None) -> Iterator[None]:
    """While the trainer is constructed, TRL builds `client_cls` for server mode and passes `llm_kwargs` to vLLM.

    TRL 1.16's `VLLMGeneration._init_vllm` names `VLLMClient` and `LLM` from its module's globals and uses them at
    once, inside `GRPOTrainer.__init__` (the client's `init_communicator`, the colocated engine's start), and
    exposes no field for the engine arguments a CPU needs (`enforce_eager`, `kv_cache_memory_bytes`); so both are
    swapped in that module for the duration of the construction and restored after.
    """
    from trl.generation import vllm_generation

    saved = {name: getattr(vllm_generation, name) for name in ("VLLMClient", "LLM") if hasattr(vllm_generation, name)}
    if client_cls is not None:
        vllm_generation.VLLMClient = client_cls
    if llm_kwargs and "LLM" in saved:
        vllm_generation.LLM = functools.partial(saved["LLM"], **llm_kwargs)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(vllm_generation, name, value)


def score_only_labelled_positions() -> None:
    """Makes TRL's fused LM head project only the positions it scores (completion tokens) on a CPU too.

    TRL 1.16's `add_fused_lm_head` (`trl/trainer/utils.py`) projects the hidden states through the LM head only at
    the positions whose label is not -100 on Triton devices (CUDA, XPU); elsewhere it projects every position, prompt
    and padding included, so that compilers that specialise on shapes (Neuron) see fixed tiles. A CPU compiles
    nothing, and there the projection onto the vocabulary is the costliest part of the loss: on the quickstart
    (SmolLM2-135M, 49k tokens, micro-batches of 2) a fifth of each step. The scored positions get the same
    log-probabilities and gradients; the others are 0, as on a GPU. Process-wide and idempotent.
    """
    from trl.trainer import utils as trl_utils

    decides = trl_utils._use_triton
    if getattr(decides, "scores_cpu_compactly", False):
        return

    def compact_on_triton_or_cpu(device: Any) -> bool:
        return device.type == "cpu" or decides(device)

    compact_on_triton_or_cpu.scores_cpu_compactly = True  # type: ignore[attr-defined]
    trl_utils._use_triton = compact_on_triton_or_cpu


def micro_step(trainer: Any) -> int:
    """Micro-batches processed since training started: TRL's `_step`, which indexes its generation buffer."""
    return int(trainer._step)


def generation_buffer(trainer: Any) -> list[dict[str, Any]]:
    """The current generation's micro-batches, as TRL shuffled, split and buffered them (`_buffered_inputs`)."""
    return list(trainer._buffered_inputs)


def token_logps(trainer: Any, model: Any, batch: dict[str, Any], compute_entropy: bool) -> tuple[Any, Any]:
    """`(b, T)` completion-token log-probabilities and entropies through TRL's own forward (text models)."""
    import torch

    input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    attention_mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    logps, entropies, _ = trainer._get_per_token_logps_and_entropies(
        model, input_ids, attention_mask, batch["completion_ids"].size(1), compute_entropy=compute_entropy
    )
    return logps, entropies


def append_metric(trainer: Any, mode: str, key: str, value: float) -> None:
    """Adds a value to TRL's per-step metrics (`_metrics[mode][key]`), averaged and logged by GRPOTrainer.log."""
    trainer._metrics[mode][key].append(float(value))
