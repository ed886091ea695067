"""Samplers on a synthetic world of prompts with hidden pass rates that drift as "training" improves (no model).

Each prompt i has features x_i (`--dims` standard normal) and a difficulty d_i = spread (0.85 x_i.w + 0.53 e_i)
(w a random unit vector, e_i noise: the features explain ~70 % of the difficulty's variance). Its hidden pass rate
at step t is p_i(t) = sigmoid(skill(t) + L_i - d_i), with skill(t) rising linearly by `--drift` over the run and
L_i growing by `--learn` each time a group of prompt i with signal is generated (the policy learns what it trains
on, so history goes stale). A group is G Bernoulli(p_i) rewards. Every sampler runs through the real
`Sampler.sample` loop (rounds, refills, DAPO filter) against a stand-in of RLTrainer, one process.

Reported per method, mean over seeds: the share of generated groups with signal (0 < passes < G) and groups
generated per step; for the pass-rate samplers the Brier score of the predicted pass rate against the observed group
pass rate (the logged `sampling/brier`) and against the hidden p, both over the groups the sampler chose (so they
differ in which prompts they score), and against the hidden p of `--probe` random prompts per step (the same
prompts for every method: the calibration comparison without a selection effect); the final mean hidden pass rate
over all prompts.
Paired over seeds (every method sees the same worlds): the difference to uniform's signal share and, for
`pass_rate`, the Brier difference to `beta_only` (the same sampler without the shared prior), each with a 95 %
bootstrap CI over seeds.

    python scripts/bench_pass_rate.py                 # 6 methods x 20 seeds: minutes on a loaded 2-core CPU
    python scripts/bench_pass_rate.py --quick         # 3 seeds, fewer steps: a smoke check in seconds

Synthetic figures only: they say how the samplers rank when pass rates behave like this, not what they do to a
trained model's held-out accuracy. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from typing import Any

import torch

from rlsurrogate.objectives.base import ScoredBatch
from rlsurrogate.sampling import build_sampler
from rlsurrogate.sampling.base import PromptStream, Round, has_signal, within_group_variance

METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "uniform": ("uniform", {}),
    "dynamic": ("dynamic", {"max_rounds": 4}),
    "greso": ("greso", {"max_rounds": 4}),
    "mopps": ("mopps", {}),
    "beta_only": ("pass_rate", {"share_prior": False}),
    "pass_rate": ("pass_rate", {}),
}
# Opt-in (`--methods ...,predictive`): its GP refit costs ~10 s per step at these sizes on a loaded 2-core CPU.
OPTIONAL = {"predictive": ("predictive", {})}
PREDICTING = ("mopps", "beta_only", "pass_rate")


class SyntheticWorld:
    """`SamplingContext` over simulated prompts (one process); generate() draws Bernoulli groups of the hidden p."""

    num_processes, process_index, steps_per_generation, pad_token_id = 1, 0, 1, 0

    def __init__(self, args: argparse.Namespace, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.args, self.seed, self.num_generations = args, seed, args.group
        self.x = torch.randn(args.prompts, args.dims, generator=g, dtype=torch.float64)
        w = torch.randn(args.dims, generator=g, dtype=torch.float64)
        noise = torch.randn(args.prompts, generator=g, dtype=torch.float64)
        self.difficulty = args.spread * (0.85 * self.x @ (w / w.norm()) + 0.53 * noise)  # (n,)
        self.learned = torch.zeros(args.prompts, dtype=torch.float64)
        self.step = 0
        self.draws = torch.Generator().manual_seed(seed + 1)
        self.trl_order = PromptStream(args.prompts, seed + 2)  # stands in for TRL's RepeatSampler
        self.sampler: Any = None
        self.signal = self.groups = 0
        self.brier_true: list[float] = []

    def pass_rate(self, indices: list[int] | None = None) -> torch.Tensor:
        skill = self.args.drift * self.step / max(self.args.steps - 1, 1)
        p = torch.sigmoid(skill + self.learned - self.difficulty)
        return p if indices is None else p[indices]

    def trl_batch(self) -> list[dict[str, Any]]:
        rows = self.rows(self.trl_order.draw(self.args.batch))
        return [row for row in rows for _ in range(self.num_generations)]

    # -- SamplingContext ------------------------------------------------------------------------------------------

    def generate(self, inputs: list[dict[str, Any]]) -> Round:
        G, n = self.num_generations, len(inputs)
        indices = [row["index"] for row in inputs[::G]]
        p = self.pass_rate(indices)
        predicted = getattr(self.sampler, "last_predicted", None)
        if predicted and len(predicted) == len(indices):
            self.brier_true += (torch.tensor(predicted, dtype=torch.float64) - p).square().tolist()
        rewards = (torch.rand(len(indices), G, generator=self.draws, dtype=torch.float64) < p.unsqueeze(1)).double()
        signal = has_signal(within_group_variance(rewards))
        self.learned[torch.tensor(indices)[signal]] += self.args.learn  # the policy learns what has signal
        self.signal += int(signal.sum())
        self.groups += len(indices)
        index = torch.tensor([row["index"] for row in inputs])
        batch = {
            "prompt_ids": index.unsqueeze(1).repeat(1, 2),
            "prompt_mask": torch.ones(n, 2, dtype=torch.long),
            "completion_ids": torch.ones(n, 2, dtype=torch.long),
            "completion_mask": torch.ones(n, 2, dtype=torch.long),
            "advantages": torch.zeros(n),
        }
        scored = ScoredBatch(
            rewards_per_func=rewards.reshape(-1, 1).float(),
            reward_names=["pass"],
            reward_weights=torch.tensor([1.0]),
            num_generations=G,
            local_slice=slice(0, n),
            mode="train",
            step=self.step,
        )
        return Round(batch, scored, 2 * n)

    def dataset_size(self) -> int:
        return self.args.prompts

    def rows(self, indices) -> list[dict[str, Any]]:
        return [{"prompt": f"prompt {int(i)}", "index": int(i)} for i in indices]

    def prompt_features(self, indices, layer: int) -> torch.Tensor:
        return self.x[list(indices)].float()

    def sum_over_processes(self, value: float) -> float:
        return float(value)

    def broadcast(self, value: list[int]) -> list[int]:
        return value


def run(method: str, args: argparse.Namespace, seed: int) -> dict[str, float]:
    name, params = {**METHODS, **OPTIONAL}[method]
    world = SyntheticWorld(args, seed)
    sampler = build_sampler(name, params)
    world.sampler = sampler
    sampler.bind(world)
    brier, probe = [], []
    probes = torch.Generator().manual_seed(seed + 3)
    for step in range(args.steps):
        world.step = step
        metrics = sampler.sample(world, world.trl_batch()).metrics
        if "sampling/brier" in metrics:
            brier.append(metrics["sampling/brier"])
        if hasattr(sampler, "posterior"):  # the same random prompts for every method: no selection effect
            indices = torch.randperm(args.prompts, generator=probes)[: args.probe].tolist()
            world.step = step + 1
            a, b = sampler.posterior(world, indices)
            probe.append(float((a / (a + b) - world.pass_rate(indices)).square().mean()))
    return {
        "signal_share": world.signal / world.groups,
        "groups_per_step": world.groups / args.steps,
        "brier": statistics.fmean(brier) if brier else math.nan,
        "brier_true": statistics.fmean(world.brier_true) if world.brier_true else math.nan,
        "brier_probe": statistics.fmean(probe) if probe else math.nan,
        "final_pass_rate": float(world.pass_rate().mean()),
    }


def paired_ci(a: list[float], b: list[float], resamples: int = 10_000, seed: int = 0) -> dict[str, float]:
    """Mean of a - b over seeds and its 95 % percentile-bootstrap CI (seeds resampled with replacement)."""
    d = torch.tensor(a, dtype=torch.float64) - torch.tensor(b, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    means = d[torch.randint(len(d), (resamples, len(d)), generator=g)].mean(1)
    low, high = torch.quantile(means, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return {"mean": float(d.mean()), "ci_low": low, "ci_high": high}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=40, help="generations (one per step)")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16, help="prompts per step")
    parser.add_argument("--group", type=int, default=8, help="completions per prompt (G)")
    parser.add_argument("--dims", type=int, default=8, help="feature dimensions")
    parser.add_argument("--spread", type=float, default=3.0, help="std of the difficulty (logit units)")
    parser.add_argument("--drift", type=float, default=2.0, help="skill gained over the run (logit units)")
    parser.add_argument("--learn", type=float, default=0.5, help="logit gained per signal group of a prompt")
    parser.add_argument("--probe", type=int, default=32, help="random prompts whose prediction is scored per step")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--quick", action="store_true", help="3 seeds, 12 steps")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small tensors: threads only contend
    if args.quick:
        args.seeds, args.steps = 3, 12
    methods = args.methods.split(",")
    results = {m: [run(m, args, seed) for seed in range(args.seeds)] for m in methods}

    def column(method: str, key: str) -> list[float]:
        return [r[key] for r in results[method]]

    print(f"{args.seeds} seeds x {args.steps} steps, {args.prompts} prompts, {args.batch} x G={args.group} per step")
    print(
        f"{'method':<14}{'signal share':>14}{'groups/step':>13}{'Brier obs':>11}{'Brier p':>9}{'probe':>8}"
        f"{'final p':>9}"
    )
    for m in methods:
        means = {k: statistics.fmean(column(m, k)) for k in results[m][0]}
        print(
            f"{m:<14}{means['signal_share']:>14.3f}{means['groups_per_step']:>13.1f}{means['brier']:>11.4f}"
            f"{means['brier_true']:>9.4f}{means['brier_probe']:>8.4f}{means['final_pass_rate']:>9.3f}"
        )
    summary: dict[str, Any] = {
        "seeds": args.seeds,
        "signal_share": {m: statistics.fmean(column(m, "signal_share")) for m in methods},
        "groups_per_step": {m: statistics.fmean(column(m, "groups_per_step")) for m in methods},
        "final_pass_rate": {m: statistics.fmean(column(m, "final_pass_rate")) for m in methods},
        "brier": {m: statistics.fmean(column(m, "brier")) for m in methods if m in PREDICTING},
        "brier_true": {m: statistics.fmean(column(m, "brier_true")) for m in methods if m in PREDICTING},
        "brier_probe": {m: statistics.fmean(column(m, "brier_probe")) for m in methods if m in PREDICTING},
    }
    if "uniform" in methods:
        summary["paired_signal_gain_vs_uniform"] = {
            m: paired_ci(column(m, "signal_share"), column("uniform", "signal_share"))
            for m in methods
            if m != "uniform"
        }
        print("signal share - uniform's, paired over seeds (mean [95% CI]):")
        for m, ci in summary["paired_signal_gain_vs_uniform"].items():
            print(f"  {m:<14}{ci['mean']:+.3f} [{ci['ci_low']:+.3f}, {ci['ci_high']:+.3f}]")
    if "pass_rate" in methods and "beta_only" in methods:
        summary["brier_gain_vs_beta_only"] = {
            key: paired_ci(column("pass_rate", key), column("beta_only", key))
            for key in ("brier", "brier_true", "brier_probe")
        }
        print("pass_rate Brier - beta_only Brier, paired (negative: the shared prior predicts better):")
        for key, ci in summary["brier_gain_vs_beta_only"].items():
            print(f"  {key:<14}{ci['mean']:+.4f} [{ci['ci_low']:+.4f}, {ci['ci_high']:+.4f}]")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
