"""NeuralUCB and NeuralTS over a finite set of feature vectors, as INSTINCT uses them (Lin et al., ICML 2024).

INSTINCT (INSTruction optimization usIng Neural bandits Coupled with Transformers) scores a fixed pool of candidate
prompts, each represented by an LLM hidden state, with a small MLP `f(x; theta)` and picks candidates by
NeuralUCB (Zhou, Li & Gu, ICML 2020, arXiv 1911.04462, Alg. 1):

    mu(x)    = f(x; theta)
    g(x)     = d f(x; theta) / d theta                          (per-candidate gradient, all p parameters)
    sigma(x) = sqrt(lambda nu g(x)^T U^{-1} g(x))               (full exploration matrix, U = lambda I + sum g g^T)
             = sqrt(sum_k lambda nu g_k(x)^2 / U_k)             (diagonal approximation, U = lambda 1 + sum g^2)
    UCB(x)   = mu(x) + sigma(x);   select argmax UCB over the candidates not yet chosen.

NeuralTS (Zhang, Zhou, Li & Gu, ICLR 2021, arXiv 2010.00827, Alg. 1) replaces the bonus by a draw
`mu(x) + sigma(x) xi`, `xi ~ N(0, 1)` per candidate.

After each observation `U` is updated with the selected candidate's gradient and the network is retrained from the
same initial weights (full-batch Adam, lr 1e-3, weight decay `lambda / n`, MSE on the raw scores). Inputs are
standardised with the mean and standard deviation of the observed features (`standardise=False` leaves them as given,
for callers that standardise with statistics of their own, e.g. the whole candidate pool).

Defaults follow INSTINCT's released scripts (`Induction/experiments/run_neural_bandits.sh`, METHODS.md §4.1):
`nu = 1`, `lambda = 0.1`, width 100, 1000 training steps, a random subset of `n_eval = 1000` candidates scored per
step, all weights initialised N(0, 1) with a fixed seed (`init="normal"`).

`init="fan_in"` (not INSTINCT's) draws every weight and bias N(0, 1 / fan_in) instead, fan_in = the layer's input
width (LeCun normal). With N(0, 1) weights the untrained output of a d-input network spreads by up to
sqrt(d * width / 2) (std 130 measured on standardised 576-d synthetic features, width 100) against scores in [0, 1],
so a few hundred Adam steps at lr 1e-3 barely move it and the picks hardly depend on the data; with 1 / fan_in the
spread is O(1) (0.5 on the same features).

Deviations: gradients are taken with `torch.func` (vmap of grad) in chunks instead of INSTINCT's per-sample loop; the
feature standardisation uses a floor of 1e-6 on the standard deviation (INSTINCT divides by the raw std); the
`NeuralBanditOptimizer` adapter (registered as "neural_ucb" / "neural_ts") runs the bandit over a Sobol pool of the
unit cube, which is INSTINCT's search space Z with the identity as the feature map.
Checked: the unit-test properties of METHODS.md §4.3; no end-to-end INSTINCT result reproduced here.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap
from torch.quasirandom import SobolEngine

from rlsurrogate.blackbox.base import SearchSpace, SurrogateOptimizer, check_int, check_number
from rlsurrogate.errors import ConfigError
from rlsurrogate.registry import did_you_mean

__all__ = ["NeuralUCB", "NeuralTS", "NeuralBanditOptimizer", "ucb_bonus_diag", "ucb_bonus_full"]

# Candidates per chunk when computing per-candidate gradients (bounds memory at chunk x p floats).
_CHUNK = 256
# Initial-weight schemes (module docstring): N(0, 1) as INSTINCT, or N(0, 1 / fan_in).
_INITS = ("normal", "fan_in")
# Largest parameter count for which the full p x p exploration matrix is allowed (p^2 float64 = 3.2 GB at 20k).
_MAX_FULL_PARAMS = 20_000


def ucb_bonus_diag(G: Tensor, U_diag: Tensor, lam: float, nu: float) -> Tensor:
    """Diagonal NeuralUCB bonus `sqrt(sum_k lam nu G_k^2 / U_k)` (INSTINCT's approximation).

    Args:
        G: `(N, p)` per-candidate gradients.
        U_diag: `(p,)` diagonal of the exploration matrix.
        lam: Regularisation lambda.
        nu: Exploration scale nu.

    Returns:
        `(N,)` bonuses sigma(x) >= 0.
    """
    return torch.sqrt(lam * nu * (G**2 / U_diag).sum(-1))


def ucb_bonus_full(G: Tensor, U_inv: Tensor, lam: float, nu: float) -> Tensor:
    """Full NeuralUCB bonus `sqrt(lam nu g^T U^{-1} g)`; `G` is `(N, p)`, `U_inv` `(p, p)`, returns `(N,)`."""
    return torch.sqrt((lam * nu * ((G @ U_inv) * G).sum(-1)).clamp_min(0.0))


class NeuralUCB:
    """NeuralUCB bandit over a finite candidate set of feature vectors (INSTINCT's surrogate).

    Args:
        dim: Feature dimension.
        nu: Exploration scale (INSTINCT: 1).
        lam: Regularisation lambda; U starts at `lam * I` and the weight decay is `lam / n` (INSTINCT: 0.1).
        width: Hidden width of the one-hidden-layer ReLU network (INSTINCT: 100).
        train_steps: Full-batch Adam steps per retraining, always from the initial weights (INSTINCT: 1000).
        lr: Adam learning rate (INSTINCT: 1e-3).
        exploration: "diag" (INSTINCT) or "full" exploration matrix.
        n_eval: Candidates scored per `select` (a random subset; None scores all; INSTINCT: 1000).
        init: Initial weights: "normal" N(0, 1) (INSTINCT) or "fan_in" N(0, 1 / fan_in) (LeCun normal).
        standardise: Standardise inputs with the observed features' mean and std (INSTINCT); False uses them as is.
        maximize: Whether larger values are better.
        seed: Seed of the initial weights, the candidate subsets and (NeuralTS) the draws.

    Example:
        >>> bandit = NeuralUCB(dim=8, train_steps=50, seed=0)
        >>> features = torch.randn(100, 8)
        >>> i = bandit.select(features)
        >>> bandit.update(features[i], 0.7)
        >>> mean, bonus = bandit.predict(features)   # (100,), (100,)
    """

    def __init__(
        self,
        dim: int,
        *,
        nu: float = 1.0,
        lam: float = 0.1,
        width: int = 100,
        train_steps: int = 1000,
        lr: float = 1e-3,
        exploration: str = "diag",
        n_eval: int | None = 1000,
        init: str = "normal",
        standardise: bool = True,
        maximize: bool = True,
        seed: int = 0,
    ):
        problems = []
        if init not in _INITS:
            problems.append(f"init = {init!r}: must be one of {list(_INITS)} (INSTINCT: 'normal').")
        if check_number("nu", nu, 0.0) or check_number("lam", lam, 0.0, strict=True):
            problems.append(f"nu = {nu}, lam = {lam}: need finite nu >= 0 and lam > 0 (INSTINCT: nu 1, lambda 0.1).")
        if exploration not in ("diag", "full"):
            problems.append(f"exploration = {exploration!r}: must be 'diag' or 'full'.")
        sizes = check_int("dim", dim, 1) + check_int("width", width, 1) + check_int("train_steps", train_steps, 0)
        if sizes:
            problems.append(
                f"dim = {dim!r}, width = {width!r}, train_steps = {train_steps!r}: need ints >= 1, >= 1, >= 0."
            )
        problems += check_number("lr", lr, 0.0, strict=True, rule=" (INSTINCT: 1e-3)")
        if n_eval is not None:
            problems += check_int("n_eval", n_eval, 1, " (or None to score every candidate)")
        if isinstance(seed, bool) or not isinstance(seed, int):
            problems.append(f"seed = {seed!r}: must be an int.")
        n_params = 0 if sizes else width * dim + 2 * width + 1
        if exploration == "full" and n_params > _MAX_FULL_PARAMS:
            problems.append(f"exploration = 'full' with {n_params} parameters: use 'diag' above {_MAX_FULL_PARAMS}.")
        if problems:
            raise ConfigError(problems, header="invalid NeuralUCB arguments")
        self.dim, self.nu, self.lam, self.width = dim, nu, lam, width
        self.train_steps, self.lr, self.exploration, self.n_eval = train_steps, lr, exploration, n_eval
        self.maximize, self.seed, self.init, self.standardise = maximize, seed, init, standardise
        self.net = nn.Sequential(nn.Linear(dim, width), nn.ReLU(), nn.Linear(width, 1)).double()
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for layer in (self.net[0], self.net[2]):
                scale = 1.0 if init == "normal" else layer.in_features**-0.5
                for p in (layer.weight, layer.bias):
                    p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=torch.float64))
        self.init_params = {k: v.detach().clone() for k, v in self.net.named_parameters()}
        self.n_params = n_params
        self.U = torch.full((n_params,), lam, dtype=torch.float64)  # diagonal of U
        self.U_inv = torch.eye(n_params, dtype=torch.float64) / lam if exploration == "full" else None
        self.features: list[Tensor] = []
        self.values: list[float] = []
        self.n_select = 0

    # -- public API ------------------------------------------------------------------------------------------------
    def predict(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Network mean and exploration bonus.

        Args:
            features: `(N, dim)` candidate features.

        Returns:
            `(mean, bonus)`, each `(N,)`: `f(x; theta)` in the objective's sign and `sigma(x) >= 0`.
        """
        mean, bonus = self._mean_bonus(features)
        return (mean if self.maximize else -mean), bonus

    def _mean_bonus(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Network output in the maximisation convention and the bonus, each `(N,)`."""
        X = self._standardise(torch.as_tensor(features, dtype=torch.float64))
        means, bonuses = [], []
        for chunk in X.split(_CHUNK):
            G = self._gradients(chunk)  # (chunk, p)
            if self.exploration == "diag":
                bonuses.append(ucb_bonus_diag(G, self.U, self.lam, self.nu))
            else:
                bonuses.append(ucb_bonus_full(G, self.U_inv, self.lam, self.nu))
            with torch.no_grad():
                means.append(self.net(chunk).squeeze(-1))
        return torch.cat(means), torch.cat(bonuses)

    def select(self, features: Tensor, exclude: list[int] | Tensor | None = None) -> int:
        """Index of the candidate with the largest score (UCB, or a Thompson draw for NeuralTS).

        Args:
            features: `(N, dim)` candidate features.
            exclude: Indices that may not be chosen (e.g. already evaluated).

        Returns:
            The chosen row index into `features`.
        """
        N = features.shape[0]
        allowed = torch.ones(N, dtype=torch.bool)
        if exclude is not None and len(exclude) > 0:
            allowed[torch.as_tensor(exclude, dtype=torch.long)] = False
        idx = allowed.nonzero().squeeze(-1)
        if idx.numel() == 0:
            raise ConfigError(f"select: all {N} candidates are excluded; pass a larger pool or fewer exclusions.")
        gen = torch.Generator().manual_seed(self.seed * 7919 + self.n_select)
        self.n_select += 1
        if self.n_eval is not None and idx.numel() > self.n_eval:
            idx = idx[torch.randperm(idx.numel(), generator=gen)[: self.n_eval]]
        mean, bonus = self._mean_bonus(features[idx])  # maximisation convention
        score = self._score(mean, bonus, gen)
        return int(idx[score.argmax()])

    def update(self, feature: Tensor, value: float) -> None:
        """Adds one observation: grows U with the candidate's gradient, then retrains from the initial weights.

        Args:
            feature: `(dim,)` feature vector of the evaluated candidate.
            value: Its observed value.
        """
        x = torch.as_tensor(feature, dtype=torch.float64)
        if x.numel() != self.dim or not torch.isfinite(x).all():
            raise ConfigError(f"update: feature of shape {tuple(x.shape)} must hold {self.dim} finite values.")
        x = x.reshape(1, self.dim)
        if not math.isfinite(float(value)):
            raise ConfigError(f"update: value = {value} is not finite; drop failed evaluations.")
        self._grow(self._gradients(self._standardise(x))[0])
        self.features.append(x[0])
        self.values.append(float(value))
        self._train()

    def _grow(self, g: Tensor) -> None:
        """U <- U + g^2 (diagonal) and U^{-1} <- (U + g g^T)^{-1} by Sherman-Morrison (full); `g` is `(p,)`."""
        self.U = self.U + g**2
        if self.U_inv is not None:
            Ug = self.U_inv @ g
            self.U_inv = self.U_inv - torch.outer(Ug, Ug) / (1.0 + g @ Ug)

    # -- training ----------------------------------------------------------------------------------------------------
    def _train(self) -> None:
        with torch.no_grad():
            for k, p in self.net.named_parameters():
                p.copy_(self.init_params[k])
        X = self._standardise(torch.stack(self.features))  # (n, dim)
        y = torch.tensor(self.values, dtype=torch.float64) * (1.0 if self.maximize else -1.0)  # (n,)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr, weight_decay=self.lam / len(self.values))
        for _ in range(self.train_steps):
            opt.zero_grad()
            loss = ((self.net(X).squeeze(-1) - y) ** 2).mean()
            loss.backward()
            opt.step()

    def _score(self, mean: Tensor, bonus: Tensor, gen: torch.Generator) -> Tensor:
        return mean + bonus

    # -- helpers -----------------------------------------------------------------------------------------------------
    def _standardise(self, X: Tensor) -> Tensor:
        if not self.features or not self.standardise:
            return X
        F = torch.stack(self.features)
        return (X - F.mean(0)) / F.std(0, unbiased=False).clamp_min(1e-6)

    def _gradients(self, X: Tensor) -> Tensor:
        """Per-candidate gradients of the network output w.r.t. all parameters: `(N, dim)` -> `(N, p)`."""
        params = {k: v.detach() for k, v in self.net.named_parameters()}

        def f(p: dict[str, Tensor], x: Tensor) -> Tensor:
            return functional_call(self.net, p, (x.unsqueeze(0),)).squeeze()

        grads = vmap(grad(f), in_dims=(None, 0))(params, X)
        return torch.cat([grads[k].reshape(X.shape[0], -1) for k in params], dim=1)

    def state_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "init_params": {k: v.clone() for k, v in self.init_params.items()},
            "net": {k: v.clone() for k, v in self.net.state_dict().items()},
            "U": self.U.clone(),
            "U_inv": None if self.U_inv is None else self.U_inv.clone(),
            "features": [f.clone() for f in self.features],
            "values": list(self.values),
            "n_select": self.n_select,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a `state_dict()` after checking it against this bandit's sizes (one-line `ConfigError`)."""
        problem = self._state_problem(state)
        if problem:
            raise ConfigError(f"bandit state {problem}")
        self.seed = state["seed"]
        self.init_params = {k: v.clone() for k, v in state["init_params"].items()}
        self.net.load_state_dict(state["net"])
        self.U, self.U_inv = state["U"].clone(), None if state["U_inv"] is None else state["U_inv"].clone()
        self.features, self.values = [f.clone() for f in state["features"]], list(state["values"])
        self.n_select = state["n_select"]

    def _state_problem(self, state: Any) -> str:
        """The first way `state` does not fit this bandit, or "" if it fits."""
        keys = ("seed", "init_params", "net", "U", "U_inv", "features", "values", "n_select")
        if not isinstance(state, dict) or any(k not in state for k in keys):
            return f"must be a dict with keys {list(keys)}."
        shapes = {k: tuple(v.shape) for k, v in self.init_params.items()}
        for key in ("init_params", "net"):
            got = state[key]
            if not isinstance(got, dict) or {k: getattr(v, "shape", None) for k, v in got.items()} != shapes:
                return f"{key} does not match this network (dim {self.dim}, width {self.width}); build it alike."
        if not isinstance(state["U"], Tensor) or tuple(state["U"].shape) != (self.n_params,):
            return f"U must be a tensor of shape ({self.n_params},)."
        full = (self.n_params, self.n_params) if self.exploration == "full" else None
        U_inv = state["U_inv"]
        if not (U_inv is None if full is None else isinstance(U_inv, Tensor) and tuple(U_inv.shape) == full):
            return f"U_inv does not match exploration = {self.exploration!r}."
        features, values = state["features"], state["values"]
        if not (isinstance(features, list) and isinstance(values, list) and len(features) == len(values)):
            return "features and values must be lists of the same length."
        if any(not isinstance(f, Tensor) or tuple(f.shape) != (self.dim,) for f in features):
            return f"features must be tensors of shape ({self.dim},)."
        if any(not isinstance(v, float) or not math.isfinite(v) for v in values):
            return "values must be finite floats."
        if check_int("n_select", state["n_select"], 0) or not isinstance(state["seed"], int):
            return "n_select and seed must be ints (n_select >= 0)."
        return ""


class NeuralTS(NeuralUCB):
    """NeuralTS: same network and exploration matrix, but scores are draws `mu + sigma xi`, `xi ~ N(0, 1)`."""

    def _score(self, mean: Tensor, bonus: Tensor, gen: torch.Generator) -> Tensor:
        return mean + bonus * torch.randn(mean.shape, generator=gen, dtype=mean.dtype)


class NeuralBanditOptimizer(SurrogateOptimizer):
    """Ask/tell adapter: a neural bandit over a scrambled Sobol pool of the unit cube (INSTINCT's Z).

    Args:
        space: A `SearchSpace` or `2 x d` bounds.
        maximize: Direction of the objective.
        seed: Seed of the pool, the network and the draws.
        outcome_constraints: `{name: bound}` recorded with each value; `best()` respects them (the bandit does not).
        n_domain: Pool size (INSTINCT: 10000 Sobol points).
        n_init: Random pool points evaluated before the bandit starts (INSTINCT: 40).
        **bandit_kwargs: Passed to `NeuralUCB` / `NeuralTS` (nu, lam, width, train_steps, exploration, n_eval).
    """

    bandit_cls: type[NeuralUCB] = NeuralUCB

    def __init__(
        self,
        space: SearchSpace | Tensor | list[list[float]],
        *,
        maximize: bool = True,
        seed: int = 0,
        outcome_constraints: dict[str, float] | None = None,
        n_domain: int = 10_000,
        n_init: int = 40,
        **bandit_kwargs: Any,
    ):
        super().__init__(space, maximize=maximize, seed=seed, outcome_constraints=outcome_constraints)
        problems = check_int("n_domain", n_domain, 1, " (INSTINCT: 10000)")
        problems += check_int("n_init", n_init, 1, " (INSTINCT: 40)")
        if not problems and n_init > n_domain:
            problems.append(f"n_init = {n_init}: must be <= n_domain = {n_domain} (the pool it is drawn from).")
        allowed = [p for p in inspect.signature(self.bandit_cls).parameters if p not in ("dim", "maximize", "seed")]
        for key in sorted(set(bandit_kwargs) - set(allowed)):
            hint = did_you_mean(key, allowed)
            problems.append(f"{key} = {bandit_kwargs[key]!r}: unknown argument.{hint} Valid: {', '.join(allowed)}.")
        if problems:
            raise ConfigError(problems, header=f"invalid {type(self).__name__} arguments")
        self.n_domain, self.n_init = n_domain, n_init
        self.pool = SobolEngine(self.space.dim, scramble=True, seed=seed).draw(n_domain, dtype=torch.float64)
        self.bandit = self.bandit_cls(self.space.dim, maximize=maximize, seed=seed, **bandit_kwargs)
        self.chosen: list[int] = []

    def _ask_unit(self, n: int, seed: int) -> Tensor:
        picks: list[int] = []
        if len(self.chosen) < self.n_init:
            gen = torch.Generator().manual_seed(seed)
            free = torch.tensor(sorted(set(range(self.n_domain)) - set(self.chosen)))
            picks = free[torch.randperm(free.numel(), generator=gen)[:n]].tolist()
        else:
            for _ in range(n):
                picks.append(self.bandit.select(self.pool, exclude=self.chosen + picks))
        self.chosen.extend(picks)
        return self.pool[picks]  # n x d

    def _check_ask(self, n: int) -> None:
        free = self.n_domain - len(self.chosen)
        if n > free:
            raise ConfigError(
                f"ask(n={n}): only {free} of the n_domain = {self.n_domain} pool points are left to propose; ask "
                "for fewer, or build the optimizer with a larger n_domain."
            )

    def _told(self, X: Tensor, Y: Tensor) -> None:
        for u, y in zip(self.space.to_unit(X), Y.tolist()):
            self.bandit.update(u, y)

    def _extra_state(self) -> dict[str, Any]:
        return {"n_domain": self.n_domain, "chosen": list(self.chosen), "bandit": self.bandit.state_dict()}

    def _check_extra_state(self, extra: Any) -> None:
        super()._check_extra_state(extra)
        n_domain, chosen = extra.get("n_domain", self.n_domain), extra.get("chosen")
        if n_domain != self.n_domain:
            raise ConfigError(
                f"state pool has n_domain = {n_domain!r} points but this optimizer's has {self.n_domain}; "
                f"build it with n_domain={n_domain!r} to resume."
            )
        if (
            not isinstance(chosen, list)
            or any(type(i) is not int or not 0 <= i < self.n_domain for i in chosen)
            or len(set(chosen)) != len(chosen)
        ):
            raise ConfigError(f"state extra.chosen must be a list of distinct pool indices in [0, {self.n_domain}).")
        problem = self.bandit._state_problem(extra.get("bandit"))
        if problem:
            raise ConfigError(f"state extra.bandit {problem}")

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self.pool = SobolEngine(self.space.dim, scramble=True, seed=self.seed).draw(self.n_domain, dtype=torch.float64)
        self.chosen = list(extra["chosen"])
        self.bandit.load_state_dict(extra["bandit"])
        self.bandit.maximize = self.maximize  # the direction comes back from the file, as the seed does


class NeuralUCBOptimizer(NeuralBanditOptimizer):
    """NeuralUCB over a Sobol pool (see `NeuralBanditOptimizer`), registered as "neural_ucb"."""


class NeuralTSOptimizer(NeuralBanditOptimizer):
    """NeuralTS over a Sobol pool (see `NeuralBanditOptimizer`), registered as "neural_ts"."""

    bandit_cls = NeuralTS
