"""``hetsched sensitivity``: measure and save each op's error at int8 / w8a16 (weight-only
int8) / float16 / bfloat16; ``hetsched precision-front``: latency against measured error as
the error budget grows."""

from __future__ import annotations

import argparse
import math
from typing import Any

from hetsched.errors import UsageError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``sensitivity`` command to the ``hetsched`` parser."""
    from hetsched.graph.zoo import SIZES

    p = subparsers.add_parser(
        "sensitivity",
        help="measure each op's output error at reduced precisions",
        description="Run the model with one op at a time in int8/w8a16/float16/bfloat16 and print "
        "(and save) the relative L2 error and SQNR of its outputs against float32.",
    )
    p.add_argument("model", metavar="MODEL", help="zoo model name or package.module:factory")
    p.add_argument("-o", "--output", metavar="TABLE.json", help="write the table here")
    p.add_argument("--size", default="tiny", choices=SIZES, help="zoo model size (default tiny)")
    p.add_argument("--precisions", default="int8,w8a16,float16,bfloat16", metavar="P,P",
                   help="precisions to measure (default int8,w8a16,float16,bfloat16)")  # fmt: skip
    p.add_argument("--samples", type=int, default=2, metavar="N",
                   help="calibration inputs (default 2)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration inputs")
    p.add_argument("--no-fuse", dest="fuse", action="store_false",
                   help="measure the unfused graph's ops")  # fmt: skip
    p.add_argument("--no-cache", dest="cache", action="store_false",
                   help="measure again instead of reading the cache")  # fmt: skip
    p.set_defaults(func=_sensitivity)

    f = subparsers.add_parser(
        "precision-front",
        help="latency vs measured output error over a sweep of error budgets",
        description="Solve MODEL for latency at each error budget (per-op errors measured, "
        "cached), measure each plan's error end to end on held-out inputs, and print (and "
        "save) the model budget it settled on, makespan, proven bound (of that model budget), "
        "predicted (root-sum-square) and measured error; --plot draws it.",
    )
    f.add_argument("model", metavar="MODEL", help="zoo model name or package.module:factory")
    f.add_argument("--size", default="tiny", choices=SIZES, help="zoo model size (default tiny)")
    f.add_argument("--platform", default="edge-soc", help="preset name or platform TOML")
    f.add_argument("--budgets", default="0,1e-4,3e-4,1e-3,3e-3,0.01,0.03,0.1", metavar="B,B",
                   help="budgets on the output error measured end to end (relative L2) to "
                   "solve at; each is solved on per-op noise powers, measured, and solved "
                   "again below it if the measurement is over")  # fmt: skip
    f.add_argument("--time-limit", type=float, default=10.0, metavar="SEC", help="per solve")
    f.add_argument("-o", "--output", metavar="FRONT.json", help="write the points here")
    f.add_argument("--plot", metavar="FRONT.png", help="draw latency vs measured error here")
    f.set_defaults(func=_front)


def _sensitivity(args: argparse.Namespace) -> int:
    from hetsched.fileio import check_writable
    from hetsched.graph.resolve import import_program, load_program_spec
    from hetsched.precision import measure_sensitivity, parse_precisions

    precisions = parse_precisions(args.precisions)  # before the export: a typo costs nothing
    if args.samples < 1:
        msg = f"samples must be >= 1, got {args.samples}"
        raise UsageError(msg)
    if args.output:
        check_writable(args.output)
    import torch

    model, example = load_program_spec(args.model, size=args.size)
    ep = torch.export.export(model, tuple(example))
    name = f"{args.model}-{args.size}" if ":" not in args.model else args.model.partition(":")[2]
    graph = import_program(ep, name=name, fuse=args.fuse)
    table = measure_sensitivity(
        ep, graph, example_args=example, precisions=precisions, samples=args.samples,
        seed=args.seed, cache=args.cache,
    )  # fmt: skip
    cols = [p for p in precisions if any(p in row for row in table.errors.values())]
    print(f"{'op':<32} {'category':<12}" + "".join(f" {p + ' rel_l2':>16} {'dB':>6}" for p in cols))
    for node in graph.nodes:
        row = table.errors.get(node.name)
        if not row:
            continue
        cells = []
        for p in cols:
            if p in row:
                db = table.sqnr_db.get(node.name, {}).get(p, math.inf)
                cells.append(f" {row[p]:>16.3e} {db:>6.1f}")
            else:
                cells.append(f" {'-':>16} {'':>6}")
        print(f"{node.name:<32} {node.category:<12}" + "".join(cells))
    print(f"{len(table.ops)} of {len(graph.nodes)} ops measured on {table.samples} samples")
    if args.output:
        table.save(args.output)
        print(f"wrote {args.output}")
    return 0


def _front(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from hetsched.costmodel import Platform
    from hetsched.fileio import check_writable, write_json_atomic
    from hetsched.graph.resolve import import_program, load_program_spec
    from hetsched.precision import measure_plan_error, measure_sensitivity
    from hetsched.precision.front import plot_front, precision_front
    from hetsched.problem.problem import check_error_budget

    try:
        budgets = [check_error_budget(float(x)) for x in args.budgets.split(",") if x.strip()]
    except ValueError:
        msg = f"--budgets takes numbers separated by commas, got {args.budgets!r}"
        raise UsageError(msg) from None
    if not budgets:
        msg = "--budgets needs at least one budget"
        raise UsageError(msg)
    if not (args.time_limit > 0 and math.isfinite(args.time_limit)):
        msg = f"time limit must be positive, got {args.time_limit:g}"
        raise UsageError(msg)
    for path in (args.output, args.plot):
        if path:
            check_writable(path)
    platform = Platform.resolve(args.platform)
    import torch

    model, example = load_program_spec(args.model, size=args.size)
    ep = torch.export.export(model, tuple(example), strict=False)
    name = f"{args.model}-{args.size}" if ":" not in args.model else args.model.partition(":")[2]
    graph = import_program(ep, name=name)
    table = measure_sensitivity(ep, graph, example_args=example)
    points = precision_front(
        graph,
        platform,
        table,
        budgets,
        time_limit=args.time_limit,
        measure=lambda plan: measure_plan_error(plan, ep, graph),
    )
    print(f"{graph.name} ({len(graph.nodes)} ops) on {platform.name}; times in us")
    print(f"{'budget':>8} {'model':>9} {'makespan':>10} {'bound':>10} {'status':<10} "
          f"{'predicted':>10} {'measured':>10}  lowered")  # fmt: skip
    for x in points:
        low = ", ".join(f"{k} {v}" for k, v in sorted(x.lowered.items())) or "none"
        measured = x.measured or 0.0
        solved = x.model_budget if x.model_budget is not None else x.budget
        print(f"{x.budget:>8g} {solved:>9.3g} {x.makespan * 1e6:>10.1f} "
              f"{x.lower_bound * 1e6:>10.1f} {x.status:<10} {x.predicted:>10.3e} "
              f"{measured:>10.3e}  {low}")  # fmt: skip
    if args.output:
        write_json_atomic(args.output, {"graph": graph.name, "points": [asdict(x) for x in points]})
        print(f"wrote {args.output}")
    if args.plot:
        plot_front(points, args.plot, title=f"{graph.name} on {platform.name}")
        print(f"wrote {args.plot}")
    return 0
