"""Every TRL private member `rlsurrogate.trl_compat` reads still exists in the installed TRL (pinned to 1.16)."""

from __future__ import annotations

import importlib
import inspect

import pytest

from rlsurrogate.trl_compat import TRL_PRIVATE_MEMBERS


def _owner(name: str) -> object:
    from trl import GRPOTrainer
    from trl.generation.vllm_generation import VLLMGeneration

    if "." in name:  # a module
        return importlib.import_module(name)
    return {"GRPOTrainer": GRPOTrainer, "VLLMGeneration": VLLMGeneration}[name]


@pytest.mark.parametrize("owner, member", TRL_PRIVATE_MEMBERS, ids=[f"{o}.{m}" for o, m in TRL_PRIVATE_MEMBERS])
def test_member_exists(owner, member):
    cls = _owner(owner)
    if hasattr(cls, member):
        return
    assert inspect.isclass(cls), f"TRL's {owner} no longer has {member}; update trl_compat.py"
    source = inspect.getsource(cls)  # instance attributes are assigned in the class's methods
    assert f"self.{member} =" in source, f"TRL {cls.__module__}.{owner} no longer has {member}; update trl_compat.py"


def test_trl_is_the_pinned_minor_version():
    import trl

    assert trl.__version__.startswith("1.16."), f"trl_compat.py is written against TRL 1.16, found {trl.__version__}"


def test_generation_context_helpers_exist():
    from trl.distributed import DistributedBackend
    from trl.models import unwrap_model_for_generation

    assert callable(unwrap_model_for_generation)
    assert hasattr(DistributedBackend, "summon_full_params")
