"""``hetsched solve``: place and schedule a graph, print the verdict, write the plan."""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any

from hetsched.cli import EXIT_INTERRUPTED
from hetsched.solver import SOLVERS, Progress, StopToken

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "solve",
        help="place and schedule a graph on a platform",
        description="Solve GRAPH (zoo model name, graph JSON or .stg) on a platform.",
    )
    p.add_argument("graph", metavar="GRAPH", help="zoo model name, graph .json or .stg file")
    p.add_argument("--platform", default="edge-soc", help="preset name or platform TOML")
    p.add_argument("--solver", default="portfolio", choices=sorted(SOLVERS))
    p.add_argument(
        "--objective", default="latency", choices=("latency", "throughput", "modulo", "memory")
    )
    p.add_argument(
        "--device",
        default=None,
        help="--objective memory: the device whose op order is chosen (default: the one with "
        "the least memory among those that run every op)",
    )
    p.add_argument("--time-limit", type=float, default=10.0, metavar="SEC")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="parallel workers, for solvers that run them (cpsat, lns, portfolio; default 2)",
    )
    p.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="plans fit device memory at every instant (default: on when the platform "
        "declares capacities)",
    )
    p.add_argument(
        "--link-contention", action="store_true", help="transfers on one link never overlap"
    )
    p.add_argument(
        "--ports", action="store_true",
        help="one-port transfers: each device sends one transfer and receives one at a time",
    )  # fmt: skip
    p.add_argument(
        "--error-budget",
        type=float,
        default=None,
        metavar="REL",
        help="ops may compute in int8/w8a16 (weight-only int8)/float16/bfloat16 while their "
        "output errors (relative L2, from --sensitivity or the graph's own) add up to at most "
        "REL (default: none)",
    )
    p.add_argument(
        "--split",
        action="store_true",
        help="heavy ops may run tensor-parallel across identical devices (linear by output "
        "features, conv by output channels, attention by heads)",
    )
    p.add_argument(
        "--pin",
        action="append",
        default=[],
        metavar="OPS=DEVICES",
        help="run ops (a name, module path or pattern) only on these devices or kinds, e.g. "
        "'layers.0.*=npu' (repeatable)",
    )
    p.add_argument(
        "--forbid", action="append", default=[], metavar="OPS=DEVICES",
        help="never run these ops on these devices or kinds (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--colocate", action="append", default=[], metavar="OPS,OPS,...",
        help="run these ops on one device (a comma list of selectors; repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--max-segments", type=int, default=None, metavar="K",
        help="at most K device segments along the op order (K-1 device switches)",
    )  # fmt: skip
    p.add_argument(
        "--sensitivity",
        default=None,
        metavar="FILE",
        help="per-op errors for --error-budget (hetsched sensitivity MODEL -o FILE)",
    )
    p.add_argument("--size", default="tiny", help="zoo model size (tiny|small|base|large)")
    p.add_argument(
        "--heads",
        default=None,
        choices=("fused", "split"),
        help="gpt attention heads (default: split for small/large, fused for tiny/base)",
    )
    p.add_argument(
        "--coarsen",
        action="store_true",
        help="solve a coarsened graph; report its plan re-timed on the full graph",
    )
    p.add_argument("--no-fuse", dest="fuse", action="store_false",
                   help="keep batch norms and elementwise epilogues as separate ops")  # fmt: skip
    p.add_argument("--contiguous", action="store_true", help="throughput: contiguous stages")
    p.add_argument("--max-latency", type=float, default=None, metavar="SEC")
    p.add_argument("--iterations", type=int, default=None, help="modulo: iterations to unroll")
    p.add_argument("--quiet", action="store_true", help="no live progress line")
    p.add_argument("-o", "--output", default=None, help="write the plan JSON here")
    p.set_defaults(func=run_solve)


def load_platform(spec: str) -> Any:
    """A preset name or a TOML path (:meth:`Platform.resolve`, as the API takes it)."""
    from hetsched.costmodel import Platform

    return Platform.resolve(spec)


def load_graph(args: argparse.Namespace) -> Any:
    from hetsched.graph.resolve import load_graph_spec

    return load_graph_spec(
        args.graph, size=args.size, heads=args.heads, fuse=getattr(args, "fuse", True)
    )


def _check_coarsen(args: argparse.Namespace) -> None:
    """``--coarsen`` carries a latency plan back to the full graph; nothing else."""
    from hetsched.errors import UsageError

    if args.coarsen and args.objective != "latency":
        msg = f"--coarsen solves for latency only, not --objective {args.objective}"
        raise UsageError(msg)
    if args.coarsen and args.split:
        msg = "--coarsen and --split do not go together (a group of ops is not one layer)"
        raise UsageError(msg)
    if args.coarsen and args.error_budget:
        msg = "--coarsen and --error-budget do not go together (errors are per op)"
        raise UsageError(msg)
    if args.error_budget is not None:  # before the graph is built or exported
        from hetsched.problem.problem import check_error_budget

        check_error_budget(args.error_budget)
    if args.sensitivity is not None and not args.error_budget:
        msg = "--sensitivity is read for --error-budget; give one"
        raise UsageError(msg)


def _coarse(graph: Any, args: argparse.Namespace) -> Any:
    """The graph the solver sees: ``graph``, or its coarsening (the plan is carried back to
    ``graph`` by :func:`_refine`)."""
    if not args.coarsen:
        return graph
    from hetsched.graph.coarsen import coarsen

    return coarsen(graph)


def _refine(plan: Any, coarse: Any, graph: Any, platform: Any, args: argparse.Namespace) -> Any:
    """The coarse plan's modes re-timed and validated on ``graph`` (what the program runs)."""
    from hetsched.api import build_problem
    from hetsched.partition.refine import refine_plan

    problem = build_problem(graph, platform, memory=args.memory,
                            link_contention=args.link_contention, ports=args.ports)  # fmt: skip
    return refine_plan(plan, coarse, problem)


def _objective_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``args.objective``; an option of another objective is an error, not
    silently dropped."""
    from hetsched.errors import UsageError

    given = {
        "--contiguous": ("throughput", args.contiguous or None),
        "--max-latency": ("throughput", args.max_latency),
        "--iterations": ("modulo", args.iterations),
        "--device": ("memory", args.device),
    }
    for flag, (objective, value) in given.items():
        if value is not None and args.objective != objective:
            msg = f"{flag} applies to --objective {objective}, not {args.objective}"
            raise UsageError(msg)
    if args.objective == "throughput":
        return {"contiguous": args.contiguous, "max_latency": args.max_latency}
    if args.objective == "modulo" and args.iterations is not None:
        from hetsched.schedule.throughput import check_iterations

        return {"iterations": check_iterations(args.iterations)}
    if args.objective == "memory" and args.device is not None:
        return {"device": args.device}
    return {}


class _ProgressLine:
    """One live line on stderr: best makespan, bound, gap, elapsed."""

    def __init__(self, enabled: bool, units: str) -> None:
        self.enabled = enabled
        self.units = units
        self.tty = sys.stderr.isatty()

    def __call__(self, ev: Progress) -> None:
        if not self.enabled:
            return
        fmt = _mib if self.units == "bytes" else partial(_fmt_time, units=self.units)
        line = (
            f"[{ev.elapsed:6.2f}s] {ev.solver:<6} best {fmt(ev.makespan)}  "
            f"bound {fmt(ev.bound)}  gap {100 * ev.gap:5.1f}%"
        )
        if self.tty:
            sys.stderr.write("\r" + line + "\x1b[K")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")


def _bound_from_line(plan: Any) -> list[str]:
    """The line under the bound that says which bound it is (what it counts: a gap to the
    devices' combined load says less of the plan than one to a relaxation with transfers),
    where the solver recorded it."""
    from hetsched.schedule.bounds import BOUND_TITLES

    stats = plan.stats if isinstance(plan.stats, Mapping) else {}
    title = BOUND_TITLES.get(stats.get("bound_from") or "")
    return [f"          from {title}"] if title else []


def _fmt_time(t: float, units: str) -> str:
    if units != "s":
        return f"{t:g}"
    if t >= 1:
        return f"{t:.3f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3f} ms"
    return f"{t * 1e6:.1f} us"


@contextmanager
def stop_on_signals(stop: StopToken) -> Iterator[StopToken]:
    """While inside, SIGINT/SIGTERM set ``stop``: the solve returns its best plan so far."""

    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, handler)
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_in_worker(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a worker thread while the main thread waits in short joins.

    Python runs signal handlers only in the main thread between bytecodes; a solver blocked
    in native code (CP-SAT) on the main thread would see SIGTERM only at its time limit.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # re-raised in the main thread below
            box["error"] = err

    worker = threading.Thread(target=target, name="hetsched-solve", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if "error" in box:
        raise box["error"]
    return box["value"]


def constraints_of(args: argparse.Namespace, graph: Any) -> Any:
    """The rules of ``--pin``/``--forbid``/``--colocate``/``--max-segments``, after the
    graph file's own (``meta.constraints``); ``None`` when there are none."""
    from hetsched.problem.constraints import Constraints

    own = graph.meta.get("constraints") if hasattr(graph, "meta") else None
    base = Constraints.from_dict(own, source="graph meta.constraints") if own else Constraints()
    flags = Constraints.parse(
        pins=args.pin, forbid=args.forbid, colocate=args.colocate, max_segments=args.max_segments
    )
    merged = Constraints(
        pins=base.pins + flags.pins,
        forbids=base.forbids + flags.forbids,
        colocate=base.colocate + flags.colocate,
        max_segments=flags.max_segments or base.max_segments,
    )
    return merged or None


def run_solve(args: argparse.Namespace) -> int:
    from hetsched.api import solve
    from hetsched.fileio import check_writable
    from hetsched.plan import save_plan

    if args.output:  # before the solve: a bad path must not cost the plan
        check_writable(args.output)
    options = _objective_options(args)
    _check_coarsen(args)
    graph = load_graph(args)
    solved = _coarse(graph, args)
    program = _program(args) if args.error_budget else None
    # the CLI says an over-budget plan in its own words, after the summary
    warnings.filterwarnings("ignore", message="plan's measured error")
    platform = load_platform(args.platform)
    units = "s" if not graph.has_explicit_costs else str(graph.meta.get("units", "units"))
    line = _ProgressLine(not args.quiet, "bytes" if args.objective == "memory" else units)
    t0 = time.perf_counter()
    with stop_on_signals(StopToken()) as stop:
        plan = run_in_worker(
            lambda: solve(
                solved,
                platform,
                objective=args.objective,
                solver=args.solver,
                time_limit=args.time_limit,
                seed=args.seed,
                workers=args.workers,
                memory=args.memory,
                link_contention=args.link_contention,
                ports=args.ports,
                error_budget=args.error_budget,
                sensitivity=args.sensitivity,
                program=program,
                split=args.split,
                constraints=constraints_of(args, graph),
                progress=line,
                stop=stop,
                **options,
            )
        )
    line.close()
    if solved is not graph:
        plan = _refine(plan, solved, graph, platform, args)
    if args.output:
        save_plan(plan, args.output)
    print(format_plan_summary(plan, graph_name=graph.name, wall=time.perf_counter() - t0))
    if solved is not graph:
        c = plan.stats["coarse"]
        print(f"coarse    {c['ops']} ops: makespan {_fmt_time(c['makespan'], units)} "
              f"({c['status']}); the plan above is re-timed on all ops")  # fmt: skip
    if args.output:
        print(f"plan written to {args.output}")
    if plan.stats.get("over_budget"):
        print(
            f"hetsched: warning: the plan's measured error {plan.measured_error:.4g} exceeds "
            f"the budget {args.error_budget:g} (predicted {plan.error:.4g})",
            file=sys.stderr,
        )
    return EXIT_INTERRUPTED if plan.interrupted else 0


def _program(args: argparse.Namespace) -> Any:
    """The exported program of a zoo model or ``module:factory`` (to measure sensitivity
    and the plan's error), ``None`` for a graph file."""
    from hetsched.graph.resolve import is_factory_spec, load_program_spec
    from hetsched.graph.zoo import list_models

    if args.graph not in {m.name for m in list_models()} and not is_factory_spec(args.graph):
        return None
    import torch

    model, example = load_program_spec(args.graph, size=args.size, heads=args.heads)
    return torch.export.export(model, example, strict=False)


def describe_rules(plan: Any) -> str:
    """The user's rules of ``plan`` in one line, with the segments the plan uses."""
    from hetsched.problem.constraints import count_segments

    c = plan.constraints
    parts = [f"pin {x}" for x in c.get("pin", [])] + [f"forbid {x}" for x in c.get("forbid", [])]
    parts += [f"colocate {','.join(g)}" for g in c.get("colocate", [])]
    used = count_segments([m.devices for m in plan.modes.values()])
    cap = c.get("max_segments")
    parts.append(f"{used} segments" + (f" (cap {cap})" if cap else ""))
    return "; ".join(parts)


def format_plan_summary(plan: Any, *, graph_name: str, wall: float) -> str:
    from hetsched.costmodel.precision import PRECISIONS

    units = plan.units
    lines = [
        f"graph     {graph_name}  ({len(plan.assignment)} ops) on {plan.platform}",
        f"solver    {plan.solver}  status {plan.status}"
        + (
            f" within {100 * plan.tolerance:g}% (durations rounded to whole quanta)"
            if plan.status == "optimal" and plan.objective_gap > 0
            else ""
        )
        + ("  (interrupted: best plan so far)" if plan.interrupted else ""),
        ("latency   " if plan.objective != "latency" else "makespan  ")
        + _fmt_time(plan.makespan, units)
        + {"latency": "", "memory": "  (every op on one device, in the order found)"}.get(
            plan.objective, "  (one iteration)"
        ),
        *(
            [
                f"bound     {_fmt_time(plan.lower_bound, units)}   gap {100 * plan.gap:.2f}%",
                *_bound_from_line(plan),
            ]
            if plan.objective != "memory"
            else []
        ),
        f"time      {plan.solve_time:.2f} s solve, {wall:.2f} s total",
        "devices   " + ", ".join(f"{d}: {k} ops" for d, k in plan.ops_per_device().items()),
    ]
    pipe = plan.pipeline
    if pipe is not None:
        lines.append(
            f"period    {_fmt_time(pipe.period, units)}  bound "
            f"{_fmt_time(pipe.period_bound, units)}  gap {100 * pipe.gap:.2f}%"
        )
        lines.append(f"stages    {pipe.stages} ({list(pipe.device_order)})")
        if pipe.latency:
            lines.append(f"latency   {_fmt_time(pipe.latency, units)} (stages x period)")
        if pipe.utilization:
            util = ", ".join(f"{d} {100 * u:.0f}%" for d, u in pipe.utilization.items())
            lines.append(f"util      {util}")
    mod = plan.modulo
    if mod is not None:
        lines.append(
            f"II        {_fmt_time(mod.ii, units)}  bound {_fmt_time(mod.ii_bound, units)}  "
            f"(ResMII {_fmt_time(mod.res_mii, units)}, RecMII {_fmt_time(mod.rec_mii, units)})"
            + (f"  proved by {mod.proved_by}" if mod.proved_by else "")
        )
        floor = plan.stats.get("bound_any_assignment") if isinstance(plan.stats, Mapping) else None
        if floor is not None:
            lines.append(
                f"          one assignment every period; {_fmt_time(floor, units)} bounds any "
                "periodic schedule, iterations taking turns on devices too"
            )
    restriction = plan.stats.get("restriction") if isinstance(plan.stats, Mapping) else None
    if restriction:
        lines.append(
            f"restrict  {restriction} (asked for): optimal means within it; without the "
            "restriction --objective throughput answers over every assignment"
        )
    if plan.constraints:
        lines.append(f"rules     {describe_rules(plan)}")
    peak = plan.peak_memory
    if peak is not None:
        lines.append(
            f"peak      {_mib(peak.peak)} on {peak.device}  bound {_mib(peak.peak_bound)}  "
            f"gap {100 * peak.gap:.2f}%  (weights {_mib(peak.weights)}, order by {peak.method})"
        )
        lines.append("orders    " + ", ".join(f"{k} {_mib(v)}" for k, v in peak.baselines.items()))
    elif plan.baselines:
        lines.append(
            "heuristic "
            + ", ".join(f"{k} {_fmt_time(v, units)}" for k, v in plan.baselines.items())
        )
    if plan.measured_error is not None:
        lines.append(
            f"error     measured {plan.measured_error:.4g} (relative L2, held-out inputs), "
            f"predicted {plan.error:.4g}"
        )
    splits = plan.stats.get("splits") if isinstance(plan.stats, Mapping) else None
    if splits:
        kinds: dict[str, int] = {}
        for row in splits.values():
            kinds[row["split"]] = kinds.get(row["split"], 0) + 1
        saved = sum(r["whole"] - r["time"] for r in splits.values() if math.isfinite(r["whole"]))
        kept = sum(1 for r in splits.values() if r.get("keeps"))
        lines.append(
            f"split     {len(splits)} ops ("
            + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
            + (f"; {kept} leave their output sharded for the next" if kept else "")
            + f"): {_fmt_time(saved, units)} of op time saved against running them whole "
            "(same devices, precision and weights)"
        )
    any_split = plan.stats.get("any_split_bound") if isinstance(plan.stats, Mapping) else None
    if any_split:
        gap = (plan.makespan - any_split) / plan.makespan if plan.makespan else 0.0
        lines.append(
            f"any split {_fmt_time(any_split, units)}: no split of any op, modelled or not "
            f"(any shares on any devices, tiles; transfers free), beats it; gap {100 * gap:.2f}%"
        )
    if plan.error:
        lowered: dict[str, int] = {}
        for m in plan.modes.values():
            if m.precision in PRECISIONS:
                lowered[m.precision] = lowered.get(m.precision, 0) + 1
        lines.append(
            f"precision predicted error {plan.error:.4g} "
            + ("(root-sum-square); " if plan.measured_error is not None else "(sum over ops); ")
            + ", ".join(f"{k}: {v} ops" for k, v in sorted(lowered.items()))
        )
    if any(v > 0 for v in plan.memory.values()):
        from hetsched.problem.problem import is_streamed

        streamed = sum(1 for m in plan.modes.values() if is_streamed(m.tag))
        lines.append(
            "memory    "
            + ", ".join(f"{d} {_mib(v)}" for d, v in plan.memory.items() if v > 0)
            + " (live peaks)"
            + (f"; weights streamed for {streamed} ops" if streamed else "")
        )
    return "\n".join(lines)


def _mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:.2f} MiB" if nbytes >= 2**16 else f"{nbytes:.0f} B"
