"""Latency under an SRAM cap: the Pareto front of makespan against the NPUs' memory.

Each cap limits both NPUs of edge-soc; the graph (a zoo model, fused) is solved for latency
with memory on (live bytes; weights that do not fit stream from LPDDR at 68.2 GB/s). Prints
a markdown table, writes JSON (``-o``) and a plot (``--plot``).

    .venv/bin/python benchmarks/memory_pareto.py --model gpt --size small --time-limit 10 \\
        -o benchmarks/results/memory-pareto.json --plot benchmarks/results/memory-pareto.png
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from hetsched.graph import fuse, zoo
from hetsched.schedule.memory import latency_memory_front, pareto

MIB = 2**20
CAPS_MIB = (32, 24, 16, 12, 8, 4, 2, 1, 0.5, 0.25)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="gpt")
    ap.add_argument("--size", default="small")
    ap.add_argument("--caps", default=",".join(str(c) for c in CAPS_MIB), help="MiB")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("-o", "--output", type=Path)
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args(argv)
    graph = fuse(zoo.graph(args.model, args.size))
    caps = [float(x) * MIB for x in args.caps.split(",")]
    points = latency_memory_front(
        graph, "edge-soc", ["npu0", "npu1"], caps=caps, time_limit=args.time_limit, seed=0
    )
    front = {id(x) for x in pareto(points)}
    print(f"{graph.name} ({len(graph.nodes)} ops, fused) on edge-soc, portfolio "
          f"{args.time_limit:g} s per cap, both NPUs capped")  # fmt: skip
    print("| NPU cap | makespan µs | status | NPU live peak | streamed ops | on the front |")
    print("|---|---|---|---|---|---|")
    for x in points:
        if not x.feasible:
            print(f"| {x.cap / MIB:g} MiB | no plan | | | | |")
            continue
        print(
            f"| {x.cap / MIB:g} MiB | {x.makespan * 1e6:.1f} | {x.status} | "
            f"{x.peak / MIB:.2f} MiB | {x.streamed} | {'yes' if id(x) in front else ''} |"
        )
    if args.output:
        args.output.write_text(json.dumps([asdict(x) for x in points], indent=1) + "\n")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ok = [x for x in points if x.feasible]
        best = pareto(points)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([x.peak / MIB for x in ok], [x.makespan * 1e6 for x in ok], "o", color="0.6",
                label="plan at each cap")  # fmt: skip
        ax.step([x.peak / MIB for x in best], [x.makespan * 1e6 for x in best], "-o",
                where="post", label="Pareto front")  # fmt: skip
        ax.set_xlabel("largest NPU live peak (MiB)")
        ax.set_ylabel("makespan (µs)")
        ax.set_title(f"{graph.name}: latency vs NPU SRAM (edge-soc)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
