"""Fusion's effect on the zoo: ops and portfolio makespan with and without the fusion pass.

Each zoo model is exported once and imported twice (``fuse=False`` / ``fuse=True``), then
solved on ``edge-soc`` with the portfolio. Prints a markdown table; ``-o`` writes JSON.

    .venv/bin/python benchmarks/fusion.py --sizes tiny,small --time-limit 10
"""

from __future__ import annotations

import argparse
import json
import sys

import hetsched
from hetsched.graph import zoo
from hetsched.graph.resolve import import_program


def measure(model: str, size: str, time_limit: float) -> dict[str, object]:
    import torch

    net, args = zoo.build(model, size)
    ep = torch.export.export(net, args, strict=False)
    row: dict[str, object] = {"model": f"{model}-{size}"}
    for label, fuse in (("plain", False), ("fused", True)):
        graph = import_program(ep, name=f"{model}-{size}", fuse=fuse)
        plan = hetsched.solve(graph, "edge-soc", time_limit=time_limit, seed=0)
        row[f"{label}_ops"] = len(graph.nodes)
        row[f"{label}_us"] = plan.makespan * 1e6
        row[f"{label}_status"] = plan.status
    row["change"] = float(row["fused_us"]) / float(row["plain_us"]) - 1  # type: ignore[arg-type]
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="tiny,small")
    ap.add_argument("--models", default=",".join(m.name for m in zoo.list_models()))
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("-o", "--output", default=None)
    args = ap.parse_args(argv)
    rows = [
        measure(m, s, args.time_limit)
        for s in args.sizes.split(",")
        for m in args.models.split(",")
    ]
    print("| model | ops plain -> fused | makespan µs plain -> fused | change | status |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['plain_ops']} -> {r['fused_ops']} | "
            f"{float(r['plain_us']):.1f} -> {float(r['fused_us']):.1f} | "  # type: ignore[arg-type]
            f"{100 * float(r['change']):+.1f}% | {r['plain_status']} -> {r['fused_status']} |"  # type: ignore[arg-type]
        )
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
