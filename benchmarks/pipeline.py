"""Pipeline periods of the zoo: exact (general and contiguous) vs the baselines.

For each zoo model and size on each platform: CP-SAT's period with its proven bound and
status (general assignment with an acyclic stage graph, and contiguous stages), the
PipeDream-style DP, equal op count, equal FLOPs and capability-greedy. Baselines whose
stage graph is cyclic are shown as "-" (not a valid pipeline). Times in µs.

Run: ``.venv/bin/python benchmarks/pipeline.py [--sizes tiny] [--platforms edge-soc,multi-gpu]``
"""

from __future__ import annotations

import argparse
import sys

from hetsched.graph import zoo
from hetsched.problem import Problem
from hetsched.schedule.throughput import BASELINES, solve_pipeline


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="tiny")
    ap.add_argument("--platforms", default="edge-soc,multi-gpu")
    ap.add_argument("--time-limit", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    print(f"CP-SAT {args.time_limit:g} s general / {args.time_limit / 2:g} s contiguous, "
          f"{args.workers} workers; periods in us")  # fmt: skip
    head = "| model | platform | ops | general (status) | bound | contiguous (status) | bound |"
    print(head + " " + " | ".join(BASELINES) + " |")
    print("|---" * (7 + len(BASELINES)) + "|")
    for size in args.sizes.split(","):
        for info in zoo.list_models():
            graph = zoo.graph(info.name, size)
            for platform in args.platforms.split(","):
                problem = Problem.build(graph, platform)
                runs = {}
                for contiguous, limit in ((False, args.time_limit), (True, args.time_limit / 2)):
                    runs[contiguous] = solve_pipeline(
                        problem, graph=graph, contiguous=contiguous, time_limit=limit, seed=0,
                        workers=args.workers,
                    )  # fmt: skip
                base = runs[False].baselines  # the feasible (acyclic) baselines' periods
                cells = [f"{base[b] * 1e6:.1f}" if b in base else "-" for b in BASELINES]
                g, c = runs[False], runs[True]
                gr, cr = g.pipeline, c.pipeline
                assert gr is not None and cr is not None  # throughput plans carry them
                print(
                    f"| {graph.name} | {platform} | {problem.n} | {gr.period * 1e6:.1f} "
                    f"({g.status}) | {gr.period_bound * 1e6:.1f} | {cr.period * 1e6:.1f} "
                    f"({c.status}) | {cr.period_bound * 1e6:.1f} | " + " | ".join(cells) + " |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
