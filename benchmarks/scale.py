"""Scaling table for issue 8: ops vs time to first plan, time to within 10% of bound, memory.

Each row runs in its own process (so peak RSS is per row): build the Problem, run the
portfolio with the given budget on 2 workers, record every progress event with the wall
clock of this script, validate the plan.

Usage::

    .venv/bin/python benchmarks/scale.py --budget 30 --zoo-budget 60 \
        --out benchmarks/results/scale.json

``--graph PATH`` uses a cached graph JSON for the zoo row (``hetsched.graph.save``), since
exporting gpt large takes ~90 s; without it the zoo graph is exported first (not timed).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RANDOM_SIZES = (100, 300, 1000, 3000, 10000, 50000)


def _problem(spec: dict, graph_path: str | None):
    """(problem, build seconds, build peak MiB by tracemalloc)."""
    tracemalloc.start()
    t = time.perf_counter()
    if spec["kind"] == "random":
        sys.path.insert(0, str(ROOT / "tests"))
        from families import random_problem

        p = random_problem(spec["seed"], n=spec["n"], devices=5, family="layered", ccr=spec["ccr"])
    else:
        import hetsched.graph as hg
        from hetsched.problem import Problem

        tracemalloc.stop()
        if graph_path and spec["size"] == "large":
            g = hg.load(graph_path)
        else:
            from hetsched.graph import zoo

            g = zoo.graph(spec["model"], spec["size"], heads="split")
        tracemalloc.start()
        t = time.perf_counter()
        p = Problem.build(g, spec["platform"])
    build = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return p, build, peak


def run_one(spec: dict, graph_path: str | None) -> dict:
    from hetsched.plan import validate
    from hetsched.schedule.latency.portfolio import solve_portfolio

    p, build, build_mib = _problem(spec, graph_path)
    events: list[tuple[float, float]] = []
    t0 = time.perf_counter()
    plan = solve_portfolio(
        p,
        time_limit=spec["budget"],
        seed=0,
        workers=2,
        progress=lambda e: events.append((time.perf_counter() - t0, e.makespan)),
    )
    wall = time.perf_counter() - t0
    validate(plan, p)
    lb = plan.lower_bound
    within = next((t for t, ms in events if ms <= lb / 0.9), None)
    heur = dict(plan.baselines)
    return {
        **spec,
        "ops": p.n,
        "edges": p.num_edges,
        "build_s": round(build, 3),
        "build_peak_mib": round(build_mib, 1),
        "first_plan_s": round(events[0][0], 2) if events else None,
        "first_makespan": events[0][1] if events else None,
        "heft": heur.get("heft"),
        "makespan": plan.makespan,
        "lower_bound": lb,
        "gap": round(plan.gap, 4),
        "vs_heft": round(plan.makespan / heur["heft"], 4) if heur.get("heft") else None,
        "within_10pct_s": None if within is None else round(within, 2),
        "wall_s": round(wall, 1),
        "path": list(plan.stats["path"]),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def specs(budget: float, zoo_budget: float, sizes: tuple[int, ...]) -> list[dict]:
    out = [{"kind": "random", "n": n, "ccr": 1.0, "seed": 1, "budget": budget} for n in sizes]
    out += [
        {"kind": "random", "n": 1000, "ccr": c, "seed": 1, "budget": budget} for c in (0.1, 5.0)
    ]
    for size, limit in (("small", budget), ("large", zoo_budget)):
        out.append(
            {
                "kind": "zoo",
                "model": "gpt",
                "size": size,
                "platform": "edge-soc",
                "budget": limit,
            }
        )
    return out


def _fmt(x: object) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def table(rows: list[dict]) -> str:
    cols = [
        "graph",
        "ops",
        "build_s",
        "build_peak_mib",
        "first_plan_s",
        "heft",
        "makespan",
        "vs_heft",
        "lower_bound",
        "gap",
        "within_10pct_s",
        "peak_rss_mib",
        "path",
    ]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        name = (
            f"random ccr={r['ccr']:g}"
            if r["kind"] == "random"
            else f"{r['model']} {r['size']} ({r['platform']})"
        )
        vals = [name] + [_fmt(r.get(c)) if c != "path" else ">".join(r["path"]) for c in cols[1:]]
        lines.append("| " + " | ".join(vals) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=30.0)
    ap.add_argument("--zoo-budget", type=float, default=60.0)
    ap.add_argument("--sizes", default=",".join(map(str, RANDOM_SIZES)))
    ap.add_argument("--graph", default=None, help="cached gpt-large graph JSON")
    ap.add_argument("--out", default=None)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(json.loads(args.one), args.graph)))
        return 0
    sizes = tuple(int(x) for x in args.sizes.split(",") if x)
    rows = []
    for spec in specs(args.budget, args.zoo_budget, sizes):
        cmd = [sys.executable, __file__, "--one", json.dumps(spec)]
        if args.graph:
            cmd += ["--graph", args.graph]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            print(res.stderr[-2000:], file=sys.stderr)
            continue
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
