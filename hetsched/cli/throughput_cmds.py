"""``hetsched throughput-front``: the period between iterations against the latency of one,
for a stream with a deadline (camera frames, say)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from hetsched.errors import UsageError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``throughput-front`` command to the ``hetsched`` parser."""
    from hetsched.graph.zoo import SIZES

    f = subparsers.add_parser(
        "throughput-front",
        help="period vs latency of one iteration, from the best period to the best latency",
        description="Solve GRAPH for the least period (throughput) and the least latency, "
        "then the least latency at periods in between; print (and save) each point's "
        "period, latency and proven latency bound; --plot draws it.",
    )
    f.add_argument("graph", metavar="GRAPH", help="zoo model, graph .json or .stg")
    f.add_argument("--size", default="tiny", choices=SIZES, help="zoo model size (default tiny)")
    f.add_argument("--platform", default="edge-soc", help="preset name or platform TOML")
    f.add_argument("--points", type=int, default=6, help="points on the front (default 6)")
    f.add_argument("--time-limit", type=float, default=30.0, metavar="SEC",
                   help="for the whole sweep (default 30)")  # fmt: skip
    f.add_argument("-o", "--output", metavar="FRONT.json", help="write the points here")
    f.add_argument("--plot", metavar="FRONT.png", help="draw latency vs period here")
    f.set_defaults(func=_front)


def _front(args: argparse.Namespace) -> int:
    from hetsched.costmodel import Platform
    from hetsched.fileio import check_writable, write_json_atomic
    from hetsched.graph.resolve import load_graph_spec
    from hetsched.problem import Problem
    from hetsched.schedule.throughput.front import period_latency_front, plot_period_front

    if args.points < 2:
        msg = f"--points must be >= 2 (the two ends), got {args.points}"
        raise UsageError(msg)
    if not (args.time_limit > 0 and math.isfinite(args.time_limit)):
        msg = f"time limit must be positive, got {args.time_limit:g}"
        raise UsageError(msg)
    for path in (args.output, args.plot):
        if path:
            check_writable(path)
    platform = Platform.resolve(args.platform)
    graph = load_graph_spec(args.graph, size=args.size)
    problem = Problem.build(graph, platform)
    points = period_latency_front(problem, graph, points=args.points, time_limit=args.time_limit)
    u = 1e6 if problem.units == "s" else 1.0
    unit = "us" if problem.units == "s" else problem.units
    print(f"{graph.name} ({len(graph.nodes)} ops) on {platform.name}; times in {unit}")
    print(f"{'period':>10} {'latency':>10} {'bound':>10}  proven")
    for x in points:
        print(f"{x.period * u:>10.1f} {x.latency * u:>10.1f} {x.latency_bound * u:>10.1f}  "
              f"{'yes' if x.proven else 'no'}")  # fmt: skip
    if args.output:
        rows = [x.row() for x in points]
        write_json_atomic(args.output, {"graph": graph.name, "platform": platform.name,
                                        "units": problem.units, "points": rows})  # fmt: skip
        print(f"wrote {args.output}")
    if args.plot:
        plot_period_front(points, args.plot, title=f"{graph.name} on {platform.name}")
        print(f"wrote {args.plot}")
    return 0
