"""Shared tensors: transfers and makespans on zoo models with forks.

A tensor read by several ops that sit on one remote device moves there once. This measures
what that changes on the zoo models with forks (residual adds, attention q/k/v from one
input, split heads): transfers, bytes moved and makespan, with and without link
contention, for HEFT and the portfolio. It only uses ``hetsched.solve`` and the plan's
transfers, so the same script measures an older checkout (``PYTHONPATH=<checkout>``).

    .venv/bin/python benchmarks/shared_tensors.py --time-limit 10 -o shared.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import hetsched
from hetsched.graph import zoo

CASES = (("resnet", "small", {}), ("unet", "small", {}), ("gpt", "small", {"heads": "split"}))


def measure(model: str, size: str, kw: dict[str, str], solver: str, contention: bool,
            time_limit: float) -> dict[str, object]:  # fmt: skip
    graph = zoo.graph(model, size, **kw)
    t0 = time.perf_counter()
    plan = hetsched.solve(graph, "edge-soc", solver=solver, time_limit=time_limit, seed=0,
                          link_contention=contention)  # fmt: skip
    return {
        "model": f"{model}-{size}" + (f"-{kw['heads']}" if kw else ""),
        "ops": len(graph.nodes),
        "edges": len(graph.edges),
        "tensors": len(getattr(graph, "tensors", graph.edges)),
        "solver": solver,
        "link_contention": contention,
        "makespan_ms": plan.makespan * 1e3,
        "bound_ms": plan.lower_bound * 1e3,
        "status": plan.status,
        "transfers": len(plan.transfers),
        "moved_MiB": sum(t.bytes for t in plan.transfers) / 2**20,
        "wall_s": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--solvers", default="heft,portfolio")
    ap.add_argument("-o", "--output", default=None)
    args = ap.parse_args(argv)
    rows = []
    for model, size, kw in CASES:
        for solver in args.solvers.split(","):
            for contention in (False, True):
                row = measure(model, size, kw, solver, contention, args.time_limit)
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
