"""``hetsched demo``: the main job end to end on a built-in model and platform.

Export a zoo model with torch.export (the default: an 8-layer MLP, "mlp base"), measure
each op's output error in int8/w8a16/float16/bfloat16 (cached), solve for latency with the
portfolio choosing device, precision (1% output error, measured end to end on held-out
inputs) and tensor-parallel splits across the two NPUs at once, and set it against HEFT's
plan of the exported fp32 model; then split the program (``partition.apply``: shards and
precisions written in), run the plan on threaded simulated devices with real torch
numerics, check both against the program with the plan's precisions, and write the plan,
a Gantt chart and a Chrome trace.
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
    p.add_argument("--model", default="mlp", help="zoo model (default mlp)")
    p.add_argument("--size", default="base", help="zoo size (default base)")
    p.add_argument("--error-budget", type=float, default=0.01, metavar="REL",
                   help="output error, measured end to end (default 0.01; 0: fp32)")  # fmt: skip
    p.add_argument("--no-split", dest="split", action="store_false",
                   help="every op runs whole on one device")  # fmt: skip
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
    from hetsched.cli.run_cmds import problem_options
    from hetsched.cli.solve_cmds import _fmt_time, format_plan_summary, load_platform
    from hetsched.exec import execute
    from hetsched.exec.gantt import save_gantt
    from hetsched.exec.trace import save_trace
    from hetsched.fileio import check_output_dir, check_writable
    from hetsched.graph.resolve import import_program
    from hetsched.graph.summary import format_summary, summarize
    from hetsched.graph.zoo import build
    from hetsched.partition import apply
    from hetsched.plan import save_plan, validate
    from hetsched.precision import measure_sensitivity
    from hetsched.precision.rewrite import lower_program, plan_precisions
    from hetsched.problem import Problem
    from hetsched.problem.problem import check_error_budget
    from hetsched.solver import run_solver

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
    budget = check_error_budget(args.error_budget) if args.error_budget else None
    table = None
    if budget:
        t1 = time.perf_counter()
        table = measure_sensitivity(ep, graph)
        kinds = ", ".join(sorted({q for r in table.errors.values() for q in r}))
        print(f"per-op errors in {kinds} of {len(table.ops)} ops measured in "
              f"{time.perf_counter() - t1:.1f} s (cached)")  # fmt: skip
    fp32 = Problem.build(graph, platform)
    print(
        f"\n[2/4] solving on {platform.name} ({', '.join(fp32.devices)}), portfolio, "
        f"{args.time_limit:g} s per solve: device, "
        + ("precision (budget " + f"{budget:g} measured), " if budget else "")
        + ("tensor-parallel splits, " if args.split else "")
        + "start time of every op"
    )
    plan = solve(graph, platform, time_limit=args.time_limit, seed=args.seed,
                 split=args.split, error_budget=budget, sensitivity=table,
                 program=ep if budget else None)  # fmt: skip
    lowered = plan_precisions(plan, graph)
    problem = Problem.build(graph, platform, **problem_options(plan, graph))
    validate(plan, problem)
    print(format_plan_summary(plan, graph_name=graph.name, wall=plan.solve_time))
    heft = run_solver("heft", fp32)
    print(
        f"vs HEFT, fp32, whole ops  {_fmt_time(heft.makespan, 's')} -> "
        f"{heft.makespan / plan.makespan:.2f}x faster"
    )
    for name, h in plan.baselines.items():
        if name == "heft":
            print(
                f"vs HEFT on this question {_fmt_time(h, 's')} -> {h / plan.makespan:.2f}x faster"
            )
    print("\n[3/4] the split program, then the plan on one thread per device and link "
          "(virtual clock, real torch)")  # fmt: skip
    reference = lower_program(ep, graph, lowered).module if lowered else ep.module()
    split = apply(plan, ep, graph)
    with torch.no_grad():
        got = split(*example)
        want = reference(*example)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    print(f"split program: {len(split.hetsched_devices)} segments, "
          f"{len(split.hetsched_splits)} ops in shards, {len(lowered)} ops lowered; "
          "equals the program with the plan's precisions")  # fmt: skip
    result = execute(plan, problem, graph=graph, program=ep, inputs=example, clock="virtual")
    print(
        f"realized makespan {_fmt_time(result.makespan, 's')} (planned "
        f"{_fmt_time(result.planned_makespan, 's')}); outputs equal the program's: "
        f"{bool(result.outputs_match)}; dispatch median {result.dispatch_median_us:.0f} us"
    )
    if lowered:
        with torch.no_grad():
            exact = ep.module()(*example)
        err = float((got - exact).norm() / exact.norm())
        print(f"error against fp32 eager on the demo input: {err:.4f} (relative L2); "
              f"held-out inputs: {plan.measured_error:.4f} (budget {budget:g})")  # fmt: skip
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
