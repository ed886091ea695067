"""Comp-sum losses and their smooth adversarial variants.

Mao, Mohri, Zhong, "Cross-Entropy Loss Functions: Theoretical Analysis and Applications", ICML 2023,
arXiv 2304.07288. No reference code was read; the formulas below are restated from the paper.

A comp-sum loss composes a function Phi^tau with a sum of exponentials of score differences. For scores h(x, .) in
R^K (logits) and label y:

    L_tau(h, x, y) = Phi^tau( sum_{y' != y} exp(h(x, y') - h(x, y)) ),
    Phi^tau(u) = log(1 + u)                               tau = 1    (logistic loss = cross-entropy)
    Phi^tau(u) = ((1 + u)^(1 - tau) - 1) / (1 - tau)      tau != 1

Since 1 + sum_{y' != y} exp(h_y' - h_y) = 1 / p_y with p = softmax(h), this is L_tau = (p_y^(tau - 1) - 1) / (1 - tau),
computed here as -expm1((tau - 1) log p_y) / (tau - 1) so that it is continuous (and stable) through tau = 1:
  tau = 0: sum-exponential loss sum_{y' != y} exp(h_y' - h_y) = 1/p_y - 1;
  tau = 1: cross-entropy -log p_y (the limit tau -> 1);
  tau in (1, 2): generalized cross-entropy (Zhang & Sabuncu 2018) (1 - p_y^q) / q with q = tau - 1;
  tau = 2: mean absolute error 1 - p_y = ||onehot(y) - p||_1 / 2.

Smooth adversarial comp-sum loss (paper Section "smooth adversarial comp-sum losses"): the comp-sum loss plus a
smooth term penalising how far the score differences move inside the perturbation ball,

    L~_tau(h, x, y) = L_tau(h, x, y) + nu * sup_{||x' - x|| <= gamma} || Delta_h(x', y) - Delta_h(x, y) ||_2,
    Delta_h(x, y) = (h(x, y) - h(x, y'))_{y' != y}.

`SmoothAdvCompSumLoss` takes the logits at x and at an adversarial x' (found by the caller, e.g. with
`adversarial_inputs`, a few steps of projected gradient ascent on the smooth term, as in the paper's algorithm).

Deviations / unverified points:
- The exact normalisation of the smooth term and the rho-margin variant used in the paper's bounds were not checked
  against the PDF; we implement the unscaled L2 form above (nu absorbs any constant) and no rho-margin.
- `adversarial_inputs` uses an L_inf ball with sign-gradient steps (PGD); the paper's experiments use PGD too but
  their step counts and radii are for the caller to choose.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rlsurrogate.errors import ConfigError
from rlsurrogate.registry import Registry

__all__ = [
    "COMP_SUM_TAUS",
    "CompSumLoss",
    "SmoothAdvCompSumLoss",
    "adversarial_inputs",
    "comp_sum_loss",
    "smooth_adv_comp_sum_loss",
]

# Named members of the family: name -> tau. `CompSumLoss("mae")` resolves a name here.
COMP_SUM_TAUS: Registry[float] = Registry(
    "comp-sum loss",
    {
        "sum_exponential": 0.0,
        "cross_entropy": 1.0,
        "generalized_cross_entropy": 1.7,  # q = 0.7, the GCE paper's default
        "mae": 2.0,
    },
)

_REDUCTIONS = ("mean", "sum", "none")


def comp_sum_loss(logits: torch.Tensor, target: torch.Tensor, tau: float) -> torch.Tensor:
    """Per-example comp-sum loss L_tau (Mao, Mohri, Zhong 2023, comp-sum definition).

    Args:
        logits: scores h(x, .), `(B, K)`.
        target: class indices, `(B,)`.
        tau: family parameter (>= 0): 0 sum-exponential, 1 cross-entropy, (1, 2) GCE with q = tau - 1, 2 MAE.

    Returns:
        `(B,)` losses.
    """
    log_p_y = torch.log_softmax(logits, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (B,)
    a = tau - 1.0
    if a == 0.0:
        return -log_p_y
    return -torch.expm1(a * log_p_y) / a


def score_differences(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Delta_h(x, y) = h(x, y) - h(x, y') for all y' (the y' = y entry is 0), `(B, K)`."""
    return logits.gather(-1, target.unsqueeze(-1)) - logits


def smooth_adv_comp_sum_loss(
    logits: torch.Tensor, adv_logits: torch.Tensor, target: torch.Tensor, tau: float, nu: float
) -> torch.Tensor:
    """Per-example smooth adversarial comp-sum loss L_tau + nu * ||Delta_h(x') - Delta_h(x)||_2.

    Args:
        logits: scores at the clean inputs, `(B, K)`.
        adv_logits: scores at the perturbed inputs x', `(B, K)`.
        target: class indices, `(B,)`.
        tau: comp-sum parameter (see `comp_sum_loss`).
        nu: weight of the smooth term (>= 0).

    Returns:
        `(B,)` losses.
    """
    smooth = torch.linalg.vector_norm(
        score_differences(adv_logits, target) - score_differences(logits, target), dim=-1
    )  # (B,)
    return comp_sum_loss(logits, target, tau) + nu * smooth


class CompSumLoss(nn.Module):
    """Comp-sum loss as a module, `CompSumLoss(tau=1.0)` is `nn.CrossEntropyLoss()`.

    Args:
        tau: family parameter or a registered name ("cross_entropy", "generalized_cross_entropy", "mae",
            "sum_exponential").
        reduction: "mean" | "sum" | "none".

    Example:
        >>> loss = CompSumLoss("mae")(torch.zeros(2, 3), torch.tensor([0, 2]))
    """

    def __init__(self, tau: float | str = 1.0, reduction: str = "mean"):
        super().__init__()
        self.tau = float(COMP_SUM_TAUS.get(tau)) if isinstance(tau, str) else float(tau)
        self.reduction = reduction
        _check(self.tau, 0.0, reduction)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _reduce(comp_sum_loss(logits, target, self.tau), self.reduction)


class SmoothAdvCompSumLoss(nn.Module):
    """Smooth adversarial comp-sum loss as a module; `forward(logits, target, adv_logits)`.

    Args:
        tau: comp-sum parameter or a registered name.
        nu: weight of the smooth term (>= 0).
        reduction: "mean" | "sum" | "none".
    """

    def __init__(self, tau: float | str = 1.0, nu: float = 1.0, reduction: str = "mean"):
        super().__init__()
        self.tau = float(COMP_SUM_TAUS.get(tau)) if isinstance(tau, str) else float(tau)
        self.nu = float(nu)
        self.reduction = reduction
        _check(self.tau, self.nu, reduction)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, adv_logits: torch.Tensor) -> torch.Tensor:
        return _reduce(smooth_adv_comp_sum_loss(logits, adv_logits, target, self.tau, self.nu), self.reduction)


def adversarial_inputs(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    target: torch.Tensor,
    gamma: float,
    steps: int = 10,
    step_size: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """x' maximising ||Delta_h(x') - Delta_h(x)||_2 over the L_inf ball of radius gamma, by PGD (detached).

    Args:
        model: maps inputs `(B, ...)` to logits `(B, K)`.
        x: clean inputs `(B, ...)`.
        target: class indices `(B,)`.
        gamma: L_inf radius.
        steps: ascent steps.
        step_size: per-step size (default 2.5 * gamma / steps).
        generator: RNG for the random start in the ball.

    Returns:
        Perturbed inputs with the shape of `x`.
    """
    step_size = 2.5 * gamma / steps if step_size is None else step_size
    with torch.no_grad():
        clean = score_differences(model(x), target)
    noise = torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1
    x_adv = (x + 1e-3 * gamma * noise).detach()  # random start: the smooth term has zero gradient at x' = x
    for _ in range(steps):
        x_adv.requires_grad_(True)
        gap = torch.linalg.vector_norm(score_differences(model(x_adv), target) - clean, dim=-1).sum()
        (grad,) = torch.autograd.grad(gap, x_adv)
        x_adv = (x + (x_adv.detach() + step_size * grad.sign() - x).clamp(-gamma, gamma)).detach()
    return x_adv


# ----------------------------------------------------------------------------------------------------------------


def _reduce(losses: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses


def _check(tau: float, nu: float, reduction: str) -> None:
    problems = []
    if tau < 0:
        problems.append(f"tau = {tau}: must be >= 0 (comp-sum family, Phi^tau); 1 is cross-entropy, 2 is MAE.")
    if nu < 0:
        problems.append(f"nu = {nu}: must be >= 0 (weight of the smooth adversarial term).")
    if reduction not in _REDUCTIONS:
        problems.append(f"reduction = {reduction!r}: must be one of {_REDUCTIONS}.")
    if problems:
        raise ConfigError(problems)
