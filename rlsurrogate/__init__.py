"""rlsurrogate: RL fine-tuning of LLMs on TRL, surrogate rewards and classical surrogate optimizers."""

__version__ = "0.1.0"
