"""Classical surrogate optimizers for small problems; never imports transformers or TRL.

Modules (one method each): `base` (the ask/tell interface, search spaces, the `OPTIMIZERS` registry), `bo`
(Bayesian optimization on BoTorch), `multi_fidelity` (cost-aware multi-fidelity BO), `neural_bandit` (NeuralUCB,
NeuralTS), `random_search`, `benchmarks` (test functions with known optima), `sso` (target-based surrogates),
`fzoos` (federated zeroth-order optimization, FedZO baseline), `ensloss` and `comp_sum` (losses), `adam_cm`
(Adam with critical momenta). Import the module you need, e.g. `from rlsurrogate.surrogate.bo import
BayesianOptimization`; importing a module registers its optimizers in `base.OPTIMIZERS`.
"""
