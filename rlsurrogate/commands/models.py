"""`rlsurrogate models`: list the embedded models and their state, or convert one now with `--prepare NAME`."""

from __future__ import annotations

import argparse

from rlsurrogate.errors import ConfigError
from rlsurrogate.models import EMBEDDED_MODELS, check_model_name, embedded_model_state, resolve_model_path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prepare", metavar="NAME", help="convert an embedded model now (otherwise on first use)")


def run(args: argparse.Namespace) -> int:
    if args.prepare:
        problems = check_model_name(args.prepare)
        if problems:
            raise ConfigError(problems)
        print(resolve_model_path(args.prepare))
        return 0
    for name, (_, file) in EMBEDDED_MODELS.items():
        print(f"{name:28s} {file:40s} {embedded_model_state(name)}")
    return 0
