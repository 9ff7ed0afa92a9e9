"""``hetsched demo``: the main job end to end on a built-in model and platform.

Export a zoo model with torch.export, cost it on a platform, solve for latency with the
portfolio (proven bound), run the plan on threaded simulated devices with real torch
numerics, check the outputs against eager PyTorch, and write the plan, a Gantt chart and a
Chrome trace.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

__all__ = ["register", "run_demo"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="export, solve, run and check a built-in model end to end",
        description=__doc__,
    )
    p.add_argument("--model", default="mamba", help="zoo model (default mamba)")
    p.add_argument("--size", default="tiny", help="zoo size (default tiny)")
    p.add_argument("--heads", default="fused", choices=("fused", "split"))
    p.add_argument("--platform", default="edge-soc")
    p.add_argument("--no-fuse", dest="fuse", action="store_false",
                   help="keep batch norms and elementwise epilogues as separate ops")  # fmt: skip
    p.add_argument("--time-limit", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", default="out", help="directory for plan, Gantt and trace")
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    import torch

    from hetsched.api import solve
    from hetsched.cli.solve_cmds import _fmt_time, format_plan_summary, load_platform
    from hetsched.exec import execute
    from hetsched.exec.gantt import save_gantt
    from hetsched.exec.trace import save_trace
    from hetsched.fileio import check_output_dir, check_writable
    from hetsched.graph.resolve import import_program
    from hetsched.graph.summary import format_summary, summarize
    from hetsched.graph.zoo import build
    from hetsched.plan import save_plan, validate
    from hetsched.problem import Problem

    out = check_output_dir(args.out)  # before the work: a bad path must not cost it
    if out.is_dir():
        for name in ("plan.json", "gantt.png", "trace.json"):
            check_writable(out / name)
    t0 = time.perf_counter()
    model, example = build(args.model, args.size, heads=args.heads, seed=args.seed)
    ep = torch.export.export(model, example, strict=False)
    graph = import_program(ep, name=f"{args.model}-{args.size}", fuse=args.fuse)
    print(f"[1/4] exported {graph.name} with torch.export in {time.perf_counter() - t0:.1f} s")
    print(format_summary(summarize(graph)))
    platform = load_platform(args.platform)
    problem = Problem.build(graph, platform)
    print(
        f"\n[2/4] solving on {platform.name} ({', '.join(problem.devices)}), "
        f"portfolio, {args.time_limit:g} s budget"
    )
    plan = solve(graph, platform, time_limit=args.time_limit, seed=args.seed, progress=None)
    validate(plan, problem)
    print(format_plan_summary(plan, graph_name=graph.name, wall=plan.solve_time))
    if plan.baselines:
        best_name = min(plan.baselines, key=plan.baselines.__getitem__)
        for name in dict.fromkeys(("heft", best_name)):
            h = plan.baselines[name]
            print(
                f"vs {name:<6} {_fmt_time(h, 's')} -> {100 * (1 - plan.makespan / h):.1f}% faster"
            )
    for dev in problem.devices:
        alone = problem.single_device_makespan(dev)
        if alone is not None:
            print(
                f"vs all-on-{dev:<5} {_fmt_time(alone, 's')} -> "
                f"{alone / plan.makespan:.2f}x speed-up"
            )
    print("\n[3/4] running the plan: one thread per device and link, virtual clock, real torch")
    result = execute(plan, problem, graph=graph, program=ep, inputs=example, clock="virtual")
    with torch.no_grad():
        eager = model(*example)
    got = result.outputs[0] if isinstance(result.outputs, list | tuple) else result.outputs
    want = eager[0] if isinstance(eager, list | tuple) else eager
    # float32 sums run in another order on the device threads than in eager: 1e-4 apart
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    print(
        f"realized makespan {_fmt_time(result.makespan, 's')} (planned "
        f"{_fmt_time(result.planned_makespan, 's')}); outputs equal eager PyTorch: "
        f"{bool(result.outputs_match)}; dispatch median {result.dispatch_median_us:.0f} us"
    )
    print("utilization " + ", ".join(f"{d} {100 * u:.0f}%" for d, u in result.utilization.items()))
    out.mkdir(exist_ok=True)
    save_plan(plan, out / "plan.json")
    save_gantt(result, out / "gantt.png", graph=graph, title=f"{graph.name} on {platform.name}")
    save_trace(result, out / "trace.json", graph=graph)
    print(
        f"\n[4/4] wrote {out / 'plan.json'}, {out / 'gantt.png'}, {out / 'trace.json'} "
        f"(total {time.perf_counter() - t0:.1f} s)"
    )
    return 0
