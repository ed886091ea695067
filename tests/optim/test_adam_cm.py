from __future__ import annotations

import copy
import math

import pytest
import torch

from rlsurrogate.errors import ConfigError
from rlsurrogate.optim.adam_cm import AdamCM


def _params(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(4, 3, generator=g, dtype=torch.float64).requires_grad_(),
        torch.randn(3, generator=g, dtype=torch.float64).requires_grad_(),
    ]


def _set_grads(params: list[torch.Tensor], step: int, scale: float = 1.0) -> None:
    g = torch.Generator().manual_seed(100 + step)
    for p in params:
        p.grad = scale * torch.randn(p.shape, generator=g, dtype=p.dtype)


@pytest.mark.parametrize("kwargs", [dict(buffer_size=0), dict(kappa=0.0)])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_plain_path_equals_torch_adamw(kwargs, weight_decay, amsgrad):
    ours, ref = _params(), _params()
    opt = AdamCM(ours, lr=0.05, weight_decay=weight_decay, amsgrad=amsgrad, **kwargs)
    ref_opt = torch.optim.AdamW(ref, lr=0.05, weight_decay=weight_decay, amsgrad=amsgrad)
    for t in range(6):
        _set_grads(ours, t)
        _set_grads(ref, t)
        opt.step()
        ref_opt.step()
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_plain_path_equals_torch_adam_without_weight_decay():
    ours, ref = _params(), _params()
    opt, ref_opt = AdamCM(ours, lr=0.01, buffer_size=0), torch.optim.Adam(ref, lr=0.01)
    for t in range(4):
        _set_grads(ours, t)
        _set_grads(ref, t)
        opt.step()
        ref_opt.step()
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_plain_path_is_torch_adamw_bit_for_bit_on_cpu(dtype, weight_decay, amsgrad):
    # SSO's inner Adam and FZooS/FedZO's local steps run this path, so it must not drift from torch's Adam.
    ours, ref = ([p.detach().to(dtype).requires_grad_() for p in _params()] for _ in range(2))
    opt = AdamCM(ours, lr=0.05, buffer_size=0, weight_decay=weight_decay, amsgrad=amsgrad)
    ref_opt = torch.optim.AdamW(ref, lr=0.05, weight_decay=weight_decay, amsgrad=amsgrad)
    for t in range(30):
        _set_grads(ours, t)
        _set_grads(ref, t)
        opt.step()
        ref_opt.step()
    assert all(torch.equal(a, b) for a, b in zip(ours, ref))


def test_first_step_is_a_no_op_and_stores_the_raw_gradient():
    params = _params()
    before = [p.detach().clone() for p in params]
    opt = AdamCM(params, lr=0.1)
    _set_grads(params, 0)
    opt.step()
    for p, b in zip(params, before):
        torch.testing.assert_close(p.detach(), b)
        keys, vals = opt.buffer(p)
        assert vals.shape[0] == 1
        torch.testing.assert_close(vals[0], p.grad)


def test_second_step_matches_hand_computation():
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    lr, (b1, b2), eps = 0.1, (0.9, 0.999), 1e-8
    opt = AdamCM([p], lr=lr, betas=(b1, b2), eps=eps)
    g1, g2 = torch.tensor([0.5, 1.0], dtype=torch.float64), torch.tensor([-1.0, 2.0], dtype=torch.float64)
    p.grad = g1.clone()
    opt.step()
    p.grad = g2.clone()
    opt.step()
    m = (1 - b1) * g2
    m_tilde = m + g1  # buffer holds the raw first gradient
    v = (1 - b2) * m_tilde**2
    expected = torch.tensor([1.0, -2.0], dtype=torch.float64) - lr / (1 - b1**2) * m_tilde / (
        v.sqrt() / math.sqrt(1 - b2**2) + eps
    )
    torch.testing.assert_close(p.detach(), expected)
    _, vals = opt.buffer(p)
    torch.testing.assert_close(vals[1], m)  # momenta, not gradients, after step 1


def test_buffer_never_exceeds_size_and_priorities_decay():
    params = _params()
    opt = AdamCM(params, lr=0.01, buffer_size=3, decay=0.5)
    for t in range(10):
        _set_grads(params, t)
        opt.step()
        assert opt.buffer(params[0])[0].numel() <= 3
    keys_before, _ = opt.buffer(params[0])
    _set_grads(params, 99, scale=0.0)  # zero gradient: priority 0 never enters a full buffer
    opt.step()
    keys_after, _ = opt.buffer(params[0])
    torch.testing.assert_close(keys_after, 0.5 * keys_before)


def test_small_gradient_does_not_change_a_full_buffer():
    params = _params()
    opt = AdamCM(params, lr=0.01, buffer_size=2, decay=0.9)
    for t in range(4):
        _set_grads(params, t, scale=10.0)
        opt.step()
    _, vals_before = opt.buffer(params[1])
    _set_grads(params, 50, scale=1e-3)
    opt.step()
    _, vals_after = opt.buffer(params[1])
    torch.testing.assert_close(vals_after, vals_before)


def test_large_gradient_replaces_lowest_priority_entry():
    p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = AdamCM([p], lr=0.01, buffer_size=2, decay=1.0)
    for scale in (1.0, 3.0, 2.0):  # fills the buffer with priorities 1, 3 (step 3's norm 2 > 1 replaces it)
        p.grad = torch.tensor([scale, 0.0], dtype=torch.float64)
        opt.step()
    keys, _ = opt.buffer(p)
    assert sorted(keys.tolist()) == pytest.approx([2.0, 3.0])


def test_synced_priority_sums_tensor_norms():
    params = _params()
    opt = AdamCM(params, buffer_size=2, synced=True, decay=0.7)
    _set_grads(params, 0)
    opt.step()
    expected = 0.7 * sum(torch.linalg.vector_norm(p.grad) for p in params)  # decayed once after insertion
    for p in params:
        assert float(opt.buffer(p)[0][0]) == pytest.approx(float(expected))


def test_trains_a_small_regression():
    torch.manual_seed(0)
    X = torch.randn(64, 5)
    y = X @ torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0])
    model = torch.nn.Linear(5, 1)
    opt = AdamCM(model.parameters(), lr=0.05)
    first = None
    for _ in range(200):
        opt.zero_grad()
        loss = ((model(X).squeeze(-1) - y) ** 2).mean()
        first = first if first is not None else loss.item()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * first


def test_invalid_arguments_are_listed_together():
    with pytest.raises(ConfigError) as err:
        AdamCM(_params(), lr=-1.0, buffer_size=-2, decay=1.5)
    assert len(err.value.problems) == 3


def test_state_dict_round_trip_continues_identically():
    a, b = _params(), _params()
    opt_a = AdamCM(a, lr=0.05, buffer_size=2)
    for t in range(3):
        _set_grads(a, t)
        opt_a.step()
    with torch.no_grad():
        for p, q in zip(b, a):
            p.copy_(q)
    opt_b = AdamCM(b, lr=0.05, buffer_size=2)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # load_state_dict would alias the tensors
    for t in range(3, 6):
        _set_grads(a, t)
        _set_grads(b, t)
        opt_a.step()
        opt_b.step()
    for p, q in zip(a, b):
        torch.testing.assert_close(p, q)
