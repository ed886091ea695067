"""A fake world of P processes for sampler tests: threads in lockstep stand in for ranks and their collectives.

Each fake process implements `SamplingContext`: `generate` builds a TRL-shaped batch for its rows and gathers the
rewards of every process (a barrier, as a collective would), so a sampler's round loop runs exactly as on several
ranks, without a model. Row k of the dataset has a reward pattern: "flat" (every completion scores 1), "signal"
(completion j scores j % 2) or "nan" (nobody scores it).
"""

from __future__ import annotations

import threading
from typing import Any

import torch

from rlsurrogate.objectives.base import ScoredBatch
from rlsurrogate.sampling.base import Round

PAD = 0


def make_rows(patterns: list[str]) -> list[dict[str, Any]]:
    return [{"prompt": f"question {k}", "index": k, "pattern": p} for k, p in enumerate(patterns)]


def reward_of(row: dict[str, Any], position: int) -> float:
    return {"flat": 1.0, "signal": float(position % 2), "nan": float("nan")}[row["pattern"]]


class FakeWorld:
    """Shared state of P fake processes: a barrier and one slot per process for each collective."""

    def __init__(self, rows: list[dict[str, Any]], num_processes: int, G: int, steps_per_generation: int = 1):
        self.rows, self.P, self.G, self.steps_per_generation = rows, num_processes, G, steps_per_generation
        self.barrier = threading.Barrier(num_processes)
        self.slots: list[Any] = [None] * num_processes
        self.calls = 0  # rounds generated (counted on process 0)

    def exchange(self, rank: int, value: Any) -> list[Any]:
        """Every process's value, in process order (an all-gather)."""
        self.barrier.wait()
        self.slots[rank] = value
        self.barrier.wait()
        out = list(self.slots)
        self.barrier.wait()
        return out

    def run(self, fn) -> list[Any]:
        """Runs fn(context) on every fake process in its own thread; returns the results in process order."""
        results: list[Any] = [None] * self.P
        errors: list[BaseException] = []

        def target(rank: int) -> None:
            try:
                results[rank] = fn(FakeContext(self, rank))
            except BaseException as err:  # noqa: BLE001 - re-raised in the test's thread
                errors.append(err)
                self.barrier.abort()

        threads = [threading.Thread(target=target, args=(r,)) for r in range(self.P)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        if errors:
            raise errors[0]
        return results


class FakeContext:
    """One fake process: `SamplingContext` over the world's rows."""

    def __init__(self, world: FakeWorld, rank: int):
        self.world = world
        self.num_processes, self.process_index = world.P, rank
        self.num_generations, self.steps_per_generation = world.G, world.steps_per_generation
        self.pad_token_id, self.seed = PAD, 0
        self.rounds = 0

    def generate(self, inputs: list[dict[str, Any]]) -> Round:
        G, n = self.num_generations, len(inputs)
        width = 2 + self.rounds % 3  # rounds differ in padded widths, as TRL's do
        self.rounds += 1
        if self.process_index == 0:
            self.world.calls += 1
        positions = [i % G for i in range(n)]
        lengths = [1 + (row["index"] + j) % 4 for row, j in zip(inputs, positions)]
        completion_ids = torch.full((n, 4 + width), PAD)
        completion_mask = torch.zeros(n, 4 + width, dtype=torch.long)
        for i, (row, length) in enumerate(zip(inputs, lengths)):
            completion_ids[i, :length] = 1000 + row["index"]
            completion_mask[i, :length] = 1
        prompt_ids = torch.full((n, width), 7)
        prompt_ids[:, -1] = torch.tensor([row["index"] for row in inputs])
        local = torch.tensor([[reward_of(row, j)] for row, j in zip(inputs, positions)], dtype=torch.float32)
        everyone = self.world.exchange(self.process_index, (local, sum(lengths)))
        rewards = torch.cat([r for r, _ in everyone])  # (P * n, 1): TRL's gathered rewards
        batch = {
            "prompt_ids": prompt_ids,
            "prompt_mask": torch.ones(n, width, dtype=torch.long),
            "completion_ids": completion_ids,
            "completion_mask": completion_mask,
            "advantages": torch.linspace(-1, 1, n),
            "old_per_token_logps": -torch.rand(n, 4 + width),
            "num_items_in_batch": torch.tensor(float(sum(s for _, s in everyone))),
        }
        scored = ScoredBatch(
            rewards_per_func=rewards,
            reward_names=["fake"],
            reward_weights=torch.tensor([1.0]),
            num_generations=G,
            local_slice=slice(self.process_index * n, (self.process_index + 1) * n),
            mode="train",
            step=0,
        )
        return Round(batch, scored, int(sum(s for _, s in everyone)))

    def dataset_size(self) -> int:
        return len(self.world.rows)

    def rows(self, indices) -> list[dict[str, Any]]:
        return [self.world.rows[int(i)] for i in indices]

    def prompt_features(self, indices, layer: int) -> torch.Tensor:
        return torch.tensor([[float(self.world.rows[int(i)]["pattern"] == "signal"), float(i % 5)] for i in indices])

    def sum_over_processes(self, value: float) -> float:
        return float(sum(self.world.exchange(self.process_index, float(value))))

    def broadcast(self, value: list[int]) -> list[int]:
        return list(self.world.exchange(self.process_index, list(value))[0])


def first_inputs(world: FakeWorld, rank: int, share: int, start: int = 0) -> list[dict[str, Any]]:
    """Round 0's rows of one process as TRL's RepeatSampler lays them out: `share` prompts, G copies each."""
    rows = world.rows[start + rank * share : start + (rank + 1) * share]
    return [row for row in rows for _ in range(world.G)]
