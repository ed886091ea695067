"""Every shipped recipe validates; every kind of bad recipe gives its own one-line error, all at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from rlsurrogate.build import load, validate
from rlsurrogate.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted(p for p in (REPO / "recipes").glob("*.yaml"))
GOOD = {
    "model": {"name": "smollm2-135m-instruct"},
    "data": {"task": "arithmetic", "num_train": 16, "num_eval": 4},
    "rewards": [{"name": "format_length"}],
    "generation": {"num_generations": 4, "max_completion_length": 16},
    "training": {"per_device_train_batch_size": 4, "max_steps": 1},
}


def _validate(raw, **kwargs):
    """The recipe of a raw mapping, schema and names checked together (what `rlsurrogate train` does)."""
    return validate(raw, **kwargs)[0]


def _load(path, **kwargs):
    return load(path, **kwargs)[0]


def _with(**changes):
    import copy

    raw = copy.deepcopy(GOOD)
    for dotted, value in changes.items():
        node = raw
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return raw


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_every_shipped_recipe_loads(path, monkeypatch):
    monkeypatch.chdir(REPO)
    recipe = _load(path)
    assert recipe.rewards and recipe.model.name
    assert path.read_text().lstrip().startswith("#"), "each recipe starts with a comment giving its launch command"


def test_accelerate_configs_are_yaml_mappings():
    for path in (REPO / "recipes" / "accelerate").glob("*.yaml"):
        assert isinstance(yaml.safe_load(path.read_text()), dict), path


def test_good_recipe_builds_typed_sections():
    recipe = _validate(GOOD)
    assert recipe.generation.num_generations == 4
    assert recipe.training_value("per_device_train_batch_size") == 4
    assert recipe.training_value("logging_steps") == 1  # our default


@pytest.mark.parametrize(
    "changes, expected",
    [
        (
            {"training__learning_rat": 1e-5},
            'training.learning_rat: not a GRPOConfig field. Did you mean "learning_rate"?',
        ),
        ({"generation__temprature": 0.7}, 'generation.temprature: unknown key. Did you mean "temperature"?'),
        ({"generation__num_generations": "eight"}, "generation.num_generations = 'eight': must be int"),
        ({"generation__temperature": -1.0}, "generation.temperature = -1.0: must be > 0"),
        ({"training__per_device_train_batch_size": 6}, "is not divisible by num_generations 4"),
        ({"data__path": "no/such/file.jsonl", "data__task": None}, 'data.path = "no/such/file.jsonl": no such file'),
        ({"data__task": "arithmetik"}, 'data.task = "arithmetik": unknown. Did you mean "arithmetic"?'),
        ({"objective__name": "dispo"}, 'objective.name = "dispo": unknown objective.'),
        ({"training__num_generations": 8}, "training.num_generations: set it under generation"),
        ({"optimizer__name": "adam-cm"}, 'optimizer.name = "adam-cm": unknown. Did you mean "adam_cm"?'),
        ({"optimizer__name": "adam_cm", "optimizer__params": {"bufer_size": 3}}, "optimizer.params.bufer_size"),
        ({"model__name": "./missing/checkpoint"}, 'model.name = "./missing/checkpoint": no such directory'),
        ({"training__eval_strategy": "epoch"}, "training.eval_strategy = 'epoch': evaluation runs every N"),
        ({"training__eval_strategy": "steps"}, "training.eval_strategy = 'steps' needs training.eval_steps"),
        ({"training__eval_steps": 5}, "training.eval_steps: set it under eval.every_steps"),
        ({"training__load_best_model_at_end": True}, "output_dir/best/ holds the model with the best gold"),
        (
            {"training__eval_strategy": "steps", "training__eval_steps": 5, "eval__every_steps": 3},
            "training.eval_steps = 5 and eval.every_steps = 3 disagree",
        ),
        ({"eval__every_steps": -1}, "eval.every_steps = -1: must be >= 0"),
        ({"generation__temperature": float("nan")}, "generation.temperature = nan: must be > 0 and finite"),
        ({"generation__temperature": float("inf")}, "generation.temperature = inf: must be > 0 and finite"),
        ({"generation__top_k": -1}, "generation.top_k = -1: must be >= 0"),
        ({"rewards": [{"name": "format_length", "weight": float("nan")}]}, "rewards[0].weight = nan: must be in"),
        ({"rewards": [{"name": "format_length", "weight": float("inf")}]}, "rewards[0].weight = inf: must be in"),
        ({"rewards": [{"name": "format_length", "timeout_s": -1.0}]}, "rewards[0].timeout_s = -1.0: must be in"),
        ({"training__max_steps": 0}, "training.max_steps = 0: must be >= 1; -1 trains for num_train_epochs"),
        ({"training__max_steps": -5}, "training.max_steps = -5: must be >= 1"),
        ({"training__learning_rate": float("nan")}, "training.learning_rate = nan: must be > 0"),
        ({"eval__num_prompts": -3}, "eval.num_prompts = -3: must be in [1, 1e+06]"),
        ({"eval__max_new_tokens": -1}, "eval.max_new_tokens = -1: must be in"),
        ({"diagnostics__flat_steps": -2}, "diagnostics.flat_steps = -2: must be >= 1"),
        ({"data__num_train": 1_000_000_000}, "data.num_train = 1000000000: must be in [1, 1e+06]"),
        ({"data__template": "{question"}, "data.template = '{question': not a valid template"),
        ({"data__template": "{} + {0}"}, "does not name a column"),
        ({"optimizer__name": "adam_cm", "optimizer__params": {"buffer_size": -3}}, "optimizer.params: "),
        ({"output_dir": None}, "output_dir = None: must be a directory path"),
        ({"output_dir": ""}, "output_dir = '': must be a directory path"),
        ({"eval__guard_window": 1}, "eval.guard_window = 1: must be in [2, 10000]"),
        ({"eval__guard_min_rise": float("nan")}, "eval.guard_min_rise = nan: must be in [1e-09, 1]"),
    ],
)
def test_each_bad_recipe_gives_its_one_line_error(changes, expected):
    with pytest.raises(ConfigError) as info:
        _validate(_with(**changes))
    lines = info.value.problems
    assert any(expected in line for line in lines), lines
    assert all("\n" not in line for line in lines)


@pytest.mark.parametrize(
    "text, fragment",
    [
        # 9 levels of 9 aliases: 387M values if expanded
        (
            "a: &a [x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                for p, n in zip("abcdefgh", "bcdefghi")
            ),
            "expands to more than 100,000 values",
        ),
        ("model: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 64 levels"),
    ],
    ids=["alias_bomb", "deep_nesting"],
)
def test_hostile_yaml_is_refused_in_one_short_line(tmp_path, text, fragment):
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        _load(path)
    message = str(info.value)
    assert fragment in message and "\n" not in message and len(message) < 600


def test_non_utf8_and_huge_recipes_are_refused(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("model: {name: caf\xe9}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9 at offset 17\)"):
        _load(path)
    path.write_text("# " + "x" * 2_000_000)
    with pytest.raises(ConfigError, match="2,000,002 bytes"):
        _load(path)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("training.max_steps=[1, 2", "the value is not valid YAML"),
        ("rewards.5.weight=1", "rewards is a list of 1; '5' is not in 0-0"),
        ("rewards.x.weight=1", "rewards is a list of 1; 'x' is not in 0-0"),
        ("training.max_steps.x=1", "training.max_steps is a value, not a section"),
    ],
)
def test_bad_overrides_get_one_line(tmp_path, override, fragment):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({**GOOD, "training": {"max_steps": 1}}))
    with pytest.raises(ConfigError) as info:
        _load(path, overrides=[override])
    assert any(fragment in line for line in info.value.problems), info.value.problems


def test_problem_lines_are_cut_to_a_readable_length():
    raw = _with(generation__vllm_mode="x" * 100_000)
    with pytest.raises(ConfigError) as info:
        _validate(raw)
    line = next(p for p in info.value.problems if p.startswith("generation.vllm_mode"))
    assert len(line) <= 500 and line.endswith("more characters)")


def test_trl_eval_strategy_steps_maps_onto_every_steps():
    recipe = _validate(_with(training__eval_strategy="steps", training__eval_steps=5))
    assert recipe.eval.every_steps == 5
    assert "eval_strategy" not in recipe.training and "eval_steps" not in recipe.training
    assert "eval_strategy" not in _validate(_with(training__eval_strategy="no")).training


def test_accuracy_is_the_default_gold_metric_and_any_reward_can_be_marked():
    recipe = _validate(
        _with(
            rewards=[{"name": "format_length"}, {"name": "accuracy", "weight": 0.0}, {"name": "format", "gold": True}]
        )
    )
    assert [spec.is_gold for spec in recipe.rewards] == [False, True, True]
    recipe = _validate(_with(rewards=[{"name": "accuracy", "gold": False}]))
    assert not recipe.rewards[0].is_gold


def test_unknown_reward_names_the_valid_ones():
    raw = _with(rewards=[{"name": "format_lenght"}])
    with pytest.raises(ConfigError) as info:
        _validate(raw)
    assert any('Did you mean "format_length"' in p for p in info.value.problems), info.value.problems


def test_all_problems_are_reported_together():
    raw = _with(training__learning_rat=1e-5, generation__temprature=0.7, data__task="arithmetik")
    with pytest.raises(ConfigError) as info:
        _validate(raw)
    assert len(info.value.problems) >= 3


def test_unknown_section_and_missing_section():
    raw = dict(GOOD, trainer={"x": 1})
    del raw["rewards"]
    with pytest.raises(ConfigError) as info:
        _validate(raw)
    text = "\n".join(info.value.problems)
    assert 'trainer: unknown section. Did you mean "training"?' in text
    assert "rewards: missing" in text


def test_overrides_apply_and_are_validated(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    recipe = _load(path, overrides=["training.max_steps=7", "generation.temperature=0.5"])
    assert recipe.training["max_steps"] == 7 and recipe.generation.temperature == 0.5
    with pytest.raises(ConfigError, match="generation.temperature = 0"):
        _load(path, overrides=["generation.temperature=0"])
    with pytest.raises(ConfigError, match="expected section.key=value"):
        _load(path, overrides=["training.max_steps"])


def test_batch_check_counts_processes():
    raw = _with(training__per_device_train_batch_size=2)
    with pytest.raises(ConfigError, match="not divisible by num_generations 4"):
        _validate(raw, num_processes=1)
    assert _validate(raw, num_processes=2).generation.num_generations == 4


def test_cli_prints_one_line_per_problem_without_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        textwrap.dedent(
            """
        model: {name: smollm2-135m-instruct}
        data: {task: arithmetic}
        rewards: [{name: format_length}]
        generation: {temprature: 0.7}
        training: {learning_rat: 1.0e-5}
        """
        )
    )
    proc = subprocess.run([sys.executable, "-m", "rlsurrogate", "train", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert 'generation.temprature: unknown key. Did you mean "temperature"?' in proc.stderr
    assert 'training.learning_rat: not a GRPOConfig field. Did you mean "learning_rate"?' in proc.stderr


def test_yaml_1_2_scalars(tmp_path):
    """`no` stays a string (save_strategy: no), `5e-5` is a float."""
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    recipe = _load(path, overrides=["training.save_strategy=no", "eval.before=false"])
    assert recipe.training["save_strategy"] == "no" and recipe.eval.before is False


def test_exponent_floats_without_a_dot_are_floats(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(GOOD).replace("max_steps: 1", "max_steps: 1\n  learning_rate: 5e-5"))
    assert _load(path).training["learning_rate"] == 5e-5
    assert _load(path, overrides=["training.learning_rate=1e-4"]).training["learning_rate"] == 1e-4
