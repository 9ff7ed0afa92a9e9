"""Throughput: how fast the graph streams when it repeats (pipeline partitions, modulo).

* :func:`solve_pipeline` - minimum pipeline period, exact (CP-SAT), against the PipeDream
  DP, equal-split and capability-greedy baselines (:mod:`.baselines`).
* :func:`hetsched.schedule.throughput.modulo.solve_modulo` - minimum initiation interval.
* :func:`solve_objective` - what :func:`hetsched.solve` calls for ``objective != "latency"``.

Examples
--------
>>> from hetsched.graph import OpGraph, OpNode, Edge
>>> from hetsched.problem import Problem
>>> g = OpGraph("toy", [OpNode("a", cost={"*": 2.0}), OpNode("b", cost={"*": 3.0})],
...             [Edge("a", "b")], meta={"units": "units"})
>>> p = Problem.build(g, "homogeneous-2")
>>> plan = solve_objective(p, g, objective="throughput", time_limit=5, workers=1)
>>> plan.period, plan.status
(3.0, 'optimal')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hetsched.errors import UsageError
from hetsched.schedule.throughput.baselines import (
    Baseline,
    capability_greedy,
    dp_partition,
    equal_split,
    run_baselines,
)
from hetsched.schedule.throughput.pipecost import (
    PipelineCost,
    channels,
    pipeline_cost,
    simple_period_bound,
)
from hetsched.schedule.throughput.pipeline import build_pipeline_model, solve_pipeline
from hetsched.schedule.throughput.pipeplan import (
    PipelinePlan,
    as_pipeline_plan,
    make_pipeline_plan,
    validate_pipeline,
)
from hetsched.solver import ProgressCallback

if TYPE_CHECKING:
    from hetsched.graph.opgraph import OpGraph
    from hetsched.plan import Plan
    from hetsched.problem import Problem

__all__ = [
    "Baseline",
    "PipelineCost",
    "PipelinePlan",
    "as_pipeline_plan",
    "build_pipeline_model",
    "capability_greedy",
    "channels",
    "demo_cases",
    "dp_partition",
    "equal_split",
    "make_pipeline_plan",
    "pipeline_cost",
    "run_baselines",
    "simple_period_bound",
    "solve_objective",
    "solve_pipeline",
    "validate_pipeline",
]

_SOLVER_ALIASES = ("portfolio", "cpsat", "pipeline", "modulo")


def solve_objective(
    problem: Problem,
    graph: OpGraph | None = None,
    *,
    objective: str,
    solver: str = "portfolio",
    time_limit: float = 10.0,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    workers: int = 2,
    **options: Any,
) -> Plan:
    """Solve ``problem`` for ``objective`` ``"throughput"`` or ``"modulo"``; validated plan.

    ``solver`` may be ``portfolio``/``cpsat`` (exact, hinted by the baselines) or a baseline
    name (``dp``, ``equal-ops``, ``equal-flops``, ``capability``) for throughput.
    Throughput options: ``contiguous``, ``stages``, ``max_latency`` (s), ``min_block_size``.
    Modulo options: ``carried`` [(src, dst, distance)], ``iterations`` (unrolled check).
    """
    if objective == "throughput":
        return _throughput(problem, graph, solver, time_limit, seed, progress, workers, options)
    if objective == "modulo":
        from hetsched.schedule.throughput.modulo import solve_modulo, validate_modulo

        iterations = options.pop("iterations", None) or 4
        if solver not in _SOLVER_ALIASES:
            msg = f"objective 'modulo' is solved by CP-SAT; solver {solver!r} does not apply"
            raise UsageError(msg)
        plan = solve_modulo(
            problem, time_limit=time_limit, seed=seed, progress=progress, workers=workers,
            iterations=iterations, **options,
        )  # fmt: skip
        validate_modulo(plan, problem, iterations=iterations)
        return plan
    msg = f"solve_objective handles 'throughput' and 'modulo', not {objective!r}"
    raise UsageError(msg)


def _throughput(
    problem: Problem,
    graph: OpGraph | None,
    solver: str,
    time_limit: float,
    seed: int,
    progress: ProgressCallback | None,
    workers: int,
    options: dict[str, Any],
) -> Plan:
    contiguous = bool(options.pop("contiguous", False))
    max_latency = options.get("max_latency")
    known = {"stages", "max_latency", "min_block_size", "export_model"}
    unknown = sorted(set(options) - known)
    if unknown:
        msg = f"unknown throughput option {unknown[0]!r} (known: contiguous, {', '.join(known)})"
        raise UsageError(msg)
    if solver in _SOLVER_ALIASES:
        plan = solve_pipeline(
            problem, graph, contiguous=contiguous, time_limit=time_limit, seed=seed,
            workers=workers, progress=progress, **options,
        )  # fmt: skip
    else:
        plan = _baseline_plan(problem, graph, solver, contiguous, options)
    validate_pipeline(plan, problem, max_latency=max_latency)
    return plan


def _baseline_plan(
    problem: Problem,
    graph: OpGraph | None,
    solver: str,
    contiguous: bool,
    options: dict[str, Any],
) -> PipelinePlan:
    from hetsched.errors import InfeasibleError

    names = ("dp", "equal-ops", "equal-flops", "capability")
    if solver not in names:
        choices = ", ".join(("portfolio", "cpsat", *names))
        msg = f"unknown throughput solver {solver!r} (choose from {choices})"
        raise UsageError(msg)
    runs = run_baselines(
        problem, graph, stages=options.get("stages"),
        min_block_size=options.get("min_block_size", 5),
    )  # fmt: skip
    found = [b for b in runs if b.name == solver]
    if not found or not found[0].cost.feasible:
        msg = f"baseline {solver!r} found no acyclic, memory-feasible partition of {problem.name!r}"
        raise InfeasibleError(msg)
    b = found[0]
    bounds = simple_period_bound(problem)
    return make_pipeline_plan(
        problem, b.assign, solver=solver, status="heuristic",
        period_bound=max(bounds.values()), solve_time=b.seconds,
        stats={"bounds": bounds}, contiguous=contiguous,
    )  # fmt: skip


def __getattr__(name: str) -> Any:
    # demo_cases builds zoo graphs: import on first use.
    if name == "demo_cases":
        from hetsched.schedule.throughput.demo import demo_cases

        return demo_cases
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
