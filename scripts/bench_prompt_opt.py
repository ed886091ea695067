"""Benchmark: INSTINCT against random search, APE, GP-BO and DSPy's MIPROv2 and GEPA, on one black box and budget.

The embedded SmolLM2-135M-Instruct is the black box (greedy answers) and the white box (writes instructions, gives
features). Every method pays the same budget of black-box calls (one call = one answered input), on the same task
splits, seeds and metric; the instruction (or prompt) each method picks on validation is then scored on the test
split, outside the budget. Per task the script also scores every candidate of the pool on validation, to report the
spread between the pool's best and its median candidate.

Methods:
- `instinct`, `random`, `gp_bo`: the instruction x exemplar pool (`rlsurrogate.prompt_opt.exemplars`: instructions
  from INSTINCT's soft-prompt pool and APE samples, each with 0-4 demos from the train split), searched through
  `search_pool` by NeuralUCB on white-box features (pool-standardised, 32 principal components, fan-in initial
  weights), at random, and by GP-EI on 10 principal components of the same features;
- `ape`: APE, instructions sampled from the white box (temperature 0.9), no demos, queried in order;
- `mipro`: dspy.MIPROv2 (auto="light", its documented default; 3 instruction and 6 demo-set candidates), the white
  box as `prompt_model`;
- `gepa`: dspy.GEPA with `max_metric_calls` = the budget, the white box as `reflection_lm`, and a feedback metric that
  names the expected output (GEPA's documented use); its `InstructionProposer` gets the lenient adapter below
  (its default JSONAdapter fails on every answer of the 135M model, so GEPA would never propose).
DSPy talks to the black box and to the white box through `rlsurrogate serve`'s server (`ChatServer`, the class the
command runs) on 127.0.0.1, with `dspy.LM("openai/...", api_base=...)`. Its adapter renders the task program's call
with the evaluation template every other method uses ("Instruction: ...", the demos, "Input: x", "Output:") and
reads the whole answer as the output; the proposer's and reflection's own prompts are DSPy's, parsed leniently
(the 135M model rarely writes DSPy's field markers).

Counting: every distinct request a method sends to the black box during its search is one call; once a method has
used its budget, further requests are answered with an empty string without running the model (score 0). Proposer /
reflection calls (white box) are counted separately. The greedy black box is memoised across methods: a request
answered before is not generated again, but it is charged to every method that sends it.

    flock /tmp/rlsurrogate-cpu.lock python scripts/bench_prompt_opt.py                  # 1 task x 5 seeds x 6 methods
    python scripts/bench_prompt_opt.py --tasks animal_or_fruit --seeds 0 --budget-calls 48 --methods instinct gepa
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path

import torch

from rlsurrogate.models import load_model
from rlsurrogate.prompt_opt.candidates import CandidateConfig, InstructionGenerator
from rlsurrogate.prompt_opt.chat_server import ChatServer
from rlsurrogate.prompt_opt.clients import Completion, Usage, generate_chat
from rlsurrogate.prompt_opt.evaluator import EVAL_TEMPLATE, InstructionEvaluator
from rlsurrogate.prompt_opt.exemplars import ExemplarConfig, ExemplarPromptPool
from rlsurrogate.prompt_opt.instinct import INSTINCTConfig, optimize, search_pool
from rlsurrogate.prompt_opt.query_log import Budget, request_key
from rlsurrogate.prompt_opt.results import plot_best_curves
from rlsurrogate.prompt_opt.reward import InstructionFeaturizer
from rlsurrogate.prompt_opt.tasks import Task, load_task

POOL_METHODS = ("instinct", "random", "gp_bo", "ape")
DSPY_METHODS = ("mipro", "gepa")
MODEL = "smollm2-135m-instruct"
OVER_BUDGET = "(budget spent)"


class BlackBox:
    """The greedy black box: one generation per distinct request (memo), calls counted per phase and capped."""

    def __init__(self, model, tokenizer, lock: threading.Lock):
        self.model, self.tokenizer, self.lock = model, tokenizer, lock
        self.memo: dict[str, tuple[str, int, int]] = {}
        self.generations = 0
        self.phase, self.cap = "setup", None
        self.seen: dict[str, set[str]] = {}
        self.sampler = torch.Generator().manual_seed(0)

    def start(self, phase: str, cap: int | None) -> None:
        self.phase, self.cap = phase, cap
        self.seen.setdefault(phase, set())

    def calls(self, phase: str) -> int:
        return len(self.seen.get(phase, ()))

    def __call__(self, messages, max_tokens, temperature):  # the ChatServer's GenerateFn
        key = request_key(MODEL, messages, max_tokens=max_tokens, temperature=temperature)
        seen = self.seen.setdefault(self.phase, set())
        if key not in seen and self.cap is not None and len(seen) >= self.cap:
            return OVER_BUDGET, 0, 0  # not sent to the model; scores 0 (DSPy treats an empty answer as an error)
        seen.add(key)
        if temperature == 0 and key in self.memo:
            return self.memo[key]
        with self.lock:
            c = generate_chat(self.model, self.tokenizer, [messages], max_tokens, temperature, self.sampler)[0]
        self.generations += 1
        answer = (c.text, c.prompt_tokens, c.completion_tokens)
        if temperature == 0:
            self.memo[key] = answer
        return answer


class BlackBoxClient:
    """The `ChatClient` our methods use: the same `BlackBox` function, called in process."""

    def __init__(self, black_box: BlackBox):
        self.black_box, self.name, self.usage = black_box, MODEL, Usage()

    def complete(self, requests, *, max_tokens=16, temperature=0.0, on_result=None):
        out = []
        for i, messages in enumerate(requests):
            c = Completion(*self.black_box(messages, max_tokens, temperature))
            self.usage.record(c)
            if on_result is not None:
                on_result(i, c)
            out.append(c)
        return out


class WhiteBox:
    """The proposer / reflection model behind its own server: sampled or greedy, every call counted."""

    def __init__(self, model, tokenizer, lock: threading.Lock):
        self.model, self.tokenizer, self.lock = model, tokenizer, lock
        self.calls = 0
        self.sampler = torch.Generator().manual_seed(0)

    def __call__(self, messages, max_tokens, temperature):
        with self.lock:
            c = generate_chat(self.model, self.tokenizer, [messages], max_tokens, temperature, self.sampler)[0]
        self.calls += 1
        return c.text, c.prompt_tokens, c.completion_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["animal_or_fruit"], help="also: larger_number, sentiment, ...")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--methods", nargs="+", default=[*POOL_METHODS, *DSPY_METHODS])
    parser.add_argument("--budget-calls", type=int, default=96, help="black-box calls per method and seed")
    parser.add_argument("--n-train", type=int, default=12, help="train split: demos for every method")
    parser.add_argument("--n-val", type=int, default=8, help="validation examples (one query = n_val calls)")
    parser.add_argument("--n-test", type=int, default=20, help="test examples the chosen prompt is scored on")
    parser.add_argument("--answer-tokens", type=int, default=8, help="max tokens of a black-box answer")
    parser.add_argument("--soft-pool", type=int, default=64, help="INSTINCT soft prompts (instruction sources)")
    parser.add_argument("--ape-samples", type=int, default=32, help="APE samples added to the instruction set")
    parser.add_argument("--pool-size", type=int, default=128, help="instruction x exemplar candidates")
    parser.add_argument("--max-demos", type=int, default=4, help="largest number of demos in a candidate")
    parser.add_argument("--train-steps", type=int, default=300, help="NeuralUCB Adam steps per refit (INSTINCT 1000)")
    parser.add_argument("--proposer-tokens", type=int, default=64, help="max tokens of a proposer / reflection call")
    parser.add_argument("--out-dir", default="runs/bench_prompt_opt")
    args = parser.parse_args()
    torch.set_num_threads(2)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    model, tokenizer = load_model(MODEL)
    records, spreads = [], {}
    for task_name in args.tasks:
        task_records, spreads[task_name] = run_task(task_name, model, tokenizer, args, t0)
        records += task_records
        curves = {m: [r["curve"] for r in task_records if r["method"] == m and r["curve"]] for m in args.methods}
        plot_best_curves({m: c for m, c in curves.items() if c}, out / f"{task_name}.png",
                         title=f"{task_name}: best validation score vs queries ({len(args.seeds)} seeds)")  # fmt: skip
    summary = summarize(records, spreads, args, time.time() - t0)
    (out / "records.json").write_text(json.dumps({"records": records, "spreads": spreads, "args": vars(args)}))
    print(json.dumps(summary))


def run_task(task_name: str, model, tokenizer, args, t0: float) -> tuple[list[dict], dict]:
    """Every method and seed on one task; returns the per-run records and the pool's spread."""
    task = load_task(task_name, n_demo=args.n_train, n_val=args.n_val)
    train, val, test = task.split()
    test = test[: args.n_test]
    lock = threading.Lock()
    black_box, white_box = BlackBox(model, tokenizer, lock), WhiteBox(model, tokenizer, lock)
    client = BlackBoxClient(black_box)
    log = _logger(t0, task_name)

    generator = InstructionGenerator(
        model, tokenizer, train, CandidateConfig(pool_size=args.soft_pool, soft_prompt_scale=3.0)
    )
    instructions = [i for i in generator.generate(generator.Z) + generator.sample_ape(args.ape_samples) if i]
    white_box_setup = args.soft_pool + args.ape_samples  # generations that wrote the instruction set
    pool = ExemplarPromptPool(
        instructions, train, InstructionFeaturizer(model, tokenizer),
        ExemplarConfig(pool_size=args.pool_size, max_demos=args.max_demos),
    )  # fmt: skip
    black_box.start("spread", None)
    spread_eval = InstructionEvaluator(task, client, Budget(max_queries=10**9), None, args.answer_tokens)
    pool_scores = [spread_eval.evaluate(p).score for p in pool.prompts]
    spread = {
        "distinct_instructions": len(set(instructions)), "pool": len(pool.prompts),
        "best": max(pool_scores), "median": statistics.median(pool_scores),
        "spread": max(pool_scores) - statistics.median(pool_scores),
        "share_above_median_plus_0.3": sum(s >= statistics.median(pool_scores) + 0.3 for s in pool_scores)
        / len(pool_scores),
    }  # fmt: skip
    log(f"pool of {len(pool.prompts)} prompts from {len(set(instructions))} instructions: best {spread['best']:.3f}, "
        f"median {spread['median']:.3f}, spread {spread['spread']:.3f}")  # fmt: skip

    records = []
    servers = _servers(black_box, white_box, args) if set(args.methods) & set(DSPY_METHODS) else None
    try:
        for seed in args.seeds:
            for method in args.methods:
                start = time.time()
                phase = f"{method}/{seed}"
                black_box.start(phase, args.budget_calls)
                calls_before = white_box.calls
                if method in DSPY_METHODS:
                    prompt, val_score, curve = run_dspy(method, task, train, val, seed, servers, black_box, args)
                else:
                    prompt, val_score, curve = run_pool_method(method, task, client, generator, pool, seed, args)
                calls, proposer = black_box.calls(phase), white_box.calls - calls_before
                black_box.start(f"test/{phase}", None)
                test_score = _test_score(method, task, client, prompt, test, servers, args)
                records.append({
                    "task": task_name, "method": method, "seed": seed, "test_score": test_score,
                    "validation_score": val_score, "calls": calls, "proposer_calls": proposer,
                    "shared_white_box_calls": white_box_setup if method in ("instinct", "random", "gp_bo") else 0,
                    "wall_s": time.time() - start, "prompt": prompt, "curve": curve,
                })  # fmt: skip
                log(f"seed {seed} {method:8s} val {val_score:.3f} test {test_score:.3f} calls {calls} proposer "
                    f"{proposer} ({time.time() - start:.0f} s): {prompt[:80]!r}")  # fmt: skip
    finally:
        if servers is not None:
            for server in servers[:2]:
                server.stop()
    return records, spread


def run_pool_method(method, task, client, generator, pool, seed, args) -> tuple[str, float, list[float]]:
    """INSTINCT / random / GP-BO on the exemplar pool, APE on its own samples; (prompt, val score, best curve)."""
    config = INSTINCTConfig(n_init=5, seed=seed, train_steps=args.train_steps)
    if method == "ape":
        queries = args.budget_calls // args.n_val
        evaluator = InstructionEvaluator(task, client, Budget(max_queries=queries), None, args.answer_tokens)
        result = optimize("ape", evaluator, generator, config)
    else:  # the same pool, black box and budget of distinct calls for every pool method
        name = method.replace("_", "-")
        result = search_pool(name, pool, task, client, args.budget_calls, config, args.answer_tokens)
    best = result.best
    return (best.instruction, best.score, result.best_curve()) if best else ("", 0.0, [])


def run_dspy(method, task: Task, train, val, seed, servers, black_box, args) -> tuple[str, float, list[float]]:
    """MIPROv2 or GEPA through the served black box; (prompt as our template's prefix, val score, no curve)."""
    import dspy

    _, _, task_lm, proposer_lm = servers
    program = dspy.Predict("input -> output")
    trainset = [dspy.Example(input=e.input, output=e.output).with_inputs("input") for e in train]
    valset = [dspy.Example(input=e.input, output=e.output).with_inputs("input") for e in val]
    with dspy.context(lm=task_lm, adapter=_template_adapter()):
        if method == "mipro":
            optimizer = dspy.MIPROv2(
                metric=lambda gold, pred, trace=None: task.score(pred.output or "", gold.output),
                prompt_model=proposer_lm, task_model=task_lm, auto="light", seed=seed, num_threads=1,
            )  # fmt: skip
            compiled = optimizer.compile(program, trainset=trainset, valset=valset, seed=seed)
        else:

            def feedback(gold, pred, trace=None, pred_name=None, pred_trace=None):
                score = task.score(pred.output or "", gold.output)
                text = f"Expected output: {gold.output!r}. The answer was {pred.output!r}, score {score:.2f}."
                return dspy.Prediction(score=score, feedback=text)

            from dspy.teleprompt.gepa import InstructionProposer

            optimizer = dspy.GEPA(
                metric=feedback, max_metric_calls=args.budget_calls, reflection_lm=proposer_lm, seed=seed,
                num_threads=1, instruction_proposer=InstructionProposer(adapter=_template_adapter()),
            )  # fmt: skip
            compiled = optimizer.compile(program, trainset=trainset, valset=valset)
        phase = black_box.phase
        black_box.start(f"val/{phase}", None)  # the chosen program's validation score: outside the budget
        score = statistics.mean(task.score(compiled(input=e.input).output or "", e.output) for e in val)
        black_box.start(phase, args.budget_calls)
    predictor = compiled.predictors()[0]
    demos = [(d["input"], d["output"]) for d in predictor.demos]
    prompt = "\n\n".join([predictor.signature.instructions, *(f"Input: {x}\nOutput: {y}" for x, y in demos)])
    return prompt, score, []


def summarize(records: list[dict], spreads: dict, args, wall_s: float) -> dict:
    """Prints the table (median test score over seeds with its range, calls, wall time) and returns the JSON."""
    methods = list(dict.fromkeys(r["method"] for r in records))
    print(f"\n{'task':16s} {'method':9s} {'test median':>11s} {'[min, max]':>14s} {'val median':>10s} "
          f"{'calls':>6s} {'proposer':>8s} {'wall s':>7s}")  # fmt: skip
    for task_name in args.tasks:
        print(f"{task_name:16s} pool spread: best {spreads[task_name]['best']:.3f} median "
              f"{spreads[task_name]['median']:.3f} (spread {spreads[task_name]['spread']:.3f})")  # fmt: skip
        for m in methods:
            rs = [r for r in records if r["task"] == task_name and r["method"] == m]
            t = [r["test_score"] for r in rs]
            print(f"{task_name:16s} {m:9s} {statistics.median(t):11.3f} [{min(t):.3f}, {max(t):.3f}] "
                  f"{statistics.median(r['validation_score'] for r in rs):10.3f} "
                  f"{statistics.median(r['calls'] for r in rs):6.0f} "
                  f"{statistics.median(r['proposer_calls'] + r['shared_white_box_calls'] for r in rs):8.0f} "
                  f"{statistics.median(r['wall_s'] for r in rs):7.1f}")  # fmt: skip
    test = {m: statistics.median(r["test_score"] for r in records if r["method"] == m) for m in methods}
    dspy_best = max((test[m] for m in DSPY_METHODS if m in test), default=None)
    print(f"\nwall time {wall_s:.0f} s; medians over tasks x seeds")
    return {
        "test_score": {m: round(v, 4) for m, v in test.items()},
        "instinct_minus_random": round(test["instinct"] - test["random"], 4) if {"instinct", "random"} <= set(test)
        else None,
        "instinct_minus_best_dspy": round(test["instinct"] - dspy_best, 4) if "instinct" in test and dspy_best
        is not None else None,
        "spread": {t: round(s["spread"], 4) for t, s in spreads.items()},
        "seeds": len(args.seeds), "budget": args.budget_calls, "tasks": args.tasks, "wall_s": round(wall_s),
    }  # fmt: skip


# ---- private helpers ---------------------------------------------------------------------------------------------


def _test_score(method, task, client, prompt, test, servers, args) -> float:
    """The chosen prompt on the test split, through the same black box (the DSPy program's prompt is ours too)."""
    if not prompt:
        return 0.0
    evaluator = InstructionEvaluator(task, client, Budget(max_queries=1), None, args.answer_tokens)
    return evaluator.score_on(prompt, test)[0]


def _servers(black_box: BlackBox, white_box: WhiteBox, args):
    """(black-box server, white-box server, dspy task LM, dspy proposer LM)."""
    import dspy

    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)  # every request reaches the counter
    bb, wb = ChatServer(black_box, MODEL).start(), ChatServer(white_box, MODEL).start()
    task_lm = dspy.LM(f"openai/{MODEL}", api_base=bb.base_url, api_key="local", temperature=0.0,
                      max_tokens=args.answer_tokens, cache=False, num_retries=0)  # fmt: skip
    proposer_lm = dspy.LM(f"openai/{MODEL}", api_base=wb.base_url, api_key="local", temperature=1.0,
                          max_tokens=args.proposer_tokens, cache=False, num_retries=0)  # fmt: skip
    return bb, wb, task_lm, proposer_lm


def _template_adapter():
    """A DSPy adapter: the task program's call in our evaluation template; other signatures as ChatAdapter's,
    parsed leniently (the whole answer goes to the last output field when the field markers are missing)."""
    import dspy

    class TemplateAdapter(dspy.ChatAdapter):
        def format(self, signature, demos, inputs):
            if list(signature.input_fields) != ["input"] or list(signature.output_fields) != ["output"]:
                return super().format(signature, demos, inputs)
            blocks = [f"Input: {d['input']}\nOutput: {d['output']}" for d in demos if "output" in d]
            prompt = "\n\n".join([signature.instructions, *blocks])
            return [{"role": "user", "content": EVAL_TEMPLATE.format(instruction=prompt, input=inputs["input"])}]

        def parse(self, signature, completion):
            if list(signature.output_fields) == ["output"] and list(signature.input_fields) == ["input"]:
                return {"output": completion.strip()}
            try:
                return super().parse(signature, completion)
            except Exception:  # noqa: BLE001 - DSPy's parse errors vary by version
                names = list(signature.output_fields)
                return {n: (completion.strip() if n == names[-1] else "") for n in names}

    return TemplateAdapter(use_json_adapter_fallback=False)


def _logger(t0: float, task_name: str):
    def log(message: str) -> None:
        print(f"[{time.time() - t0:6.0f}s] {task_name}: {message}", flush=True)

    return log


if __name__ == "__main__":
    main()
