"""``hetsched partition``: split a model's program by a plan; write code or a .pt2.

``-o split.py`` writes each submodule's generated code under a ``# device: NAME`` header
(the parent's code last); ``-o split.pt2`` re-exports the split module with
``torch.export`` and saves it, every node tagged with its segment's device, precisions and
shards in ``node.meta["custom"]`` (``hetsched.device``, ...).
The segment report is printed either way.
"""

from __future__ import annotations

import argparse
from typing import Any

from hetsched.errors import PlanError, UsageError

__all__ = ["register", "run_partition", "split_code"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "partition",
        help="split a model's program into per-device submodules by a plan",
        description="Apply PLAN to MODEL (zoo name or package.module:factory).",
    )
    p.add_argument("model", metavar="MODEL", help="zoo model name or package.module:factory")
    p.add_argument("--plan", required=True, help="plan JSON from `hetsched solve -o`")
    p.add_argument("--size", default="tiny", help="zoo model size (tiny|small|base|large)")
    p.add_argument("--batch", type=int, default=None, help="batch size (default 1)")
    p.add_argument("--seq", type=int, default=None, help="sequence length / image side")
    p.add_argument("--heads", default=None, choices=("fused", "split"))
    p.add_argument("--no-fuse", dest="fuse", action="store_false",
                   help="the plan was solved with --no-fuse (unfused ops)")  # fmt: skip
    p.add_argument("-o", "--output", default=None, help="write split.py (code) or split.pt2")
    p.set_defaults(func=run_partition)


def split_code(split: Any) -> str:
    """Generated code of every submodule (with its device) and of the parent."""
    parts = []
    for name, dev in split.hetsched_devices.items():
        parts.append(f"# ---- {name}  device: {dev}\n{getattr(split, name).code.strip()}\n")
    parts.append(f"# ---- parent (calls the segments in order)\n{split.code.strip()}\n")
    return "\n".join(parts)


def run_partition(args: argparse.Namespace) -> int:
    import io

    import torch

    from hetsched.fileio import check_writable, write_bytes_atomic, write_text_atomic
    from hetsched.graph.formats import graph_sha256
    from hetsched.graph.resolve import import_program, load_program_spec
    from hetsched.partition import apply, segment_report
    from hetsched.partition.splitting import tag_exported
    from hetsched.plan import load_plan
    from hetsched.plan.validate import graph_mismatch

    out = args.output
    if out:  # before the export and split: a bad path must not cost them
        if not out.endswith((".py", ".pt2")):
            msg = f"output {out!r} must end in .py or .pt2"
            raise UsageError(msg)
        check_writable(out)
    plan = load_plan(args.plan)
    model, example = load_program_spec(
        args.model, size=args.size, batch=args.batch, seq=args.seq, heads=args.heads
    )
    ep = torch.export.export(model, example)
    graph = import_program(ep, name=plan.graph_name or args.model, fuse=args.fuse)
    other = graph_mismatch(plan, graph.name, len(graph.nodes), graph_sha256(graph))
    if other:  # before the split: it would name one op the plan lacks, not the reason
        raise PlanError(other)
    split = apply(plan, ep, graph)
    print(segment_report(split))
    if out:
        if out.endswith(".py"):
            write_text_atomic(out, split_code(split))
        else:
            buf = io.BytesIO()
            torch.export.save(tag_exported(torch.export.export(split, example), split), buf)
            write_bytes_atomic(out, buf.getvalue())
        print(f"split program written to {out}")
    return 0
