"""Adam+CM: Adam with a buffer of critical momenta.

Malviya, Mordido, Baratin, Harikandeh, Huang, Lacoste-Julien, Pascanu, Chandar, "Promoting Exploration in
Memory-Augmented Adam using Critical Momenta", TMLR 2024, arXiv 2307.09638. Reference code:
github.com/chandar-lab/CMOptimizer (`cmoptimizer/optim.py` class `Adam_CM`, `cmoptimizer/prioritydict.py`).

Each parameter tensor keeps a buffer of at most C ("topC", here `buffer_size`) past momentum vectors with priorities.
Adam's first moment is replaced by the current momentum plus the buffer average, so the iterate overshoots narrow
basins. Per step t and parameter tensor p with gradient g (as in the reference code):

    k_t     = sum over the group's tensors of ||grad||_2     (synced=True; the tensor's own norm if synced=False)
    p       <- p * (1 - lr * weight_decay)                   (decoupled weight decay)
    t = 1:  m <- 0, v <- 0, buffer <- {(k_1, g)}; the update is zero (m~ = 0)
    t > 1:  m  <- beta1 m + (1 - beta1) g
            m~ <- m + mean(buffer)                           (buffer before this step's insertion)
            insert (k_t, m) if the buffer is not full, else replace the lowest-priority entry when k_t exceeds it
            (with probability `critical_test` replace it regardless: FIFO-like mode)
            v  <- beta2 v + (1 - beta2) m~^2                 (second_moment_source="aggregated_momentum")
            p  <- p - lr / (1 - beta1^t) * m~ / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    every step: all priorities <- decay * priorities

Deviations from the reference code, each deliberate:
- `buffer_size=0` or `kappa=0` runs plain Adam with decoupled weight decay (identical to `torch.optim.AdamW`, and to
  `torch.optim.Adam` when weight_decay=0), as the reference docstring promises for kappa=0. In the reference code
  both settings re-initialise the state every step (the optimizer never moves) and the final priority decay raises
  on the never-created buffer.
- `kappa` is only tested for > 0 in the reference code; we keep that meaning (it does not scale anything).
- In FIFO-like mode (`critical_test` > 0) the reference replaces the entry at the index found by the last priority
  comparison (possibly stale); we always replace the current lowest-priority entry.
- Randomness for `critical_test` comes from a seeded `torch.Generator`, not the global numpy RNG.
- `second_moment_source="grad"` (v from g^2) is offered because the paper's algorithm is not verified against the
  code; the default reproduces the code (v from m~^2).
- The reference's bookkeeping counters (`offline_grad`, `g_analysis`) are not kept; `buffer_size` replaces `topC`.
- The moment averages are computed as torch.optim.Adam computes them (`m.lerp_(g, 1 - beta1)`, `v.mul_(beta2)
  .addcmul_(s, s, value=1 - beta2)`); the reference's `m.mul_(beta1).add_(g, alpha=1 - beta1)` is the same average,
  rounded differently in the last bit.

The one Adam of rlsurrogate: `first_moment_` and `adam_step_` below are the Adam update (Kingma & Ba, ICLR 2015,
arXiv 1412.6980, Algorithm 1) that both paths of AdamCM use, and `AdamCM(params, buffer_size=0)` is the plain Adam
that SSO's inner loop and the local steps of FZooS and FedZO run.

Checked against: torch Adam/AdamW on the plain path, bit for bit on CPU (tests); the buffer rules of the reference
code on toy tensors. Full paper results not reproduced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from rlsurrogate.errors import ConfigError

__all__ = ["AdamCM", "adam_step_", "first_moment_"]

_SECOND_MOMENT_SOURCES = ("aggregated_momentum", "grad")


def first_moment_(exp_avg: torch.Tensor, grad: torch.Tensor, beta1: float) -> torch.Tensor:
    """Adam's first moment `m <- beta1 m + (1 - beta1) g`, in place, rounded as torch.optim.Adam rounds it.

    Args:
        exp_avg: m, any shape; updated in place.
        grad: g, same shape.
        beta1: decay of the average, in [0, 1).

    Returns:
        `exp_avg`, updated.
    """
    return exp_avg.lerp_(grad, 1 - beta1)


def adam_step_(
    p: torch.Tensor,
    first_moment: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    second_source: torch.Tensor,
    step: int,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    max_exp_avg_sq: torch.Tensor | None = None,
) -> None:
    """Adam's second moment and parameter update, in place (Kingma & Ba 2015, Algorithm 1, with bias correction).

    `v <- beta2 v + (1 - beta2) s^2`, then `p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)`,
    with `sqrt(max over steps of v)` instead of `sqrt(v)` when `max_exp_avg_sq` is given (AMSGrad). Plain Adam passes
    `m` and `s = g`; AdamCM passes the aggregated momentum as `m` (and as `s` by default).

    Args:
        p: the parameter, any shape; updated in place.
        first_moment: m, same shape.
        exp_avg_sq: v, same shape; updated in place.
        second_source: s, whose square v averages, same shape.
        step: t >= 1, the number of updates including this one.
        lr: learning rate.
        betas: (beta1, beta2).
        eps: term added to the denominator.
        max_exp_avg_sq: running maximum of v (AMSGrad), same shape; updated in place.
    """
    beta1, beta2 = betas
    exp_avg_sq.mul_(beta2).addcmul_(second_source, second_source, value=1 - beta2)
    second = exp_avg_sq
    if max_exp_avg_sq is not None:
        torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second = max_exp_avg_sq
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    denom = (second.sqrt() / bias_correction2**0.5).add_(eps)
    p.addcdiv_(first_moment, denom, value=-(lr / bias_correction1))


class AdamCM(torch.optim.Optimizer):
    """Adam with critical momenta (Malviya et al., TMLR 2024), defaults from the reference code.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (code default 1e-3).
        betas: (beta1, beta2) as in Adam (code default (0.9, 0.999)).
        eps: denominator term (code default 1e-8).
        buffer_size: C, the most momenta kept per tensor (code `topC=5`); 0 means plain Adam.
        decay: priority decay per step (code default 0.7; README also uses 0.99).
        kappa: > 0 enables the buffer; 0 means plain Adam (code default 1.0).
        weight_decay: decoupled weight decay (code default 0).
        amsgrad: use the running max of v (code default False).
        critical_test: probability of replacing the lowest-priority entry regardless of priority (code default 0).
        synced: priority is the sum of the group's gradient norms (True, code default) or the tensor's own norm.
        second_moment_source: "aggregated_momentum" (code) or "grad".
        seed: seed of the generator used by `critical_test`.

    Example:
        >>> model = torch.nn.Linear(3, 1)
        >>> opt = AdamCM(model.parameters(), lr=1e-3, buffer_size=5, decay=0.7)
        >>> model(torch.ones(2, 3)).sum().backward(); _ = opt.step()
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        buffer_size: int = 5,
        decay: float = 0.7,
        kappa: float = 1.0,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        critical_test: float = 0.0,
        synced: bool = True,
        second_moment_source: str = "aggregated_momentum",
        seed: int = 0,
    ):
        problems = _check_args(
            lr, betas, eps, buffer_size, decay, kappa, weight_decay, critical_test, second_moment_source
        )
        if problems:
            raise ConfigError(problems, header="invalid AdamCM arguments:")
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            buffer_size=int(buffer_size),
            decay=decay,
            kappa=kappa,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            critical_test=critical_test,
            synced=synced,
            second_moment_source=second_moment_source,
        )
        super().__init__(params, defaults)
        self._generator = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Performs one optimization step; `closure` re-evaluates the loss and is optional."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if group["buffer_size"] == 0 or group["kappa"] <= 0:
                for p in params:
                    self._adam_update(p, group)
                continue
            group_key = sum(torch.linalg.vector_norm(p.grad) for p in params) if group["synced"] else None
            for p in params:
                key = group_key if group_key is not None else torch.linalg.vector_norm(p.grad)
                self._cm_update(p, group, torch.as_tensor(key, dtype=torch.float64))
        return loss

    def buffer(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns `(priorities (n,), momenta (n, *p.shape))` of the critical-momenta buffer of parameter `p`."""
        state = self.state[p]
        if "buffer_len" not in state:
            return torch.zeros(0, dtype=torch.float64), torch.zeros(0, *p.shape, dtype=p.dtype)
        n = state["buffer_len"]
        return state["buffer_keys"][:n].clone(), state["buffer_vals"][:n].clone()

    # ------------------------------------------------------------------------------------------------------------

    def _adam_update(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        state, grad = self.state[p], p.grad
        assert grad is not None  # step() passes only parameters with a gradient
        if group["weight_decay"] != 0:
            p.mul_(1 - group["lr"] * group["weight_decay"])
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        first_moment_(state["exp_avg"], grad, group["betas"][0])
        self._apply(p, state, group, state["exp_avg"], grad)

    def _cm_update(self, p: torch.Tensor, group: dict[str, Any], key: torch.Tensor) -> None:
        state, grad = self.state[p], p.grad
        assert grad is not None  # step() passes only parameters with a gradient
        if group["weight_decay"] != 0:
            p.mul_(1 - group["lr"] * group["weight_decay"])
        if not state:
            # First call: the reference code stores the raw gradient and leaves m = v = 0, so the update is zero.
            C = group["buffer_size"]
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
            state["buffer_keys"] = torch.zeros(C, dtype=torch.float64)
            state["buffer_vals"] = torch.zeros(C, *p.shape, dtype=p.dtype, device=p.device)
            state["buffer_len"] = 0
            self._insert(state, key, grad, group)
            aggregated = state["exp_avg"]
        else:
            exp_avg = first_moment_(state["exp_avg"], grad, group["betas"][0])
            n = state["buffer_len"]
            aggregated = exp_avg + state["buffer_vals"][:n].mean(dim=0)  # m~ = m + mean(buffer before insertion)
            self._insert(state, key, exp_avg, group)
        state["step"] += 1
        source = aggregated if group["second_moment_source"] == "aggregated_momentum" else grad
        self._apply(p, state, group, aggregated, source)
        state["buffer_keys"].mul_(group["decay"])

    def _insert(self, state: dict[str, Any], key: torch.Tensor, value: torch.Tensor, group: dict[str, Any]) -> None:
        n, C = state["buffer_len"], group["buffer_size"]
        if n < C:
            state["buffer_keys"][n] = key
            state["buffer_vals"][n].copy_(value)
            state["buffer_len"] = n + 1
            return
        smallest = int(torch.argmin(state["buffer_keys"]))
        fifo = group["critical_test"] > 0 and float(torch.rand((), generator=self._generator)) < group["critical_test"]
        if fifo or key > state["buffer_keys"][smallest]:
            state["buffer_keys"][smallest] = key
            state["buffer_vals"][smallest].copy_(value)

    def _apply(
        self,
        p: torch.Tensor,
        state: dict[str, Any],
        group: dict[str, Any],
        first_moment: torch.Tensor,
        second_source: torch.Tensor,
    ) -> None:
        max_exp_avg_sq = state.setdefault("max_exp_avg_sq", torch.zeros_like(p)) if group["amsgrad"] else None
        adam_step_(
            p,
            first_moment,
            state["exp_avg_sq"],
            second_source,
            state["step"],
            group["lr"],
            group["betas"],
            group["eps"],
            max_exp_avg_sq,
        )


def _check_args(
    lr: float,
    betas: tuple[float, float],
    eps: float,
    buffer_size: int,
    decay: float,
    kappa: float,
    weight_decay: float,
    critical_test: float,
    second_moment_source: str,
) -> list[str]:
    problems = []
    if lr < 0:
        problems.append(f"lr = {lr}: must be >= 0; the reference default is 1e-3.")
    for i, b in enumerate(betas):
        if not 0.0 <= b < 1.0:
            problems.append(f"betas[{i}] = {b}: must be in [0, 1); the reference default is (0.9, 0.999).")
    if eps < 0:
        problems.append(f"eps = {eps}: must be >= 0; the reference default is 1e-8.")
    if int(buffer_size) != buffer_size or buffer_size < 0:
        problems.append(f"buffer_size = {buffer_size}: must be an integer >= 0 (0 = plain Adam); the code uses 5.")
    if not 0.0 <= decay <= 1.0:
        problems.append(f"decay = {decay}: must be in [0, 1] (priority decay per step); the code uses 0.7.")
    if kappa < 0:
        problems.append(f"kappa = {kappa}: must be >= 0 (0 = plain Adam); the code uses 1.0.")
    if weight_decay < 0:
        problems.append(f"weight_decay = {weight_decay}: must be >= 0; the code uses 0.")
    if not 0.0 <= critical_test <= 1.0:
        problems.append(f"critical_test = {critical_test}: must be a probability in [0, 1]; the code uses 0.")
    if second_moment_source not in _SECOND_MOMENT_SOURCES:
        problems.append(f"second_moment_source = {second_moment_source!r}: must be one of {_SECOND_MOMENT_SOURCES}.")
    return problems
