"""``hetsched export``, ``hetsched inspect`` and ``hetsched models``: the graph layer's CLI."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register"]


def _add_model_options(p: argparse.ArgumentParser) -> None:
    from hetsched.graph.zoo import SIZES

    p.add_argument("--size", default="tiny", choices=SIZES, help="zoo model size (default tiny)")
    p.add_argument("--batch", type=int, default=None, metavar="N", help="batch size (default 1)")
    p.add_argument(
        "--seq",
        type=int,
        default=None,
        metavar="N",
        help="sequence length / image side (default: the size's)",
    )
    p.add_argument(
        "--heads",
        choices=("fused", "split"),
        default=None,
        help="gpt attention heads as one SDPA op or per head",
    )
    p.add_argument("--coarsen", action="store_true", help="fuse cheap ops into neighbours")
    p.add_argument("--no-fuse", dest="fuse", action="store_false",
                   help="keep batch norms and elementwise epilogues as separate ops")  # fmt: skip


def register(subparsers: Any) -> None:
    """Add the graph commands to the ``hetsched`` parser."""
    p = subparsers.add_parser(
        "export",
        help="import a model into a graph JSON file",
        description="Export a zoo model or package.module:factory to hetsched.graph/2 JSON.",
    )
    p.add_argument("model", metavar="MODEL", help="zoo model name or package.module:factory")
    _add_model_options(p)
    p.add_argument("-o", "--output", required=True, metavar="GRAPH.json", help="output file")
    p.set_defaults(func=_export)

    p = subparsers.add_parser(
        "inspect",
        help="summarize a graph",
        description="Print a summary of a graph JSON, .stg file, zoo model or factory.",
    )
    p.add_argument("graph", metavar="GRAPH", help="graph .json/.stg, zoo name or factory")
    _add_model_options(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_inspect)

    p = subparsers.add_parser("models", help="list the model zoo")
    p.set_defaults(func=_models)


def _load(spec: str, args: argparse.Namespace) -> Any:
    from hetsched.graph.resolve import load_graph_spec

    return load_graph_spec(
        spec, size=args.size, batch=args.batch, seq=args.seq, heads=args.heads,
        coarsen=args.coarsen, fuse=args.fuse,
    )  # fmt: skip


def _export(args: argparse.Namespace) -> int:
    from hetsched.fileio import check_writable
    from hetsched.graph.formats import save

    check_writable(args.output)  # before the export: a bad path must not cost it
    graph = _load(args.model, args)
    save(graph, args.output)
    print(f"wrote {args.output}: {len(graph.nodes)} nodes, {len(graph.edges)} edges")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from hetsched.graph.summary import format_summary, summarize

    summary = summarize(_load(args.graph, args))
    print(json.dumps(summary.to_dict(), indent=1) if args.json else format_summary(summary))
    return 0


def _models(_args: argparse.Namespace) -> int:
    from hetsched.graph.zoo import SIZES, list_models

    for m in list_models():
        print(f"{m.name:<8} {m.description}")
        print(f"{'':<8} inputs: {m.inputs}; sizes: {', '.join(SIZES)}")
    return 0
