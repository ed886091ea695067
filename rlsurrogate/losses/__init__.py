"""Classification losses as `nn.Module`s: EnsLoss (`ensloss`) and the comp-sum family (`comp_sum`).

`COMP_SUM_TAUS` names members of the comp-sum family (name -> tau); `CompSumLoss("mae")` looks a name up there.
Never imports transformers or TRL.
"""

from __future__ import annotations

from rlsurrogate.losses.comp_sum import COMP_SUM_TAUS, CompSumLoss, SmoothAdvCompSumLoss
from rlsurrogate.losses.ensloss import EnsLoss

__all__ = ["COMP_SUM_TAUS", "CompSumLoss", "EnsLoss", "SmoothAdvCompSumLoss"]
