"""``hetsched run``, ``show`` and ``explain``: execute, replay, draw and explain a saved
plan."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["problem_options", "register"]


# what an executed plan's outputs were, against eager PyTorch
_VERDICT = {None: "not checked (no program)", True: "match eager", False: "DIFFER from eager"}


def register(subparsers: Any) -> None:
    """Add ``run``, ``show`` and ``explain`` to the ``hetsched`` parser."""
    p = subparsers.add_parser(
        "run",
        help="execute a plan on simulated devices (real torch numerics with --model)",
        description="Run PLAN with one thread per device and link; compare with the plan.",
    )
    p.add_argument("plan", metavar="PLAN", help="plan JSON (from `hetsched solve -o`)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="zoo model or package.module:factory: run real numerics")
    src.add_argument("--graph", help="zoo model, graph .json or .stg: ops only occupy time")
    _graph_options(p)
    clk = p.add_mutually_exclusive_group()
    clk.add_argument("--virtual", action="store_true", help="virtual clock (the default)")
    clk.add_argument("--time-scale", type=float, default=None, metavar="X",
                     help="real time: X wall seconds per plan second")  # fmt: skip
    p.add_argument("--fail", action="append", default=[], metavar="DEV@T",
                   help="device DEV fails at plan time T (repeatable; also op:NAME)")  # fmt: skip
    p.add_argument("--noise", type=float, default=None, help="replay with this noise (log-sd)")
    p.add_argument("--samples", type=int, default=None, help="noise samples (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iterations", type=int, default=None, metavar="N",
                   help="periodic plan: run N overlapping iterations (default 4)")  # fmt: skip
    p.add_argument("--watchdog", type=float, default=30.0, metavar="SEC")
    p.add_argument("--trace", metavar="OUT.json", help="write a Chrome trace of the run")
    p.add_argument("--gantt", metavar="OUT.png", help="write a Gantt chart of the run")
    p.set_defaults(func=run_run)

    s = subparsers.add_parser(
        "show", help="summarise and draw a plan", description="Summarise PLAN; draw it."
    )
    s.add_argument("plan", metavar="PLAN")
    s.add_argument(
        "--graph", help="graph spec: validate the plan against it, colour ops by category"
    )
    _graph_options(s)
    s.add_argument("--gantt", metavar="OUT.png")
    s.add_argument("--trace", metavar="OUT.json")
    s.set_defaults(func=run_show)

    e = subparsers.add_parser(
        "explain",
        help="why each op went where it went: runner-up, cost of a move, rules",
        description="For every op of PLAN: its device, cost there and on the runner-up, the "
        "makespan with it moved there (re-timed), what its mode decided and what ruled the "
        "other devices out; a summary per module.",
    )
    e.add_argument("plan", metavar="PLAN")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="zoo model or package.module:factory the plan is of")
    src.add_argument("--graph", help="zoo model, graph .json or .stg the plan is of")
    _graph_options(e)
    e.add_argument("--depth", type=int, default=2, help="module path parts per summary row")
    e.add_argument("--ops", action="store_true", help="also list every op")
    e.add_argument("-o", "--output", metavar="OUT.json", help="write the explanation as JSON")
    e.set_defaults(func=run_explain)


def run_explain(args: argparse.Namespace) -> int:
    from hetsched.cli.solve_cmds import _fmt_time
    from hetsched.fileio import check_writable, write_json_atomic
    from hetsched.plan import load_plan, validate
    from hetsched.schedule.explain import explain

    if args.output:
        check_writable(args.output)
    if args.depth < 1:
        from hetsched.errors import UsageError

        msg = f"--depth must be at least 1, got {args.depth}"
        raise UsageError(msg)
    plan = load_plan(args.plan)
    if getattr(args, "model", None):  # timing only: the program's ops, not its numerics
        args.graph, args.model = args.model, None
    graph, _, _, problem = _load(args, plan)
    validate(plan, problem)
    found = explain(plan, problem, graph, depth=args.depth)

    def fmt(t: float) -> str:
        return _fmt_time(abs(t), plan.units) if t >= 0 else "-" + _fmt_time(-t, plan.units)

    print(f"plan      {plan.graph_name} on {plan.platform}: makespan {fmt(plan.makespan)} "
          f"({plan.status}); a move = that op alone on its runner-up, re-timed")  # fmt: skip
    print(found.module_table(fmt))
    if args.ops:
        print()
        print(found.op_table(fmt))
    if args.output:
        write_json_atomic(args.output, found.to_dict())
        print(f"explanation written to {args.output}")
    return 0


def _graph_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--platform", default=None, help="preset or TOML (default: the plan's)")
    p.add_argument("--size", default="tiny", help="zoo model size (default tiny)")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--seq", type=int, default=None)
    p.add_argument("--heads", default=None, choices=("fused", "split"))
    p.add_argument(
        "--coarsen", action="store_true", help="the plan was solved on a coarsened graph"
    )
    p.add_argument("--no-fuse", dest="fuse", action="store_false",
                   help="the plan was solved with --no-fuse (unfused ops)")  # fmt: skip
    p.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="check the plan against device memory (default: on when the platform declares "
        "capacities; --no-memory for a plan solved so)",
    )
    p.add_argument("--link-contention", action="store_true", help="the plan serialises links")
    p.add_argument("--ports", action="store_true", help="the plan was solved with --ports")


def _check_outputs(args: argparse.Namespace) -> None:
    """Before the run: a bad ``--trace``/``--gantt`` path must not cost it."""
    from hetsched.fileio import check_writable

    for path in (args.trace, args.gantt):
        if path:
            check_writable(path)


def _check_run_args(args: argparse.Namespace) -> None:
    """Every option ``run`` would refuse or ignore, refused before any work."""
    from hetsched.errors import UsageError
    from hetsched.exec.executor import check_run_options
    from hetsched.exec.simulate import check_noise

    if args.time_scale is None:
        check_run_options(watchdog=args.watchdog)
    else:
        check_run_options(clock="scaled", time_scale=args.time_scale, watchdog=args.watchdog)
    if args.noise is not None:
        check_noise(args.noise, 100 if args.samples is None else args.samples)
    elif args.samples is not None:
        msg = f"--samples {args.samples} applies only with --noise (the noisy replay)"
        raise UsageError(msg)
    _check_outputs(args)


def _platform(args: argparse.Namespace, plan: Any) -> Any:
    """``--platform``, else the plan's platform when it is a preset."""
    from hetsched.cli.solve_cmds import load_platform
    from hetsched.costmodel import Platform
    from hetsched.errors import UsageError

    name = args.platform or plan.platform or "edge-soc"
    if not args.platform and not name.startswith("homogeneous-") and name not in Platform.presets():
        msg = (
            f"the plan was solved on platform {name!r}, which is not a preset: give its TOML "
            "file with --platform"
        )
        raise UsageError(msg)
    return load_platform(name)


def _load(args: argparse.Namespace, plan: Any) -> tuple[Any, Any, Any, Any]:
    """``(graph, program, inputs, problem)`` for ``plan`` from the command-line specs."""
    from hetsched.errors import UsageError
    from hetsched.graph.resolve import load_graph_spec, load_program_spec
    from hetsched.problem import Problem

    opts = {"size": args.size, "batch": args.batch, "seq": args.seq, "heads": args.heads}
    program = inputs = None
    if getattr(args, "model", None):
        import torch

        from hetsched.graph.resolve import import_program

        model, inputs = load_program_spec(args.model, **opts)
        program = torch.export.export(model, tuple(inputs))
        name = plan.graph_name or f"{args.model}-{args.size}"
        graph = import_program(program, name=name, fuse=args.fuse, coarsen=args.coarsen)
    elif args.graph:
        graph = load_graph_spec(args.graph, coarsen=args.coarsen, fuse=args.fuse, **opts)
    else:
        msg = "give --model (real numerics) or --graph (timing only) to rebuild the problem"
        raise UsageError(msg)
    problem = Problem.build(graph, _platform(args, plan), memory=args.memory,
                            link_contention=args.link_contention, ports=args.ports,
                            **problem_options(plan, graph))  # fmt: skip
    return graph, program, inputs, problem


def _fmt(t: float, units: str) -> str:
    from hetsched.cli.solve_cmds import _fmt_time

    return _fmt_time(t, units)


def run_run(args: argparse.Namespace) -> int:
    from hetsched.errors import UsageError
    from hetsched.exec.executor import execute
    from hetsched.exec.gantt import save_gantt
    from hetsched.exec.simulate import robustness
    from hetsched.exec.trace import save_trace
    from hetsched.plan import load_plan

    _check_run_args(args)
    plan = load_plan(args.plan)
    graph, program, inputs, problem = _load(args, plan)
    if plan.modulo is not None:
        return _run_periodic(args, plan, graph, program, inputs, problem)
    if args.iterations is not None:
        msg = f"--iterations applies to a throughput (periodic) plan, not a {plan.objective} one"
        raise UsageError(msg)
    scaled = args.time_scale is not None
    res = execute(
        plan, problem, graph=graph, program=program, inputs=inputs,
        clock="scaled" if scaled else "virtual", time_scale=args.time_scale if scaled else 1.0,
        faults=args.fail, watchdog=args.watchdog,
    )  # fmt: skip
    u = plan.units
    clock = f"scaled x{args.time_scale:g}" if scaled else "virtual"
    print(f"plan      {plan.graph_name or '?'} ({plan.solver}, {plan.status}) on "
          f"{plan.platform or '?'}: {len(plan.assignment)} ops")  # fmt: skip
    print(f"run       {clock} clock: planned {_fmt(res.planned_makespan, u)}, realized "
          f"{_fmt(res.makespan, u)} (x{res.slowdown:.4f}), wall {res.wall_time:.3f} s")  # fmt: skip
    print(f"outputs   {_VERDICT[res.outputs_match]}")
    print(f"dispatch  median {res.dispatch_median_us:.1f} us, p99 {res.dispatch_p99_us:.1f} us")
    if res.faults_seen or args.fail:
        seen = ", ".join(res.faults_seen) or "none took effect"
        print(f"faults    {seen}; {len(res.replans)} re-plan(s)")
    for d, util in res.utilization.items():
        n = sum(1 for x in res.assignment.values() if x == d)
        peak = res.memory.get(d, 0.0)
        planned = plan.memory.get(d, 0.0)
        mem = f"  peak {peak / 2**20:.2f} MiB (planned {planned / 2**20:.2f})" if peak else ""
        print(f"device    {d:<10} {100 * util:5.1f}% busy  {n:4d} ops{mem}")
    if args.noise is not None:
        samples = 100 if args.samples is None else args.samples
        r = robustness(plan, problem, noise=args.noise, samples=samples, seed=args.seed)
        print(f"noise     {args.noise:g} x {samples}: median {_fmt(r['median'], u)}, "
              f"p95 {_fmt(r['p95'], u)}, mean {_fmt(r['mean'], u)} "
              f"(planned {_fmt(r['planned'], u)})")  # fmt: skip
    if args.trace:
        save_trace(res, args.trace, graph=graph)
        print(f"trace written to {args.trace}")
    if args.gantt:
        save_gantt(res, args.gantt, graph=graph)
        print(f"gantt written to {args.gantt}")
    return 1 if res.outputs_match is False else 0


def _run_periodic(
    args: argparse.Namespace, plan: Any, graph: Any, program: Any, inputs: Any, problem: Any
) -> int:
    """``run`` for a periodic plan: N overlapping iterations, each on its own inputs (the
    example inputs, floating ones shifted by seeded noise from the second iteration on)."""
    from hetsched.errors import UsageError
    from hetsched.exec import execute_periodic
    from hetsched.exec.gantt import save_gantt
    from hetsched.exec.trace import save_trace
    from hetsched.schedule.throughput import check_iterations

    if args.fail or args.noise is not None:
        msg = "--fail and --noise apply to latency plans, not to a periodic run"
        raise UsageError(msg)
    n = check_iterations(args.iterations)
    per_iteration = None
    if program is not None:
        import torch

        gen = torch.Generator().manual_seed(args.seed)

        def shifted(x: Any, i: int) -> Any:
            if isinstance(x, torch.Tensor) and x.is_floating_point() and i:
                return x + 0.1 * torch.randn(x.shape, generator=gen, dtype=x.dtype)
            return x

        per_iteration = [tuple(shifted(x, i) for x in inputs) for i in range(n)]
    scaled = args.time_scale is not None
    r = execute_periodic(
        plan, problem, iterations=n, graph=graph, program=program, inputs=per_iteration,
        clock="scaled" if scaled else "virtual", time_scale=args.time_scale if scaled else 1.0,
        watchdog=args.watchdog,
    )  # fmt: skip
    u = plan.units
    print(f"plan      {plan.graph_name or '?'} ({plan.solver}, {plan.status}) on "
          f"{plan.platform or '?'}: {len(plan.assignment)} ops, periodic")  # fmt: skip
    clock = "scaled" if scaled else "virtual"
    measured = _fmt(r.measured_period, u)
    print(f"period    planned {_fmt(r.planned_period, u)}, measured {measured} "
          f"over {n} overlapping iterations ({clock} clock)")  # fmt: skip
    print("latency   " + ", ".join(_fmt(x, u) for x in r.latencies) + " (each iteration)")
    print("outputs   " + ", ".join(f"#{i} {_VERDICT[m]}" for i, m in enumerate(r.outputs_match)))
    if args.trace:
        save_trace(r.run, args.trace, graph=None)
        print(f"trace written to {args.trace}")
    if args.gantt:
        save_gantt(r.run, args.gantt, graph=None)
        print(f"gantt written to {args.gantt}")
    return 1 if False in r.outputs_match else 0


def _show_objective(plan: Any, problem: Any) -> None:
    """Print a throughput or modulo plan's typed result; re-check it first when the problem
    is at hand."""
    u = plan.units
    if plan.pipeline is not None:
        from hetsched.schedule.throughput import validate_pipeline

        if problem is not None:
            validate_pipeline(plan, problem)
        pipe = plan.pipeline
        print(f"pipeline  period {_fmt(pipe.period, u)}  bound {_fmt(pipe.period_bound, u)}  "
              f"stages {pipe.stages} ({', '.join(pipe.device_order)})")  # fmt: skip
    if plan.modulo is not None:
        from hetsched.schedule.throughput.modulo import validate_modulo

        if problem is not None:
            validate_modulo(plan, problem)
        mod = plan.modulo
        print(f"modulo    II {_fmt(mod.ii, u)}  bound {_fmt(mod.ii_bound, u)}  "
              f"(ResMII {_fmt(mod.res_mii, u)}, RecMII {_fmt(mod.rec_mii, u)})")  # fmt: skip


def run_show(args: argparse.Namespace) -> int:
    from hetsched.exec.gantt import save_gantt
    from hetsched.exec.trace import save_trace
    from hetsched.graph.resolve import load_graph_spec
    from hetsched.plan import load_plan

    _check_outputs(args)
    plan = load_plan(args.plan)
    graph = problem = None
    if args.graph:
        graph = load_graph_spec(args.graph, size=args.size, batch=args.batch, seq=args.seq,
                                heads=args.heads, coarsen=args.coarsen,
                                fuse=args.fuse)  # fmt: skip
        # With the graph at hand the plan is checked before it is shown: a plan for another
        # graph, or one naming a device the platform lacks, is an error, not a picture.
        from hetsched.plan import validate
        from hetsched.problem import Problem

        problem = Problem.build(graph, _platform(args, plan), memory=args.memory,
                                link_contention=args.link_contention, ports=args.ports,
                                **problem_options(plan, graph))  # fmt: skip
        validate(plan, problem)
    _show_objective(plan, problem)
    u = plan.units
    head = f"{plan.graph_name or '?'} ({plan.solver}, {plan.status}) on {plan.platform or '?'}"
    print(f"plan      {head}: {len(plan.assignment)} ops, {len(plan.transfers)} transfers")
    print(f"makespan  {_fmt(plan.makespan, u)}  bound {_fmt(plan.lower_bound, u)}  "
          f"gap {100 * plan.gap:.1f}%")  # fmt: skip
    for d, n in plan.ops_per_device().items():
        busy = sum(plan.finish[x] - plan.start[x] for x, y in plan.assignment.items() if y == d)
        util = busy / plan.makespan if plan.makespan > 0 else 0.0
        print(f"device    {d:<10} {100 * util:5.1f}% busy  {n:4d} ops")
    if args.trace:
        save_trace(plan, args.trace, graph=graph)
        print(f"trace written to {args.trace}")
    if args.gantt:
        save_gantt(plan, args.gantt, graph=graph)
        print(f"gantt written to {args.gantt}")
    return 0


def problem_options(plan: Any, graph: Any) -> dict[str, Any]:
    """Problem options under which ``plan``'s modes exist: a plan to run or show has made
    its precision decisions already (each counted as no error here) and its splits."""
    native = {x.name: x.dtype for x in graph.nodes}
    lowered = {
        op: {m.precision: 0.0}
        for op, m in plan.modes.items()
        if op in native and m.precision not in ("native", native[op])
    }
    from hetsched.costmodel.sharding import describe_split

    split = any(describe_split(m.tag) for m in plan.modes.values())
    out: dict[str, Any] = {"split": True} if split else {}
    if plan.constraints:  # the rules it was made under, so the validator checks them
        from hetsched.problem.constraints import Constraints

        out["constraints"] = Constraints.from_dict(plan.constraints, source="plan constraints")
    return {**out, "errors": lowered, "error_budget": float("inf")} if lowered else out
