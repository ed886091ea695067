"""A tiny random Llama whose `generate` writes a scripted tool call, then a boxed answer after the tool result.

A random model never writes a parseable tool call; this one does, so TRL's tool loop, the tool mask, environment
rewards and the multi-turn evaluation can be tested in seconds. Its forward pass (log-probabilities, loss) is the
tiny model's own.
"""

from __future__ import annotations

import torch
from transformers import LlamaForCausalLM

CALL = '<tool_call>\n{"name": "bump", "arguments": {"by": 2}}\n</tool_call><|im_end|>'
ANSWER = "The answer is \\boxed{2}.<|im_end|>"


class ScriptedLlama(LlamaForCausalLM):
    """`generate` returns prompt + CALL, or prompt + ANSWER when the prompt ends with a tool response (or, with
    `skip_odd`, at once for prompts whose text has an odd length: rows then need different numbers of turns)."""

    tokenizer = None  # set by `scripted_model`
    skip_odd = False

    def generate(self, input_ids=None, attention_mask=None, **kwargs):
        tok = type(self).tokenizer
        rows = []
        for ids in input_ids.tolist():
            text = tok.decode(ids)
            before_turn = text.rsplit("<|im_start|>assistant", 1)[0]
            answered = "</tool_response>" in before_turn[-200:]
            script = ANSWER if answered or (type(self).skip_odd and len(before_turn) % 2) else CALL
            rows.append(ids + tok(script, add_special_tokens=False)["input_ids"])
        width = max(map(len, rows))
        pad = tok.pad_token_id
        return torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=input_ids.device)


def scripted_model(seed: int = 0, skip_odd: bool = False):
    """(ScriptedLlama, tokenizer with tool-calling template): the tiny model's config and random weights."""
    from rlsurrogate.environments.chat_template import ensure_tool_calling
    from rlsurrogate.models import tiny_model

    model, tokenizer = tiny_model(seed=seed)
    ensure_tool_calling(tokenizer, "tiny")
    scripted = ScriptedLlama(model.config)
    scripted.load_state_dict(model.state_dict())
    scripted.generation_config = model.generation_config
    ScriptedLlama.tokenizer = tokenizer
    ScriptedLlama.skip_odd = skip_odd
    return scripted, tokenizer
