"""Greedy multi-turn rollouts for held-out evaluation: TRL 1.16's tool-calling loop, outside the trainer.

TRL's `GRPOTrainer._tool_call_loop` (grpo_trainer.py, 1.16) generates, parses the completion's tool calls with the
tokenizer's response parser (`trl.chat_template_utils.parse_response`), calls the tools (an exception becomes
`{"error": ...}` for the model), appends the chat template's tool-result tokens to the token ids (no re-tokenisation
of earlier turns) and generates again, until no call is left, `max_tool_calling_iterations` turns have run, or the
completion budget is spent. `MultiTurn.rollout` does the same with a greedy `generate`, one fresh environment per row
(`reset(**row)` appended to the last user message, its public methods added to the tools), so evaluation scores
exactly what training would produce at temperature 0. Tool-result tokens are marked 0 in `tool_mask` and not counted
as completion length.

Every process runs the same number of generate calls (a process without pending rows generates a filler and drops
it), because sharded weights need every process in every forward pass.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlsurrogate.environments.loading import public_methods

__all__ = ["MultiTurn", "Rollout", "render_completion"]

GenerateFn = Callable[[list[list[int]]], list[list[int]]]


@dataclass
class Rollout:
    """One row's multi-turn completion, as TRL hands it to the rewards.

    Attributes:
        prompt_ids: the rendered prompt (tools included).
        completion_ids: every token after the prompt: the model's turns and the tool results between them.
        tool_mask: 1 for the model's tokens, 0 for tool-result tokens (TRL's `tool_mask`).
        messages: the completion as chat messages (assistant turns with `tool_calls`, tool results).
        environment: the row's environment instance (None without one).
        tool_calls, tool_failures: calls made and calls that raised or named no tool.
    """

    prompt_ids: list[int]
    completion_ids: list[int] = field(default_factory=list)
    tool_mask: list[int] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    environment: Any = None
    tool_calls: int = 0
    tool_failures: int = 0


class MultiTurn:
    """TRL's tool-calling loop with a greedy `generate`, for evaluation.

    Args:
        tokenizer: renders prompts with tools and parses tool calls (its `response_template` / `response_schema`).
        tools: standalone tool callables (the recipe's `tools`).
        environment_factory: TRL's `environment_factory` (a factory, or {name: factory} picked by the row's
            `environment` column), or None.
        max_iterations: `max_tool_calling_iterations` (None: no limit).
        max_new_tokens: completion budget (model and tool tokens together, as in TRL).
        eos_token_id: the end-of-turn token the completions keep.
        any_process: `flag -> whether any process has flag True` (collective); default: this process alone.
    """

    def __init__(
        self,
        tokenizer: Any,
        tools: Sequence[Callable[..., Any]],
        environment_factory: Any,
        max_iterations: int | None,
        max_new_tokens: int,
        eos_token_id: int,
        any_process: Callable[[bool], bool] | None = None,
    ):
        self.tokenizer = tokenizer
        self.tools = list(tools)
        self.environment_factory = environment_factory
        self.max_iterations = sys.maxsize if max_iterations is None else max_iterations
        self.max_new_tokens = max_new_tokens
        self.eos_token_id = eos_token_id
        self.any_process = any_process or (lambda flag: flag)

    def rollout(self, rows: Sequence[dict[str, Any]], generate: GenerateFn) -> list[Rollout]:
        """Greedy multi-turn completions of `rows`; `generate` maps prompt ids to completion ids ending at EOS.

        Collective when `any_process` is: every process calls it with its own rows (possibly none).
        """
        from trl.chat_template_utils import parse_response

        rollouts, tools = [], []
        for row in rows:
            environment, prompt = self._reset(row)
            row_tools = self.tools + _bound_tools(environment)
            ids = self.tokenizer.apply_chat_template(
                prompt, tools=row_tools or None, add_generation_prompt=True, tokenize=True, return_dict=False
            )
            rollouts.append(Rollout(prompt_ids=list(ids), environment=environment))
            tools.append(row_tools)
        pending = list(range(len(rollouts)))
        inputs = [r.prompt_ids for r in rollouts]
        iteration = 0
        while True:
            outputs = self._generate_all(inputs, generate)
            calls = []
            for k, (i, new_ids) in enumerate(zip(pending, outputs)):
                r = rollouts[i]
                context = inputs[k]
                new_ids = new_ids[: max(0, self.max_new_tokens - (len(context) - len(r.prompt_ids)))]
                r.completion_ids = context[len(r.prompt_ids) :] + new_ids
                r.tool_mask += [1] * len(new_ids)
                message = parse_response(self.tokenizer, new_ids, prefix=context, tools=tools[i]) if new_ids else {}
                if message:
                    r.messages.append(message)
                calls.append(message.get("tool_calls") if message else None)
            pending_next, inputs_next = [], []
            if iteration < self.max_iterations:
                for i, tool_calls in zip(pending, calls):
                    if not tool_calls:
                        continue
                    r = rollouts[i]
                    results = [self._call(r, tools[i], call) for call in tool_calls]
                    suffix = tool_suffix_ids(self.tokenizer, results, self.eos_token_id)
                    context = r.prompt_ids + r.completion_ids + suffix
                    if len(context) - len(r.prompt_ids) > self.max_new_tokens:  # TRL drops the overlong result
                        continue
                    r.messages += results
                    r.tool_mask += [0] * len(suffix)
                    r.completion_ids = context[len(r.prompt_ids) :]
                    pending_next.append(i)
                    inputs_next.append(context)
            iteration += 1
            if not self.any_process(bool(pending_next)):
                return rollouts
            pending, inputs = pending_next, inputs_next

    # -- internals ---------------------------------------------------------------------------------------------------

    def _generate_all(self, inputs: list[list[int]], generate: GenerateFn) -> list[list[int]]:
        """`generate(inputs)` with EOS kept; a process with nothing to do generates a filler for the collective."""
        if not inputs:
            generate([[self.eos_token_id]])
            return []
        return generate(inputs)

    def _reset(self, row: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
        prompt = list(row["prompt"])
        factory = self.environment_factory
        if factory is None:
            return None, prompt
        multi = isinstance(factory, dict)
        environment = (factory[row.get("environment")] if multi else factory)()
        kwargs = {k: v for k, v in row.items() if k != "environment"} if multi else dict(row)
        observation = environment.reset(**kwargs)
        if isinstance(observation, str) and observation:
            prompt[-1] = {**prompt[-1], "content": prompt[-1]["content"] + observation}
        return environment, prompt

    def _call(self, rollout: Rollout, tools: list[Callable[..., Any]], call: dict[str, Any]) -> dict[str, Any]:
        """One tool call as TRL makes it: a result, or `{"error": ...}` the model reads."""
        rollout.tool_calls += 1
        function = call.get("function", {}) if call.get("type") == "function" else {}
        name = function.get("name", call.get("name", "unknown"))
        by_name = {getattr(t, "__name__", ""): t for t in tools}
        try:
            if not function:
                raise ValueError(f"Unsupported tool call type: {call.get('type')}")
            if name not in by_name:
                raise ValueError(f"Tool {name} not found.")
            result = by_name[name](**function.get("arguments", {}))
        except Exception as err:  # noqa: BLE001 - the model sees the error, as in TRL
            rollout.tool_failures += 1
            result = {"error": str(err)}
        content = str(result)  # as TRL 1.16 does
        return {"role": "tool", "name": name, "content": content}


def tool_suffix_ids(tokenizer: Any, tool_messages: list[dict[str, Any]], eos_token_id: int) -> list[int]:
    """The chat template's tokens between an assistant turn (ending at EOS) and the next generation: the tool
    results and the new assistant header. TRL 1.16's `_get_tool_suffix_ids`, with the same dummy conversation."""
    dummy = [
        {"role": "user", "content": "dummy"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"type": "function", "function": {"name": tool_messages[0]["name"], "arguments": {}}}],
        },
    ]
    prefix = tokenizer.apply_chat_template(dummy, tokenize=True, return_dict=False)
    full = tokenizer.apply_chat_template(
        dummy + tool_messages, add_generation_prompt=True, tokenize=True, return_dict=False
    )
    ends = [i for i, token in enumerate(prefix) if token == eos_token_id]
    if ends:
        prefix = prefix[: ends[-1] + 1]
    return list(full[len(prefix) :])


def render_completion(messages: Sequence[dict[str, Any]]) -> str:
    """A multi-turn completion as one readable text: the assistant's words, its calls and the tool results."""
    parts = []
    for message in messages:
        if message.get("role") == "tool":
            parts.append(f"[{message.get('name')} -> {message.get('content')}]")
            continue
        if message.get("content"):
            parts.append(message["content"])
        for call in message.get("tool_calls") or []:
            function = call.get("function", {})
            call_json = json.dumps({"name": function.get("name"), "arguments": function.get("arguments")})
            parts.append(f"<tool_call>{call_json}</tool_call>")
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------------------------


def _bound_tools(environment: Any) -> list[Callable[..., Any]]:
    if environment is None:
        return []
    return [getattr(environment, name) for name in public_methods(type(environment))]
