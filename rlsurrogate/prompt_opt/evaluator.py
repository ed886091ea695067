"""The black-box score of an instruction: the task metric of the black-box LLM's answers on validation inputs.

INSTINCT (Lin et al., ICML 2024; METHODS.md §4.1 step 6): the black box answers min(20, |val|) validation inputs
with the template "Instruction: [PROMPT]\\n\\nInput: [INPUT]\\nOutput:"; the score is the mean task metric. Scores are
cached by instruction string, so a duplicate instruction costs nothing.

Here every chat call goes through the durable `QueryLog` (when one is given): a call already in the log is answered
from it, every new call is logged as soon as it returns, and a finished evaluation is logged with its score. The
`Budget` is checked before each new evaluation starts; `BudgetExhausted` stops the optimizer loop cleanly.

`score_on(instruction, examples)` scores one instruction on other examples (the test split, once the search is over):
its calls go through the same log, but it is not a query, so it neither spends the budget nor enters the history.

Deviation: the template is sent as one user message of a chat request (the paper used a completion endpoint).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlsurrogate.prompt_opt.clients import DEFAULT_MAX_TOKENS, ChatClient, Completion
from rlsurrogate.prompt_opt.query_log import Budget, BudgetExhausted, QueryLog, request_key
from rlsurrogate.prompt_opt.tasks import Example, Task

__all__ = ["EVAL_TEMPLATE", "Evaluation", "InstructionEvaluator"]

EVAL_TEMPLATE = "Instruction: {instruction}\n\nInput: {input}\nOutput:"


@dataclass(frozen=True)
class Evaluation:
    query: int  # 1-based index of the black-box query that produced this score
    instruction: str
    score: float
    scores: list[float]  # per validation example
    tokens: int


class InstructionEvaluator:
    """Scores instructions on a task's validation split with a black-box chat client.

    Args:
        task: the task (its validation split and metric are used).
        client: the black-box chat client.
        budget: caps on queries / tokens.
        log: durable query log; None keeps everything in memory (tests, benchmarks).
        max_tokens: answer length cap per call.
        on_evaluation: called with each new evaluation (progress bars).

    Example:
        >>> evaluator = InstructionEvaluator(task, client, Budget(max_queries=30), log)  # doctest: +SKIP
        >>> evaluator.evaluate("Write the opposite of the word.")  # doctest: +SKIP
        0.4
    """

    def __init__(
        self,
        task: Task,
        client: ChatClient,
        budget: Budget,
        log: QueryLog | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        on_evaluation: Callable[[Evaluation], None] | None = None,
    ):
        self.task, self.client, self.budget, self.log = task, client, budget, log
        self.max_tokens, self.on_evaluation = max_tokens, on_evaluation
        self._lock = threading.Lock()
        self.results: dict[str, Evaluation] = {}
        self.history: list[Evaluation] = []  # in query order
        self.new_calls = 0  # calls actually sent in this process (not answered from the log)
        self._tokens = 0

    @property
    def queries(self) -> int:
        """Black-box queries spent: instruction evaluations of this run plus any others found in the log."""
        logged = set(self.log.evals) if self.log is not None else set()
        return len(logged | set(self.results))

    @property
    def tokens(self) -> int:
        return self.log.tokens if self.log is not None else self._tokens

    def is_cached(self, instruction: str) -> bool:
        return instruction in self.results

    def evaluate(self, instruction: str) -> Evaluation:
        """The score of one instruction; a repeated instruction is answered from the cache at no cost.

        Raises:
            BudgetExhausted: the instruction is new and the budget is already spent.
        """
        if instruction in self.results:
            return self.results[instruction]
        logged = self.log.cached_eval(instruction) if self.log is not None else None
        if logged is None and self.budget.exhausted(self.queries, self.tokens):
            raise BudgetExhausted(f"budget spent: {self.queries} queries, {self.tokens} tokens")
        _, val, _ = self.task.split()
        if logged is not None:
            scores, tokens = list(logged["scores"]), int(logged.get("tokens", 0))
        else:
            completions = self._ask(instruction, [e.input for e in val])
            scores = [self.task.score(c.text, e.output) for c, e in zip(completions, val)]
            tokens = sum(c.prompt_tokens + c.completion_tokens for c in completions)
        evaluation = Evaluation(len(self.history) + 1, instruction, sum(scores) / len(scores), scores, tokens)
        self.results[instruction] = evaluation
        self.history.append(evaluation)
        if self.on_evaluation is not None:
            self.on_evaluation(evaluation)
        if self.log is not None and logged is None:
            self.log.append_eval(
                {
                    "query": evaluation.query,
                    "instruction": instruction,
                    "score": evaluation.score,
                    "scores": scores,
                    "tokens": tokens,
                    "time": time.time(),
                }  # fmt: skip
            )
        return evaluation

    def score_on(self, instruction: str, examples: list[Example]) -> tuple[float, list[float], int]:
        """`(mean score, per-example scores, tokens)` of `instruction` on `examples`, outside the budget and history.

        Used for the test split: the instruction chosen on validation, scored on examples the search never saw.
        """
        if not examples:
            raise ValueError("score_on needs at least one example (the task's test split is empty).")
        completions = self._ask(instruction, [e.input for e in examples])
        scores = [self.task.score(c.text, e.output) for c, e in zip(completions, examples)]
        return sum(scores) / len(scores), scores, sum(c.prompt_tokens + c.completion_tokens for c in completions)

    def best(self) -> Evaluation | None:
        """The best evaluation so far (earliest on ties)."""
        return max(self.history, key=lambda e: e.score, default=None)

    # ---- private ------------------------------------------------------------------------------------------------

    def _ask(self, instruction: str, inputs: list[str]) -> list[Completion]:
        requests = [
            [{"role": "user", "content": EVAL_TEMPLATE.format(instruction=instruction, input=x)}] for x in inputs
        ]
        params: dict[str, Any] = {"max_tokens": self.max_tokens, "temperature": 0.0}
        keys = [request_key(self.client.name, r, **params) for r in requests]
        out: dict[int, Completion] = {}
        for i, key in enumerate(keys):
            record = self.log.cached_call(key) if self.log is not None else None
            if record is not None:
                out[i] = Completion(record["text"], int(record["prompt_tokens"]), int(record["completion_tokens"]))
        todo = [i for i in range(len(requests)) if i not in out]

        def on_result(j: int, completion: Completion) -> None:
            i = todo[j]
            with self._lock:
                out[i] = completion
                self.new_calls += 1
                self._tokens += completion.prompt_tokens + completion.completion_tokens
            if self.log is not None:
                self.log.append_call(
                    {
                        "key": keys[i],
                        "messages": requests[i],
                        "text": completion.text,
                        "prompt_tokens": completion.prompt_tokens,
                        "completion_tokens": completion.completion_tokens,
                    }
                )

        if todo:
            self.client.complete([requests[i] for i in todo], on_result=on_result, **params)
        return [out[i] for i in range(len(requests))]
