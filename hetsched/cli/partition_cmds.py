"""``hetsched partition``: split a model's program by a plan; write code or a .pt2.

``-o split.py`` writes each submodule's generated code under a ``# device: NAME`` header
(the parent's code last); ``-o split.pt2`` re-exports the split module with
``torch.export`` and saves it (the device tags live in the plan, not in the .pt2).
The segment report is printed either way.
"""

from __future__ import annotations

import argparse
from typing import Any

from hetsched.errors import UsageError

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
    p.add_argument("--heads", default=None, choices=("fused", "split"))
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
    import torch

    from hetsched.graph.resolve import load_program_spec
    from hetsched.graph.torch_import import from_exported
    from hetsched.partition import apply, segment_report
    from hetsched.plan import load_plan

    plan = load_plan(args.plan)
    model, example = load_program_spec(args.model, size=args.size, heads=args.heads)
    ep = torch.export.export(model, example)
    graph = from_exported(ep, name=plan.graph_name or args.model)
    split = apply(plan, ep, graph)
    print(segment_report(split))
    out = args.output
    if out:
        if out.endswith(".py"):
            with open(out, "w", encoding="utf-8") as fh:
                fh.write(split_code(split))
        elif out.endswith(".pt2"):
            torch.export.save(torch.export.export(split, example), out)
        else:
            msg = f"output {out!r} must end in .py or .pt2"
            raise UsageError(msg)
        print(f"split program written to {out}")
    return 0
