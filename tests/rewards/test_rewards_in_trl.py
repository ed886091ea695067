"""Every reward works when handed directly to plain TRL GRPOTrainer (no rlsurrogate trainer): one step, tiny model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rlsurrogate.rewards import build_reward

REPO = Path(__file__).resolve().parents[2]
SPECS = [
    ("format", {}),
    ("length", {"max_length": 8}),
    ("format_length", {"max_length": 8}),
    ("accuracy", {}),
    ("boxed_number", {}),
    ("rewards/exact_answer.py:exact_answer", {}),
    ("rewards/keywords.py:make_keyword_reward", {"keywords": ["a", "b"]}),
]


def _tiny_model_and_tokenizer():
    # A byte-level tokenizer built in-process (nothing is downloaded) and a random 2-layer Qwen2 on its vocab.
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    for special in ("<|endoftext|>", "<|im_start|>", "<|im_end|>"):
        vocab[special] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, tokenizer


@pytest.mark.parametrize(
    "conversational", [pytest.param(False, marks=pytest.mark.slow, id="plain"), pytest.param(True, id="chat")]
)
def test_all_rewards_train_one_step_in_plain_grpo_trainer(tmp_path, monkeypatch, conversational):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    monkeypatch.chdir(REPO)  # plug-ins are referenced by paths relative to the repository
    rewards = [build_reward(spec, params) for spec, params in SPECS]
    model, tokenizer = _tiny_model_and_tokenizer()
    questions = ["What is 1 + 2?", "What is 3 + 4?", "What is 2 + 2?"]
    prompts = [[{"role": "user", "content": q}] for q in questions] if conversational else questions
    dataset = Dataset.from_dict({"prompt": prompts, "answer": ["3", "7", "4"]})
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=3,
        num_generations=3,
        max_completion_length=8,
        max_steps=1,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        seed=0,
        gradient_checkpointing=False,
    )
    trainer = GRPOTrainer(
        model=model, reward_funcs=rewards, args=args, train_dataset=dataset, processing_class=tokenizer
    )
    trainer.train()

    logs = {k: v for row in trainer.state.log_history for k, v in row.items()}
    for reward in rewards:
        assert math.isfinite(logs[f"rewards/{reward.__name__}/mean"]), reward.__name__
    assert math.isfinite(logs["loss"]) if "loss" in logs else math.isfinite(logs["train_loss"])
