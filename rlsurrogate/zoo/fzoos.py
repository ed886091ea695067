"""FZooS: federated zeroth-order optimisation with trajectory-informed surrogate gradients, and the FedZO baseline.

Shu, Lin, Dai, Low, "Federated Zeroth-Order Optimization using Trajectory-Informed Surrogate Gradients",
arXiv 2308.04077. Reference code: github.com/shuyao95/FZooS (`optimizers.py` `fzoos_opt`, `RFFGP`; `settings.py`;
`run_exp.py`).

Problem: min_{x in [0,1]^d} F(x) = (1/N) sum_i f_i(x); client i can only query its black box f_i. Rounds r = 1..R
of T local iterations each; after a round the server averages the local iterates.

Local gradient surrogate (derived GP, paper Section 4.1). From a client's query history D = {(x_tau, y_tau)}:

    grad mu(x)     = d_x k(x, X)^T (K + sigma^2 I)^{-1} y
    Sigma_grad(x)  = d_x d_x' k(x, x) - d_x k(x, X)^T (K + sigma^2 I)^{-1} d_x' k(X, x)

grad mu is the gradient estimate (no extra queries); trace Sigma_grad picks the active queries.

Global surrogate (Section 4.2.1): random Fourier features shared by all clients,
phi(x)_j = sqrt(2/M) cos(v_j^T x + b_j), v_j ~ N(0, l^-2 I), b_j ~ U[0, 2 pi]. Client i fits ridge weights
w_i = Phi^T (Phi Phi^T + sigma^2 I)^{-1} y on its history and sends them; the surrogate gradient is
grad mu_hat(x) = -sqrt(2/M) sum_j w_j sin(v_j^T x + b_j) v_j. The server averages the weights (= averaging the
surrogates, by linearity) and broadcasts them.

Adaptive gradient correction (Section 4.2.2), at the current local iterate x:

    g = grad mu_i(x) + gamma_t (grad mu_hat_global(x) - grad mu_hat_i(x)),   gamma_t = 1 / (t + 1) (code choice)

FedZO baseline (paper eq. "general-grad-est" with gamma = 0): the finite-difference estimator
(1/Q) sum_q (y(x + lambda u_q) - y(x)) / lambda * u_q with Q = 20 directions, lambda = 0.01.

Per round, as in the reference code: local Adam steps (lr 0.01; optax's defaults b1 0.9, b2 0.999, eps 1e-8; state
fresh per local run; rlsurrogate's one Adam, `AdamCM` with `buffer_size=0`) on the estimated gradient; after each
local step but the last, 5 active queries chosen from 100 candidates in x +- 0.01 by largest trace Sigma_grad; the
server sets x <- x - eta sum_i (x - x_i) / N (eta = 1); each client then queries the 50 most uncertain of 200 points
in x +- r_i (r_i = mean |x - x_i| / 2) and fits its RFF weights on the <= 500 history points nearest x.

Deviations from the reference code:
- Kernel: squared exponential for the GP (the code fits a Matern-5/2 with 20 restarts for the mean and uses an RBF
  for the variance); its lengthscale is picked by maximum marginal likelihood over a grid (no restarts), targets are
  standardised (the code min-max normalises).
- grad mu is analytic; the code takes finite differences with epsilon = 1e-20, below float64 resolution.
- RFF weights use ridge sigma^2 = 1e-6 (the code's alpha = 0 interpolates and is ill-conditioned) and the weights
  are sent already scaled to y units (the code sends them with the y range and the server multiplies).
- The code's server safeguard that queries F and keeps the old x when F did not decrease is not in the paper and
  is off by default (`server_safeguard`); when on, its N queries are counted.
- FedZO directions are orthonormalised Gaussian blocks scaled by sqrt(d), so the estimator is unbiased for Q = d.
- Default `n_features` is 10,000 as in the code; benchmarks on CPU use fewer.

Why `DerivedGP` is not BoTorch's GP (measured with `scripts/bench_small_tasks.py`'s federated section, d = 10,
N = 5, 8 rounds x 10 local steps, 3 seeds, on the 2-core development CPU): a `SingleTaskGP` with an RBF kernel, fixed
noise and zero mean, its gradients and gradient covariance taken by autograd through GPyTorch's kernel, agrees with
`DerivedGP` to 1e-7 and reaches the target after the same queries (3200, 3200, 2675), with the same lengthscale grid
scored by GPyTorch's marginal likelihood (final gap 0.0010, as ours) or with the lengthscale fitted by BoTorch's
`fit_gpytorch_mll` (final gap 0.0009). But FZooS refits its GP at every local step (1,320 fits in that run) and
needs the gradient covariance at 100 candidates per step, so the section (FedZO included) took 71 s (grid) and
86 s (fitted) instead of 8.9 s: 8-16 ms per fit instead of 1.8 ms, and 45-60 ms per covariance instead of 7 ms.
The closed forms are a few lines for the squared-exponential kernel; the tests check the mean's gradient against
finite differences and the covariance for positive semi-definiteness and shrinkage near a new query.

Counters: `FederatedResult` reports per round the server iterate, F at it (an oracle value for plotting, not a
query), cumulative client queries and communication (messages and floats sent both ways).

Checked: surrogate-gradient properties of Section 6.7 of our spec on toy functions (tests); paper experiments not
reproduced.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from rlsurrogate.errors import ConfigError
from rlsurrogate.optim.adam_cm import AdamCM

__all__ = [
    "DerivedGP",
    "FZooS",
    "FZooSConfig",
    "FedZO",
    "FedZOConfig",
    "FederatedResult",
    "RFFSurrogate",
    "finite_difference_gradient",
    "make_quadratic_clients",
]

Objective = Callable[[torch.Tensor], float]

# Lengthscale candidates (in units of the unit cube) for the marginal-likelihood grid search.
_LENGTHSCALE_GRID = torch.logspace(-2, 1, 10, dtype=torch.float64)
_JITTER = 1e-8  # added to the GP diagonal so the Cholesky factor exists for near-duplicate queries


@dataclass
class FZooSConfig:
    rounds: int = field(default=50, metadata={"help": "R communication rounds (run_exp.py default 50)."})
    local_iters: int = field(default=30, metadata={"help": "T local iterations per round (run_exp.py 30; README 10)."})
    lr: float = field(default=0.01, metadata={"help": "Local Adam learning rate (run_exp.py 0.01)."})
    server_lr: float = field(default=1.0, metadata={"help": "Server step eta; 1 = plain averaging (run_exp.py)."})
    n_inits: int = field(default=10, metadata={"help": "Initial queries per client in x0 +- init_radius (code 10)."})
    init_radius: float = field(default=0.01, metadata={"help": "Half-width of the initial query box (code 0.01)."})
    n_candidates: int = field(default=100, metadata={"help": "Candidates per active-query step (code 100)."})
    n_active: int = field(default=5, metadata={"help": "Active queries per local step, most uncertain (code 5)."})
    active_radius: float = field(default=0.01, metadata={"help": "Half-width of the active candidate box (code)."})
    n_round_candidates: int = field(default=200, metadata={"help": "Candidates for the round-end queries (code)."})
    n_round_queries: int = field(default=50, metadata={"help": "Round-end queries for the RFF fit (code 50)."})
    gp_max_points: int = field(default=150, metadata={"help": "History points nearest x used by the GP (code)."})
    rff_max_points: int = field(default=500, metadata={"help": "History points nearest x used by the RFF fit."})
    n_features: int = field(default=10_000, metadata={"help": "M random Fourier features (code 10,000)."})
    rff_lengthscale: float = field(default=1.0, metadata={"help": "Shared RFF lengthscale l (code 1.0)."})
    noise: float = field(default=1e-6, metadata={"help": "sigma^2 on standardised y for GP and RFF (code 1e-6)."})
    gamma: float | None = field(
        default=None, metadata={"help": "Correction length; None = 1/(t+1) per local step (code), 0 = no correction."}
    )
    server_safeguard: bool = field(default=False, metadata={"help": "Code-only check F(new) < F(old); N queries."})
    seed: int = field(default=0, metadata={"help": "Seed of the shared features and all query draws."})

    def __post_init__(self) -> None:
        problems = _positive(self, ["rounds", "local_iters", "n_inits", "n_candidates", "n_features", "gp_max_points"])
        problems += _positive(self, ["lr", "server_lr", "init_radius", "active_radius", "rff_lengthscale", "noise"])
        if self.n_active > self.n_candidates or self.n_round_queries > self.n_round_candidates:
            problems.append("fzoos: n_active <= n_candidates and n_round_queries <= n_round_candidates are required.")
        if self.gamma is not None and self.gamma < 0:
            problems.append(f"fzoos.gamma = {self.gamma}: must be >= 0 or None (1/(t+1), code default).")
        if problems:
            raise ConfigError(problems)


@dataclass
class FedZOConfig:
    rounds: int = field(default=50, metadata={"help": "R communication rounds (FZooS run_exp.py default 50)."})
    local_iters: int = field(default=30, metadata={"help": "T local iterations per round (run_exp.py 30)."})
    lr: float = field(default=0.01, metadata={"help": "Local Adam learning rate (run_exp.py 0.01)."})
    server_lr: float = field(default=1.0, metadata={"help": "Server step eta; 1 = plain averaging."})
    n_directions: int = field(default=20, metadata={"help": "Q finite-difference directions (run_exp.py 20)."})
    mu: float = field(default=0.01, metadata={"help": "Finite-difference step lambda (run_exp.py mu = 0.01)."})
    seed: int = field(default=0, metadata={"help": "Seed of the direction draws."})

    def __post_init__(self) -> None:
        problems = _positive(self, ["rounds", "local_iters", "lr", "server_lr", "n_directions", "mu"])
        if problems:
            raise ConfigError(problems)


@dataclass
class FederatedResult:
    """Per-round trace of a federated run (index 0 is the start, before any round)."""

    x: list[torch.Tensor]
    F: list[float]
    queries: list[int]
    messages: list[int]
    floats_sent: list[int]

    def queries_to_reach(self, value: float) -> int | None:
        """Cumulative client queries when F first dropped to `value` or below (None if never)."""
        return next((q for f, q in zip(self.F, self.queries) if f <= value), None)


# ------------------------------------------------------------------------------------------------ pure functions


class DerivedGP:
    """Exact GP (squared-exponential kernel) with the analytic gradient of its mean and the gradient covariance.

    Our own rather than BoTorch's GP for speed, with the same results (see "Why `DerivedGP` is not BoTorch's GP").

    Args:
        X: inputs `(n, d)`.
        y: outputs `(n,)`; standardised internally.
        noise: sigma^2 on the standardised scale.
        lengthscale: fixed lengthscale; None picks it from a grid by marginal likelihood.
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, noise: float = 1e-6, lengthscale: float | None = None):
        self.X = X.to(torch.float64)
        y = y.to(torch.float64)
        self.y_mean, self.y_std = y.mean(), y.std().clamp(min=1e-12) if len(y) > 1 else torch.tensor(1.0)
        self.noise = noise
        y_std = (y - self.y_mean) / self.y_std  # (n,)
        grid = _LENGTHSCALE_GRID if lengthscale is None else torch.tensor([lengthscale], dtype=torch.float64)
        best = None
        sqdist = torch.cdist(self.X, self.X).pow(2)  # (n, n), shared by every grid point
        eye = torch.eye(len(y_std), dtype=torch.float64)
        for ls in grid.tolist():
            K = torch.exp(-0.5 * sqdist / ls**2) + (noise + _JITTER) * eye
            L, info = torch.linalg.cholesky_ex(K)
            if info != 0:
                continue
            alpha = torch.cholesky_solve(y_std[:, None], L).squeeze(-1)  # (n,)
            mll = -0.5 * (y_std @ alpha) - torch.log(torch.diagonal(L)).sum()
            if best is None or mll > best[0]:
                best = (mll, ls, L, alpha)
        if best is None:
            raise ConfigError("DerivedGP: no lengthscale gave a positive-definite kernel matrix; add noise.")
        _, self.lengthscale, self.L, self.alpha = best

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean in y units at `(q, d)` points, `(q,)`."""
        return self.y_mean + self.y_std * (_se(x, self.X, self.lengthscale) @ self.alpha)

    def grad_mean(self, x: torch.Tensor) -> torch.Tensor:
        """Analytic gradient of the posterior mean, `(q, d)` (y units)."""
        A = self._dk(x)  # (q, n, d)
        return self.y_std * torch.einsum("qnd,n->qd", A, self.alpha)

    def grad_cov(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior covariance of the gradient at each point, Sigma_grad(x, x), `(q, d, d)` (y units squared)."""
        A = self._dk(x)  # (q, n, d)
        q, n, d = A.shape
        sol = torch.cholesky_solve(A.permute(1, 0, 2).reshape(n, q * d), self.L).reshape(n, q, d).permute(1, 0, 2)
        prior = torch.eye(d, dtype=torch.float64) / self.lengthscale**2
        return self.y_std**2 * (prior - A.transpose(1, 2) @ sol)

    def _dk(self, x: torch.Tensor) -> torch.Tensor:
        diff = x.to(torch.float64)[:, None, :] - self.X[None]  # (q, n, d)
        k = torch.exp(-0.5 * diff.pow(2).sum(-1) / self.lengthscale**2)  # (q, n)
        return -diff / self.lengthscale**2 * k[..., None]


class RFFSurrogate:
    """Random Fourier features shared by all clients (same seed => same features), with ridge fit and gradient.

    Args:
        d: input dimension.
        n_features: M.
        lengthscale: l of the squared-exponential kernel the features approximate.
        seed: seed of V and b; clients and server must use the same one.
    """

    def __init__(self, d: int, n_features: int, lengthscale: float = 1.0, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.V = torch.randn(n_features, d, generator=g, dtype=torch.float64) / lengthscale  # (M, d)
        self.b = 2 * math.pi * torch.rand(n_features, generator=g, dtype=torch.float64)  # (M,)
        self.scale = math.sqrt(2.0 / n_features)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x), `(q, M)`."""
        return self.scale * torch.cos(x.to(torch.float64) @ self.V.T + self.b)

    def fit(self, X: torch.Tensor, y: torch.Tensor, noise: float = 1e-6) -> torch.Tensor:
        """Ridge weights w = Phi^T (Phi Phi^T + noise I)^{-1} (y - mean y), `(M,)`, in y units."""
        Phi = self.features(X)  # (n, M)
        gram = Phi @ Phi.T + noise * torch.eye(len(y), dtype=torch.float64)
        return Phi.T @ torch.linalg.solve(gram, (y - y.mean()).to(torch.float64))

    def value(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """phi(x)^T w, `(q,)` (up to the dropped constant mean)."""
        return self.features(x) @ w

    def grad(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Gradient -sqrt(2/M) sum_j w_j sin(v_j^T x + b_j) v_j, `(q, d)`."""
        s = torch.sin(x.to(torch.float64) @ self.V.T + self.b)  # (q, M)
        return -self.scale * (s * w) @ self.V


def finite_difference_gradient(
    f: Objective, x: torch.Tensor, n_directions: int, mu: float, generator: torch.Generator
) -> tuple[torch.Tensor, int]:
    """FedZO estimator (1/Q) sum_q (f(x + mu u_q) - f(x)) / mu * u_q with orthonormal-block directions.

    Returns:
        (gradient estimate `(d,)`, number of queries = Q + 1).
    """
    U = _directions(x.numel(), n_directions, generator)  # (Q, d)
    fx = f(x)
    diffs = torch.tensor([(f(x + mu * u) - fx) / mu for u in U], dtype=torch.float64)  # (Q,)
    return (diffs[:, None] * U).mean(0), n_directions + 1


def make_quadratic_clients(
    d: int, n_clients: int, heterogeneity: float = 0.2, seed: int = 0
) -> tuple[list[Objective], float]:
    """Heterogeneous quadratics f_i(x) = sum_k a_ik (x_k - c_ik)^2 on [0, 1]^d and the minimum of their average.

    Returns:
        (client objectives, F* = min_x (1/N) sum_i f_i(x), attained inside the cube).
    """
    g = torch.Generator().manual_seed(seed)
    a = 0.5 + torch.rand(n_clients, d, generator=g, dtype=torch.float64)  # (N, d) curvatures in [0.5, 1.5)
    center = 0.3 + 0.4 * torch.rand(d, generator=g, dtype=torch.float64)
    c = (center + heterogeneity * (torch.rand(n_clients, d, generator=g, dtype=torch.float64) - 0.5)).clamp(0, 1)
    x_star = (a * c).sum(0) / a.sum(0)  # per-coordinate minimiser of the average
    F_star = float((a * (x_star - c) ** 2).sum(1).mean())
    clients: list[Objective] = [_Quadratic(a[i], c[i]) for i in range(n_clients)]
    return clients, F_star


# ------------------------------------------------------------------------------------------------ optimizers


class FZooS:
    """FZooS (Shu et al. 2023): derived-GP local gradients, shared RFF global surrogate, adaptive correction.

    Example:
        >>> clients, F_star = make_quadratic_clients(d=3, n_clients=2)
        >>> cfg = FZooSConfig(rounds=1, local_iters=2, n_features=200)
        >>> result = FZooS(clients, cfg).run(torch.full((3,), 0.5))
    """

    def __init__(self, clients: Sequence[Objective], config: FZooSConfig | None = None):
        self.clients = [_Client(f) for f in clients]
        self.config = config or FZooSConfig()
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.rff: RFFSurrogate | None = None
        self.global_w: torch.Tensor | None = None
        self.local_w: list[torch.Tensor | None] = [None] * len(self.clients)

    def run(self, x0: torch.Tensor) -> FederatedResult:
        """Runs `config.rounds` rounds from the server point `x0` `(d,)` in [0, 1]^d."""
        cfg, N = self.config, len(self.clients)
        x = x0.to(torch.float64).clone()
        d = x.numel()
        self.rff = rff = RFFSurrogate(d, cfg.n_features, cfg.rff_lengthscale, seed=cfg.seed)
        for client in self.clients:
            for _ in range(cfg.n_inits):
                client.query(_box(x, cfg.init_radius, self.generator))
        result = _start(self.clients, x)
        self.global_w = None
        local_w: list[torch.Tensor | None] = [None] * N
        self.local_w = local_w
        messages = floats = 0
        for _ in range(cfg.rounds):
            xs = [self._local_run(c, x, rff, self.global_w, w) for c, w in zip(self.clients, local_w)]
            x_new = x - cfg.server_lr * sum(x - xi for xi in xs) / N
            x = _safeguard(self.clients, x, x_new) if cfg.server_safeguard else x_new
            for i, (client, xi) in enumerate(zip(self.clients, xs)):
                radius = max(float((x - xi).abs().mean()) / 2, 1e-6)
                self._active_queries(client, x, radius, cfg.n_round_candidates, cfg.n_round_queries)
                X, y = client.nearest(x, cfg.rff_max_points)
                local_w[i] = rff.fit(X, y, cfg.noise * float(y.var()) if len(y) > 1 else cfg.noise)
            self.global_w = torch.stack([w for w in local_w if w is not None]).mean(0)  # (M,) server average
            messages += 4 * N  # upload x_i and w_i, download x and w
            floats += 2 * N * (d + cfg.n_features)
            _record(result, self.clients, x, messages, floats)
        return result

    def correction(self, client_index: int, x: torch.Tensor) -> torch.Tensor:
        """Correction vector grad mu_hat_global(x) - grad mu_hat_i(x) `(d,)` from the last round of `run`."""
        local = self.local_w[client_index]
        if self.rff is None or self.global_w is None or local is None:
            raise ConfigError("FZooS.correction: call run() with rounds >= 1 first.")
        return (self.rff.grad(x[None], self.global_w) - self.rff.grad(x[None], local))[0]

    def local_gradient(self, client_index: int, x: torch.Tensor) -> torch.Tensor:
        """grad mu of client `client_index`'s derived GP at `x` `(d,)` (the uncorrected local surrogate gradient)."""
        X, y = self.clients[client_index].nearest(x, self.config.gp_max_points)
        return DerivedGP(X, y, self.config.noise).grad_mean(x[None])[0]

    def _local_run(
        self,
        client: _Client,
        x0: torch.Tensor,
        rff: RFFSurrogate,
        global_w: torch.Tensor | None,
        local_w: torch.Tensor | None,
    ) -> torch.Tensor:
        cfg = self.config
        x = x0.clone()
        adam = AdamCM([x], lr=cfg.lr, buffer_size=0)
        for t in range(cfg.local_iters):
            X, y = client.nearest(x, cfg.gp_max_points)
            gp = DerivedGP(X, y, cfg.noise)
            g = gp.grad_mean(x[None])[0]  # (d,)
            if global_w is not None and local_w is not None:
                gamma = 1.0 / (t + 1) if cfg.gamma is None else cfg.gamma
                g = g + gamma * (rff.grad(x[None], global_w)[0] - rff.grad(x[None], local_w)[0])
            _descend(adam, x, g)
            client.query(x)
            if t < cfg.local_iters - 1:
                self._active_queries(client, x, cfg.active_radius, cfg.n_candidates, cfg.n_active, gp)
        return x

    def _active_queries(
        self, client: _Client, x: torch.Tensor, radius: float, n_cand: int, n_keep: int, gp: DerivedGP | None = None
    ) -> None:
        if gp is None:
            X, y = client.nearest(x, self.config.gp_max_points)
            gp = DerivedGP(X, y, self.config.noise)
        cand = _box(x, radius, self.generator, n_cand)  # (n_cand, d)
        score = torch.diagonal(gp.grad_cov(cand), dim1=-2, dim2=-1).sum(-1)  # (n_cand,) trace Sigma_grad
        for i in torch.topk(score, n_keep).indices.tolist():
            client.query(cand[i])


class FedZO:
    """FedZO baseline: local Adam on finite-difference gradients, server averaging (same interface as FZooS)."""

    def __init__(self, clients: Sequence[Objective], config: FedZOConfig | None = None):
        self.clients = [_Client(f) for f in clients]
        self.config = config or FedZOConfig()
        self.generator = torch.Generator().manual_seed(self.config.seed)

    def run(self, x0: torch.Tensor) -> FederatedResult:
        cfg, N = self.config, len(self.clients)
        x = x0.to(torch.float64).clone()
        result = _start(self.clients, x)
        messages = floats = 0
        for _ in range(cfg.rounds):
            xs = []
            for client in self.clients:
                xi = x.clone()
                adam = AdamCM([xi], lr=cfg.lr, buffer_size=0)
                for _ in range(cfg.local_iters):
                    g, _ = finite_difference_gradient(client.query, xi, cfg.n_directions, cfg.mu, self.generator)
                    _descend(adam, xi, g)
                xs.append(xi)
            x = x - cfg.server_lr * sum(x - xi for xi in xs) / N
            messages += 2 * N
            floats += 2 * N * x.numel()
            _record(result, self.clients, x, messages, floats)
        return result


# ------------------------------------------------------------------------------------------------ helpers


class _Client:
    """A black-box objective that counts its queries and keeps its history."""

    def __init__(self, f: Objective):
        self.f = f
        self.X: list[torch.Tensor] = []
        self.y: list[float] = []

    def query(self, x: torch.Tensor) -> float:
        value = float(self.f(x))
        self.X.append(x.detach().clone())
        self.y.append(value)
        return value

    def nearest(self, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        X, y = torch.stack(self.X), torch.tensor(self.y, dtype=torch.float64)
        if len(y) > k:
            idx = torch.topk((X - x).pow(2).sum(-1), k, largest=False).indices
            X, y = X[idx], y[idx]
        return X, y


class _Quadratic:
    def __init__(self, a: torch.Tensor, c: torch.Tensor):
        self.a, self.c = a, c

    def __call__(self, x: torch.Tensor) -> float:
        return float((self.a * (x - self.c) ** 2).sum())


def _descend(adam: AdamCM, x: torch.Tensor, g: torch.Tensor) -> None:
    """One Adam step on the iterate `x` (the optimizer's only parameter) along `-g`, then back into the unit cube."""
    x.grad = g
    adam.step()
    x.clamp_(0.0, 1.0)


def _se(A: torch.Tensor, B: torch.Tensor, lengthscale: float) -> torch.Tensor:
    return torch.exp(-0.5 * torch.cdist(A.to(torch.float64), B.to(torch.float64)).pow(2) / lengthscale**2)


def _box(x: torch.Tensor, radius: float, generator: torch.Generator, n: int | None = None) -> torch.Tensor:
    shape = x.shape if n is None else (n, *x.shape)
    return (x + radius * (2 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1)).clamp(0.0, 1.0)


def _directions(d: int, n: int, generator: torch.Generator) -> torch.Tensor:
    blocks: list[torch.Tensor] = []
    while sum(len(b) for b in blocks) < n:
        Q, _ = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
        blocks.append(Q.T * math.sqrt(d))
    return torch.cat(blocks)[:n]  # (n, d), each block orthogonal with norm sqrt(d) rows


def _true_F(clients: list[_Client], x: torch.Tensor) -> float:
    return sum(float(c.f(x)) for c in clients) / len(clients)


def _start(clients: list[_Client], x: torch.Tensor) -> FederatedResult:
    return FederatedResult([x.clone()], [_true_F(clients, x)], [sum(len(c.y) for c in clients)], [0], [0])


def _record(result: FederatedResult, clients: list[_Client], x: torch.Tensor, messages: int, floats: int) -> None:
    result.x.append(x.clone())
    result.F.append(_true_F(clients, x))
    result.queries.append(sum(len(c.y) for c in clients))
    result.messages.append(messages)
    result.floats_sent.append(floats)


def _safeguard(clients: list[_Client], x_old: torch.Tensor, x_new: torch.Tensor) -> torch.Tensor:
    old = sum(c.query(x_old) for c in clients)
    new = sum(c.query(x_new) for c in clients)
    return x_new if new < old else x_old


def _positive(cfg: object, names: list[str]) -> list[str]:
    prefix = type(cfg).__name__.removesuffix("Config").lower()
    return [f"{prefix}.{n} = {getattr(cfg, n)}: must be > 0." for n in names if not getattr(cfg, n) > 0]
