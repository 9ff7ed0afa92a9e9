"""Latency of the zoo models on a platform: portfolio vs HEFT vs everything on one device.

For each zoo model and size: the portfolio's makespan, proven bound and gap, HEFT's
makespan, and the makespan of running every op on the GPU (or the best single device that
supports every op), all from the same cost model.

Run: ``.venv/bin/python benchmarks/models_latency.py [--sizes tiny,small] [--platform edge-soc]``
"""

from __future__ import annotations

import argparse
import sys
import time

from hetsched.graph import zoo
from hetsched.plan import validate
from hetsched.problem import Problem
from hetsched.solver import get_solver


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="tiny,small")
    ap.add_argument("--platform", default="edge-soc")
    ap.add_argument("--time-limit", type=float, default=10.0)
    args = ap.parse_args(argv)
    print(f"platform {args.platform}, portfolio {args.time_limit:g} s, 2 workers; times in us")
    print(
        "| model | ops | portfolio | status | bound | gap | HEFT | vs HEFT | all-on-GPU "
        "| vs GPU | solve s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        for info in zoo.list_models():
            graph = zoo.graph(info.name, size)
            problem = Problem.build(graph, args.platform)
            t0 = time.perf_counter()
            plan = get_solver("portfolio")(problem, time_limit=args.time_limit, seed=0, workers=2)
            wall = time.perf_counter() - t0
            validate(plan, problem)
            heft = get_solver("heft")(problem, time_limit=args.time_limit, seed=0)
            gpu = next((d for d in problem.devices if d.startswith("gpu")), None)
            on_gpu = problem.single_device_makespan(gpu) if gpu else None
            gpu_txt = f"{on_gpu * 1e6:.1f}" if on_gpu else "unsupported op"
            vs_gpu = f"{on_gpu / plan.makespan:.2f}x" if on_gpu else "-"
            print(
                f"| {graph.name} | {problem.n} | {plan.makespan * 1e6:.1f} | {plan.status} | "
                f"{plan.lower_bound * 1e6:.1f} | {100 * plan.gap:.1f}% | "
                f"{heft.makespan * 1e6:.1f} | {100 * (1 - plan.makespan / heft.makespan):.1f}% "
                f"| {gpu_txt} | {vs_gpu} | {wall:.1f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
