"""Tensor parallelism as a solver choice, side by side: no split, Megatron-style fixed
sharding, sequence parallelism, and the solver's choice.

For each zoo model (fused) and platform: the portfolio on the problem without split modes
(every op whole, the plans before issue 18), on the Megatron-style restriction (every op
that can split runs split across its widest group of identical devices: attention by
heads, linear layers by output features, convolutions by output channels), on the
sequence-parallel restriction (every op that can split by tokens does, across its widest
group:
:func:`~hetsched.schedule.latency.splits.token_sharding`), and on the whole problem with
split modes, hinted with the best of the three. Each row has the
bound of the problem with splits (the relaxation lets an op run on one device of a split
mode for the split's time: valid when ops may split), the bound when any op may split any
way (:func:`~hetsched.schedule.latency.splits.any_split_bound_of`: modelled or not,
transfers free), how many ops the solver split, and each device's busy share.

    .venv/bin/python benchmarks/splitting.py --models gpt,resnet,unet,mlp,mamba,decode \\
        --sizes tiny --platforms edge-soc,multi-gpu --time-limit 10 \\
        -o benchmarks/results/splitting-tiny.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hetsched.costmodel import Platform
from hetsched.costmodel.sharding import describe_split
from hetsched.graph import fuse, zoo
from hetsched.plan import Plan, validate
from hetsched.problem import Problem
from hetsched.schedule.latency.portfolio import solve_portfolio
from hetsched.schedule.latency.splits import (
    any_split_bound_of,
    fixed_sharding,
    is_split,
    token_sharding,
    without_splits,
)
from hetsched.schedule.latency.warmstart import carry_plan

MODELS = ("gpt", "resnet", "unet", "mlp", "mamba", "decode")


def _busy(plan: Plan) -> dict[str, float]:
    busy: dict[str, float] = {}
    for op, m in plan.modes.items():
        for d in m.devices:
            busy[d] = busy.get(d, 0.0) + plan.finish[op] - plan.start[op]
    return {d: b / plan.makespan for d, b in sorted(busy.items())} if plan.makespan else {}


def measure(model: str, size: str, platform: str, time_limit: float) -> dict[str, Any]:
    graph = fuse(zoo.graph(model, size))
    problem = Problem.build(graph, platform, split=True)
    row: dict[str, Any] = {"model": f"{model}-{size}", "platform": platform}
    row["ops"] = len(graph.nodes)
    plans: dict[str, Plan] = {}
    recipes = (
        ("whole", without_splits(problem)),
        ("megatron", fixed_sharding(problem)),
        ("sequence", token_sharding(problem)),
    )
    for label, sub in recipes:
        plan = solve_portfolio(sub, time_limit=time_limit, seed=0)
        validate(plan, problem)
        plans[label] = plan
    start = min(plans.values(), key=lambda p: p.makespan)
    hint = carry_plan(start, problem)
    plan = solve_portfolio(problem, time_limit=time_limit, seed=0, hint=hint)
    validate(plan, problem)
    plans["solver"] = plan
    for label, p in plans.items():
        row[f"{label}_us"] = p.makespan * 1e6
        row[f"{label}_status"] = p.status
    row["whole_bound_us"] = plans["whole"].lower_bound * 1e6  # of the problem without splits
    row["bound_us"] = plan.lower_bound * 1e6  # of the problem with splits
    row["any_split_bound_us"] = any_split_bound_of(problem, graph, Platform.preset(platform)) * 1e6
    row["split_ops"] = sum(1 for m in plan.modes.values() if describe_split(m.tag))
    row["splittable_ops"] = len(set(problem.modes.op[is_split(problem)].tolist()))
    row["busy"] = _busy(plan)
    row["speedup"] = row["whole_us"] / row["solver_us"]
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--sizes", default="tiny")
    ap.add_argument("--platforms", default="edge-soc,multi-gpu")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("-o", "--output", type=Path)
    args = ap.parse_args(argv)
    rows = []
    print(
        "| model | platform | ops | whole µs (status) | Megatron µs | sequence µs "
        "| solver µs (status) "
        "| bound with splits µs | gap | any-split bound µs | split / splittable ops | speed-up "
        "| busy |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        for model in args.models.split(","):
            for platform in args.platforms.split(","):
                r = measure(model, size, platform, args.time_limit)
                rows.append(r)
                gap = 1 - r["bound_us"] / r["solver_us"] if r["solver_us"] else 0.0
                busy = ", ".join(f"{d} {100 * b:.0f}%" for d, b in r["busy"].items() if b > 0.005)
                print(
                    f"| {r['model']} | {platform} | {r['ops']} | {r['whole_us']:.1f} "
                    f"({r['whole_status']}) | {r['megatron_us']:.1f} | {r['sequence_us']:.1f} | "
                    f"{r['solver_us']:.1f} "
                    f"({r['solver_status']}) | {r['bound_us']:.1f} | {100 * gap:.1f}% | "
                    f"{r['any_split_bound_us']:.1f} | "
                    f"{r['split_ops']} / {r['splittable_ops']} | {r['speedup']:.2f}x | {busy} |",
                    flush=True,
                )
    if args.output:
        args.output.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
