"""Black-box prompt optimization: INSTINCT (neural-bandit instruction search) with APE, random and GP-BO baselines.

Modules, in the order data flows: `tasks` (input/output pairs and metrics), `clients` (OpenAI-compatible endpoint or
local model), `query_log` (durable JSONL log, resume, budget), `evaluator` (an instruction's black-box score),
`candidates` (white-box soft-prompt pool, features, APE sampler), `exemplars` (instruction x demonstration
prompts for the same bandit), `pool_features` (the scorer's pool-standardised PCA features), `instinct` (the loop,
baselines and `search_pool`), `synthetic` (pools with a known hidden score), `comparison` (paired bootstrap CIs),
`reward` (the learned scorer as a TRL reward), `results` (result.json, plots) and `chat_server` (the server of
`rlsurrogate serve`); the commands live in
`rlsurrogate.commands.optimize_prompt` and `rlsurrogate.commands.serve`.
Submodules are imported on use, so importing this package does not import torch.
"""
