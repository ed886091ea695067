"""`rlsurrogate train RECIPE [--set key=value ...] [--resume]`: validate, resolve, train; print the summary JSON."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML file")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field, e.g. --set training.max_steps=5 (repeatable)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in output_dir")


def run(args: argparse.Namespace) -> int:
    from rlsurrogate.build import load
    from rlsurrogate.train import train

    recipe, resolved = load(args.recipe, overrides=args.set)
    summary = train(recipe, resolved, resume=args.resume)
    if summary is not None:
        print(json.dumps(summary))
    return 0
