"""The memory objective: peak memory of the export's order, Inductor's greedy, and the exact order.

For each model, on the graph after :func:`hetsched.graph.fuse` (batch norms folded, elementwise
epilogues fused), one device, ops one at a time (see :mod:`hetsched.schedule.memory`):

* ``topo``: the export's own topological order (the graph's node order);
* ``greedy``: Inductor's LPMF greedy (``torch._inductor.memory.topological_sort_lpmf``);
* ``best``: :func:`hetsched.schedule.memory.min_peak_order` (downset DP, then CP-SAT), with its
  proven lower bound, gap, status and wall time.

Peaks include the resident weights; the ``act`` columns are the activation peaks alone (the
part an order can change). Models: the zoo (gpt, resnet, unet, mamba, mlp; tiny and small),
torchvision (resnet50, mobilenet_v2, efficientnet_b0, googlenet, inception_v3, vit_b_16; random
weights, batch 1, 224x224, inception 299x299; ``tests/models/build.py`` loads torchvision) and
RandWire stages (WS(4, 0.75), 16 channels of 32x32; ``nodes`` picked so that the fused graph
has about 32 or 64 ops).

Run::

    .venv/bin/python benchmarks/memory_order.py [--suites zoo,torchvision,randwire] \\
        [--time-limit 60] [--workers 2] [-o benchmarks/results/memory-order.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hetsched.graph import OpGraph, from_exported, from_torch, fuse, zoo  # noqa: E402
from hetsched.graph.randwire import randwire  # noqa: E402
from hetsched.schedule.memory import MemoryInstance, min_peak_order  # noqa: E402

ZOO = ("gpt", "resnet", "unet", "mamba", "mlp")
TORCHVISION = ("resnet50", "mobilenet_v2", "efficientnet_b0", "googlenet", "inception_v3",
               "vit_b_16")  # fmt: skip
# (label, RandWire nodes): about 32 and 64 ops after fusion
RANDWIRE = (("rw32", 11), ("rw64", 22))
MIB = 1024.0 * 1024.0


def _zoo() -> Iterator[tuple[str, str, Callable[[], OpGraph]]]:
    for name in ZOO:
        for size in ("tiny", "small"):
            yield "zoo", f"{name}-{size}", lambda n=name, s=size: zoo.graph(n, s)


def _torchvision_graph(name: str) -> OpGraph:
    import torch

    from tests.models.build import torchvision_models

    tv = torchvision_models()
    torch.manual_seed(0)
    kw: dict[str, Any] = {"weights": None}
    image = 224
    if name in ("googlenet", "inception_v3"):
        kw |= {"aux_logits": False, "init_weights": False}
    if name == "inception_v3":
        image = 299
    model = getattr(tv, name)(**kw).eval()
    args = (torch.randn(1, 3, image, image),)
    with torch.no_grad():
        ep = torch.export.export(model, args, strict=False)
    return from_exported(ep, name=name)


def _torchvision() -> Iterator[tuple[str, str, Callable[[], OpGraph]]]:
    for name in TORCHVISION:
        yield "torchvision", name, lambda n=name: _torchvision_graph(n)


def _randwire(seeds: int) -> Iterator[tuple[str, str, Callable[[], OpGraph]]]:
    for label, nodes in RANDWIRE:
        for seed in range(seeds):
            yield (
                "randwire",
                f"{label}-s{seed}",
                lambda k=nodes, s=seed: from_torch(
                    *randwire(nodes=k, channels=16, image=32, seed=s), name=f"randwire{k}-s{s}"
                ),
            )


def run_one(suite: str, name: str, build: Callable[[], OpGraph], args: argparse.Namespace
            ) -> dict[str, Any]:  # fmt: skip
    """Build, fuse and solve one model; a row of the table."""
    t = time.monotonic()
    raw = build()
    graph = fuse(raw)
    build_s = time.monotonic() - t
    inst = MemoryInstance.from_graph(graph)  # the one memory model, on one device
    r = min_peak_order(inst, time_limit=args.time_limit, seed=0, workers=args.workers,
                       max_exact_ops=args.max_exact_ops)  # fmt: skip
    w = r.weights
    return {
        "suite": suite, "model": name, "ops_unfused": len(raw.nodes), "ops": inst.n,
        "tensors": int(inst.src.size), "weights": w,
        "topo": r.baselines["topological"], "greedy": r.baselines["greedy"], "best": r.peak,
        "topo_act": r.baselines["topological"] - w, "greedy_act": r.baselines["greedy"] - w,
        "best_act": r.activation_peak, "lower_bound": r.lower_bound,
        "lower_bound_act": r.lower_bound - w, "gap": r.gap, "status": r.status,
        "method": r.method, "solve_s": r.wall_time, "build_s": build_s, "notes": list(r.notes),
    }  # fmt: skip


def _mib(x: float) -> str:
    return f"{x / MIB:.2f}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table (MiB; ratios are of activation peaks)."""
    head = ("| suite | model | ops (unfused->fused) | weights | topo act | greedy act | best act "
            "| bound act | gap | status | topo/best | greedy/best | solve s |")  # fmt: skip
    out = [head, "|" + "---|" * 13]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['suite']} | {r['model']} | error: {r['error']} |" + " |" * 10)
            continue
        out.append(
            f"| {r['suite']} | {r['model']} | {r['ops_unfused']}->{r['ops']} "
            f"| {_mib(r['weights'])} "
            f"| {_mib(r['topo_act'])} | {_mib(r['greedy_act'])} | {_mib(r['best_act'])} "
            f"| {_mib(r['lower_bound_act'])} | {100 * r['gap']:.1f}% | {r['status']} "
            f"| {_ratio(r['topo_act'], r['best_act'])} | {_ratio(r['greedy_act'], r['best_act'])} "
            f"| {r['solve_s']:.1f} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Parse, run every model, print the table, write JSON with ``-o``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suites", default="zoo,torchvision,randwire")
    p.add_argument("--models", default="", help="comma-separated model names to keep")
    p.add_argument("--time-limit", type=float, default=60.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--max-exact-ops", type=int, default=400)
    p.add_argument("--randwire-seeds", type=int, default=3)
    p.add_argument("-o", "--output", type=Path)
    args = p.parse_args(argv)
    suites = set(args.suites.split(","))
    keep = set(filter(None, args.models.split(",")))
    jobs = [*(_zoo() if "zoo" in suites else ()),
            *(_torchvision() if "torchvision" in suites else ()),
            *(_randwire(args.randwire_seeds) if "randwire" in suites else ())]  # fmt: skip
    rows: list[dict[str, Any]] = []
    for suite, name, build in jobs:
        if keep and name not in keep:
            continue
        try:
            row = run_one(suite, name, build, args)
        except Exception as err:  # a model that fails to build is a row, not the end
            row = {"suite": suite, "model": name, "error": f"{type(err).__name__}: {err}"[:200]}
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
    print(table(rows))
    if args.output:
        meta = {"command": " ".join(sys.argv), "time_limit": args.time_limit,
                "workers": args.workers, "python": platform.python_version(),
                "machine": platform.machine(), "processor": platform.processor()}  # fmt: skip
        args.output.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
