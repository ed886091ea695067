"""trl_config: TRL's flat `trl grpo` format mapped onto a recipe; what cannot be mapped is refused, never dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from rlsurrogate.build import grpo_config, load, validate
from rlsurrogate.errors import ConfigError
from rlsurrogate.trl_config import is_trl_config, normalize, to_recipe

# TRL 1.16's docs (`docs/source/clis.md`, "GRPO"), with a local model and dataset instead of hub ids.
TRL_DOCS_EXAMPLE = """
model_name_or_path: {model}
dataset_name: {dataset}
reward_funcs:
  - accuracy_reward
"""


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from rlsurrogate.models import tiny_model

    path = tmp_path_factory.mktemp("tiny") / "model"
    model, tokenizer = tiny_model(seed=0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def math_jsonl(tmp_path):
    """A conversational dataset with TRL's `solution` column, as TRL's accuracy_reward expects."""
    rows = [
        {"prompt": [{"role": "user", "content": f"What is {i} + 2?"}], "solution": f"${i + 2}$"} for i in range(40)
    ]
    path = tmp_path / "math.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def _flat(**extra):
    base = {"model_name_or_path": "smollm2-135m-instruct", "dataset_name": "ds.jsonl"}
    return base | {"reward_funcs": ["accuracy_reward"]} | extra


def test_detects_the_flat_format_only():
    assert is_trl_config(_flat())
    assert not is_trl_config({"model": {"name": "x"}, "data": {}, "rewards": []})
    assert not is_trl_config({"learning_rate": 1e-5})


def test_maps_script_model_and_grpo_fields_onto_recipe_sections():
    recipe, problems = to_recipe(
        _flat(
            model_revision="v2",
            dtype="bfloat16",
            attn_implementation="eager",
            trust_remote_code=True,
            use_peft=True,
            lora_r=8,
            use_dora=True,
            lora_modules_to_save=["lm_head"],
            load_in_4bit=True,
            dataset_config="main",
            dataset_train_split="train[:90%]",
            reward_model_name_or_path="org/rm",
            reward_weights=[0.5, 1.0],
            loss_type="dr_grpo",
            num_generations=4,
            temperature=0.7,
            learning_rate=1e-5,
            beta=0.04,
            eval_on_start=True,
        )
    )
    assert problems == []
    model = recipe["model"]
    assert (model["name"], model["revision"], model["dtype"], model["attn_implementation"]) == (
        "smollm2-135m-instruct",
        "v2",
        "bfloat16",
        "eager",
    )
    assert model["trust_remote_code"] is True and model["quantization"] == {"load_in_4bit": True}
    assert model["lora"] == {"r": 8, "target_modules": None, "modules_to_save": ["lm_head"], "use_dora": True}
    assert recipe["data"] == {"hf_dataset": "ds.jsonl", "hf_config": "main", "split": "train[:90%]"}
    assert recipe["rewards"] == [
        {"name": "rm:org/rm", "params": {"trust_remote_code": True}, "weight": 0.5},
        {"name": "trl.rewards:accuracy_reward", "gold": True, "weight": 1.0},
    ]
    assert recipe["objective"] == {"name": "dr_grpo"}
    assert recipe["generation"] == {"max_completion_length": 512, "num_generations": 4, "temperature": 0.7}
    assert recipe["training"]["learning_rate"] == 1e-5 and recipe["training"]["beta"] == 0.04
    assert "reward_weights" not in recipe["training"] and recipe["eval"] == {"before": True}


def test_trl_defaults_where_ours_differ():
    recipe, _ = to_recipe(_flat())
    assert recipe["objective"] == {"name": "dapo"}  # TRL 1.16's loss_type default, not our "grpo"
    assert recipe["generation"]["max_completion_length"] == 512
    assert recipe["training"]["logging_steps"] == 10 and recipe["training"]["gradient_checkpointing"] is True
    assert recipe["output_dir"] == "trainer_output"
    assert "eval_split" not in recipe["data"]
    recipe, _ = to_recipe(_flat(eval_strategy="steps", eval_steps=5))
    assert recipe["data"]["eval_split"] == "test"  # TRL evaluates on dataset_test_split


def test_reward_funcs_names_and_import_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_rewards").mkdir()
    (tmp_path / "my_rewards" / "r.py").write_text(
        "def short(completions, **kw):\n    return [1.0] * len(completions)\n"
    )
    funcs = ["get_soft_overlong_punishment", "boxed_number", "my_rewards.r.short", "some_pkg.mod.fn"]
    recipe, problems = to_recipe(_flat(reward_funcs=funcs))
    assert problems == []
    assert [r["name"] for r in recipe["rewards"]] == [
        "trl.rewards:get_soft_overlong_punishment",
        "boxed_number",
        "my_rewards/r.py:short",  # a file under the working directory, as TRL imports it
        "some_pkg.mod:fn",
    ]
    assert recipe["rewards"][0]["params"] == {"max_completion_len": 1280, "soft_punish_cache": 256}
    _, problems = to_recipe(_flat(reward_funcs=["acuracy_reward"]))
    assert 'Did you mean "accuracy_reward"?' in problems[0]


@pytest.mark.parametrize(
    "extra, expected",
    [
        ({"num_processes": 2}, "num_processes: a `trl` launcher setting; launch with accelerate"),
        ({"env": {"WANDB_MODE": "offline"}}, "env: set these environment variables in the shell"),
        ({"lora_r": 8}, "lora_r: set, but use_peft is false"),
        ({"bnb_4bit_quant_type": "fp4"}, "set without load_in_4bit"),
        ({"lerning_rate": 1e-5}, "lerning_rate: not a field of GRPOScriptArguments, ModelConfig or GRPOConfig"),
        ({"datasets": [{"path": "a"}, {"path": "b"}], "dataset_name": None}, "a mixture of several datasets"),
        ({"lora_task_type": "SEQ_CLS", "use_peft": True}, 'lora_task_type = "SEQ_CLS"'),
        ({"model_init_kwargs": {"device_map": "auto"}}, "model_init_kwargs.device_map: not supported"),
        ({"model_init_kwargs": '{"dtype": bfloat16}'}, "model_init_kwargs = '{\"dtype\": bfloat16}': not valid JSON"),
        ({"model_init_kwargs": ["dtype"]}, "model_init_kwargs = ['dtype']: must be a mapping"),
        ({"ignore_bias_buffers": True}, "ignore_bias_buffers: TRL's GRPO script does not read it"),
        # keys TRL 1.16 no longer has, which its script would drop without a word
        ({"torch_dtype": "bfloat16"}, "torch_dtype: renamed dtype in TRL 1.x"),
        ({"warmup_ratio": 0.1}, "warmup_ratio: merged into warmup_steps in transformers 5"),
        ({"max_prompt_length": 512}, "max_prompt_length: not a GRPOConfig field since TRL 1.0"),
        ({"overwrite_output_dir": True}, "overwrite_output_dir: removed in transformers 5"),
        # open-r1's grpo.py keys and reward names
        ({"chat_template": "{{ messages }}"}, "chat_template: an open-r1 key, not TRL's; set tokenizer.chat_template"),
        ({"wandb_project": "p"}, "wandb_project: an open-r1 key, not TRL's; set WANDB_PROJECT in the environment"),
        ({"cosine_max_len": 1000}, "cosine_max_len: a parameter of an open-r1 reward, not TRL's"),
        ({"reward_funcs": ["tag_count"]}, "reward_funcs: 'tag_count' is an open-r1 reward, not TRL's"),
        # open-r1's names for rewards this package's registry names differently
        ({"reward_funcs": ["accuracy"]}, "reward_funcs: 'accuracy' names two rewards: open-r1's math-verify check"),
        ({"reward_funcs": ["format"]}, "reward_funcs: 'format' names two rewards: open-r1's <think>/<answer> tag"),
        ({"reward_funcs": ["length"]}, "reward_funcs: 'length' names two rewards: open-r1's len_reward (Kimi 1.5)"),
        # shapes that are not TRL's: one line each, no traceback
        ({"reward_funcs": [{"name": "accuracy"}]}, "reward_funcs: {'name': 'accuracy'} is not a name"),
        ({"reward_funcs": {"accuracy_reward": 1.0}}, "reward_funcs: {'accuracy_reward': 1.0} is not a name"),
    ],
)
def test_what_has_no_equivalent_is_refused_with_the_alternative(extra, expected):
    _, problems = to_recipe(_flat(**extra))
    assert any(expected in p for p in problems), problems


def test_this_packages_reward_spelled_as_a_path_and_refusals_are_not_restated():
    recipe, problems = to_recipe(_flat(reward_funcs=["rlsurrogate.rewards.format", "boxed_number"]))
    assert problems == [] and [r["name"] for r in recipe["rewards"]] == ["format", "boxed_number"]
    with pytest.raises(ConfigError) as info:  # no weight-count line, no "rewards: must be a non-empty list"
        validate(_flat(reward_funcs=["tag_count"], reward_weights=[1.0, 2.0]))
    assert [p.split(":")[0] for p in info.value.problems] == ["reward_funcs"]
    with pytest.raises(ConfigError) as info:  # no "data: set exactly one of ..."
        validate(_flat(dataset_name=None, datasets=[{"path": "a"}, {"path": "b"}]))
    assert [p.split(":")[0] for p in info.value.problems] == ["datasets"]


def test_strings_and_nulls_are_read_as_trl_reads_them():
    """TRL's HfArgumentParser applies a field's type to a string value (string_to_bool, int, float)."""
    recipe, problems = to_recipe(
        _flat(use_peft="false", trust_remote_code="No", dataset_streaming="FALSE", load_in_4bit="0")
        | {"learning_rate": "1e-5", "max_steps": "10", "eval_on_start": "yes", "save_total_limit": None}
    )
    assert problems == []
    assert "lora" not in recipe["model"] and "trust_remote_code" not in recipe["model"]
    assert "quantization" not in recipe["model"] and "streaming" not in recipe["data"]
    assert recipe["training"]["learning_rate"] == pytest.approx(1e-5) and recipe["training"]["max_steps"] == 10
    assert recipe["eval"] == {"before": True} and recipe["training"]["save_total_limit"] is None
    recipe, _ = to_recipe(_flat(scale_rewards=False))  # TRL's GRPOConfig reads False as "none", True as "group"
    assert recipe["training"]["scale_rewards"] == "none"
    recipe, _ = to_recipe(_flat(use_peft="True", trust_remote_code="true"))
    assert recipe["model"]["trust_remote_code"] is True and "lora" in recipe["model"]
    _, problems = to_recipe(_flat(use_peft="maybe", max_steps="1e3", learning_rate=None))
    assert problems == [
        "use_peft = 'maybe': TRL reads this field as bool; write true or false.",
        "max_steps = '1e3': TRL reads this field as int; write an integer.",
        "learning_rate = null: TRL's field takes no null; remove the line to keep its default.",
    ]


def test_a_key_that_is_not_text_is_named_not_a_traceback():
    _, problems = to_recipe({**_flat(), 1: "x"})
    assert problems == ["1: not a field of GRPOScriptArguments, ModelConfig or GRPOConfig (TRL 1.16)."]


def test_model_init_kwargs_as_a_json_string_is_read_as_grpo_config_reads_it():
    recipe, problems = to_recipe(_flat(model_init_kwargs='{"dtype": "bfloat16", "attn_implementation": "sdpa"}'))
    assert problems == []
    assert recipe["model"]["dtype"] == "bfloat16" and recipe["model"]["attn_implementation"] == "sdpa"


def test_open_r1_system_prompt_and_prompt_column_map_onto_data():
    recipe, problems = to_recipe(_flat(system_prompt="Think first.", dataset_prompt_column="problem"))
    assert problems == []
    assert recipe["data"]["system_prompt"] == "Think first." and recipe["data"]["template"] == "{problem}"


def test_conversion_and_schema_problems_come_together():
    with pytest.raises(ConfigError) as info:
        validate(_flat(num_processes=2, temperature=-1.0, resume_from_checkpoint=True))
    text = "\n".join(info.value.problems)
    assert "num_processes" in text  # conversion
    assert "generation.temperature = -1.0" in text  # schema
    assert "training.resume_from_checkpoint: set it under `--resume` on the command line" in text


def test_recipe_top_level_fields_are_pointed_to_their_section():
    raw = {"model": {"name": "x"}, "data": {"task": "arithmetic"}, "rewards": ["format"]}
    _, problems = normalize(raw | {"learning_rate": 1e-5, "num_generations": 4, "model_name_or_path": "y"})
    assert "learning_rate: a GRPOConfig field; put it under `training:`." in problems
    assert "num_generations: a generation setting; put it under `generation:`." in problems
    assert any(p.startswith("model_name_or_path: a `trl grpo` key; a recipe spells it model.name") for p in problems)


def test_a_trl_config_may_add_recipe_sections(tmp_path):
    recipe, problems = to_recipe(_flat(num_generations=4, eval={"every_steps": 2}, generation={"top_k": 5}))
    assert problems == [] and recipe["eval"] == {"every_steps": 2} and recipe["generation"]["top_k"] == 5
    _, problems = to_recipe(_flat(num_generations=4, generation={"num_generations": 8}))
    assert problems == ["generation.num_generations: set both as a flat TRL key and under generation:; keep one."]


def test_convert_prints_a_recipe_that_validates_to_the_same_run(tmp_path, tiny_dir, math_jsonl, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "grpo_config.yaml"
    config.write_text(TRL_DOCS_EXAMPLE.format(model=tiny_dir, dataset=math_jsonl) + "num_generations: 4\n")
    proc = subprocess.run(
        [sys.executable, "-m", "rlsurrogate", "convert", str(config)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# rlsurrogate train")
    converted = yaml.safe_load(proc.stdout)
    recipe_a, resolved_a = validate(converted)
    recipe_b, resolved_b = load(config)
    assert recipe_a.to_dict() == recipe_b.to_dict()
    assert grpo_config(recipe_a, resolved_a).to_dict() == grpo_config(recipe_b, resolved_b).to_dict()
    proc = subprocess.run(
        [sys.executable, "-m", "rlsurrogate", "convert", str(config.parent / "none.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_trl_docs_example_config_trains_one_step_unchanged(tmp_path, tiny_dir, math_jsonl):
    """The docs' `trl grpo` config with a local model and dataset; batch settings sized for a CPU."""
    config = tmp_path / "grpo_config.yaml"
    config.write_text(
        TRL_DOCS_EXAMPLE.format(model=tiny_dir, dataset=math_jsonl)
        + "per_device_train_batch_size: 4\nnum_generations: 4\nmax_completion_length: 8\nmax_steps: 1\n"
        + f"output_dir: {tmp_path / 'out'}\n"
    )
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "rlsurrogate", "train", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 1 and summary["gold_metrics"] == ["accuracy_reward"]
    assert "data: 36 training prompts and 4 held-out" in proc.stdout  # the default: 10 % of 40 rows
    assert "training: 1 optimizer step (training.max_steps)" in proc.stdout
    assert "objective dapo (loss_type dapo)" in proc.stdout
    history = json.loads((tmp_path / "out" / "log_history.json").read_text())
    assert any("rewards/accuracy_reward/mean" in row for row in history)
