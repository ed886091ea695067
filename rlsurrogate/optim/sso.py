"""SSO: target-based surrogates for stochastic optimization.

Lavington, Vaswani, Babanezhad, Schmidt, Le Roux, "Target-based Surrogates for Stochastic Optimization", ICML 2023,
arXiv 2302.02607. Reference code: github.com/WilderLavington/Target-Based-Surrogates-For-Stochastic-Optimization
(`optimizers/sgd_fmdopt.py`, `optimizers/sls_fmdopt.py`, `optimizers/lsopt.py`, `loaders/load_optim.py`).

The loss is l(theta) = L(z(theta)) where z(theta) are *targets* (model outputs on a batch, e.g. logits): L is cheap
to differentiate in z, while the gradient dL/dz is the expensive part (a simulator, an environment, a large dataset).
Each outer step spends ONE expensive gradient G = dL/dz at z_t = z(theta_t) and then minimises the surrogate

    g_t(theta) = L(z_t) + <G, z(theta) - z_t> + ||z(theta) - z_t||^2 / (2 eta)                     (MM surrogate)

with m inner steps of a cheap optimiser (Armijo SGD by default, Adam, plain GD). The surrogate's minimiser in target
space is the target step z_t - eta G, so the inner loop projects that step onto the model's range. If L is
(1/eta)-smooth in z, g_t(theta) >= l(theta) for all theta with equality at theta_t: full-batch SSO is then a
majorisation-minimisation method. As in the code, the inner loop minimises the rescaled surrogate
S(theta) = (2 eta / numel(z)) (g_t(theta) - L(z_t)), which has the same minimiser and keeps the inner step sizes
independent of the batch size. With m = 1 and plain GD of step alpha, theta_t+1 = theta_t - alpha (2 eta / numel(z))
J^T G (the proximity term has zero gradient at theta_t): an SGD step of size alpha * 2 eta / numel(z) on l.

Variants:
- inner optimisers: "armijo" (code `LSOpt`: step reset to `inner_lr` = 10 each outer step, backtrack by 0.9 until
  S(theta - s grad) <= S(theta) - c s ||grad||^2 with c = 0.1, multiply s by `armijo_expand` after each accepted
  step, stop when ||grad S|| <= 1e-6), "adam" (fresh Adam state each outer step: `AdamCM` with `buffer_size=0`,
  i.e. plain Adam), "gd".
- target-space line search (code `SLS_FMDOpt`): start from eta * expand (expand = 2), shrink eta by 0.9 until
  L(z_t - eta G) <= L(z_t) - c_out eta ||G||^2, clamp eta to [1e-4, 1e4]; the accepted eta is kept for the next
  outer step. c_out = 0.5 as in the ICML configs (the parser default 0.1 let eta grow to hundreds on our noisy
  logistic test and diverge).
- full-batch MM (`majorize_minimize=True`): after the inner loop, check l(theta_t+1) <= l(theta_t) (one loss
  evaluation, no gradient); if the majorisation failed (eta > 1/smoothness), restore theta_t, halve eta and redo.

Deviations from the reference code:
- We parameterise by the target step size eta of g_t. The code minimises mean[G z(theta) / eta_c + (z(theta) -
  z_t)^2] with G from a sum-reduced loss; that is S above with eta = 1 / (2 eta_c), i.e. the code's `stepsize`
  (= 1/eta_c) is twice our eta. Its "optimal" step sizes (1/4 MSE, 2 logistic, 1/(1 - 1/K) CE, for
  sum-reduced L) correspond to eta = 1/8, 1, 1/(2 (1 - 1/K)). Pass L with `reduction="sum"` to use these.
- The code multiplies the inner Armijo step by 2^(1/batches_per_epoch) after each accepted step; we expose the
  factor (`armijo_expand`, default 1.0, i.e. no growth within the m steps, since the step is reset every outer step).
- Backtracking is capped at `max_backtracks` (100) evaluations; the code loops until acceptance.
- The MM safeguard (restore and halve eta) is ours; the code's full-batch runs rely on eta <= 1/smoothness.
- Outer step-size schedules of the code ("stochastic" eta sqrt(t), exponential) are not implemented.
- The Bregman (mirror-descent, `MD_FMDOpt`) surrogate and the diagonal-Adagrad variants are not implemented.

Counters in `SSO.counts`: `grad_calls` (expensive dL/dz evaluations, one per outer step), `loss_evals` (extra L
evaluations for the target line search and the MM check), `target_evals` (forward passes z(theta)).

Checked: majorisation and the m = 1 / SGD identity on toy problems (tests); paper figures not reproduced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from rlsurrogate.errors import ConfigError
from rlsurrogate.optim.adam_cm import AdamCM

__all__ = ["SSO", "target_armijo_step_size", "target_step", "target_surrogate"]

# Code defaults (parser.py / lsopt.py), see the module docstring.
_INNER_OPTIMIZERS = ("armijo", "adam", "gd")
_ETA_BOUNDS = (1e-4, 1e4)  # clamp of the target-space line search (sls_fmdopt.py)
_MM_RETRIES = 20  # halvings of eta before the MM safeguard gives up and keeps the step


def target_surrogate(
    z: torch.Tensor, z_t: torch.Tensor, grad_t: torch.Tensor, loss_t: torch.Tensor, eta: float
) -> torch.Tensor:
    """g_t at targets z: L(z_t) + <G, z - z_t> + ||z - z_t||^2 / (2 eta).

    Args:
        z: targets z(theta), any shape, e.g. `(B, K)` logits.
        z_t: anchor targets z(theta_t), same shape, detached.
        grad_t: G = dL/dz at z_t, same shape, detached.
        loss_t: L(z_t), scalar.
        eta: target step size (> 0).

    Returns:
        Scalar surrogate value; equals L(z_t) at z = z_t and upper-bounds L(z) when L is (1/eta)-smooth.
    """
    diff = z - z_t
    return loss_t + (grad_t * diff).sum() + diff.pow(2).sum() / (2 * eta)


def target_step(z_t: torch.Tensor, grad_t: torch.Tensor, eta: float) -> torch.Tensor:
    """Minimiser of g_t in target space: z_t - eta G."""
    return z_t - eta * grad_t


def target_armijo_step_size(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    z_t: torch.Tensor,
    grad_t: torch.Tensor,
    loss_t: torch.Tensor,
    eta0: float,
    c: float = 0.1,
    beta: float = 0.9,
    bounds: tuple[float, float] = _ETA_BOUNDS,
    max_backtracks: int = 100,
) -> tuple[float, int]:
    """Armijo search for eta in target space (code `SLS_FMDOpt`).

    Shrinks eta by `beta` until L(z_t - eta G) <= L(z_t) - c eta ||G||^2.

    Returns:
        (accepted eta clamped to `bounds`, number of loss evaluations).
    """
    eta = min(max(eta0, bounds[0]), bounds[1])
    gnorm2 = float(grad_t.pow(2).sum())
    n = 0
    with torch.no_grad():
        for _ in range(max_backtracks):
            n += 1
            if float(loss_fn(target_step(z_t, grad_t, eta))) <= float(loss_t) - c * eta * gnorm2:
                break
            eta *= beta
            if eta <= bounds[0]:
                return bounds[0], n
    return eta, n


class SSO(torch.optim.Optimizer):
    """Stochastic surrogate optimisation (Lavington et al., ICML 2023) as a torch optimizer wrapper.

    `step(targets, loss_fn)` takes a closure `targets()` returning z(theta) for the current batch (with autograd
    graph) and `loss_fn(z)` returning the scalar L(z); it makes one expensive gradient call and m inner steps.

    Args:
        params: the model parameters theta.
        target_lr: eta, the target-space step size (the MM bound needs eta <= 1/smoothness of L in z).
        inner_steps: m, inner optimiser steps per outer step (code default 5).
        inner_optimizer: "armijo" (code default), "adam" or "gd".
        inner_lr: initial Armijo step (code 10), or the Adam / GD learning rate.
        armijo_c: Armijo constant of the inner search (code `--c` 0.1).
        armijo_beta: inner backtracking factor (code 0.9).
        armijo_expand: inner step growth after an accepted step (code 2^(1/batches_per_epoch)).
        inner_tol: stop the inner loop when ||grad g_t|| <= tol (code 1e-6).
        max_backtracks: cap on backtracking evaluations per search.
        target_line_search: choose eta by the target-space Armijo search (SLS variant).
        outer_c: Armijo constant of the target-space search (0.5 as in the ICML configs; parser default 0.1).
        outer_expand: factor eta is grown by before each target-space search (code `expand_coeff` 2.0).
        majorize_minimize: full-batch MM safeguard (see the module docstring).

    Example:
        >>> model = torch.nn.Linear(3, 1)
        >>> X, y = torch.randn(8, 3), torch.randint(0, 2, (8, 1)).float()
        >>> opt = SSO(model.parameters(), target_lr=1.0, inner_steps=5)
        >>> bce = torch.nn.BCEWithLogitsLoss(reduction="sum")
        >>> loss = opt.step(lambda: model(X), lambda z: bce(z, y))
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        target_lr: float = 1.0,
        inner_steps: int = 5,
        inner_optimizer: str = "armijo",
        inner_lr: float = 10.0,
        armijo_c: float = 0.1,
        armijo_beta: float = 0.9,
        armijo_expand: float = 1.0,
        inner_tol: float = 1e-6,
        max_backtracks: int = 100,
        target_line_search: bool = False,
        outer_c: float = 0.5,
        outer_expand: float = 2.0,
        majorize_minimize: bool = False,
    ):
        problems = []
        if target_lr <= 0:
            problems.append(f"target_lr = {target_lr}: must be > 0 (eta in g_t); logistic loss with sum reduction: 1.")
        if inner_steps < 1:
            problems.append(f"inner_steps = {inner_steps}: must be >= 1 (m); the code default is 5.")
        if inner_optimizer not in _INNER_OPTIMIZERS:
            problems.append(f"inner_optimizer = {inner_optimizer!r}: must be one of {_INNER_OPTIMIZERS}.")
        if inner_lr <= 0:
            problems.append(f"inner_lr = {inner_lr}: must be > 0; the code starts Armijo at 10.")
        if not 0 < armijo_beta < 1:
            problems.append(f"armijo_beta = {armijo_beta}: must be in (0, 1); the code uses 0.9.")
        if problems:
            raise ConfigError(problems, header="invalid SSO arguments:")
        defaults = dict(target_lr=target_lr)
        super().__init__(params, defaults)
        self.eta = float(target_lr)
        self.inner_steps = int(inner_steps)
        self.inner_optimizer = inner_optimizer
        self.inner_lr = float(inner_lr)
        self.armijo_c, self.armijo_beta, self.armijo_expand = armijo_c, armijo_beta, armijo_expand
        self.inner_tol, self.max_backtracks = inner_tol, int(max_backtracks)
        self.target_line_search = target_line_search
        self.outer_c = outer_c
        self.outer_expand = outer_expand
        self.majorize_minimize = majorize_minimize
        self.counts = {"grad_calls": 0, "loss_evals": 0, "target_evals": 0}

    def step(  # type: ignore[override]
        self, targets: Callable[[], torch.Tensor], loss_fn: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """One outer SSO step on the batch behind `targets`; returns L(z_t) at the anchor (detached)."""
        params = [p for group in self.param_groups for p in group["params"] if p.requires_grad]
        with torch.no_grad():
            z_t = targets().detach()
        self.counts["target_evals"] += 1
        with torch.enable_grad():
            z_var = z_t.clone().requires_grad_(True)
            loss_t = loss_fn(z_var)
            (grad_t,) = torch.autograd.grad(loss_t, z_var)
        loss_t = loss_t.detach()
        self.counts["grad_calls"] += 1

        if self.target_line_search:
            self.eta, n = target_armijo_step_size(
                loss_fn, z_t, grad_t, loss_t, self.eta * self.outer_expand, self.outer_c, max_backtracks=100
            )
            self.counts["loss_evals"] += n

        anchor = [p.detach().clone() for p in params]
        for _ in range(_MM_RETRIES if self.majorize_minimize else 1):
            self._minimise_surrogate(params, targets, z_t, grad_t, loss_t)
            if not self.majorize_minimize:
                break
            with torch.no_grad():
                new_loss = loss_fn(targets())
            self.counts["loss_evals"] += 1
            self.counts["target_evals"] += 1
            if float(new_loss) <= float(loss_t):
                break
            with torch.no_grad():  # majorisation failed: eta exceeds 1/smoothness; restore and halve
                for p, a in zip(params, anchor):
                    p.copy_(a)
            self.eta /= 2
        for group in self.param_groups:
            group["target_lr"] = self.eta
        return loss_t

    def _minimise_surrogate(
        self,
        params: list[torch.Tensor],
        targets: Callable[[], torch.Tensor],
        z_t: torch.Tensor,
        grad_t: torch.Tensor,
        loss_t: torch.Tensor,
    ) -> None:
        scale = 2 * self.eta / z_t.numel()  # the code's scaling of g_t, see the module docstring

        def surrogate() -> torch.Tensor:
            self.counts["target_evals"] += 1
            return scale * (target_surrogate(targets(), z_t, grad_t, loss_t, self.eta) - loss_t)

        with torch.enable_grad():
            if self.inner_optimizer == "armijo":
                _armijo_sgd(
                    surrogate,
                    params,
                    self.inner_steps,
                    self.inner_lr,
                    self.armijo_c,
                    self.armijo_beta,
                    self.armijo_expand,
                    self.inner_tol,
                    self.max_backtracks,
                )
            elif self.inner_optimizer == "adam":
                _adam(surrogate, params, self.inner_steps, self.inner_lr)
            else:
                _gd(surrogate, params, self.inner_steps, self.inner_lr)


# ----------------------------------------------------------------------------------------------------------------


def _gd(surrogate: Callable[[], torch.Tensor], params: list[torch.Tensor], steps: int, lr: float) -> None:
    for _ in range(steps):
        grads = torch.autograd.grad(surrogate(), params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(lr * g)


def _adam(surrogate: Callable[[], torch.Tensor], params: list[torch.Tensor], steps: int, lr: float) -> None:
    opt = AdamCM(params, lr=lr, buffer_size=0)  # plain Adam: the same update as torch.optim.Adam, bit for bit on CPU
    for _ in range(steps):
        grads = torch.autograd.grad(surrogate(), params)
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
    for p in params:
        p.grad = None


def _armijo_sgd(
    surrogate: Callable[[], torch.Tensor],
    params: list[torch.Tensor],
    steps: int,
    lr: float,
    c: float,
    beta: float,
    expand: float,
    tol: float,
    max_bt: int,
) -> None:
    s = lr  # reset at every outer step (code reset_lr_on_step=1)
    for _ in range(steps):
        value = surrogate()
        grads = torch.autograd.grad(value, params)
        gnorm2 = float(sum(g.pow(2).sum() for g in grads))
        if gnorm2**0.5 <= tol:
            return
        start = [p.detach().clone() for p in params]
        with torch.no_grad():
            for _ in range(max_bt):
                for p, p0, g in zip(params, start, grads):
                    p.copy_(p0 - s * g)
                if float(surrogate()) <= float(value) - c * s * gnorm2:
                    break
                s *= beta
            else:  # no acceptable step within the cap: stay at the last accepted point
                for p, p0 in zip(params, start):
                    p.copy_(p0)
                return
        s *= expand
