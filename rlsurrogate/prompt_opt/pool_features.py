"""The scorer's view of a candidate pool: features standardised with pool statistics and reduced by PCA.

INSTINCT (METHODS.md §4.1 step 8) feeds the raw white-box hidden states h (576 values for the embedded 135M model)
to its network, standardised with the mean and std of the features observed so far. Here the whole pool is known
before the first query (every candidate's feature is computed up front), so its statistics are used instead:

    x(c) = P^T (h(c) - m) / s / r,     m, s = mean, std of h over the pool (per coordinate),
    P    = the first `dim` right singular vectors of the pool's standardised features (PCA),
    r    = the root mean variance of the kept components,

so the reduced features have mean 0 over the pool and unit variance on average per component, while the components
keep their relative scale (no whitening: the leading components stay the larger ones). The map depends only on the
pool, never on which candidates were observed or on their scores: the observed set, the order of the queries and
the scores leave every candidate's x unchanged.

Deviation from INSTINCT: pool instead of observed statistics, and the PCA (INSTINCT feeds all coordinates).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlsurrogate.errors import ConfigError

__all__ = ["PoolFeatureMap"]


class PoolFeatureMap:
    """Standardise-then-PCA map fitted on a pool's features `(N, hidden)`.

    Args:
        pool: `(N, hidden)` features of every candidate.
        dim: principal components kept (capped at min(N, hidden)); 0 keeps every standardised coordinate.

    Example:
        >>> pool = torch.randn(50, 576, dtype=torch.float64)
        >>> feature_map = PoolFeatureMap(pool, dim=16)
        >>> feature_map(pool).shape
        torch.Size([50, 16])
    """

    def __init__(self, pool: Tensor, dim: int = 32):
        H = torch.as_tensor(pool, dtype=torch.float64)
        if H.ndim != 2 or len(H) < 2 or not torch.isfinite(H).all():
            raise ConfigError(
                f"pool features of shape {tuple(H.shape)}: need (N, hidden) finite values with N >= 2 candidates."
            )
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
            raise ConfigError(f"feature dim = {dim!r}: must be an int >= 0 (0 keeps every coordinate).")
        self.mean, self.std = H.mean(0), H.std(0).clamp_min(1e-6)  # (hidden,) each
        S = (H - self.mean) / self.std  # (N, hidden)
        if dim == 0:
            self.components = None
            self.scale = 1.0
        else:
            _, sv, Vt = torch.linalg.svd(S, full_matrices=False)
            d = min(dim, len(sv))
            self.components = Vt[:d].T  # (hidden, d)
            variances = sv[:d] ** 2 / (len(H) - 1)  # (d,) variance of each kept component over the pool
            self.scale = float(variances.mean().sqrt().clamp_min(1e-12))
        self.dim = S.shape[1] if self.components is None else self.components.shape[1]

    def __call__(self, features: Tensor) -> Tensor:
        """`(n, hidden)` -> `(n, dim)` reduced features (a single `(hidden,)` row gives `(dim,)`)."""
        H = torch.as_tensor(features, dtype=torch.float64)
        S = (H - self.mean) / self.std
        return S / self.scale if self.components is None else S @ self.components / self.scale
