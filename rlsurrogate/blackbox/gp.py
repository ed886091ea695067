"""The GP surrogate of `bo.py`: BoTorch's `SingleTaskGP` fitted by MAP, and a fast posterior from cached factors.

`fit_gp` builds and fits the model (Rasmussen & Williams 2006, §2.2 and §5.4: the exact GP posterior, hyper-parameters
by maximising the marginal likelihood times their prior). Choices (see bo.py's notes for the A/B figures):
- `gp_prior="gamma"` (default): Matern-5/2 ARD kernel with an output scale, lengthscale prior Gamma(3, 6), outputscale
  prior Gamma(2, 0.15) (BoTorch's defaults before v0.12), noise >= `min_noise` with prior Gamma(1.1, 0.05). In a
  model with one-hot columns (a space with categoricals) the priors take the modes of Optuna's GPSampler: one-hot
  columns Gamma(3, sqrt 2) (mode sqrt 2: a change of category at kernel distance 1, GPSampler's prior mode on its
  Hamming distance), every other column Gamma(3, 2) (mode 1, GPSampler's mode on a unit-interval dim).
- `gp_prior="dim_scaled"`: BoTorch's current default model (Hvarfner et al. 2024).
- Hyper-parameters can be warm-started from the previous fit, so a refit takes a few L-BFGS-B iterations.

`CachedPosteriorGP` answers `posterior(X)` for a fitted model with plain tensor algebra on factors computed once
(R&W Eq. 2.25-2.26 with `K = L L^T`): `mu(x) = m + k(x)^T alpha` with `alpha = K^-1 (y - m)`, and
`sigma^2(x) = s^2 - |L^-1 k(x)|^2` with `L^-1` cached. Same numbers as GPyTorch's posterior (to ~1e-12, tested) at a
third of the cost per call at n = 100, which is what the acquisition optimiser pays ~100 times per proposal. It
returns the marginal Normal of each point, so it serves BoTorch's analytic acquisitions (LogEI, EI, UCB); joint
(q-batch, pending-point) acquisitions use the GPyTorch model.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from botorch.models.model import Model
from botorch.posteriors.torch import TorchPosterior
from torch import Tensor

__all__ = ["CachedPosteriorGP", "GP_PRIORS", "fit_gp", "fit_hyperparameters"]

GP_PRIORS = ("gamma", "dim_scaled")
# Smallest noise variance (standardised units) the GP may fit: keeps the kernel matrix positive definite when
# points repeat, while still letting the GP interpolate a noiseless function (Optuna uses the same floor).
MIN_NOISE = 1e-6
# Maximum number of L-BFGS-B iterations when refitting warm-started GP hyper-parameters.
FIT_MAXITER = 75
# Gamma(concentration, rate) prior of the lengthscale of a unit-cube column (continuous, integer or ordinal) in a model
# without one-hot columns: mode 1/3.
_LENGTHSCALE_PRIOR = (3.0, 6.0)
# Rate of the lengthscale prior of a one-hot column (same concentration): mode sqrt(2). A change of category moves two
# one-hot columns by 1, so this mode puts a category change at distance 1 in the kernel: the prior mode of Optuna's
# GPSampler on its Hamming distance (inverse squared lengthscale prior -(0.1/x + 0.1 x), mode x = 1). The unit-cube
# mode 1/3 put it at distance ~4.2, where the Matern correlation between choices is ~0.003 (see bo.py's notes).
_ONE_HOT_LENGTHSCALE_RATE = math.sqrt(2.0)
# Rate of the lengthscale prior of the other columns of a model with one-hot columns (same concentration): mode 1,
# GPSampler's prior mode on a unit-interval dim: fewer `mixed_tuning` runs stuck in a non-global optimizer /
# activation pair, while on Hartmann6 (no categoricals) mode 1 is far worse, so plain spaces keep 1/3 (bo.py's notes).
_MIXED_LENGTHSCALE_RATE = 2.0
# Squared distances are clamped to this before the square root, so the gradient at a training point stays finite.
_MIN_SQ_DIST = 1e-30


def fit_gp(
    U: Tensor,
    Y: Tensor,
    *,
    gp_prior: str = "gamma",
    min_noise: float = MIN_NOISE,
    warm_start: dict | None = None,
    maxiter: int = FIT_MAXITER,
    categorical_columns: Tensor | None = None,
) -> Any:
    """Fits a `SingleTaskGP` (float64, Standardize outcome transform) by MAP with L-BFGS-B.

    Args:
        U: `n x D` inputs in the unit cube (model features).
        Y: `n` outputs (maximisation convention).
        gp_prior: "gamma" (Matern-5/2 + scale, Gamma priors) or "dim_scaled" (BoTorch's current default model).
        min_noise: Lower bound of the noise variance in standardised units.
        warm_start: Hyper-parameters of a previous fit (`model.state_dict()`) to start from.
        maxiter: Cap on L-BFGS-B iterations; 0 keeps the `warm_start` hyper-parameters (the GP is only conditioned).
        categorical_columns: `D` booleans marking one-hot columns; if any is True, the lengthscale priors have their
            modes at sqrt(2) (one-hot columns) and 1 (the others) instead of 1/3 (`gp_prior="gamma"` only); None: no
            one-hot columns.

    Returns:
        The fitted model in eval mode.
    """
    from botorch.models import SingleTaskGP
    from gpytorch.constraints import GreaterThan
    from gpytorch.kernels import MaternKernel, ScaleKernel
    from gpytorch.likelihoods import GaussianLikelihood
    from gpytorch.priors import GammaPrior

    d = U.shape[-1]
    if gp_prior == "gamma":
        lengthscale_prior = GammaPrior(*_LENGTHSCALE_PRIOR)
        if categorical_columns is not None and bool(categorical_columns.any()):
            rate = torch.where(categorical_columns, _ONE_HOT_LENGTHSCALE_RATE, _MIXED_LENGTHSCALE_RATE).to(U)
            lengthscale_prior = GammaPrior(torch.full_like(rate, _LENGTHSCALE_PRIOR[0]), rate)
        covar = ScaleKernel(
            MaternKernel(nu=2.5, ard_num_dims=d, lengthscale_prior=lengthscale_prior),
            outputscale_prior=GammaPrior(2.0, 0.15),
        )
        likelihood = GaussianLikelihood(noise_prior=GammaPrior(1.1, 0.05), noise_constraint=GreaterThan(min_noise))
        model = SingleTaskGP(U, Y.unsqueeze(-1), covar_module=covar, likelihood=likelihood)
    else:
        model = SingleTaskGP(U, Y.unsqueeze(-1))
    if warm_start is not None:
        # The priors are fixed by the arguments, not by the state (older states hold scalar prior parameters).
        hyper = {k: v for k, v in warm_start.items() if not k.startswith("outcome_transform") and "prior" not in k}
        model.load_state_dict(hyper, strict=False)
    if maxiter > 0:
        fit_hyperparameters(model, maxiter=maxiter)
    return model.eval()


def fit_hyperparameters(model: Any, maxiter: int) -> None:
    """MAP-fits a GP's hyper-parameters in place with BoTorch's `fit_gpytorch_mll` (L-BFGS-B, retries).

    When every attempt fails (BoTorch's `ModelFittingError`, e.g. repeated line-search failures on near-duplicate
    points), the model keeps the hyper-parameters it started from (the warm start or the prior's defaults) and a
    warning says so: a usable posterior is worth more to the loop than a crash.
    """
    from botorch.exceptions.errors import ModelFittingError
    from botorch.fit import fit_gpytorch_mll
    from gpytorch.mlls import ExactMarginalLogLikelihood

    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": maxiter}})
    except ModelFittingError as err:
        warnings.warn(f"GP hyper-parameter fit failed ({err}); keeping the starting hyper-parameters.", stacklevel=2)


class CachedPosteriorGP(Model):
    """The posterior of a fitted `fit_gp` model from cached factors (a BoTorch `Model` for analytic acquisitions).

    Build it with `CachedPosteriorGP.from_model(model)`, which returns None for a model it does not mirror (another
    kernel, mean, likelihood or transform); use the model itself then.

    Args:
        Z: `n x D` training inputs, centred and divided by the lengthscales.
        centre: `D` training-input mean subtracted before scaling (as GPyTorch does, for accuracy).
        lengthscale: `D` ARD lengthscales.
        outputscale: Kernel variance `s^2` (1 for a kernel without an output scale).
        matern: True for Matern-5/2, False for RBF.
        alpha: `n` weights `K^-1 (y - m)` (standardised units).
        L_inv: `n x n` inverse Cholesky factor of `K + noise I`.
        mean_constant: Prior mean `m` (standardised units).
        y_mean, y_std: The outcome transform's mean and standard deviation.
    """

    def __init__(
        self,
        Z: Tensor,
        centre: Tensor,
        lengthscale: Tensor,
        outputscale: float,
        matern: bool,
        alpha: Tensor,
        L_inv: Tensor,
        mean_constant: float,
        y_mean: float,
        y_std: float,
    ):
        super().__init__()
        self.Z, self.centre, self.lengthscale, self.alpha, self.L_inv_T = Z, centre, lengthscale, alpha, L_inv.T
        self.Z_sq = (Z**2).sum(-1)  # n
        self.outputscale, self.matern, self.mean_constant = outputscale, matern, mean_constant
        self.y_mean, self.y_std = y_mean, y_std

    @classmethod
    def from_model(cls, model: Any) -> CachedPosteriorGP | None:
        """Caches the factors of a fitted `SingleTaskGP`; None if its structure is not the one mirrored here."""
        from botorch.models.transforms.outcome import Standardize
        from gpytorch.kernels import MaternKernel, RBFKernel, ScaleKernel
        from gpytorch.likelihoods import GaussianLikelihood
        from gpytorch.means import ConstantMean

        covar, outputscale = model.covar_module, 1.0
        if isinstance(covar, ScaleKernel):
            covar, outputscale = covar.base_kernel, float(covar.outputscale.detach())
        matern = isinstance(covar, MaternKernel) and covar.nu == 2.5
        plain = (
            (matern or type(covar) is RBFKernel)
            and covar.active_dims is None
            and type(model.mean_module) is ConstantMean
            and type(model.likelihood) is GaussianLikelihood
            and isinstance(getattr(model, "outcome_transform", None), Standardize)
            and getattr(model, "input_transform", None) is None
            and model.num_outputs == 1
        )
        if not plain:
            return None
        with torch.no_grad():
            X = model.train_inputs[0]  # n x D
            y = model.train_targets  # n, standardised
            lengthscale = covar.lengthscale.reshape(-1)  # D
            centre = X.mean(0)
            Z = (X - centre) / lengthscale
            K = _kernel(Z, Z, (Z**2).sum(-1), outputscale, matern)
            K = K + model.likelihood.noise.reshape(()) * torch.eye(X.shape[0], dtype=X.dtype)
            L, info = torch.linalg.cholesky_ex(K)
            if int(info) != 0:
                return None
            m = float(model.mean_module.constant)
            alpha = torch.cholesky_solve((y - m).unsqueeze(-1), L).squeeze(-1)
            L_inv = torch.linalg.solve_triangular(L, torch.eye(X.shape[0], dtype=X.dtype), upper=False)
            transform = model.outcome_transform
            y_mean, y_std = float(transform.means.reshape(())), float(transform.stdvs.reshape(()))
        return cls(Z, centre, lengthscale, outputscale, matern, alpha, L_inv, m, y_mean, y_std)

    @property
    def num_outputs(self) -> int:
        return 1

    def posterior(
        self, X: Tensor, output_indices: Any = None, observation_noise: Any = False, **kwargs: Any
    ) -> TorchPosterior:
        """Marginal posterior of `f` at `batch x q x D` points, as a `TorchPosterior` of `batch x q x 1` Normals."""
        if kwargs.get("posterior_transform") is not None or observation_noise is not False:
            raise NotImplementedError("CachedPosteriorGP serves noiseless single-output posteriors only.")
        mean, var = _Moments.apply(X.reshape(-1, X.shape[-1]), self)  # B, B for B = batch * q points
        mean = (self.mean_constant + mean) * self.y_std + self.y_mean
        std = var.clamp_min(1e-12).sqrt() * self.y_std
        shape = (*X.shape[:-1], 1)
        return TorchPosterior(torch.distributions.Normal(mean.reshape(shape), std.reshape(shape)))


class _Moments(torch.autograd.Function):
    """`B x D` points -> the posterior mean (without the prior mean) and variance, `B` each, standardised units.

    The backward pass is written out (R&W Eq. 2.25-2.26 differentiated through the kernel): with `sq` the scaled
    squared distance, Matern-5/2's `dk/dsq = -(5/6) s^2 (1 + r) exp(-r)`, finite at `r = 0`, and
    `d sq / d x = 2 (x - z) / lengthscale`. About half the cost of autograd through the same ops, which matters
    because the acquisition optimiser differentiates it ~100 times per ask.
    """

    @staticmethod
    def forward(ctx: Any, X: Tensor, gp: CachedPosteriorGP) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        Xs = (X - gp.centre) / gp.lengthscale  # B x D
        sq = ((Xs**2).sum(-1, keepdim=True) + gp.Z_sq - 2.0 * Xs @ gp.Z.T).clamp_min(_MIN_SQ_DIST)  # B x n
        if gp.matern:
            r = math.sqrt(5.0) * sq.sqrt()
            e = gp.outputscale * torch.exp(-r)
            k = (1.0 + r + r**2 / 3.0) * e  # B x n
            dk = -(5.0 / 6.0) * (1.0 + r) * e  # dk / dsq
        else:
            k = gp.outputscale * torch.exp(-0.5 * sq)
            dk = -0.5 * k
        v = k @ gp.L_inv_T  # B x n
        ctx.save_for_backward(Xs, dk, v)
        ctx.gp = gp
        return k @ gp.alpha, gp.outputscale - (v * v).sum(-1)

    @staticmethod
    def backward(ctx: Any, g_mean: Tensor, g_var: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        Xs, dk, v = ctx.saved_tensors
        gp = ctx.gp
        g_k = g_mean.unsqueeze(-1) * gp.alpha - 2.0 * g_var.unsqueeze(-1) * (v @ gp.L_inv_T.T)  # B x n
        h = g_k * dk  # dL / dsq, B x n
        g_Xs = 2.0 * (h.sum(-1, keepdim=True) * Xs - h @ gp.Z)  # B x D
        return g_Xs / gp.lengthscale, None


# ---------------------------------------------------------------------------------------------------------------------
def _kernel(A: Tensor, Z: Tensor, Z_sq: Tensor, outputscale: float, matern: bool) -> Tensor:
    """`... x m x D` and `n x D` scaled inputs -> `... x m x n` Matern-5/2 (or RBF) kernel values."""
    sq = ((A**2).sum(-1, keepdim=True) + Z_sq - 2.0 * A @ Z.T).clamp_min(_MIN_SQ_DIST)  # ... x m x n
    if not matern:
        return outputscale * torch.exp(-0.5 * sq)
    r = math.sqrt(5.0) * sq.sqrt()
    return outputscale * (1.0 + r + r**2 / 3.0) * torch.exp(-r)
