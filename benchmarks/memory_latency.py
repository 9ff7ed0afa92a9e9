"""Latency with memory on (live bytes, weights resident or streamed) next to memory off.

For each zoo model (fused), on edge-soc: the portfolio with memory off (every weight charged
at the SRAM's bandwidth, capacities ignored: the figure before issue 16) and with memory on
(the default now); each plan's live peak per device against its capacity, how many ops
stream their weights, and the executor's measured peak against the plan's (virtual clock).

    .venv/bin/python benchmarks/memory_latency.py --sizes tiny,small --time-limit 10 \\
        -o benchmarks/results/memory-latency.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import hetsched
from hetsched.exec import execute
from hetsched.graph import fuse, zoo
from hetsched.problem import Problem
from hetsched.problem.problem import is_streamed

MODELS = ("gpt", "mamba", "mlp", "resnet", "unet", "decode")


def _over(plan: Any, problem: Problem) -> list[str]:
    return [
        f"{d} {plan.memory[d] / 2**20:.1f}>{problem.capacity[i] / 2**20:.0f} MiB"
        for i, d in enumerate(problem.devices)
        if plan.memory[d] > problem.capacity[i] * (1 + 1e-12)
    ]


def measure(model: str, size: str, time_limit: float) -> dict[str, Any]:
    graph = fuse(zoo.graph(model, size))
    row: dict[str, Any] = {"model": f"{model}-{size}", "ops": len(graph.nodes)}
    for label, memory in (("off", False), ("on", True)):
        problem = Problem.build(graph, "edge-soc", memory=memory)
        plan = hetsched.solve(graph, "edge-soc", memory=memory, time_limit=time_limit, seed=0)
        row[f"{label}_us"] = plan.makespan * 1e6
        row[f"{label}_status"] = plan.status
        row[f"{label}_bound_us"] = plan.lower_bound * 1e6
        row[f"{label}_npu_peak_mib"] = max(plan.memory[d] for d in ("npu0", "npu1")) / 2**20
        row[f"{label}_over"] = _over(plan, Problem.build(graph, "edge-soc", memory=True))
        row[f"{label}_streamed"] = sum(1 for m in plan.modes.values() if is_streamed(m.tag))
        if memory:
            run = execute(plan, problem)
            row["exec_peak_equal"] = dict(run.memory) == dict(plan.memory)
            row["peaks_mib"] = {d: v / 2**20 for d, v in plan.memory.items()}
    row["change"] = row["on_us"] / row["off_us"] - 1
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--sizes", default="tiny,small")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("-o", "--output", type=Path)
    args = ap.parse_args(argv)
    rows = []
    print(
        "| model | ops | memory off µs (status) | NPU peak off | over capacity (off) "
        "| memory on µs (status) | NPU peak on | streamed ops | change | executor peak = plan |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        for model in args.models.split(","):
            r = measure(model, size, args.time_limit)
            rows.append(r)
            print(
                f"| {r['model']} | {r['ops']} | {r['off_us']:.1f} ({r['off_status']}) | "
                f"{r['off_npu_peak_mib']:.2f} MiB | {', '.join(r['off_over']) or 'none'} | "
                f"{r['on_us']:.1f} ({r['on_status']}) | {r['on_npu_peak_mib']:.2f} MiB | "
                f"{r['on_streamed']} | {100 * r['change']:+.1f}% | "
                f"{'yes' if r['exec_peak_equal'] else 'NO'} |",
                flush=True,
            )
    if args.output:
        args.output.write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all(r["exec_peak_equal"] and not r["on_over"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
