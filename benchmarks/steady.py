"""The throughput objective side by side with what it must never lose to.

For each zoo model (fused) and platform: ``hetsched.solve(..., objective="throughput")``
(the best periodic schedule over every assignment, :mod:`hetsched.schedule.throughput.steady`)
with its proven bound (one assignment repeated) and the bound that holds even when
iterations take turns on devices, next to the latency plan run back to back, the pipeline
family's exact period (one stage per device in a fixed order) and its baselines
(PipeDream's DP, equal op count, equal FLOPs, capability-greedy) and the modulo search
alone (no hints: ``--objective modulo`` before the throughput objective), all from the same
run.

    .venv/bin/python benchmarks/steady.py --models gpt,resnet,unet,mlp,mamba --sizes tiny \\
        --platforms edge-soc,multi-gpu --time-limit 10 -o benchmarks/results/steady-tiny.json

``--real vit,llama,t5-encoder,efficientnet_b0`` adds models nobody here wrote (HuggingFace
from configs, torchvision builders: ``tests/models/build.py``, random weights), exported
and fused as the CLI does; ``--models ''`` leaves the zoo out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import hetsched
from hetsched.graph import OpGraph, fuse, zoo

ROOT = Path(__file__).resolve().parent.parent


def real_graph(name: str) -> OpGraph:
    """A model from ``tests/models/build.py``, exported and fused."""
    import torch

    sys.path.insert(0, str(ROOT))
    from hetsched.graph.resolve import import_program
    from tests.models.build import build

    model, args = build(name)
    ep = torch.export.export(model, args, strict=False)
    return import_program(ep, name=name, fuse=True)


def measure(model: str, size: str, platform: str, time_limit: float) -> dict[str, Any]:
    graph = real_graph(model) if size == "real" else fuse(zoo.graph(model, size))
    plan = hetsched.solve(graph, platform, objective="throughput", time_limit=time_limit)
    assert plan.modulo is not None
    alone = _modulo_alone(graph, platform, time_limit)
    return {
        "model": model if size == "real" else f"{model}-{size}",
        "platform": platform,
        "ops": len(graph.nodes),
        "period_us": plan.modulo.ii * 1e6,
        "status": plan.status,
        "bound_us": plan.modulo.ii_bound * 1e6,
        "bound_any_us": plan.stats["bound_any_assignment"] * 1e6,
        "latency_us": plan.makespan * 1e6,
        "baselines_us": {k: v * 1e6 for k, v in plan.baselines.items()},
        "modulo_alone_us": None if alone is None else alone * 1e6,
    }


def _modulo_alone(graph: OpGraph, platform: str, time_limit: float) -> float | None:
    """The modulo search by itself (no hints), as ``--objective modulo`` ran before the
    throughput objective; ``None`` where it refuses the problem (weights that may stream)."""
    from hetsched.problem import Problem
    from hetsched.schedule.throughput.modulo import solve_modulo

    problem = Problem.build(graph, platform)
    if not problem.is_device_table:
        return None
    plan = solve_modulo(problem, time_limit=time_limit)
    assert plan.modulo is not None
    return plan.modulo.ii


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="gpt,resnet,unet,mlp,mamba")
    ap.add_argument("--sizes", default="tiny")
    ap.add_argument("--real", default="", help="models of tests/models/build.py")
    ap.add_argument("--platforms", default="edge-soc,multi-gpu")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("-o", "--output", type=Path)
    args = ap.parse_args(argv)
    cols = ("latency back to back", "pipeline", "dp", "equal-ops", "equal-flops", "capability")
    alone = "modulo alone"
    print(
        "| model | platform | ops | period µs (status) | bound µs | bound, turns µs | "
        + " | ".join((*cols, alone))
        + " | latency of one iteration µs |"
    )
    print("|---" * (8 + len(cols)) + "|")
    rows = []
    cases = [(m, z) for z in args.sizes.split(",") for m in args.models.split(",") if m]
    cases += [(m, "real") for m in args.real.split(",") if m]
    for model, size in cases:
        for platform in args.platforms.split(","):
            r = measure(model, size, platform, args.time_limit)
            rows.append(r)
            base = [*(r["baselines_us"].get(c) for c in cols), r["modulo_alone_us"]]
            cells = " | ".join("—" if b is None else f"{b:.1f}" for b in base)
            print(
                f"| {r['model']} | {platform} | {r['ops']} | {r['period_us']:.1f} "
                f"({r['status']}) | {r['bound_us']:.1f} | {r['bound_any_us']:.1f} | "
                f"{cells} | {r['latency_us']:.1f} |",
                flush=True,
            )
    if args.output:
        args.output.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
