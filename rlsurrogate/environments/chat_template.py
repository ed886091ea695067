"""A chat template that renders tools and tool calls for ChatML models whose own template cannot (SmolLM2).

SmolLM2-135M-Instruct's template renders only `role` and `content`: it drops `tools`, an assistant's `tool_calls`
and the tool name, so TRL 1.16 refuses it (`supports_tool_calling` is False; it is prefix-preserving, and TRL has no
response parser for it). `ensure_tool_calling` swaps in `CHATML_TOOLS_TEMPLATE` for such a ChatML template: the
same `<|im_start|>role ... <|im_end|>` turns and the same default system message (a conversation without tools
renders token for token as before), plus Qwen2.5's tool layout: the tool signatures as JSON inside `<tools></tools>`
in the system message, each call as `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, tool results as
`<tool_response>` blocks in a user turn. The tokenizer gets TRL's parser for that layout (`qwen3_template`), so
TRL reads the calls the model writes. The trained model is saved with this template.
"""

from __future__ import annotations

import copy
from typing import Any

from rlsurrogate.errors import ConfigError

__all__ = ["CHATML_TOOLS_TEMPLATE", "ensure_tool_calling"]

CHATML_TOOLS_TEMPLATE = """{%- if messages[0]['role'] == 'system' %}
    {%- set system = messages[0]['content'] %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system = 'You are a helpful AI assistant named SmolLM, trained by Hugging Face' %}
{%- endif %}
{{- '<|im_start|>system\\n' + system }}
{%- if tools %}
    {{- "\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" + (tool | tojson) }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call>" }}
{%- endif %}
{{- '<|im_end|>\\n' }}
{%- for message in messages %}
    {%- if message.role == 'assistant' and message.tool_calls %}
        {{- '<|im_start|>assistant' }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' + tool_call.name + '", "arguments": ' + (tool_call.arguments | tojson) + '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- else %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""


def ensure_tool_calling(tokenizer: Any, model_name: str) -> str | None:
    """Makes `tokenizer` render and parse tool calls for TRL; returns a note when its template was replaced.

    A template TRL already supports is left alone; a ChatML template without tool support gets
    `CHATML_TOOLS_TEMPLATE` and TRL's matching response parser; anything else is a ConfigError naming the model.
    """
    from trl.chat_template_utils import qwen3_template, supports_tool_calling

    if tokenizer.chat_template == CHATML_TOOLS_TEMPLATE:  # a model trained here, saved with this template
        if getattr(tokenizer, "response_template", None) is None and getattr(tokenizer, "response_schema", None) is None:
            tokenizer.response_template = copy.deepcopy(qwen3_template)
        return None
    if supports_tool_calling(tokenizer):
        return None
    template = tokenizer.chat_template or ""
    if "<|im_start|>" not in template or tokenizer.convert_tokens_to_ids("<|im_end|>") is None:
        raise ConfigError(
            f'model "{model_name}": its chat template cannot render tool calls (TRL 1.16 needs user -> assistant with '
            "tool_calls -> tool); use a model whose template supports tools (Qwen2.5/3, Llama 3.1+), or save one with "
            "such a template and name that directory."
        )
    tokenizer.chat_template = CHATML_TOOLS_TEMPLATE
    tokenizer.response_template = copy.deepcopy(qwen3_template)
    return (
        f'note: model "{model_name}": its ChatML template renders no tools; using ChatML with Qwen2.5-style '
        "<tool_call> blocks (rlsurrogate.environments.chat_template)."
    )
