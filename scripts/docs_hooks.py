"""MkDocs hook: the recipe reference page, generated from the recipe dataclasses' field help at every build.

`mkdocs.yml` names this file under `hooks:`; `on_files` adds `recipe-reference.md` to the site, so the page is never
a copy on disk that could drift from validation. `python scripts/docs_hooks.py` prints the page.
`tests/test_docs.py` checks that every field listed here has help text.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

PAGE = "recipe-reference.md"
# Fields a recipe file does not set (the loader fills them in).
_NOT_WRITTEN = {"source"}


def recipe_sections() -> list[tuple[str, type, str]]:
    """(YAML path, dataclass, what it is) for every section of a recipe and every nested dataclass."""
    from rlsurrogate import recipe

    return [
        ("(top level)", recipe.Recipe, "The sections of a recipe file."),
        ("model", recipe.ModelConfig, "The policy model."),
        ("model.lora", recipe.LoraConfig, "A LoRA adapter (peft) instead of training every weight."),
        ("model.quantization", recipe.QuantizationConfig, "bitsandbytes loading for QLoRA (CUDA GPU only)."),
        ("data", recipe.DataConfig, "Exactly one source: `task`, `path` or `hf_dataset`."),
        ("rewards[i]", recipe.RewardSpec, "One entry per reward; their weighted sum is trained."),
        ("objective", recipe.ObjectiveSpec, "The loss."),
        ("generation", recipe.GenerationConfig, "Sampling of the completions TRL trains on."),
        ("eval", recipe.EvalConfig, "Held-out greedy evaluation and the reward-hacking guard."),
        ("optimizer", recipe.OptimizerSpec, "The torch optimizer."),
        ("diagnostics", recipe.DiagnosticsConfig, "Reward-variance diagnostics during training."),
        ("sampling", recipe.SamplingSpec, "Which prompts each generation uses."),
        ("tools[i]", recipe.ToolSpec, "A function the model may call (a plain string is its `name`)."),
        ("environment", recipe.EnvironmentSpec, "A multi-turn environment class, or one per row (`choices`)."),
    ]


def params_sections() -> list[tuple[str, type, str]]:
    """(YAML path, dataclass, when it applies) for the `params` mappings whose fields are dataclass fields."""
    from rlsurrogate.objectives.disco import DisCOConfig
    from rlsurrogate.objectives.grpo import GRPOFamilyConfig
    from rlsurrogate.objectives.sso import SSOConfig
    from rlsurrogate.rewards.format_length import FormatLengthConfig
    from rlsurrogate.sampling.dynamic import DynamicConfig
    from rlsurrogate.sampling.greso import GRESOConfig
    from rlsurrogate.sampling.pass_rate import PassRateConfig
    from rlsurrogate.sampling.predictive import PredictiveConfig

    return [
        ("objective.params", GRPOFamilyConfig, "The GRPO family (`objective.name`: grpo, dapo, dr_grpo, gspo, ...)."),
        ("objective.params", DisCOConfig, "`objective.name: disco` or `disco_b`."),
        ("objective.params", SSOConfig, "`objective.name: sso` (the base objective's params go alongside)."),
        ("sampling.params", DynamicConfig, "`sampling.name: dynamic`."),
        ("sampling.params", PredictiveConfig, "`sampling.name: predictive`."),
        ("sampling.params", PassRateConfig, "`sampling.name: pass_rate` or `mopps`."),
        ("sampling.params", GRESOConfig, "`sampling.name: greso`."),
        ("rewards[i].params", FormatLengthConfig, "`format_length` and `length` rewards."),
    ]


def documented_dataclasses() -> list[type]:
    """Every dataclass the reference page lists (the help-text test walks these)."""
    return [cls for _, cls, _ in recipe_sections() + params_sections()]


def render() -> str:
    """The recipe reference page as Markdown."""
    from rlsurrogate import recipe

    lines = [
        "# Recipe reference",
        "",
        "Every key a recipe accepts, generated from the `help` of the dataclass fields in `rlsurrogate/recipe.py`",
        "and of the objectives', samplers' and rewards' config classes: the same fields that validation checks.",
        "A key not listed here is refused when the recipe loads, with a did-you-mean. How to write a recipe:",
        "[Recipes](recipes.md).",
        "",
    ]
    for path, cls, what in recipe_sections():
        lines += _section(path, cls, what)
    lines += _training_section(recipe)
    lines += [
        "## Parameters of objectives, samplers and rewards",
        "",
        "The `params` mapping of `objective`, `sampling` and a reward is checked against these classes.",
        "",
    ]
    for path, cls, what in params_sections():
        lines += _section(f"{path} ({cls.__name__})", cls, what, level="###")
    return "\n".join(lines) + "\n"


def _section(path: str, cls: type, what: str, level: str = "##") -> list[str]:
    out = [f"{level} `{path}`" if not path.startswith("(") else f"{level} {path}", "", what, ""]
    out += ["| key | type | default | help |", "|---|---|---|---|"]
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in _NOT_WRITTEN:
            continue
        out.append(
            f"| `{f.name}` | {_cell(_type_name(hints.get(f.name, f.type)))} | {_cell(_default(f))} "
            f"| {_cell(f.metadata.get('help', ''))} |"
        )
    return out + [""]


def _training_section(recipe: Any) -> list[str]:
    out = [
        "## `training`",
        "",
        "Any field of TRL 1.16's `trl.GRPOConfig`, checked against GRPOConfig's own field types. Where the project's",
        "default differs from TRL's:",
        "",
        "| key | default here |",
        "|---|---|",
    ]
    out += [f"| `{k}` | {_yaml_value(v)} |" for k, v in recipe.TRAINING_DEFAULTS.items()]
    out += [
        "",
        "`bf16`: absent, it is on with a bf16 GPU and off on a CPU; `auto` also turns it on for a CPU with bf16",
        "instructions; `true` where the device has none is an error.",
        "",
        "GRPOConfig fields that another part of the recipe sets (refused under `training`, with where they belong):",
        "",
        "| field | set it in |",
        "|---|---|",
    ]
    out += [f"| `{k}` | {_cell(v)} |" for k, v in recipe._OWNED_ELSEWHERE.items()]
    out += [
        "",
        "GRPOConfig fields that would have no effect (a non-default value is refused):",
        "",
        "| field | why |",
        "|---|---|",
    ]
    out += [f"| `{k}` | {_cell(v)} |" for k, v in recipe._NO_EFFECT.items()]
    return out + [""]


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and not typing.get_args(tp):
        return "mapping" if tp is dict else tp.__name__
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if origin in (list, tuple) and args:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "mapping"
    if args:
        return " or ".join(_type_name(a) for a in args)
    return str(tp).replace("typing.", "")


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return _yaml_value(f.default)
    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        return "the section's defaults" if dataclasses.is_dataclass(value) else _yaml_value(value)
    return "required"


def _yaml_value(value: Any) -> str:
    """A default as a recipe would spell it."""
    if value is None:
        return "null"
    try:
        return f"`{json.dumps(value)}`"
    except TypeError:
        return f"`{value!r}`"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def on_files(files: Any, config: Any) -> Any:
    """MkDocs event: add the generated recipe reference page to the site."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render()))
    return files


if __name__ == "__main__":
    print(render(), end="")
