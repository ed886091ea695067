"""The top-level reward plug-ins (rewards/*.py), loaded by path the way their recipes load them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rlsurrogate.errors import ConfigError
from rlsurrogate.rewards import build_reward, check_reward_spec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)


def test_exact_answer():
    reward = build_reward("rewards/exact_answer.py:exact_answer")
    completions = [
        "so \\boxed{ 12 }",
        "\\boxed{12.0}",
        "12",
        [{"role": "assistant", "content": "\\boxed{$12$}"}],
        "<think>\\boxed{12}</think>",
    ]
    assert reward(prompts=["q"] * 5, completions=completions, answer=["12"] * 5) == [1.0, 0.0, 0.0, 1.0, 0.0]
    assert reward.__name__ == "exact_answer" and reward.version == "1"


def test_answer_anywhere_matches_whole_numbers_in_any_format():
    reward = build_reward("rewards/answer_anywhere.py:answer_anywhere")
    completions = ["4 + 7 = 11", "4 + 7 = 110", "1.11", [{"role": "assistant", "content": "so \\boxed{11}"}], "x"]
    assert reward(prompts=["q"] * 5, completions=completions, answer=["11"] * 5) == [1.0, 0.0, 0.0, 1.0, 0.0]
    assert reward.__name__ == "answer_anywhere" and reward.version == "1"


def test_keywords_factory_and_validation():
    reward = build_reward("rewards/keywords.py:make_keyword_reward", {"keywords": ["Total", "answer"]})
    assert reward(completions=["the TOTAL answer", "total", "none"]) == [1.0, 0.5, 0.0]
    assert reward.__name__ == "keywords" and reward.version == "1"
    sensitive = build_reward(
        "rewards/keywords.py:make_keyword_reward", {"keywords": ["Total"], "case_sensitive": True}
    )
    assert sensitive(completions=["total", "Total"]) == [0.0, 1.0]
    with pytest.raises(ConfigError, match="non-empty list"):
        build_reward("rewards/keywords.py:make_keyword_reward", {"keywords": []})
    assert check_reward_spec("rewards/keywords.py:make_keyword_reward", {"keyword": ["a"]})


def test_each_plugin_is_used_by_a_recipe_whose_reward_entries_check_clean():
    plugins = {p.relative_to(REPO).as_posix() for p in (REPO / "rewards").glob("*.py")}
    used = set()
    for path in (REPO / "recipes").glob("*.yaml"):
        recipe = yaml.safe_load(path.read_text())
        max_length = recipe.get("generation", {}).get("max_completion_length", 256)
        for entry in recipe.get("rewards", []):
            params = dict(entry.get("params") or {})
            if entry["name"] in ("length", "format_length"):
                params.setdefault("max_length", max_length)
            assert check_reward_spec(entry["name"], params) == [], (path.name, entry)
            used.add(entry["name"].split(":")[0])
    assert plugins <= used, f"plug-ins without a recipe: {plugins - used}"
