"""The white-box side: Sobol pool, soft prompts, cached-prefix features, generation, APE sampler (tiny model)."""

from __future__ import annotations

import pytest
import torch

from rlsurrogate.errors import ConfigError
from rlsurrogate.prompt_opt.candidates import CandidateConfig, InstructionGenerator, clean_instruction, sobol_pool
from rlsurrogate.prompt_opt.tasks import load_task


@pytest.fixture(scope="module")
def generator(tiny):
    model_factory, tokenizer = tiny
    demos = load_task("antonyms").split()[0]
    config = CandidateConfig(pool_size=12, batch_size=5, max_new_tokens=5, n_prompt_tokens=3, intrinsic_dim=4)
    return InstructionGenerator(model_factory(seed=0), tokenizer, demos, config)


def test_sobol_pool_is_reproducible_with_seed_0():
    a, b = sobol_pool(64, 10, seed=0), sobol_pool(64, 10, seed=0)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert a.shape == (64, 10) and a.dtype == torch.float64 and 0 <= a.min() and a.max() < 1
    assert not torch.equal(a, sobol_pool(64, 10, seed=1))
    assert len(torch.unique(a, dim=0)) == 64


def test_soft_prompts_are_a_fixed_linear_map_of_centred_z(generator):
    Z = generator.Z
    P = generator.soft_prompts(Z)  # (n, k, hidden)
    assert P.shape == (12, 3, generator.hidden)
    assert torch.equal(
        generator.soft_prompts(torch.full((1, 4), 0.5)), torch.zeros(1, 3, generator.hidden, dtype=torch.float64)
    )
    # linear in (2z - 1): P(z1) + P(z2) = 2 P((z1 + z2) / 2)
    torch.testing.assert_close(P[0] + P[1], 2 * generator.soft_prompts(((Z[0] + Z[1]) / 2)[None])[0])
    # spread comparable to the embedding table's (module docstring): within a factor 3 over a large pool
    big = generator.soft_prompts(sobol_pool(256, 4, seed=0))
    emb_std = float(generator.model.get_input_embeddings().weight.detach().std())
    assert emb_std / 3 < float(big.std()) < 3 * emb_std


def test_features_are_deterministic_batch_invariant_and_match_a_full_forward(generator):
    H = generator.features(generator.Z)  # batches of 5
    assert H.shape == (12, generator.hidden) and H.dtype == torch.float32
    torch.testing.assert_close(generator.features(generator.Z), H, rtol=0, atol=0)
    torch.testing.assert_close(generator.features(generator.Z[7:9]), H[7:9], rtol=1e-5, atol=1e-5)
    # the cached demos prefix gives the same hidden state as one forward pass over the whole sequence
    embed = generator.model.get_input_embeddings()
    full = torch.cat([embed(generator.prefix_ids)[None].expand(3, -1, -1), generator._soft_inputs(generator.Z[:3])], 1)
    with torch.no_grad():
        ref = generator.model(inputs_embeds=full, output_hidden_states=True).hidden_states[-1][:, -1]
    torch.testing.assert_close(H[:3], ref, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(H[0], H[1])  # different soft prompts, different features


def test_generation_is_greedy_cached_and_matches_hf_generate(generator):
    calls = []
    original = generator._decode
    generator._decode = lambda *a, **k: calls.append(len(a[0])) or original(*a, **k)
    try:
        Z = torch.cat([generator.Z[:2], generator.Z[:1]])  # a repeated candidate
        first = generator.generate(Z)
        assert first[0] == first[2] and calls == [2]  # the duplicate z is generated once
        assert generator.generate(generator.Z[:2]) == first[:2] and calls == [2]  # cached
    finally:
        generator._decode = original
    embed = generator.model.get_input_embeddings()
    full = torch.cat([embed(generator.prefix_ids)[None], generator._soft_inputs(generator.Z[:1])], 1)
    ids = generator.model.generate(
        inputs_embeds=full, attention_mask=torch.ones(full.shape[:2], dtype=torch.long), max_new_tokens=5,
        do_sample=False, pad_token_id=generator.tokenizer.pad_token_id,
    )  # fmt: skip
    assert first[0] == clean_instruction(generator.tokenizer.decode(ids[0], skip_special_tokens=True))


def test_ape_sampler_is_seeded(generator):
    a, b = generator.sample_ape(4, seed=3), generator.sample_ape(4, seed=3)
    assert a == b and len(a) == 4
    assert generator.sample_ape(4, seed=4) != a


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" write the opposite of the word. Then stop.", "Write the opposite of the word."),
        ("The instruction was to add two numbers!\nInput: 3", "Add two numbers!"),
        ('"reverse the words"', "Reverse the words"),
        ("\n\n", ""),
    ],
)
def test_clean_instruction(text, expected):
    assert clean_instruction(text) == expected


def test_config_validation_lists_every_problem():
    with pytest.raises(ConfigError) as err:
        CandidateConfig(pool_size=0, n_prompt_tokens=0, soft_prompt_scale=-1)
    assert len(err.value.problems) == 3
