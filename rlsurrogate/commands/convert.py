"""`rlsurrogate convert TRL_CONFIG [-o RECIPE]`: print (or write) the recipe a `trl grpo` config runs as.

The config is mapped by `rlsurrogate.trl_config.to_recipe` and validated like any recipe (every problem at once);
`rlsurrogate train TRL_CONFIG` runs the same recipe without converting it first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a YAML config written for `trl grpo --config`")
    parser.add_argument("-o", "--output", help="write the recipe to this file instead of printing it")


def run(args: argparse.Namespace) -> int:
    import yaml

    from rlsurrogate.build import validate
    from rlsurrogate.errors import ConfigError
    from rlsurrogate.recipe import read_recipe
    from rlsurrogate.trl_config import is_trl_config, to_recipe

    raw = read_recipe(args.config)
    if not is_trl_config(raw):
        raise ConfigError(
            f"{args.config}: not a `trl grpo` config (it has model/data/rewards sections or no TRL keys such as "
            "model_name_or_path); a recipe needs no conversion."
        )
    recipe, problems = to_recipe(raw)
    if problems:
        raise ConfigError(problems, header=f"config {args.config} has problems:")
    validate(recipe, source=args.config)
    out = args.output or "recipe.yaml"
    text = f"# rlsurrogate train {out}        (converted from the `trl grpo` config {args.config})\n"
    text += yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True, width=119)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0
