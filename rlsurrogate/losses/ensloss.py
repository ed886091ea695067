"""EnsLoss: stochastic calibrated loss ensembles for binary classification.

Ben Dai, "EnsLoss: Stochastic Calibrated Loss Ensembles for Preventing Overfitting in Classification", ICML 2025.
Reference code: github.com/statmlben/ensLoss (`losses.py` class `ensLoss`, `train.py`).

For binary ERM on margins z = y f(x), y in {-1, +1}, a convex loss phi is classification-calibrated iff phi'(0) < 0
(Bartlett, Jordan, McAuliffe 2006). SGD only sees phi', so each mini-batch draws a fresh random *calibrated
loss-derivative*: negative everywhere and non-decreasing in z (a convex loss on the batch). Per batch of size B:

    y <- 2y - 1 ; z_i = f_i y_i
    e_j ~ N(0, 1);  d_j = -BoxCoxInverse_lambda(e_j)   (lambda = 0: exp(e_j); else max(1 + lambda e_j, 0)^(1/lambda))
    sort d ascending, clip d <- max(d, -1)             (so d in [-1, 0]; with lambda = 0 about half are exactly -1)
    give the k-th smallest d to the example with the k-th smallest z  (derivative non-decreasing in z)
    z_i > 1:  d_i <- d_i / z_i                         (faster-decaying tail for confident examples)
    d_i <- stopgrad(d_i) - 1e-6                        (strictly negative)
    loss = mean_i d_i z_i                              (so d loss / d f_i = d_i y_i / B, i.e. phi'(z_i) = d_i)

The value of the loss is not meaningful for monitoring (it changes with every draw); report BCE or accuracy instead.

Deviations from the reference code:
- Randomness comes from an explicit `torch.Generator` (the code uses the global torch RNG).
- The unused Exponential(1) `dist` constructor argument of the code is not kept.
- `reduction` ("mean" as in the code, "sum", "none") is added for use as a torch loss module.
- The code's optional redraw lambda ~ U(-1, 1) every `period` epochs (off by default) is `EnsLoss.redraw_lambda`,
  called by the training loop.
- Tie handling in the sort follows `torch.sort` (stable), which the code does not specify.

Checked against: the properties of the paper/code listed above (tests); CIFAR/OpenML results not reproduced.
"""

from __future__ import annotations

import torch
from torch import nn

from rlsurrogate.errors import ConfigError

__all__ = ["EnsLoss", "calibrated_derivatives"]

# Keeps every derivative strictly negative (code constant), so phi'(0) < 0 even where the draw gave exactly 0.
_NEGATIVE_OFFSET = 1e-6

_REDUCTIONS = ("mean", "sum", "none")


def calibrated_derivatives(
    z: torch.Tensor, lam: float = 0.0, generator: torch.Generator | None = None, tail_scaling: bool = True
) -> torch.Tensor:
    """Random calibrated loss-derivatives phi'(z_i) for one batch of margins (EnsLoss, code `ensLoss.forward`).

    Args:
        z: margins y f(x), `(B,)`; only their order (and which exceed 1) matters.
        lam: Box-Cox parameter of the derivative magnitudes (0 = log-normal, code default).
        generator: RNG for the normal draws.
        tail_scaling: divide d by z where z > 1 (code behaviour); False returns the clipped sorted draw.

    Returns:
        `(B,)` derivatives, detached, all in [-1 - 1e-6, -1e-6].
    """
    z = z.detach()
    e = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)  # (B,)
    if lam == 0.0:
        magnitude = torch.exp(e)
    else:
        magnitude = torch.clamp(1 + lam * e, min=0.0) ** (1.0 / lam)
    d_sorted = torch.clamp(torch.sort(-magnitude).values, min=-1.0)  # (B,) ascending, in [-1, 0]
    d = torch.empty_like(d_sorted)
    d[torch.argsort(z, stable=True)] = d_sorted  # smallest margin gets the most negative derivative
    if tail_scaling:
        d = torch.where(z > 1, d / z.clamp(min=1.0), d)
    return d - _NEGATIVE_OFFSET


class EnsLoss(nn.Module):
    """EnsLoss for binary classification: a fresh random calibrated loss-derivative per forward call.

    Args:
        lam: Box-Cox parameter (code default 0.0).
        reduction: "mean" (code) | "sum" | "none".
        generator: RNG for the derivative draws; a seeded one makes training reproducible.

    Example:
        >>> loss_fn = EnsLoss(generator=torch.Generator().manual_seed(0))
        >>> loss = loss_fn(torch.randn(8, requires_grad=True), torch.randint(0, 2, (8,)))
        >>> loss.backward()
    """

    def __init__(self, lam: float = 0.0, reduction: str = "mean", generator: torch.Generator | None = None):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ConfigError(f"EnsLoss reduction = {reduction!r}: must be one of {_REDUCTIONS}; the code uses mean.")
        self.lam = float(lam)
        self.reduction = reduction
        self.generator = generator

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Args: logits f(x) `(B,)` or `(B, 1)`; target labels in {0, 1} `(B,)`. Returns the reduced d * z."""
        f = logits.reshape(-1)  # (B,)
        y = 2 * target.reshape(-1).to(f.dtype) - 1  # (B,) in {-1, +1}
        z = f * y
        d = calibrated_derivatives(z, self.lam, self.generator)
        losses = d * z  # d is a constant: the gradient w.r.t. f_i is d_i y_i
        if self.reduction == "mean":
            return losses.mean()
        if self.reduction == "sum":
            return losses.sum()
        return losses

    def redraw_lambda(self, generator: torch.Generator | None = None) -> float:
        """Draws lambda ~ U(-1, 1) (the code's optional per-`period`-epoch redraw) and returns it."""
        self.lam = float(torch.rand((), generator=generator or self.generator, dtype=torch.float64) * 2 - 1)
        return self.lam
