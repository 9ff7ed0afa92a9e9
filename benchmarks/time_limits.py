"""Whether time limits hold: HEFT's wall time and the portfolio's against its limit.

For each graph: ``--solver heft`` through the public entry point (bounds included) and the
portfolio with ``--time-limit``, wall-clock from the call to the validated plan, with the
bounds it skipped for time. Graphs: the random suite (the sizes given, 3 and 8 devices,
CCR 1 and 10), series graphs with many distinct segments (each with its own LPs: the shape
that made HEFT wait 5 s on its bound), and the zoo's small models on edge-soc.

    .venv/bin/python benchmarks/time_limits.py --sizes 100,500,1000,3000,10000 --limit 5
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hetsched.api import build_problem as build_model_problem
from hetsched.bench.instances import build_problem, random_spec
from hetsched.problem import Problem
from hetsched.solver import run_solver
from tests.families import series_problem


def graphs(sizes: list[int]) -> list[tuple[str, Problem]]:
    out = []
    for n in sizes:
        for d, ccr in ((3, 1.0), (8, 10.0)):
            out.append(
                (
                    f"random-{n}-d{d}-ccr{ccr:g}",
                    build_problem(random_spec(n, d, ccr, seed=0, beta=1)),
                )
            )
    for w, depth, segs, d in ((4, 3, 40, 4), (5, 4, 24, 5), (6, 5, 16, 8)):
        p = series_problem(2, segments=segs, width=w, devices=d, depth=depth)
        out.append((f"series-{p.n}-d{d}", p))
    for model in ("gpt", "resnet", "unet"):
        from hetsched.graph.resolve import load_graph_spec

        graph = load_graph_spec(model, size="small")
        out.append((f"{model}-small-edge-soc", build_model_problem(graph, "edge-soc")))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,500,1000,3000,10000")
    ap.add_argument("--limit", type=float, default=5.0)
    args = ap.parse_args(argv)
    print(f"| graph | ops | heft wall (s) | portfolio wall (s), limit {args.limit:g} | over | "
          "gap | bounds skipped |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for name, p in graphs([int(x) for x in args.sizes.split(",")]):
        t0 = time.perf_counter()
        run_solver("heft", p, time_limit=args.limit)
        heft = time.perf_counter() - t0
        t0 = time.perf_counter()
        plan = run_solver("portfolio", p, time_limit=args.limit)
        wall = time.perf_counter() - t0
        over = wall / args.limit - 1
        worst = max(worst, over)
        skipped = ", ".join(plan.stats.get("bounds_skipped", [])) or "-"
        print(f"| {name} | {p.n} | {heft:.2f} | {wall:.2f} | {100 * over:+.1f}% | "
              f"{100 * plan.gap:.1f}% | {skipped} |", flush=True)  # fmt: skip
    print(f"\nworst overrun: {100 * worst:+.1f}% of the limit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
