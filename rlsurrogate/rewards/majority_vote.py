"""Majority-vote reward (TTRL) over self-consistent boxed answers: label-free, the group votes the label.

Zuo et al. 2025, "TTRL: Test-Time Reinforcement Learning", arXiv 2504.16084, §2 (method): sample G answers to a
prompt, extract each one's final answer y_i, take the most common one as the pseudo-label ŷ (majority voting) and
reward each answer with R(y_i, ŷ) = 1 if y_i = ŷ else 0. No ground-truth answer is read.

For completion i of a group of G completions of one prompt:

    r_i = F_i + vote_weight · V_i                                 ∈ [0, 1 + vote_weight]

- F_i, the format term (ours, not from the paper) ∈ {0, partial_credit, 1}: 1 when the completion is
  *self-consistent*: exactly one `\\boxed{}` holding one plain number b; the last equation before it, `E = r` (or
  `E = \\boxed{b}`), computes b: E is a flat arithmetic expression (+, -, *, /, ×, ÷, \\times, \\cdot, \\div) whose
  value is r = b, and every number in E is given in the prompt or was stated earlier in the completion as a result;
  and nothing but closing punctuation follows the box (`ends_after_box`). "Tom has 2 + 5 = 7 apples. \\boxed{7}"
  passes; "2 + 5 = 7. \\boxed{12}", "2 + 5 = 8. \\boxed{8}", "1 * 7 = 7. \\boxed{7}" (1 is not in the prompt),
  a bare "\\boxed{7}" (nothing computed) and "\\boxed{7} \\endboxed ..." do not. A *clean box of the stated
  result* that is not self-consistent, one box holding one plain number with nothing after it, that number being the
  stated result r of the last equation `E = r` before it, whatever E computes ("2 + 5 = 8. \\boxed{8}"), earns
  `partial_credit` while no completion of its group is self-consistent: a stepping stone that bootstraps boxing
  (the model boxes ~15 % of its answers before training) and is withdrawn from a group as soon as one completion of
  it is self-consistent. Everything else earns 0: a box that is not the last result ("2 + 5 = 7. \\boxed{12}"), a
  bare box, no box, several boxes, an empty box or one holding text, text after the box.
- V_i = 1[y_i = ŷ] (TTRL's reward), where only self-consistent completions (F_i = 1) answer: y_i is their boxed
  number. ŷ is the most common answer of the group when at least `min_votes` completions give it and no other answer
  is as common; otherwise the group has no pseudo-label and V = 0 for all of it.

Deviations from TTRL:
- TTRL votes over every extracted answer; here only self-consistent answers vote and earn the vote.
- TTRL takes the most common answer whatever its count and samples 64 completions to vote, 32 to train on; here the
  G training completions vote, and a tie or fewer than `min_votes` agreeing answers gives no pseudo-label.

Why the format term is this strict (each measured on SmolLM2-135M-Instruct, the arithmetic task, GRPO, lr 1e-4,
2 prompts x 8 completions per step, 20-24 steps, temperature 0.6 unless noted; held-out greedy completions):
- A vote over unboxed stated results ("= 7") collapsed to "1 * 7 = 7. I can certainly help you!", an answer every
  completion of a group agrees on (accuracy 0, boxed rate 0). Hence: only grounded, right equations count.
- Partial credit for an empty box after a right computation (a stepping stone) taught "4 + 7 = 11\\n\\nThe answer
  is \\boxed{}." and drove P("{}" | "\\boxed") to 1.00: no box was ever filled. Hence: no credit for empty boxes.
- Partial credit for any non-empty box was hacked into nested boxes ("\\boxed{ \\boxed{ \\boxed{ \\text{...").
- Partial credit (0.2) for bare answers only (one clean number box, nothing computed) collapsed within 8 steps to
  "\\boxed{ 28 }" for every prompt (mean length 8 tokens, accuracy 0).
- Partial credit (0.5) for right work, boxed or not, taught the model to stop boxing: boxed rate 0.156 -> 0 by step
  8, accuracy 0.062 -> 0 (right sums, never boxed).
- Partial credit (0.2) for any clean number box, shown work or not, boxed every held-out answer cleanly
  ("7 + 5 = 6\\nThe answer is \\boxed{6}"), but at lr 1e-4 most sums in the box are wrong: accuracy 0.125 / 0 /
  0.031 on seeds 0 / 1 / 2 (seed 1 lost the box and never got it back). At lr 3e-5 the model kept the sums it can
  write on two seeds (held-out accuracy 0.062 -> 0.438 / 0.469) while seed 2 collapsed by step 15 onto bare boxes
  ("\\boxed{4}", 7 tokens, accuracy 0.094): a group of bare boxes all earn 0.2, has no variance and stays there.
  Hence partial credit for a clean box after shown work only (version 3): 0.625 / 0.250 / 0.500. Seed 1 learned
  short wrong sums ("7 + 3 = 6\\nThe answer is \\boxed{ 6}"): in a group where some completions were right, boxed
  wrong work still earned 0.2 over unboxed text, so boxing was taught with or without the right sum. Hence the
  stepping stone only in groups with no self-consistent completion (version 4): 0.562 / 0.500 / 0.500, boxed rate
  1.0 / 1.0 / 0.84. Under bf16 mixed precision (the quickstart with `training.bf16: auto`) the trajectories changed and
  seed 2 learned boxes unrelated to the work ("10 - 3 = 5\\nThe answer is \\boxed{55}", "3 + 3 + 7 = 18\\nThe answer
  is \\boxed{19}"; held-out accuracy 0.000 at steps 8 and 16): in groups with nothing self-consistent, any number
  boxed after any equation earned 0.2. Hence partial credit only for boxing the last equation's stated result (this
  reward, version 5; README, quickstart).

Groups: TRL puts a prompt's G completions next to each other in a call (RepeatSampler), so runs of the same prompt
are the groups; a run is cut into groups of `num_generations` (the recipe fills it in). A run of one completion is a
group of one (the held-out evaluation generates one greedy completion per prompt): it has no pseudo-label, so the
reward there is F alone. A run of any other length that is not a multiple of `num_generations` means a group was
split across calls (processes), and the call raises: a vote over part of a group is a different reward. Recipes
whose batch layout would split a group are refused at validation (`rlsurrogate.build`).

Failure modes (each has a test in tests/rewards/test_majority_vote.py):
1. A confidently wrong majority is rewarded: when most of the group agrees on a wrong answer, the wrong answer pays
   and the right minority does not. On these problems the usual case is the wrong operation ("10 + 3 = 13" for
   "gives away 3"), which passes the self-consistency check.
2. Collapse to a constant answer: "4 - 4 = 0. \\boxed{0}" is grounded, right and agreed on for any prompt holding a
   4; a policy that always finds such an answer earns the maximum. Only a gold metric on held-out prompts shows it
   (the quickstart logs `accuracy`).
3. No consensus, no vote: groups whose self-consistent answers all differ (or that have none) get V = 0.
4. A group of one (greedy evaluation) has no vote: there the reward measures the format term alone.
5. The format pays without the content: in a group with no self-consistent completion, a clean box of a wrong
   stated result ("2 + 5 = 8. \\boxed{8}") earns `partial_credit`, more than the right answer boxed bare
   ("\\boxed{7}", 0); only right, shown work earns the full score and the vote (and withdraws the partial credit
   from its group).

Metrics: `rewards/majority_vote/mean` (TRL, from `__name__`) and `majority_vote/label_share` (logged through TRL's
`log_metric`: the share of groups in the call that had a pseudo-label).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from rlsurrogate.errors import ConfigError
from rlsurrogate.rewards.boxed import MAX_BOXED_CHARS, completion_text, last_boxed, parse_plain_number

__all__ = ["computed_answer", "ends_after_box", "group_runs", "majority_label", "make_majority_vote"]

_NUM = r"\d{1,50}(?:\.\d{1,50})?"
_OP = r"[-+*/×÷]|\\times|\\cdot|\\div"
# `E = r` or `E = \boxed`: E a flat expression of at least two numbers (`_CHAIN`, matched whole so that a scan of
# "1+1+1+..." stays linear), then `= r` (`_RESULT`): r a (signed) number, possibly in `$`/`\(`, or a box.
_CHAIN = re.compile(rf"{_NUM}(?:\s*(?:{_OP})\s*{_NUM})+")
_RESULT = re.compile(rf"\s*=\s*\$?\s*(?:\\\(\s*)?(-?{_NUM}|\\boxed)")
_TOKEN = re.compile(rf"{_NUM}|{_OP}")
# What may follow the final box in a clean ending: whitespace, sentence and LaTeX-math closers ("$", "\)", "\]").
_CLEAN_TAIL = re.compile(r"[\s.!$\\)\]]*")
_BOXED = "\\boxed"


def computed_answer(completion: Any, prompt: Any = "") -> Fraction | None:
    """The boxed number of a self-consistent completion (the box repeats a grounded, correct computation), else None.

    Args:
        completion: plain text or chat messages.
        prompt: the prompt (text or messages); its numbers are the ones an equation may start from.

    Example:
        >>> q = "Tom has 2 apples and gets 5 more."
        >>> [computed_answer(c, q) for c in ("2 + 5 = 7. \\\\boxed{7}", "2 + 5 = 8. \\\\boxed{8}", "\\\\boxed{7}")]
        [Fraction(7, 1), None, None]
    """
    text = completion_text(completion)
    content = last_boxed(text)
    if content is None or text.count(_BOXED) != 1 or not ends_after_box(text):
        return None
    value = parse_plain_number(content)
    computed = _last_computation(text, completion_text(prompt), text.find(_BOXED) + len(_BOXED))
    return value if value is not None and computed == value else None


def majority_label(answers: Sequence[Fraction | None], min_votes: int = 2) -> Fraction | None:
    """TTRL's pseudo-label ŷ: the most common answer, if at least `min_votes` give it and no other ties it.

    Example:
        >>> majority_label([Fraction(7), Fraction(7), Fraction(8), None])
        Fraction(7, 1)
        >>> majority_label([Fraction(7), Fraction(8)]) is None  # a tie: no pseudo-label
        True
    """
    counts = Counter(a for a in answers if a is not None).most_common(2)
    if not counts or counts[0][1] < min_votes or (len(counts) > 1 and counts[1][1] == counts[0][1]):
        return None
    return counts[0][0]


def ends_after_box(completion: Any) -> bool:
    """Whether the text ends with its last `\\boxed{...}`: only whitespace, `.`, `!`, `$`, `\\)`, `\\]` after it.

    Example:
        >>> [ends_after_box(c) for c in ("= 7. \\\\boxed{7}.", "\\\\boxed{7}\\n\\\\endboxed", "7")]
        [True, False, False]
    """
    text = completion_text(completion)
    end = _box_end(text)
    return end is not None and _CLEAN_TAIL.fullmatch(text, end) is not None


def group_runs(prompts: Sequence[Any], num_generations: int | None = None) -> list[range]:
    """Index ranges of the groups in one call: runs of equal consecutive prompts, cut into `num_generations`.

    Raises:
        ValueError: a run longer than one is not a multiple of `num_generations` (a group split across calls).

    Example:
        >>> group_runs(["a", "a", "b", "b", "b", "b"], num_generations=2)
        [range(0, 2), range(2, 4), range(4, 6)]
    """
    runs, start = [], 0
    for i in range(1, len(prompts) + 1):
        if i == len(prompts) or prompts[i] != prompts[start]:
            runs.append(range(start, i))
            start = i
    if num_generations is None:
        return runs
    groups = []
    for run in runs:
        if len(run) > 1 and len(run) % num_generations:
            raise ValueError(
                f"majority_vote: {len(run)} consecutive completions of one prompt (from index {run.start}) are not "
                f"whole groups of num_generations {num_generations}: a group was split across processes or calls; "
                f"make per_device_train_batch_size x steps_per_generation a multiple of {num_generations}."
            )
        step = num_generations if len(run) > 1 else 1
        groups += [range(s, min(s + step, run.stop)) for s in range(run.start, run.stop, step)]
    return groups


def make_majority_vote(
    *,
    vote_weight: float = 1.0,
    partial_credit: float = 0.2,
    min_votes: int = 2,
    num_generations: int | None = None,
) -> _MajorityVoteReward:
    """Majority-vote reward r_i = F_i + vote_weight · V_i (TTRL, arXiv 2504.16084) ∈ [0, 1 + vote_weight].

    Args:
        vote_weight: weight of the agreement term V_i (TTRL's reward); 0 leaves the format term alone.
        partial_credit: format score in [0, 1) of a clean box of the last equation's stated result that is not
            self-consistent, in a group with no self-consistent completion.
        min_votes: completions that must agree for a pseudo-label (>= 2, so that one answer never votes alone).
        num_generations: G, the completions per prompt; the recipe fills it from `generation.num_generations`.

    Example:
        >>> reward = make_majority_vote()
        >>> q = "Tom has 3 apples and gets 4 more."
        >>> right, shown, wrong = "3 + 4 = 7. \\\\boxed{7}", "3 + 4 = \\\\boxed{7}", "3 + 4 = 8. \\\\boxed{8}"
        >>> reward(prompts=[q] * 4, completions=[right, shown, wrong, "\\\\boxed{7}"])
        [2.0, 2.0, 0.0, 0.0]
        >>> reward(prompts=[q] * 3, completions=[wrong, "\\\\boxed{7}", "no box"])  # nothing self-consistent
        [0.2, 0.0, 0.0]
    """
    problems = []
    if isinstance(vote_weight, bool) or not isinstance(vote_weight, int | float) or not 0 <= vote_weight <= 100:
        problems.append(
            f"majority_vote.vote_weight = {vote_weight!r}: must be a number in [0, 100]; 1 is the default."
        )
    if isinstance(partial_credit, bool) or not isinstance(partial_credit, int | float) or not 0 <= partial_credit < 1:
        problems.append(
            f"majority_vote.partial_credit = {partial_credit!r}: must be a number in [0, 1); 0.2 is the default, 0 "
            "turns it off."
        )
    if isinstance(min_votes, bool) or not isinstance(min_votes, int) or min_votes < 2:
        problems.append(f"majority_vote.min_votes = {min_votes!r}: must be an integer >= 2 (2 is the default).")
    if num_generations is not None and (
        isinstance(num_generations, bool) or not isinstance(num_generations, int) or num_generations < 2
    ):
        problems.append(
            f"majority_vote.num_generations = {num_generations!r}: must be an integer >= 2 "
            "(the recipe's generation.num_generations)."
        )
    elif num_generations is not None and isinstance(min_votes, int) and min_votes > num_generations:
        problems.append(
            f"majority_vote.min_votes = {min_votes}: more than the {num_generations} completions of a group "
            f"(generation.num_generations), so no group could ever vote; use at most {num_generations}."
        )
    if problems:
        raise ConfigError(problems)
    return _MajorityVoteReward(float(vote_weight), float(partial_credit), min_votes, num_generations)


# ----------------------------------------------------------------------------------------------------------------


class _MajorityVoteReward:
    __name__ = "majority_vote"
    version = "5"
    # Read by rlsurrogate.build: this reward compares the completions of a group, so a group must not be split.
    needs_whole_groups = True

    def __init__(self, vote_weight: float, partial_credit: float, min_votes: int, num_generations: int | None):
        self.vote_weight, self.partial_credit = vote_weight, partial_credit
        self.min_votes, self.num_generations = min_votes, num_generations

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
        if len(prompts) != len(completions):
            raise ValueError(
                f"majority_vote: {len(prompts)} prompts for {len(completions)} completions; pass one prompt per "
                "completion (TRL repeats each prompt num_generations times)."
            )
        texts = [completion_text(c) for c in completions]
        prompt_texts = [completion_text(p) for p in prompts]
        answers = [computed_answer(t, p) for t, p in zip(texts, prompt_texts)]
        groups = group_runs(prompt_texts, self.num_generations)
        rewards: list[float | None] = [0.0] * len(texts)
        labelled = 0
        for group in groups:
            label = majority_label([answers[i] for i in group], self.min_votes)
            labelled += label is not None
            # Partial credit is a stepping stone, offered only to groups with no self-consistent completion.
            stepping_stone = all(answers[i] is None for i in group)
            for i in group:
                if answers[i] is not None:
                    rewards[i] = 1.0 + self.vote_weight * float(answers[i] == label)
                elif stepping_stone and _clean_box_of_stated_result(texts[i]):
                    rewards[i] = self.partial_credit
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and groups:
            log_metric("majority_vote/label_share", labelled / len(groups))
        return rewards


def _clean_box_of_stated_result(text: str) -> bool:
    """One box holding one plain number, nothing but closing punctuation after it, and that number is the stated
    result r of the last equation `E = r` before it (or the equation is `E = \\boxed{...}`), right or wrong."""
    content = last_boxed(text)
    if text.count(_BOXED) != 1 or content is None or not ends_after_box(text):
        return False
    boxed = parse_plain_number(content)
    equations = _equations(text, text.rfind(_BOXED) + len(_BOXED))
    if boxed is None or not equations:
        return False
    stated = equations[-1][1]
    return stated == _BOXED or Fraction(stated) == boxed


def _box_end(text: str) -> int | None:
    """Index just past the closing brace of the last box, when `last_boxed` finds one after any `</think>`."""
    content = last_boxed(text)
    start = text.rfind(_BOXED)
    if content is None or text.rfind("</think>") > start or len(content) > MAX_BOXED_CHARS:
        return None
    return text.index("{", start) + len(content) + 2


def _last_computation(text: str, prompt: str, end: int) -> Fraction | None:
    """Value of the last equation `E = r` in `text[:end]` when it is grounded and right (r may be a box)."""
    equations = _equations(text, end)
    if not equations:
        return None
    given = {Fraction(n) for n in re.findall(_NUM, prompt)}
    given |= {Fraction(r) for _, r, _ in equations[:-1] if r != _BOXED}  # earlier results may be operands
    expression, stated, stated_at = equations[-1]
    tokens = _TOKEN.findall(expression)
    value = _evaluate(tokens)
    if value is None or not {Fraction(t) for t in tokens[::2]} <= given:
        return None
    if stated == _BOXED:  # `E = \boxed{r}`: r is the content of this (the completion's only) box
        return value if parse_plain_number(last_boxed(text[stated_at:]) or "") == value else None
    return value if Fraction(stated) == value else None


def _equations(text: str, end: int) -> list[tuple[str, str, int]]:
    """(E, r, index of r) of each equation `E = r` in `text[:end]`, left to right, in one linear scan."""
    equations, pos = [], 0
    while (chain := _CHAIN.search(text, pos, end)) is not None:
        result = _RESULT.match(text, chain.end(), end)
        if result is None:
            pos = chain.end()  # no start inside a chain can do better: its equation would end at the same place
            continue
        equations.append((chain[0], result[1], result.start(1)))
        pos = result.end()
    return equations


def _evaluate(tokens: list[str]) -> Fraction | None:
    """Value of `n op n op ... n` with the usual precedence (× and ÷ first); None on division by zero."""
    terms: list[Fraction] = [Fraction(tokens[0])]
    signs: list[int] = [1]
    for op, number in zip(tokens[1::2], tokens[2::2]):
        x = Fraction(number)
        if op in ("*", "×", "\\times", "\\cdot"):
            terms[-1] *= x
        elif op in ("/", "÷", "\\div"):
            if x == 0:
                return None
            terms[-1] /= x
        else:
            terms.append(x)
            signs.append(1 if op == "+" else -1)
    return sum((s * t for s, t in zip(signs, terms)), Fraction(0))
