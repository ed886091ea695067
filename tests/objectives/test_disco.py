"""DisCO: the properties of METHODS.md §1.11 on random tensors, a loop reference, the trainer, and 2 vs 1 process."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlsurrogate.errors import ConfigError, RewardError
from rlsurrogate.objectives import build_objective
from rlsurrogate.objectives.disco import (
    DisCOConfig,
    binarize_labels,
    disco_loss,
    disco_objective,
    kl_old_current,
    kl_penalty,
    likelihood_ratio_score,
    log_likelihood_score,
)

# ---------------------------------------------------------------------------------------------------------------
# reference: the formulas of §1.3-1.5 written with loops


def _reference_loss(logps, old, mask, labels, groups, score, variant, tau, beta, delta):
    N = logps.shape[0]
    scores = []
    for i in range(N):
        n = int(mask[i].sum())
        terms = [
            (logps[i, t] if score == "log_l" else torch.exp(logps[i, t] - old[i, t]))
            for t in range(logps.shape[1])
            if mask[i, t] > 0
        ]
        scores.append(sum(terms) / n if n else logps.new_zeros(()))
    questions = sorted(set(groups.tolist()))
    J = logps.new_zeros(())
    for q in questions:
        pos = [scores[i] for i in range(N) if groups[i] == q and labels[i] == 1 and mask[i].sum() > 0]
        neg = [scores[i] for i in range(N) if groups[i] == q and labels[i] == 0 and mask[i].sum() > 0]
        if not pos or not neg:
            continue
        pos_mean = sum(pos) / len(pos)
        if variant == "disco_b":
            neg_term = sum(neg) / len(neg)
        else:
            neg_term = tau * torch.log(sum(torch.exp(s / tau) for s in neg) / len(neg))
        J = J + pos_mean - neg_term
    J = J / len(questions)
    num, den = logps.new_zeros(()), 0
    for i in range(N):
        for t in range(logps.shape[1]):
            if mask[i, t] > 0:
                num = num + old[i, t] - logps[i, t]
                den += 1
    kl = num / den
    hinge = torch.clamp(kl - delta, min=0.0)
    return -J + 0.5 * beta * hinge**2


def _batch(seed=0, Q=5, G=4, T=7, dtype=torch.float64, spread=1.0):
    g = torch.Generator().manual_seed(seed)
    N = Q * G
    logps = -spread * torch.rand(N, T, generator=g, dtype=dtype) - 0.05
    old = logps + 0.05 * torch.randn(N, T, generator=g, dtype=dtype)
    lengths = torch.randint(1, T + 1, (N,), generator=g)
    mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).to(dtype)
    labels = torch.randint(0, 2, (N,), generator=g).to(dtype)
    labels[:G] = 1.0  # question 0: all positive (dropped)
    labels[G : 2 * G] = torch.tensor([1.0, 0.0] + [0.0] * (G - 2), dtype=dtype)  # question 1: valid
    groups = torch.arange(N) // G
    return logps, old, mask, labels, groups


def _config(score="log_l", variant="disco", **kw):
    return DisCOConfig(score=score, variant=variant, **kw)


# ---------------------------------------------------------------------------------------------------------------
# comparison with the reference


@pytest.mark.parametrize("score", ["log_l", "l_ratio"])
@pytest.mark.parametrize("variant", ["disco", "disco_b"])
@pytest.mark.parametrize("delta", [1e-4, 10.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_loop_reference(score, variant, delta, dtype):
    logps, old, mask, labels, groups = _batch(seed=3, dtype=dtype)
    cfg = _config(score, variant, tau=0.7, delta=delta, beta=50.0)
    a = logps.clone().requires_grad_(True)
    b = logps.clone().requires_grad_(True)
    loss, _ = disco_loss(a, old, mask, labels, groups, cfg)
    ref = _reference_loss(b, old, mask, labels, groups, score, variant, 0.7, 50.0, delta)
    loss.backward()
    ref.backward()
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    assert torch.allclose(loss, ref, atol=tol, rtol=tol)
    assert torch.allclose(a.grad, b.grad, atol=tol, rtol=tol)
    assert a.grad.abs().sum() > 0


def test_hand_computed_value():
    # one question: positives 0.5, -0.5; negatives log 2, log 4; tau = 1 => J = 0 - log((2 + 4) / 2) = -log 3
    scores = torch.tensor([0.5, -0.5, math.log(2), math.log(4)], dtype=torch.float64)
    J, m = disco_objective(scores, torch.tensor([1.0, 1, 0, 0]), torch.zeros(4), tau=1.0)
    assert J.item() == pytest.approx(-math.log(3))
    assert m["score_gap"] == pytest.approx(-(math.log(2) + math.log(4)) / 2)
    Jb, _ = disco_objective(scores, torch.tensor([1.0, 1, 0, 0]), torch.zeros(4), tau=1.0, variant="disco_b")
    assert Jb.item() == pytest.approx(-(math.log(2) + math.log(4)) / 2)


# ---------------------------------------------------------------------------------------------------------------
# §1.11 properties


def _score_grads(scores, labels, groups, tau, variant):
    s = scores.clone().requires_grad_(True)
    J, _ = disco_objective(s, labels, groups, tau, variant)
    (-J).backward()
    return s.grad


@pytest.mark.parametrize("variant", ["disco", "disco_b"])
def test_gradient_signs(variant):  # property 1
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(24, generator=g, dtype=torch.float64)
    labels = torch.tensor([1.0, 0.0] * 12)
    groups = torch.arange(24) // 6
    grad = _score_grads(scores, labels, groups, 0.5, variant)
    assert (grad[labels == 1] < 0).all()
    assert (grad[labels == 0] > 0).all()


def test_negative_weights_are_softmax_and_positive_weights_uniform():  # property 2
    g = torch.Generator().manual_seed(2)
    Q, G, tau = 3, 6, 0.8
    scores = torch.randn(Q * G, generator=g, dtype=torch.float64)
    labels = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 0.0] * Q)
    groups = torch.arange(Q * G) // G
    grad = _score_grads(scores, labels, groups, tau, "disco") * Q
    grad_b = _score_grads(scores, labels, groups, tau, "disco_b") * Q
    for q in range(Q):
        rows = groups == q
        neg, pos = rows & (labels == 0), rows & (labels == 1)
        assert torch.allclose(grad[neg], torch.softmax(scores[neg] / tau, 0))
        assert grad[neg].sum().item() == pytest.approx(1.0)
        assert torch.allclose(grad_b[neg], torch.full((4,), 0.25, dtype=torch.float64))
        assert torch.allclose(grad[pos], torch.full((2,), -0.5, dtype=torch.float64))


def test_tau_limits():  # property 3
    g = torch.Generator().manual_seed(4)
    scores = torch.randn(8, generator=g, dtype=torch.float64)
    labels = torch.tensor([1.0, 1, 0, 0, 0, 0, 0, 0])
    groups = torch.zeros(8)
    Jb, _ = disco_objective(scores, labels, groups, 1.0, "disco_b")
    J_inf, _ = disco_objective(scores, labels, groups, 1e7, "disco")
    assert J_inf.item() == pytest.approx(Jb.item(), abs=1e-6)
    J_0, _ = disco_objective(scores, labels, groups, 1e-4, "disco")
    assert J_0.item() == pytest.approx(scores[:2].mean().item() - scores[2:].max().item(), abs=1e-3)
    # tau * log-mean-exp lies between the mean and the max of the negatives
    J_mid, _ = disco_objective(scores, labels, groups, 1.0, "disco")
    assert J_0.item() - 1e-3 <= J_mid.item() <= Jb.item()


@pytest.mark.parametrize("variant", ["disco", "disco_b"])
def test_single_label_groups_and_non_binary_labels_are_dropped(variant):  # property 4
    g = torch.Generator().manual_seed(5)
    scores = torch.randn(16, generator=g, dtype=torch.float64)
    labels = torch.tensor([1.0] * 4 + [0.0] * 4 + [1.0, 0.0, 1.0, 0.0] + [0.5, 1.0, 0.5, 0.0])
    groups = torch.arange(16) // 4
    grad = _score_grads(scores, labels, groups, 1.0, variant)
    assert (grad[:8] == 0).all()  # all-1 and all-0 questions
    assert grad[12] == 0 and grad[14] == 0  # label 0.5 is neither positive nor negative
    assert (grad[8:12] != 0).all()
    J, m = disco_objective(scores, labels, groups, 1.0, variant)
    assert m["num_groups"] == 4 and m["num_valid"] == 2
    # dropped questions still count in the denominator (authors' code)
    J_valid, _ = disco_objective(scores[8:], labels[8:], groups[8:], 1.0, variant)
    assert J.item() == pytest.approx(J_valid.item() / 2)


def test_no_valid_question_gives_zero_objective_and_finite_gradient():
    scores = torch.randn(6, dtype=torch.float64, requires_grad=True)
    J, m = disco_objective(scores, torch.ones(6), torch.arange(6) // 3, 1.0)
    J.backward()
    assert J.item() == 0 and m["num_valid"] == 0 and math.isnan(m["score_gap"])
    assert torch.equal(scores.grad, torch.zeros(6, dtype=torch.float64))


def test_no_difficulty_bias():  # property 5
    g = torch.Generator().manual_seed(6)
    scores = torch.randn(16, generator=g, dtype=torch.float64)
    labels = torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 0] + [1.0, 1, 1, 1, 1, 1, 1, 0])  # p = 1/8 and p = 7/8
    groups = torch.arange(16) // 8
    for variant in ("disco", "disco_b"):
        grad = _score_grads(scores, labels, groups, 2.0, variant)
        for q in range(2):
            rows = groups == q
            assert grad[rows & (labels == 1)].sum().item() == pytest.approx(-0.5)
            assert grad[rows & (labels == 0)].sum().item() == pytest.approx(0.5)


def test_kl_penalty_value_and_gradient():  # property 6
    beta, delta = 1e3, 1e-4
    for kl_value in (0.0, 5e-5, 1e-4):
        kl = torch.tensor(kl_value, dtype=torch.float64, requires_grad=True)
        p = kl_penalty(kl, beta, delta)
        p.backward()
        assert p.item() == 0 and kl.grad.item() == 0
    logps, old, mask, _, _ = _batch(seed=7)
    logps = (old - 0.01).clone().requires_grad_(True)
    D = kl_old_current(logps, old, mask)
    assert D.item() == pytest.approx(0.01)
    (kl_penalty(D, beta, delta)).backward()
    x = logps.detach().clone().requires_grad_(True)
    kl_old_current(x, old, mask).backward()
    assert torch.allclose(logps.grad, beta * (D.item() - delta) * x.grad)
    assert kl_penalty(torch.tensor(0.01), beta, delta).item() == pytest.approx(0.5 * beta * (0.01 - delta) ** 2)


@pytest.mark.parametrize("variant", ["disco", "disco_b"])
def test_at_rollout_policy(variant):  # property 7
    logps, _, mask, labels, groups = _batch(seed=8)
    old = logps.clone()
    x = logps.clone().requires_grad_(True)
    assert torch.allclose(likelihood_ratio_score(x, old, mask), torch.ones(len(x), dtype=x.dtype))
    assert kl_old_current(x, old, mask).item() == pytest.approx(0.0, abs=1e-12)
    loss, metrics = disco_loss(x, old, mask, labels, groups, _config("l_ratio", variant, delta=1e-12))
    loss.backward()
    assert metrics["kl"] == pytest.approx(0.0, abs=1e-12)
    # the gradient is -grad J alone: the same as with the penalty switched off
    y = logps.clone().requires_grad_(True)
    loss_b, _ = disco_loss(y, old, mask, labels, groups, _config("l_ratio", variant, beta=0.0))
    loss_b.backward()
    assert torch.allclose(x.grad, y.grad)
    # and L-ratio's gradient there is log-L's gradient weighted like DisCO-b (all scores equal)
    z = logps.clone().requires_grad_(True)
    disco_loss(z, old, mask, labels, groups, _config("log_l", "disco_b", beta=0.0))[0].backward()
    assert torch.allclose(x.grad, z.grad)


@pytest.mark.parametrize("score", ["log_l", "l_ratio"])
def test_permutation_invariance(score):  # property 8
    logps, old, mask, labels, groups = _batch(seed=9)
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    cfg = _config(score, tau=0.5, delta=1e-6)
    a, _ = disco_loss(logps, old, mask, labels, groups, cfg)
    b, _ = disco_loss(logps[perm], old[perm], mask[perm], labels[perm], groups[perm] * 7 + 3, cfg)
    assert a.item() == pytest.approx(b.item(), rel=1e-12)


@pytest.mark.parametrize("score", ["log_l", "l_ratio"])
def test_padding_invariance(score):  # property 9
    logps, old, mask, labels, groups = _batch(seed=10)
    pad = torch.randn(len(labels), 5, dtype=logps.dtype)
    cfg = _config(score, tau=0.5, delta=1e-6)
    a, _ = disco_loss(logps, old, mask, labels, groups, cfg)
    zeros = torch.zeros_like(pad)
    b, _ = disco_loss(
        torch.cat([logps, pad], 1), torch.cat([old, pad + 1], 1), torch.cat([mask, zeros], 1), labels, groups, cfg
    )
    assert a.item() == pytest.approx(b.item(), rel=1e-12)


def test_detach_trick_has_the_same_gradient():  # property 10
    g = torch.Generator().manual_seed(11)
    scores = torch.randn(8, generator=g, dtype=torch.float64)
    labels = torch.tensor([1.0, 0, 1, 0, 0, 0, 0, 1])
    tau = 0.6
    ours = _score_grads(scores, labels, torch.zeros(8), tau, "disco")
    s = scores.clone().requires_grad_(True)
    e = torch.exp(s[labels == 0] / tau)
    # released-code form: tau * sum(exp) / stopgrad(sum(exp)), value tau, gradient tau * grad log-sum-exp
    trick = -(s[labels == 1].mean() - tau * e.sum() / e.sum().detach())
    trick.backward()
    assert torch.allclose(ours, s.grad)


def test_scores():
    logps = torch.tensor([[-1.0, -3.0, -100.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    assert log_likelihood_score(logps, mask).item() == pytest.approx(-2.0)
    old = torch.tensor([[-1.0 - math.log(2), -3.0, 5.0]])
    assert likelihood_ratio_score(logps, old, mask).item() == pytest.approx(1.5)
    assert log_likelihood_score(logps, torch.zeros_like(mask)).item() == 0


def test_empty_completions_are_ignored():
    logps, old, mask, labels, groups = _batch(seed=12)
    cfg = _config(tau=0.5)
    a, _ = disco_loss(logps, old, mask, labels, groups, cfg)
    extra = torch.zeros(1, logps.shape[1], dtype=logps.dtype)
    b, _ = disco_loss(
        torch.cat([logps, extra]),
        torch.cat([old, extra]),
        torch.cat([mask, extra]),
        torch.cat([labels, torch.ones(1, dtype=labels.dtype)]),
        torch.cat([groups, groups[-1:]]),
        cfg,
    )
    assert a.item() == pytest.approx(b.item(), rel=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# labels, config, recipe checks


def test_binarize_labels():
    r = torch.tensor([0.0, 1.0, float("nan"), 1.0])
    assert torch.equal(binarize_labels(r, "acc", None)[[0, 1, 3]], r[[0, 1, 3]])
    shaped = torch.tensor([0.2, 0.7, float("nan")])
    out = binarize_labels(shaped, "score", 0.5)
    assert out[:2].tolist() == [0.0, 1.0] and math.isnan(out[2])
    with pytest.raises(RewardError, match="label_threshold"):
        binarize_labels(shaped, "score", None)


def test_config_validation_and_defaults():
    assert DisCOConfig().tau == 10.0
    assert DisCOConfig(score="l_ratio").tau == 1.0
    with pytest.raises(ConfigError) as err:
        DisCOConfig(score="ratio", delta=-1.0, tau=0.0)
    assert len(err.value.problems) == 3
    with pytest.raises(ConfigError, match="unknown"):
        build_objective("disco", {"temperature": 1.0})
    assert build_objective("disco_b").config.variant == "disco_b"


def test_run_check():
    training = {"gradient_accumulation_steps": 2, "steps_per_generation": 3, "beta": 0.04}
    problems = build_objective("disco", {"label_reward": "accuracy"}).check(["format"], training.get)
    assert len(problems) == 3
    assert "label_reward" in problems[0] and "steps_per_generation" in problems[1] and "beta" in problems[2]
    assert build_objective("disco", {"label_reward": "accuracy"}).check(["format", "accuracy"], {}.get) == []


# ---------------------------------------------------------------------------------------------------------------
# the objective's plumbing on a stand-in trainer: accumulated micro-batch gradients equal the full-batch gradient


class _StandInTrainer:
    """The `TrainerView` protocol DisCO reads (objectives/base.py); token log-probs come from a (T, V) table."""

    def __init__(self, theta, buffer, accumulation, per_generation, num_iterations=1):
        from types import SimpleNamespace

        self.theta = theta
        self.args = SimpleNamespace(gradient_accumulation_steps=accumulation, steps_per_generation=per_generation)
        self.num_iterations = num_iterations
        self.buffer = buffer
        self.step = 0
        self.accelerator = SimpleNamespace(num_processes=1, process_index=0, reduce=lambda x, reduction: x)
        self.model = SimpleNamespace(training=True)
        self.metrics = {}

    def log_metric(self, key, value):
        self.metrics.setdefault(key, []).append(value)

    def micro_step(self):
        return self.step

    def generation_buffer(self):
        return self.buffer

    def token_logps(self, model, batch, compute_entropy):
        table = torch.log_softmax(self.theta, dim=-1)  # (T, V)
        ids = batch["completion_ids"]
        logps = table.unsqueeze(0).expand(len(ids), -1, -1).gather(2, ids.unsqueeze(2)).squeeze(2)
        entropy = -(table.exp() * table).sum(-1)[: ids.shape[1]].unsqueeze(0).expand(len(ids), -1)
        return logps, entropy  # (b, width of this batch's completions), as TRL's forward returns them


def _generation_batch(theta, N=24, G=4, T=6, seed=0, with_old=False):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (N,), generator=g)
    batch = {
        "prompt_ids": torch.zeros(N, 2, dtype=torch.long),
        "prompt_mask": torch.ones(N, 2, dtype=torch.long),
        "completion_ids": torch.randint(0, theta.shape[1], (N, T), generator=g),
        "completion_mask": (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).long(),
        "disco_label": torch.randint(0, 2, (N,), generator=g).float(),
        "disco_group": torch.arange(N) // G,
        "num_items_in_batch": torch.tensor(float(lengths.sum())),
    }
    if with_old:
        with torch.no_grad():
            table = torch.log_softmax(theta, -1)
            batch["old_per_token_logps"] = (
                table.unsqueeze(0).expand(N, -1, -1).gather(2, batch["completion_ids"].unsqueeze(2)).squeeze(2)
            )
    perm = torch.randperm(N, generator=g)  # TRL shuffles, then splits
    return {k: (v[perm] if v.ndim else v) for k, v in batch.items()}


def _split(batch, parts):
    n = len(batch["disco_label"]) // parts
    return [{k: (v[i * n : (i + 1) * n] if v.ndim else v) for k, v in batch.items()} for i in range(parts)]


def _full_batch_grad(theta, rows, config):
    x = theta.detach().clone().requires_grad_(True)
    table = torch.log_softmax(x, -1)
    logps = (
        table.unsqueeze(0)
        .expand(len(rows["completion_ids"]), -1, -1)
        .gather(2, rows["completion_ids"].unsqueeze(2))
        .squeeze(2)
    )
    old = rows.get("old_per_token_logps", logps.detach())
    loss, _ = disco_loss(logps, old, rows["completion_mask"].float(), rows["disco_label"], rows["disco_group"], config)
    loss.backward()
    return loss.detach(), x.grad


@pytest.mark.parametrize("score, variant", [("log_l", "disco"), ("log_l", "disco_b"), ("l_ratio", "disco")])
@pytest.mark.parametrize("accumulation, per_generation", [(4, 4), (2, 4), (1, 3)])
def test_micro_batches_sum_to_full_batch(score, variant, accumulation, per_generation):
    torch.manual_seed(0)
    theta_old = torch.randn(6, 11, dtype=torch.float64)
    K = per_generation // accumulation
    batch = _generation_batch(theta_old, with_old=K > 1)
    buffer = _split(batch, per_generation)
    objective = build_objective("disco", {"score": score, "variant": variant, "tau": 0.3, "delta": 1e-6, "beta": 5.0})
    theta = theta_old.clone().requires_grad_(True)
    trainer = _StandInTrainer(theta, buffer, accumulation, per_generation)
    for k in range(K):
        if k > 0:  # after an optimizer step: theta moved away from the rollout policy
            theta.data += 0.05 * torch.randn_like(theta)
        theta.grad = None
        total = 0.0
        for j in range(accumulation):
            trainer.step = k * accumulation + j
            loss = objective.compute_loss(trainer, None, buffer[trainer.step])
            loss.backward()
            total += loss.item()
        rows = {key: (v[batch["disco_group"] % K == k] if v.ndim else v) for key, v in batch.items()}
        ref_loss, ref_grad = _full_batch_grad(theta, rows, objective.config)
        assert total == pytest.approx(ref_loss.item(), rel=1e-9, abs=1e-12)
        assert torch.allclose(theta.grad, ref_grad, rtol=1e-9, atol=1e-12)
        assert theta.grad.abs().sum() > 0
    assert len(trainer.metrics["objective/kl"]) == K
    assert trainer.metrics["objective/kl"][0] == pytest.approx(0.0, abs=1e-9)
    if K > 1:
        assert abs(trainer.metrics["objective/kl"][1]) > 1e-9


def test_eval_loss_is_the_batch_objective():
    theta = torch.randn(6, 11, dtype=torch.float64)
    batch = _generation_batch(theta, seed=3)
    trainer = _StandInTrainer(theta, [batch], 1, 1)
    trainer.model.training = False
    objective = build_objective("disco", {"tau": 0.3})
    loss = objective.compute_loss(trainer, None, batch)
    ref, _ = _full_batch_grad(theta, batch, objective.config)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# through the real trainer


def _parity_reward(completion_ids, **kwargs):
    return [float(ids[0] % 2 == 0) if ids else 0.0 for ids in completion_ids]


def test_trainer_step(tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig

    from rlsurrogate.models import tiny_model
    from rlsurrogate.trainer import RLTrainer

    model, tokenizer = tiny_model(seed=0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    dataset = Dataset.from_list([{"prompt": f"{a} plus {a} is"} for a in range(16)])
    objective = build_objective("disco", {"label_reward": "_parity_reward", "delta": 1e-9})
    config = GRPOConfig(
        output_dir=str(tmp_path),
        bf16=False,
        report_to="none",
        max_steps=2,
        num_generations=4,
        max_completion_length=8,
        per_device_train_batch_size=8,
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="no",
        seed=0,
        # step 1 runs at the rollout policy (KL = 0); step 2 re-uses the same completions (KL != 0)
        num_iterations=2,
        gradient_accumulation_steps=2,
        **objective.config_overrides(),
    )
    trainer = RLTrainer(
        model=model,
        reward_funcs=[_parity_reward],
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        objective=objective,
    )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert logs and all(math.isfinite(h["loss"]) for h in logs)
    assert all("objective/valid_group_share" in h and "objective/entropy" in h for h in logs)
    changed = [n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())]
    assert len(changed) == len(before)
    # The first step's rollout and training forwards see the same weights; their batch layouts differ, so the
    # token log-probs (and this KL) may differ in the last bits between machines.
    kls = [h["objective/kl"] for h in logs]
    assert abs(kls[0]) < 1e-6 and abs(kls[1]) > 1e-6, kls


# ---------------------------------------------------------------------------------------------------------------
# 2 processes vs 1 process


@pytest.mark.slow
@pytest.mark.parametrize(
    "two, one",
    [
        ((4, 2, 2), (4, 4, 4)),  # one optimizer step per generation, 2 micro-batches per process (scores pre-pass)
        ((4, 2, 4), (4, 4, 8)),  # two optimizer steps per generation: whole questions per step, KL active
        ((8, 1, 1), (8, 2, 2)),  # one micro-batch per process and step (live forward) vs two micro-batches
    ],
    ids=["on-policy", "two-steps-per-generation", "single-micro-batch"],
)
def test_two_processes_equal_one(tmp_path, two, one):
    """(per_device_train_batch_size, gradient_accumulation_steps, steps_per_generation) for 2 and 1 processes."""
    script = Path(__file__).with_name("objective_distributed.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    runs = {}
    for procs, (per_device, accumulation, per_generation) in ((2, two), (1, one)):
        out = tmp_path / f"{procs}.json"
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(procs)]
        if procs == 2:
            launch.insert(3, "--multi_gpu")  # with use_cpu=True this starts 2 gloo processes
        cmd = launch + [
            str(script),
            "--out",
            str(out),
            "--per-device",
            str(per_device),
            "--accumulation",
            str(accumulation),
            "--steps-per-generation",
            str(per_generation),
        ]
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-4000:]
        runs[procs] = json.loads(out.read_text())
    two_run, one_run = runs[2], runs[1]
    assert two_run["world_size"] == 2 and one_run["world_size"] == 1
    assert len(two_run["steps"]) == len(one_run["steps"]) >= 2
    for a, b in zip(two_run["steps"], one_run["steps"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-6)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4, abs=1e-8)
        assert a["kl"] == pytest.approx(b["kl"], rel=1e-3, abs=1e-9)
    assert two_run["param_checksum"] == pytest.approx(one_run["param_checksum"], rel=1e-5)
