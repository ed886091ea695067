"""`rlsurrogate <command> ...`: parse arguments, then call the library.

Each command lives in its own module under `rlsurrogate/commands/`, which exposes `add_arguments(parser)` and
`run(args) -> int`; modules are imported only when their command runs, so `rlsurrogate --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rlsurrogate.errors import RLSurrogateError
from rlsurrogate.process_exit import exit_process

__all__ = ["main", "run"]

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("rlsurrogate.commands.train", "RL-train a model from a YAML recipe"),
    "eval": ("rlsurrogate.commands.eval", "greedy held-out evaluation scored by every reward of the recipe"),
    "diagnose": ("rlsurrogate.commands.diagnose", "which reward is the better teacher: reward-variance report"),
    "bo": ("rlsurrogate.commands.bo", "Bayesian optimization of a benchmark or a user function"),
    "optimize-prompt": ("rlsurrogate.commands.optimize_prompt", "optimize an instruction for a black-box LLM"),
    "serve": ("rlsurrogate.commands.serve", "serve a local model as an OpenAI-compatible chat endpoint"),
    "vllm-serve": ("rlsurrogate.commands.vllm_serve", "serve a model with vLLM for `vllm_mode: server` training"),
    "models": ("rlsurrogate.commands.models", "list the embedded models and prepare their trainable checkpoints"),
    "convert": ("rlsurrogate.commands.convert", "print the recipe a `trl grpo` config file runs as"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlsurrogate",
        description="RL fine-tuning of LLMs on TRL, surrogate rewards, prompt optimization, surrogate optimizers.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        build_parser().parse_args(argv)  # prints usage / "invalid choice" and exits
        return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"rlsurrogate {name}", description=COMMANDS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except RLSurrogateError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The `rlsurrogate` program: `main()`, then an exit that a torch.distributed group cannot abort."""
    exit_process(main())
