"""``hetsched sensitivity``: measure and save each op's error at int8 / float16 / bfloat16."""

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
        description="Run the model with one op at a time in int8/float16/bfloat16 and print "
        "(and save) the relative L2 error and SQNR of its outputs against float32.",
    )
    p.add_argument("model", metavar="MODEL", help="zoo model name or package.module:factory")
    p.add_argument("-o", "--output", metavar="TABLE.json", help="write the table here")
    p.add_argument("--size", default="tiny", choices=SIZES, help="zoo model size (default tiny)")
    p.add_argument("--precisions", default="int8,float16,bfloat16", metavar="P,P",
                   help="precisions to measure (default int8,float16,bfloat16)")  # fmt: skip
    p.add_argument("--samples", type=int, default=2, metavar="N",
                   help="calibration inputs (default 2)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration inputs")
    p.add_argument("--no-fuse", dest="fuse", action="store_false",
                   help="measure the unfused graph's ops")  # fmt: skip
    p.add_argument("--no-cache", dest="cache", action="store_false",
                   help="measure again instead of reading the cache")  # fmt: skip
    p.set_defaults(func=_sensitivity)


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
