"""Robustness of each solver's plan under noise, for the zoo models on a platform.

For every zoo model (tiny and small) on ``edge-soc``: solve with HEFT, PEFT, CPOP and the
portfolio (CP-SAT/LNS), then replay each plan 200 times with 10% lognormal noise on op and
transfer times (same assignment and per-device order) and report the planned makespan and
the median / p95 of the realized ones, relative to the planned makespan of the best plan.

Run: ``.venv/bin/python benchmarks/robustness.py [--sizes tiny,small] [--time-limit 10]``
"""

from __future__ import annotations

import argparse
import sys

from hetsched.exec.simulate import robustness
from hetsched.graph import zoo
from hetsched.problem import Problem
from hetsched.solver import get_solver

SOLVERS = ("heft", "peft", "cpop", "portfolio")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="tiny,small")
    ap.add_argument("--platform", default="edge-soc")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--samples", type=int, default=200)
    args = ap.parse_args(argv)
    print(f"noise {args.noise:.0%} lognormal, {args.samples} samples, platform {args.platform}")
    print("| model | solver | planned (us) | median (us) | p95 (us) | p95 / best planned |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        for info in zoo.list_models():
            graph = zoo.graph(info.name, size)
            problem = Problem.build(graph, args.platform)
            plans = {}
            for name in SOLVERS:
                kw = {"workers": 2} if name == "portfolio" else {}
                plans[name] = get_solver(name)(problem, time_limit=args.time_limit, seed=0, **kw)
            best = min(p.makespan for p in plans.values())
            for name, plan in plans.items():
                r = robustness(plan, problem, noise=args.noise, samples=args.samples, seed=0)
                print(
                    f"| {graph.name} | {name} | {plan.makespan * 1e6:.1f} | "
                    f"{r['median'] * 1e6:.1f} | {r['p95'] * 1e6:.1f} | {r['p95'] / best:.3f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
