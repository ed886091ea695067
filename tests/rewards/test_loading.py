"""Reward loading: registry names, `package.module:fn`, `path/file.py:fn`; params, names, versions, problems."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys
import textwrap

import pytest

from rlsurrogate.errors import ConfigError
from rlsurrogate.rewards import REWARDS, build_reward, check_reward_spec

USER_FILE = """
def plain(completions, **kwargs):
    return [float(len(str(c))) for c in completions]

def strict(completions, answer):
    return [0.0 for _ in completions]

def positional(completions, /, **kwargs):
    return [0.0 for _ in completions]

def make_scaled(scale, offset=0.0):
    if scale <= 0:
        raise ValueError(f"scale = {scale}: must be > 0")
    return Scaled(scale, offset)

class Scaled:
    def __init__(self, scale, offset):
        self.scale, self.offset = scale, offset

    def __call__(self, completions, **kwargs):
        return [self.scale * len(str(c)) + self.offset for c in completions]

def make_named(tag=None):
    return Named()

class Named:
    __name__ = "my_named"
    version = "7"

    def __call__(self, completions, **kwargs):
        return [1.0 for _ in completions]

NOT_CALLABLE = 3
"""


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    (tmp_path / "my_rewards").mkdir()
    (tmp_path / "my_rewards" / "mine.py").write_text(USER_FILE)
    (tmp_path / "my_rewards" / "broken.py").write_text("def f(:\n")
    (tmp_path / "pkg_rewards.py").write_text(USER_FILE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtin_names_and_factory_signatures():
    assert REWARDS.names() == ["accuracy", "boxed_number", "format", "format_length", "length", "majority_vote"]
    for name in ("length", "format_length"):
        parameter = inspect.signature(REWARDS.get(name)).parameters["max_length"]
        assert parameter.kind is parameter.KEYWORD_ONLY and parameter.default is parameter.empty


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("format", {}),
        ("length", {"max_length": 8}),
        ("format_length", {"max_length": 8, "p": 0.4, "w_fmt": 0.5}),
        ("accuracy", {"answer_column": "answer"}),
        ("boxed_number", {}),
        ("majority_vote", {"num_generations": 8}),
    ],
)
def test_build_builtin(name, params):
    reward = build_reward(name, params)
    assert reward.__name__ == name and isinstance(reward.version, str) and reward.version.isdigit()
    assert check_reward_spec(name, params) == []
    pickle.loads(pickle.dumps(reward))


def test_file_reference_without_params_is_the_function(user_dir):
    reward = build_reward("my_rewards/mine.py:plain")
    assert reward.__name__ == "plain" and reward(completions=["ab"]) == [2.0]
    assert reward.version.startswith("sha256:") and len(reward.version) == len("sha256:") + 8
    assert build_reward("my_rewards/mine.py:plain") is reward  # the file is imported once
    assert pickle.loads(pickle.dumps(reward)) is reward  # pickles by reference within the process


def test_file_reference_with_params_calls_the_factory(user_dir):
    reward = build_reward("my_rewards/mine.py:make_scaled", {"scale": 2.0, "offset": 1.0})
    assert reward(completions=["abc"]) == [7.0]
    assert reward.__name__ == "scaled"  # the factory's name without make_
    clone = pickle.loads(pickle.dumps(reward))
    assert clone(completions=["abc"]) == [7.0] and clone.__name__ == "scaled"


def test_factory_result_keeps_its_own_name_and_version(user_dir):
    reward = build_reward("my_rewards/mine.py:make_named", {"tag": "x"})
    assert (reward.__name__, reward.version) == ("my_named", "7")
    reward = build_reward("pkg_rewards:make_scaled", {"scale": 1.0})
    assert reward.__name__ == "scaled"
    with pytest.raises(ConfigError, match="must accept"):  # without params the reference is the reward itself
        build_reward("my_rewards/mine.py:make_named")


def test_module_reference(user_dir):
    reward = build_reward("pkg_rewards:plain")
    assert reward(completions=["a", "bb"]) == [1.0, 2.0] and reward.__name__ == "plain"


@pytest.mark.parametrize(
    ("spec", "params", "fragment"),
    [
        ("format_lenght", {}, 'Did you mean "format_length"'),
        ("format_length", {"max_length": 8, "pp": 1}, "unknown param 'pp'"),
        ("length", {}, "missing required param 'max_length'"),
        ("format_length", {"max_length": 8, "p": 3}, "format_length.p = 3"),
        ("my_rewards/missing.py:f", {}, "not found"),
        ("my_rewards/mine.py:plian", {}, 'Did you mean "plain"'),
        ("my_rewards/mine.py:NOT_CALLABLE", {}, "not a function"),
        ("my_rewards/broken.py:f", {}, "SyntaxError"),
        ("my_rewards/mine.py:strict", {}, "must accept **kwargs"),
        ("my_rewards/mine.py:positional", {}, "positional-only"),
        ("my_rewards/mine.py:make_scaled", {"scal": 1}, "unknown param 'scal'"),
        ("my_rewards/mine.py:Scaled", {}, "is a class"),
        ("no_such_pkg.mod:f", {}, "cannot import module"),
        ("my_rewards/mine.py:1bad", {}, "identifier"),
        ("", {}, "must be a registry name"),
    ],
)
def test_problems_are_one_line_each_and_build_raises_them(user_dir, spec, params, fragment):
    problems = check_reward_spec(spec, params)
    assert problems and any(fragment in p for p in problems), problems
    assert all("\n" not in p for p in problems)
    with pytest.raises(ConfigError) as err:
        build_reward(spec, params)
    assert any(fragment in p for p in err.value.problems)


def test_check_collects_every_problem_of_a_builtin():
    problems = check_reward_spec("format_length", {"max_length": 0, "p": 2, "w_fmt": -1, "shape": "x", "q": 1})
    assert len(problems) == 5


def test_check_does_not_call_user_code_beyond_import(user_dir):
    (user_dir / "counting.py").write_text(
        "CALLS = []\n"
        "def make_r(x):\n    CALLS.append(x)\n    return lambda completions, **kw: [0.0] * len(completions)\n"
    )
    assert check_reward_spec("counting.py:make_r", {"x": 1}) == []
    path = str((user_dir / "counting.py").resolve())
    module = next(m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == path)
    assert module.CALLS == []
    build_reward("counting.py:make_r", {"x": 1})
    assert module.CALLS == [1]


def test_user_factory_errors_become_config_errors(user_dir):
    with pytest.raises(ConfigError, match="scale = -1"):
        build_reward("my_rewards/mine.py:make_scaled", {"scale": -1})


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("def make_r(x):\n    raise RuntimeError('no GPU here')\n", "its factory raised RuntimeError: no GPU here"),
        ("def make_r(x):\n    import sys\n    sys.exit(0)\n", "its factory raised SystemExit"),
    ],
)
def test_any_factory_failure_is_one_config_error(user_dir, body, fragment):
    (user_dir / "raising.py").write_text(body)
    with pytest.raises(ConfigError, match=fragment):
        build_reward("raising.py:make_r", {"x": 1})


def test_reward_file_that_exits_at_import_is_a_problem_and_is_named_first(user_dir, capsys):
    (user_dir / "exits.py").write_text("import sys\nsys.exit(3)\ndef r(completions, **kw):\n    return []\n")
    problems = check_reward_spec("exits.py:r")
    assert len(problems) == 1 and "importing exits.py failed: SystemExit: 3" in problems[0]
    assert "importing reward file exits.py" in capsys.readouterr().err


def test_importing_rewards_stays_light():
    code = textwrap.dedent("""
        import sys
        import rlsurrogate.rewards
        heavy = [m for m in ("torch", "trl", "transformers", "sympy", "math_verify") if m in sys.modules]
        print(heavy)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
