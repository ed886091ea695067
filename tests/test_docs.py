"""The docs cannot drift from the code: every recipe field has help text (the recipe reference page is generated from
it), and every command in a README / docs code block marked runnable parses, without training anything.

A block is marked runnable by an HTML comment on the line before its fence:

    <!-- runnable -->
    ```bash
    rlsurrogate train recipes/quickstart.yaml --set training.max_steps=5
    ```

Each command line is checked as far as it can be without running it: `rlsurrogate` commands (also under
`accelerate launch ... -m rlsurrogate` and `python -m rlsurrogate`) are parsed by the command's own argument parser,
and a `train` / `eval` recipe is loaded with its `--set` overrides through full validation (`build.load`: every key,
type, range and name); `accelerate launch --config_file F` needs F; `python scripts/x.py --flag` needs the script and
each flag in it; `make T` needs the target; `pip install` extras must exist in pyproject.toml.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import re
import shlex
import typing
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- runnable -->"
SEPARATORS = {"&", "&&", ";", "||"}
WRAPPERS = {"nice": 2, "timeout": 1, "flock": 1}  # program: how many arguments it takes before the command
NOT_CHECKED = {"export", "trl", "tensorboard", "wandb", "trackio"}  # the shell's and other packages' programs


def _load_hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "scripts" / "docs_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def runnable_blocks(text: str) -> list[tuple[int, list[str]]]:
    """(line number of the fence, the block's lines) for each fenced block right after the marker."""
    lines = text.splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        start = i + 1
        if start >= len(lines) or not lines[start].lstrip().startswith("```"):
            raise AssertionError(f"line {i + 1}: {MARKER} must be followed by a fenced code block")
        end = start + 1
        while end < len(lines) and not lines[end].lstrip().startswith("```"):
            end += 1
        blocks.append((start + 1, lines[start + 1 : end]))
    return blocks


def commands(block: list[str]) -> list[list[str]]:
    """The block's commands as argument lists: continuation lines joined, comments dropped, `a & b` split."""
    text = "\n".join(block).replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        tokens = shlex.split(line, comments=True)
        current: list[str] = []
        for token in tokens + [";"]:
            if token in SEPARATORS:
                if current:
                    out.append(current)
                current = []
            else:
                current.append(token)
    return out


def _strip_prefixes(argv: list[str]) -> list[str]:
    while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", argv[0]):  # VAR=value cmd
        argv = argv[1:]
    while argv and argv[0] in WRAPPERS:
        argv = argv[1 + WRAPPERS[argv[0]] :]
    return argv


def check_command(argv: list[str]) -> None:
    """Raises AssertionError naming what in `argv` does not exist."""
    argv = _strip_prefixes(argv)
    if not argv:
        return
    program, args = argv[0], argv[1:]
    if program == "rlsurrogate":
        check_rlsurrogate(args)
    elif program == "accelerate":
        check_accelerate(args)
    elif program in ("python", "python3"):
        if args[:2] == ["-m", "rlsurrogate"]:
            check_rlsurrogate(args[2:])
        else:
            check_script(args)
    elif program == "bash":
        assert (ROOT / args[0]).is_file(), f"no script {args[0]}"
    elif program == "make":
        targets = re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.M)
        for target in args:
            assert target in targets, f"make {target}: no such target in the Makefile"
    elif program == "pip":
        check_pip(args)
    elif program not in NOT_CHECKED:
        raise AssertionError(f"{program}: not a command this check knows; teach tests/test_docs.py or unmark it")


def check_rlsurrogate(args: list[str], num_processes: int | None = None) -> None:
    from rlsurrogate import build, cli

    assert args and args[0] in cli.COMMANDS, f"rlsurrogate {args[:1]}: no such command"
    name = args[0]
    parser = argparse.ArgumentParser(prog=f"rlsurrogate {name}", exit_on_error=False)
    importlib.import_module(cli.COMMANDS[name][0]).add_arguments(parser)
    try:
        parsed = parser.parse_args(args[1:])
    except (argparse.ArgumentError, SystemExit) as err:
        raise AssertionError(f"rlsurrogate {' '.join(args)}: {err}") from None
    if name in ("train", "eval"):
        build.load(parsed.recipe, parsed.set or [], num_processes=num_processes)  # ConfigError lists every problem


def check_accelerate(args: list[str]) -> None:
    assert args[:1] == ["launch"], f"accelerate {args[:1]}: only `accelerate launch` is checked"
    args = args[1:]
    assert "-m" in args, "accelerate launch: expected `-m rlsurrogate ...`"
    cut = args.index("-m")
    options, module = args[:cut], args[cut + 1 :]
    num_processes = None
    for i, option in enumerate(options):
        if option == "--config_file":
            config = ROOT / options[i + 1]
            assert config.is_file(), f"accelerate config {options[i + 1]}: no such file"
            num_processes = num_processes or yaml.safe_load(config.read_text()).get("num_processes")
        if option == "--num_processes":
            num_processes = int(options[i + 1])
    assert module[:1] == ["rlsurrogate"], f"accelerate launch -m {module[:1]}: expected rlsurrogate"
    check_rlsurrogate(module[1:], num_processes=num_processes)


def check_script(args: list[str]) -> None:
    script = ROOT / args[0]
    assert script.is_file(), f"no script {args[0]}"
    source = script.read_text()
    for flag in (a.split("=", 1)[0] for a in args[1:] if a.startswith("--")):
        assert f'"{flag}"' in source, f"{args[0]}: no option {flag}"


def check_pip(args: list[str]) -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for arg in args:
        match = re.fullmatch(r"(?:\.|rlsurrogate)\[([\w,-]+)\]", arg)
        if match:
            for extra in match.group(1).split(","):
                assert extra in extras, f"pip install {arg}: no extra {extra!r} in pyproject.toml"


# ---------------------------------------------------------------------------------------------------------------


def test_every_documented_recipe_field_has_help():
    missing = [
        f"{cls.__name__}.{f.name}"
        for cls in _load_hooks().documented_dataclasses()
        for f in dataclasses.fields(cls)
        if not str(f.metadata.get("help", "")).strip()
    ]
    assert not missing, f"fields without metadata={{'help': ...}}: {', '.join(missing)}"


def test_every_recipe_section_is_on_the_reference_page():
    from rlsurrogate import recipe

    hooks = _load_hooks()
    listed = set(hooks.documented_dataclasses())
    hints = [hint for cls in listed for hint in typing.get_type_hints(cls).values()]
    nested = {inner for hint in hints for inner in _dataclasses_in(hint)}
    assert nested <= listed, f"dataclasses nested in a recipe but not on the page: {nested - listed}"
    page = hooks.render()
    for f in dataclasses.fields(recipe.Recipe):
        if f.name != "source":
            assert f"| `{f.name}` |" in page
    assert "| `learning_rate` |" not in page  # training fields are TRL's; the page points there


def _dataclasses_in(hint) -> set[type]:
    found = {hint} if dataclasses.is_dataclass(hint) else set()
    for arg in typing.get_args(hint):
        found |= _dataclasses_in(arg)
    return found


def test_reference_page_is_generated_not_committed():
    assert not (ROOT / "docs" / "recipe-reference.md").exists(), "the page is generated at build time; remove the copy"
    config = (ROOT / "mkdocs.yml").read_text()
    assert "scripts/docs_hooks.py" in config and "recipe-reference.md" in config


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_runnable_commands_parse(path):
    for line, block in runnable_blocks(path.read_text()):
        for argv in commands(block):
            try:
                check_command(argv)
            except Exception as err:  # ConfigError from a recipe, AssertionError from the checks above
                pytest.fail(f"{path.relative_to(ROOT)}:{line}: `{shlex.join(argv)}`: {err}")


def test_the_docs_mark_commands_runnable():
    counted = sum(len(commands(b)) for p in markdown_files() for _, b in runnable_blocks(p.read_text()))
    assert counted >= 20, f"only {counted} runnable commands found; is the {MARKER} marker still used?"


def test_the_checks_catch_a_wrong_flag_and_a_wrong_key():
    with pytest.raises(AssertionError, match="--stepz"):
        check_command(["rlsurrogate", "train", "recipes/quickstart.yaml", "--stepz", "3"])
    from rlsurrogate.errors import ConfigError

    with pytest.raises(ConfigError, match="temprature"):
        check_command(["rlsurrogate", "train", "recipes/quickstart.yaml", "--set", "generation.temprature=0.5"])
    with pytest.raises(AssertionError, match="no option --nope"):
        check_command(["python", "scripts/bench_bo.py", "--nope"])
    with pytest.raises(AssertionError, match="no such target"):
        check_command(["make", "quickstarts"])


def _slug(heading: str) -> str:
    """A heading's anchor as Python-Markdown's toc (and GitHub, for these headings) writes it."""
    text = re.sub(r"[`*]", "", heading).strip().lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[-\s]+", "-", text).strip("-")


def test_readme_links_resolve():
    """The README is not part of the site, so mkdocs does not check its links; this does."""
    for target in re.findall(r"\]\(([^)\s]+)\)", (ROOT / "README.md").read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        assert (ROOT / path).exists(), f"README links to {path}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", (ROOT / path).read_text(), flags=re.M)
            assert anchor in {_slug(h) for h in headings}, f"README links to {target}: no such heading"
