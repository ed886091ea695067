"""`rlsurrogate diagnose` end to end on tiny models: report files, rescoring saved samples, bad input."""

from __future__ import annotations

import json

import pytest

from rlsurrogate.cli import main


def test_diagnose_cli_end_to_end(tiny, tiny_reward_model, tmp_path):
    make_model, tokenizer = tiny
    policy_dir, rm_dir, out = tmp_path / "policy", tmp_path / "rm", tmp_path / "out"
    make_model().save_pretrained(policy_dir)
    tokenizer.save_pretrained(policy_dir)
    tiny_reward_model().save_pretrained(rm_dir)
    tokenizer.save_pretrained(rm_dir)

    args = "--task arithmetic --num-prompts 3 -k 3 --max-new-tokens 6 --gold format_length --candidate format"
    args += f" --candidate squash:format_length --candidate rm:{rm_dir} --output-dir {out}"
    code = main(["diagnose", "--model", str(policy_dir), *args.split()])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    cands = report["candidates"]
    assert set(cands) == {"format_length", "format", "squash:format_length", f"rm:{rm_dir}"}
    assert sorted(c["rank"] for c in cands.values()) == [1, 2, 3, 4]
    assert cands["format_length"]["accuracy"] == 1.0  # gold against itself
    assert cands["squash:format_length"]["accuracy"] == 1.0
    assert cands["squash:format_length"]["var_mean"] == pytest.approx(0.01 * cands["format_length"]["var_mean"])
    assert len(cands[f"rm:{rm_dir}"]["per_prompt_var"]) == 3
    lines = (out / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 9 and set(json.loads(lines[0])["rewards"]) == set(cands)
    assert (out / "variance.png").read_bytes()[:4] == b"\x89PNG"

    # the saved samples are scored again without the model; LABEL=SPEC names a candidate
    again = tmp_path / "again"
    args = f"--samples {out / 'samples.jsonl'} --gold gold=format_length --candidate sq=squash:format_length"
    assert main(["diagnose", "--model", "unused", *args.split(), "--output-dir", str(again)]) == 0
    rescored = json.loads((again / "report.json").read_text())["candidates"]
    assert set(rescored) == {"gold", "sq"}
    assert rescored["gold"]["per_prompt_var"] == cands["format_length"]["per_prompt_var"]


def test_diagnose_cli_rejects_bad_input_before_loading_the_model(tmp_path, capsys):
    assert main(["diagnose", "--model", "nowhere", "--task", "arithmetic", "--candidate", "acuracy"]) == 2
    assert "Did you mean" in capsys.readouterr().err
    assert main(["diagnose", "--model", "nowhere", "--task", "arithmetic", "--candidate", "format", "-k", "1"]) == 2
