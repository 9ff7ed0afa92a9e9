"""``hetsched ops``: the ops seen in some graphs, with their categories; unknown ops loudly.

Prints one row per op (count, graphs, category, where its FLOPs come from) of the graphs
given as zoo names, ``package.module:factory`` specs or graph files (``--zoo`` adds every zoo
model). Ops hetsched does not know (category ``other``) are listed first, named on stderr,
and make the exit status 1; ``--json`` writes the table as ``hetsched.ops/1`` JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["OPS_FORMAT", "ops_document", "register", "run_ops"]

OPS_FORMAT = "hetsched.ops/1"
EXIT_UNKNOWN = 1


def register(sub: Any) -> None:
    p = sub.add_parser(
        "ops",
        help="table of the ops in some graphs: count, category, FLOP source; unknown ops",
        description="List every op of GRAPH... (zoo name, package.module:factory, graph "
        "file) with its count, category and FLOP source (flop_counter | pointwise | table | "
        "none). Exit status 1 when some op is unknown (category 'other').",
    )
    p.add_argument("graphs", nargs="*", metavar="GRAPH", help="zoo name, factory or graph file")
    p.add_argument("--zoo", action="store_true", help="add every zoo model")
    p.add_argument("--size", default="tiny", help="zoo model size (tiny|small|base|large)")
    p.add_argument("--json", action="store_true", help="print (or write) JSON")
    p.add_argument("-o", "--output", default=None, help="write the table here instead")
    p.set_defaults(func=run_ops)


def _graphs(args: argparse.Namespace) -> list[Any]:
    from hetsched.errors import UsageError
    from hetsched.graph.resolve import load_graph_spec
    from hetsched.graph.zoo import list_models

    specs = list(args.graphs) + ([m.name for m in list_models()] if args.zoo else [])
    if not specs:
        msg = "give at least one GRAPH (zoo name, package.module:factory, graph file) or --zoo"
        raise UsageError(msg)
    return [load_graph_spec(s, size=args.size, fuse=False) for s in dict.fromkeys(specs)]


def ops_document(graphs: list[Any]) -> dict[str, Any]:
    """The ``hetsched.ops/1`` JSON form: per graph its op counts, per op how it is seen."""
    import torch

    from hetsched.graph.optable import op_uses

    per_graph: dict[str, dict[str, int]] = {}
    for g in graphs:
        counts = per_graph.setdefault(g.name, {})
        for node in g.nodes:
            for n in node.parts or (node,):
                counts[n.op] = counts.get(n.op, 0) + 1
    return {
        "format": OPS_FORMAT,
        "torch": torch.__version__,
        "graphs": {k: dict(sorted(v.items())) for k, v in per_graph.items()},
        "ops": {u.op: {"count": u.count, "category": u.category, "flops": u.flops,
                       "graphs": list(u.graphs)} for u in op_uses(graphs)},
    }  # fmt: skip


def _table(graphs: list[Any]) -> tuple[str, list[Any]]:
    from hetsched.graph.optable import op_uses

    uses = op_uses(graphs)
    width = max([2, *(len(u.op) for u in uses)])
    lines = [f"{'op':{width}s} {'count':>6s} {'graphs':>6s}  {'category':13s} flops"]
    for u in uses:
        mark = "   <- UNKNOWN" if u.unknown else ""
        lines.append(f"{u.op:{width}s} {u.count:6d} {len(u.graphs):6d}  {u.category:13s} "
                     f"{u.flops}{mark}")  # fmt: skip
    unknown = [u for u in uses if u.unknown]
    lines.append(f"{len(uses)} ops in {len(graphs)} graph(s); {len(unknown)} unknown")
    return "\n".join(lines) + "\n", unknown


def run_ops(args: argparse.Namespace) -> int:
    from hetsched.fileio import check_writable, write_text_atomic

    if args.output:
        check_writable(args.output)  # before the (slow) exports
    graphs = _graphs(args)
    text, unknown = _table(graphs)
    if args.json:
        text = json.dumps(ops_document(graphs), indent=1) + "\n"
    if args.output:
        write_text_atomic(args.output, text)
        print(f"wrote {args.output}: {len(graphs)} graph(s)")
    else:
        sys.stdout.write(text)
    for u in unknown:
        print(f"hetsched: warning: unknown op {u.op} ({u.count}x in {', '.join(u.graphs)}): "
              "category 'other', no FLOPs; no platform can cost it right",
              file=sys.stderr)  # fmt: skip
    return EXIT_UNKNOWN if unknown else 0
