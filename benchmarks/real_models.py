"""Eleven models nobody here wrote: export -> import -> solve -> split -> execute, vs eager.

HuggingFace GPT-2, BERT, Llama, Mistral, Qwen2, T5 encoder and ViT (2 layers, hidden 64),
torchvision resnet18, mobilenet_v3_small and efficientnet_b0 (10 classes, 64x64), and a
diffusers UNet2DConditionModel, all with random weights (seed 0); builders in
``tests/models/build.py``, which also says how to install torchvision on the CPU torch.

For each model: ``torch.export`` (strict=False), ``hetsched.graph.from_exported``, the
portfolio on a platform (10 s, seed 0, 2 workers), ``hetsched.partition.apply`` (the split
program must equal eager) and ``hetsched.exec.execute`` on the virtual clock (its outputs
must equal eager). The graph is fused (:func:`hetsched.graph.fusion.fuse`) unless
``--no-fuse``; the table shows the op count before and after ("unfused -> fused").

Run::

    .venv/bin/python benchmarks/real_models.py [--models gpt2,resnet18] [-o results.json]

Prints a markdown table (times in us unless marked s) and exits 1 if any model failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.models.build import MODELS  # noqa: E402
from tests.models.pipeline import ModelRun, run_model  # noqa: E402

_SHORT = {"elementwise": "elem", "reduction": "red", "data_movement": "data", "attention": "attn"}


def _us(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e6:.1f}"


def _flag(x: bool | None) -> str:
    return "-" if x is None else ("yes" if x else "**NO**")


def row(r: ModelRun) -> str:
    """One markdown row of the table."""
    ops = "-" if r.ops is None else str(r.ops)
    if r.ops_unfused is not None:
        ops = f"{r.ops_unfused} -> {r.ops}" if r.fuse else f"{r.ops} (unfused)"
    cats = " ".join(f"{_SHORT.get(k, k)} {v}" for k, v in r.categories.items()) or "-"
    unknown = "-" if r.unknown is None else str(r.unknown)
    if r.unknown_ops:
        unknown += " (" + ", ".join(x.removeprefix("aten.") for x in r.unknown_ops) + ")"
    devs = " ".join(f"{d}:{n}" for d, n in r.devices.items()) or "-"
    gap = "-" if r.gap is None else f"{100 * r.gap:.1f}%"
    secs = "/".join("-" if s is None else f"{s:.1f}" for s in (r.export_s, r.solve_s))
    status = r.status or f"**failed: {r.failed_stage}**"
    return (
        f"| {r.model} | {ops} | {unknown} | {cats} | {_us(r.makespan)} | {_us(r.lower_bound)} "
        f"| {gap} | {status} | {devs} | {secs} | {_flag(r.split_equal)} "
        f"| {_flag(r.exec_equal)} |"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    ap.add_argument("--platform", default="edge-soc")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-fuse", action="store_true", help="import without fusion")
    ap.add_argument("-o", "--output", type=Path, help="write the results as JSON here")
    args = ap.parse_args(argv)
    names = [x for x in args.models.split(",") if x]
    unknown = [x for x in names if x not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    fusion = "off (--no-fuse)" if args.no_fuse else "on"
    print(
        f"platform {args.platform}, portfolio {args.time_limit:g} s, seed {args.seed}, "
        f"2 workers; fusion {fusion}; times in us, export/solve in s"
    )
    print(
        "| model | ops | unknown (other) | ops per category | makespan | bound | gap | status "
        "| devices (ops) | export/solve s | split = eager | executor = eager |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    runs = []
    for name in names:
        r = run_model(
            name,
            platform=args.platform,
            time_limit=args.time_limit,
            seed=args.seed,
            fuse=not args.no_fuse,
        )
        runs.append(r)
        print(row(r), flush=True)
    for r in runs:
        if r.error:
            print(f"\n{r.model} failed at {r.failed_stage}:\n{r.error}", file=sys.stderr)
    if args.output:
        doc = {
            "platform": args.platform,
            "time_limit": args.time_limit,
            "seed": args.seed,
            "fuse": not args.no_fuse,
            "models": [r.to_dict() for r in runs],
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(doc, indent=2) + "\n")
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
