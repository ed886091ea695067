"""Instruction-induction tasks: input/output pairs, a metric, and splits into demos / validation / test.

The setting is that of instruction induction (Honovich et al. 2022, arXiv 2205.10782), as used by APE and INSTINCT
(Lin et al., ICML 2024, METHODS.md §4.1 steps 1 and 6): the optimizer sees a few input/output demonstrations, proposes
an instruction, and the instruction is scored by how well a black-box LLM following it maps validation inputs to
their outputs.

Metrics (per example, in [0, 1]; a task's score is the mean over its validation examples):
- `exact_match`: normalised prediction == normalised target (the first line of the prediction only);
- `contains`: the normalised target occurs in the normalised prediction, as whole words;
- `f1`: token-level F1 between prediction and target (SQuAD style).
Normalisation strips a leading "Output:" / "Answer:" label from the prediction (the evaluation template ends in
"Output:", and small models often repeat it), whitespace, surrounding quotes and punctuation, and lower-cases unless
the task is case-sensitive (`uppercase` is: "APPLE" is right, "apple" is not).

Built-in synthetic tasks need no download; their inputs come from small embedded word lists and a seeded RNG:
`antonyms`, `uppercase`, `reverse_words`, `first_letter`, `sum`, `sentiment`. A 135M model solves each of them
some of the time, so the instruction matters. Custom tasks load from JSONL with `{"input": ..., "output": ...}` lines.

Deviation: INSTINCT splits the induce set into min(50 %, 100) demo examples and the rest for validation; built-in
tasks are generated, so we draw fixed-size demo/validation/test splits from one seeded pool instead.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rlsurrogate.errors import ConfigError
from rlsurrogate.registry import Registry

__all__ = [
    "Example",
    "Task",
    "METRICS",
    "TASKS",
    "exact_match",
    "contains",
    "f1",
    "load_task",
    "load_jsonl_task",
]

# A fixed seed for the built-in generators: the same task name always yields the same examples.
_TASK_SEED = 1234

_ANTONYMS = [
    ("hot", "cold"), ("big", "small"), ("fast", "slow"), ("happy", "sad"), ("up", "down"), ("open", "closed"),
    ("light", "dark"), ("early", "late"), ("old", "new"), ("rich", "poor"), ("strong", "weak"), ("full", "empty"),
    ("hard", "soft"), ("high", "low"), ("long", "short"), ("wet", "dry"), ("good", "bad"), ("true", "false"),
    ("win", "lose"), ("love", "hate"), ("day", "night"), ("in", "out"), ("yes", "no"), ("left", "right"),
    ("black", "white"), ("clean", "dirty"), ("loud", "quiet"), ("thick", "thin"), ("cheap", "expensive"),
    ("first", "last"), ("push", "pull"), ("buy", "sell"), ("give", "take"), ("start", "end"), ("near", "far"),
    ("young", "old"), ("heavy", "light"), ("safe", "dangerous"), ("inside", "outside"), ("above", "below"),
]  # fmt: skip

_WORDS = [
    "apple", "river", "table", "garden", "window", "music", "pencil", "orange", "silver", "planet", "candle",
    "forest", "bridge", "rocket", "winter", "summer", "doctor", "yellow", "banana", "castle", "dragon", "flower",
    "guitar", "island", "jacket", "kitten", "ladder", "mirror", "needle", "pepper", "rabbit", "saddle", "tomato",
    "violin", "wallet", "zebra", "cookie", "butter", "camera", "monkey",
]  # fmt: skip

_CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"),
    ("China", "Beijing"), ("Russia", "Moscow"), ("Egypt", "Cairo"), ("England", "London"), ("Greece", "Athens"),
    ("Ireland", "Dublin"), ("Portugal", "Lisbon"), ("Austria", "Vienna"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Poland", "Warsaw"), ("Hungary", "Budapest"),
    ("Canada", "Ottawa"), ("Mexico", "Mexico City"), ("Peru", "Lima"), ("Argentina", "Buenos Aires"),
    ("Chile", "Santiago"), ("Kenya", "Nairobi"), ("Thailand", "Bangkok"), ("India", "New Delhi"),
    ("Turkey", "Ankara"), ("Cuba", "Havana"), ("Belgium", "Brussels"), ("Netherlands", "Amsterdam"),
    ("Switzerland", "Bern"), ("Australia", "Canberra"), ("Brazil", "Brasilia"), ("Iran", "Tehran"),
    ("Iraq", "Baghdad"), ("Vietnam", "Hanoi"), ("Colombia", "Bogota"), ("Scotland", "Edinburgh"),
    ("Czech Republic", "Prague"),
]  # fmt: skip

_ANIMALS = [
    "dog", "cat", "horse", "lion", "tiger", "rabbit", "mouse", "sheep", "goat", "bear", "wolf", "fox", "zebra",
    "monkey", "camel", "deer", "elephant", "giraffe", "donkey", "pig",
]  # fmt: skip
_FRUITS = [
    "apple", "banana", "cherry", "grape", "lemon", "mango", "orange", "peach", "pear", "plum", "melon", "kiwi",
    "lime", "apricot", "papaya", "coconut", "strawberry", "pineapple", "blueberry", "watermelon",
]  # fmt: skip

_NOUNS_PLURAL = [
    ("cat", "cats"), ("dog", "dogs"), ("box", "boxes"), ("baby", "babies"), ("bus", "buses"), ("car", "cars"),
    ("city", "cities"), ("church", "churches"), ("book", "books"), ("glass", "glasses"), ("lady", "ladies"),
    ("tree", "trees"), ("watch", "watches"), ("party", "parties"), ("house", "houses"), ("fox", "foxes"),
    ("story", "stories"), ("girl", "girls"), ("brush", "brushes"), ("bird", "birds"), ("toy", "toys"),
    ("pen", "pens"), ("dish", "dishes"), ("key", "keys"), ("cup", "cups"), ("family", "families"),
    ("bag", "bags"), ("class", "classes"), ("hat", "hats"), ("lake", "lakes"), ("match", "matches"),
    ("boy", "boys"), ("day", "days"), ("road", "roads"), ("penny", "pennies"), ("desk", "desks"),
    ("kiss", "kisses"), ("ship", "ships"), ("ball", "balls"), ("song", "songs"),
]  # fmt: skip

_POSITIVE = ["great", "wonderful", "lovely", "excellent", "amazing", "delightful", "fantastic", "pleasant"]
_NEGATIVE = ["terrible", "awful", "horrible", "boring", "disgusting", "dreadful", "annoying", "bad"]
_NOUNS = ["movie", "meal", "book", "trip", "song", "game", "show", "hotel"]


@dataclass(frozen=True)
class Example:
    input: str
    output: str


@dataclass
class Task:
    """A task: examples plus a metric. `split()` gives the demo, validation and test examples.

    Args:
        name: task name (used in logs and file names).
        examples: all input/output pairs.
        metric: one of `METRICS` ("exact_match", "contains", "f1").
        case_sensitive: compare without lower-casing.
        n_demo: examples reserved as demonstrations for instruction generation.
        n_val: examples the black box answers to score one instruction (INSTINCT uses min(20, |val|)).
    """

    name: str
    examples: list[Example]
    metric: str = "exact_match"
    case_sensitive: bool = False
    n_demo: int = 10
    n_val: int = 10
    description: str = ""
    _split: tuple[list[Example], list[Example], list[Example]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        problems = []
        if self.metric not in METRICS:
            problems.append(f"task.metric = {self.metric!r}: must be one of {sorted(METRICS)}.")
        if self.n_demo < 1 or self.n_val < 1:
            problems.append(f"task {self.name!r}: n_demo = {self.n_demo}, n_val = {self.n_val}: both must be >= 1.")
        if len(self.examples) < self.n_demo + self.n_val:
            problems.append(
                f"task {self.name!r} has {len(self.examples)} examples: needs >= n_demo + n_val = "
                f"{self.n_demo + self.n_val}; add examples or lower n_demo/n_val."
            )
        if problems:
            raise ConfigError(problems)

    def split(self) -> tuple[list[Example], list[Example], list[Example]]:
        """(demos, validation, test): a fixed shuffle of the examples; test holds whatever is left."""
        if self._split is None:
            order = list(self.examples)
            random.Random(_TASK_SEED).shuffle(order)
            demo, val = order[: self.n_demo], order[self.n_demo : self.n_demo + self.n_val]
            self._split = (demo, val, order[self.n_demo + self.n_val :])
        return self._split

    def score(self, prediction: str, target: str) -> float:
        """The task metric for one prediction, in [0, 1]."""
        return METRICS[self.metric](prediction, target, self.case_sensitive)


# ---- metrics ----------------------------------------------------------------------------------------------------


_LABEL = re.compile(r"^\s*(output|answer)\s*:\s*", re.IGNORECASE)


def _normalize(text: str, case_sensitive: bool) -> str:
    text = text.strip().splitlines()[0] if text.strip() else ""
    text = text if case_sensitive else text.lower()
    text = re.sub(r"\s+", " ", text).strip()
    return text.strip(string.punctuation + " '\"`")


def _tokens(text: str, case_sensitive: bool) -> list[str]:
    text = text if case_sensitive else text.lower()
    return [t for t in re.split(r"[\s" + re.escape(string.punctuation) + r"]+", text) if t]


def exact_match(prediction: str, target: str, case_sensitive: bool = False) -> float:
    """1.0 when the first line of the prediction equals the target after normalisation.

    >>> exact_match(" Cold.", "cold")
    1.0
    """
    prediction = _LABEL.sub("", prediction, count=1)
    return float(_normalize(prediction, case_sensitive) == _normalize(target, case_sensitive))


def contains(prediction: str, target: str, case_sensitive: bool = False) -> float:
    """1.0 when the target's tokens occur, in order and contiguous, among the prediction's tokens.

    >>> contains("The answer is COLD!", "cold")
    1.0
    """
    p, t = _tokens(_LABEL.sub("", prediction, count=1), case_sensitive), _tokens(target, case_sensitive)
    if not t:
        return float(not p)
    return float(any(p[i : i + len(t)] == t for i in range(len(p) - len(t) + 1)))


def f1(prediction: str, target: str, case_sensitive: bool = False) -> float:
    """Token-level F1 between prediction and target (SQuAD style), in [0, 1].

    >>> round(f1("red apple pie", "apple pie"), 2)
    0.8
    """
    p, t = _tokens(_LABEL.sub("", prediction, count=1), case_sensitive), _tokens(target, case_sensitive)
    if not p or not t:
        return float(p == t)
    common = sum((Counter(p) & Counter(t)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(t)
    return 2 * precision * recall / (precision + recall)


METRICS: dict[str, Callable[[str, str, bool], float]] = {"exact_match": exact_match, "contains": contains, "f1": f1}

# ---- built-in tasks ---------------------------------------------------------------------------------------------

TASKS: Registry[Callable[[], Task]] = Registry("prompt-optimization task")


@TASKS.register("antonyms")
def _antonyms() -> Task:
    pairs = _ANTONYMS + [(b, a) for a, b in _ANTONYMS if (b, a) not in _ANTONYMS]
    seen: dict[str, str] = {}
    for a, b in pairs:  # one answer per input word
        seen.setdefault(a, b)
    examples = [Example(a, b) for a, b in seen.items()]
    return Task("antonyms", examples, metric="contains", description="Write the opposite of the word.")


@TASKS.register("uppercase")
def _uppercase() -> Task:
    examples = [Example(w, w.upper()) for w in _WORDS]
    return Task(
        "uppercase", examples, metric="contains", case_sensitive=True, description="Write the word in capitals."
    )


@TASKS.register("reverse_words")
def _reverse_words() -> Task:
    rng = random.Random(_TASK_SEED)
    examples = []
    for _ in range(40):
        words = rng.sample(_WORDS, 3)
        examples.append(Example(" ".join(words), " ".join(reversed(words))))
    return Task("reverse_words", examples, metric="f1", description="Reverse the order of the words.")


@TASKS.register("first_letter")
def _first_letter() -> Task:
    examples = [Example(w, w[0]) for w in _WORDS]
    return Task("first_letter", examples, metric="exact_match", description="Write the first letter of the word.")


@TASKS.register("sum")
def _sum() -> Task:
    rng = random.Random(_TASK_SEED)
    pairs = sorted({(rng.randint(1, 20), rng.randint(1, 20)) for _ in range(80)})[:40]
    examples = [Example(f"{a} {b}", str(a + b)) for a, b in pairs]
    return Task("sum", examples, metric="contains", description="Add the two numbers.")


@TASKS.register("sentiment")
def _sentiment() -> Task:
    examples = [Example(f"a {adj} {noun}", "positive") for adj in _POSITIVE[:5] for noun in _NOUNS[:4]]
    examples += [Example(f"a {adj} {noun}", "negative") for adj in _NEGATIVE[:5] for noun in _NOUNS[:4]]
    return Task(
        "sentiment", examples, metric="contains", description="Say whether the phrase is positive or negative."
    )


@TASKS.register("capitals")
def _capitals() -> Task:
    examples = [Example(country, city) for country, city in _CAPITALS]
    return Task("capitals", examples, metric="contains", description="Write the capital city of the country.")


@TASKS.register("animal_or_fruit")
def _animal_or_fruit() -> Task:
    examples = [Example(w, "animal") for w in _ANIMALS] + [Example(w, "fruit") for w in _FRUITS]
    return Task(
        "animal_or_fruit", examples, metric="exact_match", description="Say whether the word is an animal or a fruit."
    )


@TASKS.register("plural")
def _plural() -> Task:
    examples = [Example(a, b) for a, b in _NOUNS_PLURAL]
    return Task("plural", examples, metric="exact_match", description="Write the plural of the noun.")


@TASKS.register("larger_number")
def _larger_number() -> Task:
    rng = random.Random(_TASK_SEED)
    pairs = sorted({(rng.randint(10, 99), rng.randint(10, 99)) for _ in range(80)})
    examples = [Example(f"{a} {b}", str(max(a, b))) for a, b in pairs if a != b][:40]
    return Task("larger_number", examples, metric="exact_match", description="Write the larger of the two numbers.")


def load_jsonl_task(path: str | Path, metric: str = "exact_match", **kwargs: object) -> Task:
    """A task from a JSONL file of `{"input": str, "output": str}` lines.

    Args:
        path: the JSONL file.
        metric: one of `METRICS`.
        **kwargs: passed on to `Task` (`case_sensitive`, `n_demo`, `n_val`).
    """
    path = Path(path)
    examples, problems = [], []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            examples.append(Example(str(row["input"]), str(row["output"])))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            problems.append(f'{path}:{i}: expected {{"input": ..., "output": ...}} ({type(err).__name__}: {err})')
    if problems:
        raise ConfigError(problems[:5], header=f"cannot read task file {path}")
    return Task(path.stem, examples, metric=metric, **kwargs)  # type: ignore[arg-type]


def load_task(name: str, **kwargs: object) -> Task:
    """A built-in task by name, or a JSONL task when `name` ends with `.jsonl`."""
    if name.endswith(".jsonl"):
        return load_jsonl_task(name, **kwargs)  # type: ignore[arg-type]
    task = TASKS.get(name)()
    for key, value in kwargs.items():
        setattr(task, key, value)
    task.__post_init__()
    return task
