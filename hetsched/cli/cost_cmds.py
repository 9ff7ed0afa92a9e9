"""``hetsched platforms``, ``hetsched cost`` and ``hetsched calibrate``: thin wrappers."""

from __future__ import annotations

import math
import sys
from typing import Any

from hetsched.costmodel.tomlio import value
from hetsched.errors import HetschedError, UsageError

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "platforms",
        help="list platform presets, or show one",
        description="List the platform presets, or show NAME (preset or TOML file) in full.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="preset name or platform TOML")
    p.add_argument("--toml", action="store_true", help="print the platform as TOML")
    p.set_defaults(func=run_platforms)

    c = sub.add_parser(
        "cost",
        help="per-op times of a graph on every device of a platform",
        description="Roofline time of every op of GRAPH on every device; fastest device.",
    )
    c.add_argument("graph", metavar="GRAPH", help="zoo model name, graph .json or .stg file")
    c.add_argument("--platform", default="edge-soc", help="preset name or platform TOML")
    c.add_argument("--profile", default=None, help="calibration profile to apply to the CPU")
    c.add_argument("--size", default="tiny", help="zoo model size (tiny|small|base|large)")
    c.add_argument("--top", type=int, default=20, metavar="N", help="show the N costliest ops")
    c.add_argument("--explain", default=None, metavar="NODE", help="roofline terms of NODE")
    c.set_defaults(func=run_cost)

    k = sub.add_parser(
        "calibrate",
        help="fit the host CPU's roofline figures from real torch op timings",
        description="Time torch ops of each category on this CPU, fit peak/bandwidth/"
        "efficiency/overhead, report held-out errors, write a profile TOML.",
    )
    k.add_argument("--platform", default="edge-soc", help="preset whose CPU is the baseline")
    k.add_argument("--device", default="cpu", help="the platform's CPU device to calibrate")
    k.add_argument("--quick", action="store_true", help="few sizes, short runs (seconds)")
    k.add_argument("--threads", type=int, default=1, help="torch threads while timing")
    k.add_argument("-v", "--verbose", action="store_true", help="print every timing")
    k.add_argument("-o", "--output", required=True, help="profile TOML to write")
    k.set_defaults(func=run_calibrate)


def _platform(spec: str, profile: str | None = None) -> Any:
    from hetsched.costmodel import Platform

    plat = Platform.resolve(spec)
    return plat.with_profile(profile) if profile else plat


def _fmt_flops(x: float) -> str:
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6)):
        if x >= scale:
            return f"{x / scale:.4g}{unit}"
    return f"{x:.4g}"


def run_platforms(args: Any) -> int:
    from hetsched.costmodel import Platform

    if args.name is None:
        for name in Platform.presets():
            if name == "homogeneous-N":
                print(f"{name:14s} N identical cpu devices p0..p{{N-1}}, free communication")
                continue
            p = Platform.preset(name)
            devs = ", ".join(f"{d.name}({d.kind})" for d in p.devices)
            print(f"{name:14s} {p.description}\n{'':14s} devices: {devs}")
        return 0
    p = _platform(args.name)
    if args.toml:
        sys.stdout.write(p.to_toml())
        return 0
    print(f"platform {p.name}: {p.description}")
    print(f"{'device':8s} {'kind':5s} {'peak FLOP/s':48s} {'mem B/s':>9s} {'capacity':>9s} "
          f"{'overhead':>9s}  supports")  # fmt: skip
    for d in p.devices:
        peaks = " ".join(f"{k}={_fmt_flops(v)}" for k, v in d.peak_flops.items())
        cap = "inf" if math.isinf(d.mem_capacity) else _fmt_flops(d.mem_capacity) + "B"
        try:
            sup = value(d.supports.to_spec())
        except HetschedError:
            sup = "custom predicate"
        sup = "all ops" if sup == "{}" else sup
        print(f"{d.name:8s} {d.kind:5s} {peaks:48s} {_fmt_flops(d.mem_bandwidth):>9s} "
              f"{cap:>9s} {d.launch_overhead * 1e6:7.1f}us  {sup}")  # fmt: skip
    print("links:")
    for link in p.links:
        bw = "inf" if math.isinf(link.bandwidth) else _fmt_flops(link.bandwidth)
        print(f"  {link.name:20s} {bw:>9s}B/s  latency {link.latency * 1e6:.1f}us")
    if not p.links:
        print("  (none)")
    return 0


def _load_graph(spec: str, size: str) -> Any:
    try:
        from hetsched.graph.resolve import load_graph_spec
    except ImportError:
        from pathlib import Path

        from hetsched.errors import GraphError
        from hetsched.graph import load

        if not Path(spec).is_file():
            msg = f"{spec}: no such graph file"
            raise GraphError(msg) from None
        return load(spec)
    return load_graph_spec(spec, size=size)


def run_cost(args: Any) -> int:
    from hetsched.costmodel import RooflineCostModel, build_cost_table

    if args.top < 0:
        msg = f"--top must be >= 0, got {args.top}"
        raise UsageError(msg)
    plat = _platform(args.platform, args.profile)
    graph = _load_graph(args.graph, args.size)
    model = RooflineCostModel(plat)
    if args.explain is not None:
        node = graph.node(args.explain)
        print(f"{node.name}: {node.op} [{node.category}, {node.dtype}] flops={node.flops:.6g} "
              f"bytes={node.bytes_read + node.bytes_written:.6g}")  # fmt: skip
        for d in plat.devices:
            print(model.explain(node, d))
        from hetsched.costmodel.precision import PRECISIONS, explain_precision

        for precision in PRECISIONS:
            for line in explain_precision(node, plat, precision, model):
                print(line)
        return 0
    table = build_cost_table(graph, plat, model, allow_infeasible=True)
    scale, unit = (1e6, "us") if table.units == "s" else (1.0, table.units)
    ex = table.exec
    best = ex.min(axis=1)
    order = sorted(range(len(graph.nodes)), key=lambda i: (-best[i], i))[: args.top]
    names = table.device_names
    width = max([4, *(len(graph.nodes[i].name) for i in order)])
    print(f"graph {graph.name}: {len(graph.nodes)} ops on {plat.name}; times in {unit}; "
          f"'-' = unsupported")  # fmt: skip
    print(f"{'op':{width}s} {'category':13s} " + " ".join(f"{n:>10s}" for n in names) + "  best")
    for i in order:
        row = " ".join("         -" if math.isinf(v) else f"{v * scale:10.2f}" for v in ex[i])
        fastest = names[int(ex[i].argmin())] if math.isfinite(best[i]) else "none"
        print(f"{graph.nodes[i].name:{width}s} {graph.nodes[i].category:13s} {row}  {fastest}")
    sums = " ".join(
        f"{'inf':>10s}" if math.isinf(s) else f"{s * scale:10.1f}" for s in ex.sum(axis=0)
    )
    print(f"{'total':{width}s} {'':13s} {sums}")
    refused = " ".join(f"{int(k):10d}" for k in (~(ex < math.inf)).sum(axis=0))
    print(f"{'unsupported':{width}s} {'':13s} {refused}")
    infeasible = int((~(best < math.inf)).sum())
    if infeasible:
        print(f"warning: {infeasible} op(s) run on no device", file=sys.stderr)
    return 0


def run_calibrate(args: Any) -> int:
    from hetsched.costmodel.calibrate import calibrate
    from hetsched.fileio import check_writable

    check_writable(args.output)  # before the timings: a bad path must not cost them
    progress = (lambda s: print(s, file=sys.stderr)) if args.verbose else None
    result = calibrate(platform=_platform(args.platform), device=args.device, quick=args.quick,
                       threads=args.threads, progress=progress)  # fmt: skip
    result.write(args.output)
    d = result.device
    print(f"calibrated {d.name} ({result.meta['host']}, {args.threads} thread(s), "
          f"{result.meta['seconds']} s): peak fp32 {_fmt_flops(d.peak_flops['fp32'])}FLOP/s, "
          f"bandwidth {_fmt_flops(d.mem_bandwidth)}B/s, overhead "
          f"{d.launch_overhead * 1e6:.2f}us")  # fmt: skip
    print("relative error on held-out sizes (before = preset figures, after = fitted):")
    print(result.table())
    print(f"wrote {args.output}")
    return 0
