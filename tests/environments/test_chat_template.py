"""SmolLM2's chat template cannot render tool calls for TRL 1.16; the ChatML replacement can, and changes nothing
else."""

from __future__ import annotations

import copy

import pytest
from trl.chat_template_utils import is_chat_template_prefix_preserving, parse_response, supports_tool_calling

from rlsurrogate.environments.chat_template import CHATML_TOOLS_TEMPLATE, ensure_tool_calling
from rlsurrogate.errors import ConfigError
from tests.environments import envs


@pytest.fixture
def tokenizer(tiny):
    return copy.deepcopy(tiny[1])


def test_smollm2_template_cannot_render_tool_calls_but_is_prefix_preserving(tokenizer):
    assert not supports_tool_calling(tokenizer)
    assert is_chat_template_prefix_preserving(tokenizer)


def test_replacement_renders_tools_parses_calls_and_keeps_plain_chats(tokenizer):
    chats = [
        [{"role": "user", "content": "What is 2 + 3?"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant",
                                                                                         "content": "Hello"}],
    ]
    before = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]
    note = ensure_tool_calling(tokenizer, "smollm2-135m-instruct")
    assert note and "smollm2-135m-instruct" in note
    assert tokenizer.chat_template == CHATML_TOOLS_TEMPLATE
    assert [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats] == before
    assert supports_tool_calling(tokenizer) and is_chat_template_prefix_preserving(tokenizer)
    prompt = tokenizer.apply_chat_template(chats[0], tools=[envs.add], add_generation_prompt=True, return_dict=False)
    assert '"name": "add"' in tokenizer.decode(prompt)
    text = '<tool_call>\n{"name": "add", "arguments": {"a": 23, "b": 45}}\n</tool_call><|im_end|>'
    message = parse_response(tokenizer, tokenizer(text, add_special_tokens=False)["input_ids"], prefix=prompt,
                             tools=[envs.add])
    call = {"type": "function", "function": {"name": "add", "arguments": {"a": 23, "b": 45}}}
    assert message["tool_calls"] == [call]
    assert ensure_tool_calling(tokenizer, "smollm2-135m-instruct") is None  # already supported: left alone


def test_a_saved_model_with_the_replacement_gets_its_parser_back(tokenizer, tmp_path):
    from transformers import AutoTokenizer

    ensure_tool_calling(tokenizer, "m")
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded.chat_template == CHATML_TOOLS_TEMPLATE
    assert ensure_tool_calling(reloaded, "m") is None
    assert reloaded.response_template is not None


def test_a_non_chatml_template_without_tools_is_refused(tokenizer):
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    with pytest.raises(ConfigError, match='model "m": its chat template cannot render tool calls'):
        ensure_tool_calling(tokenizer, "m")
