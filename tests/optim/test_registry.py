"""Every optimizer a recipe can name is a drop-in torch optimizer: built from (params, lr), stepped by the trainer."""

from __future__ import annotations

import pytest
import torch

from rlsurrogate.optim import OPTIMIZERS

COVERED = ["adam_cm"]


def test_every_registered_optimizer_is_covered():
    assert OPTIMIZERS.names() == sorted(COVERED)


@pytest.mark.parametrize("name", COVERED)
def test_steps_like_a_torch_optimizer(name):
    model = torch.nn.Linear(3, 1)
    opt = OPTIMIZERS.get(name)(model.parameters(), lr=0.01)
    assert isinstance(opt, torch.optim.Optimizer)
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(3):  # AdamCM's first step only fills its buffer
        opt.zero_grad()
        model(torch.ones(4, 3)).pow(2).sum().backward()
        opt.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    loss = opt.step(lambda: model(torch.ones(4, 3)).pow(2).sum())  # the closure form transformers may use
    assert torch.isfinite(torch.as_tensor(loss))
