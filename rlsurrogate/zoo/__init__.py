"""Federated zeroth-order optimization: FZooS and the FedZO baseline (`fzoos`).

Both optimize `F(x) = (1/N) sum_i f_i(x)` over `[0, 1]^d` when client `i` can only query its black box `f_i`, and
share one interface: `Method(clients, config).run(x0) -> FederatedResult`. Never imports transformers or TRL.
"""

from __future__ import annotations

from rlsurrogate.zoo.fzoos import FederatedResult, FedZO, FedZOConfig, FZooS, FZooSConfig

__all__ = ["FZooS", "FZooSConfig", "FedZO", "FedZOConfig", "FederatedResult"]
