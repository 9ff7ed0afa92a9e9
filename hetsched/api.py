"""The small public surface: :func:`solve` a graph on a platform, get a validated plan.

Examples
--------
>>> from hetsched.graph import OpGraph, OpNode, Edge
>>> g = OpGraph("toy", [OpNode("a", cost={"*": 2.0}), OpNode("b", cost={"*": 3.0}),
...                     OpNode("c", cost={"*": 3.0})], [Edge("a", "b"), Edge("a", "c")])
>>> plan = solve(g, "homogeneous-2", time_limit=5)
>>> plan.makespan, plan.status
(5.0, 'optimal')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hetsched.errors import UsageError
from hetsched.plan import Plan
from hetsched.problem import Problem
from hetsched.solver import ProgressCallback, StopToken, run_solver

if TYPE_CHECKING:
    from hetsched.graph.opgraph import OpGraph

__all__ = ["OBJECTIVES", "build_problem", "solve"]

OBJECTIVES = ("latency", "throughput", "modulo")


def build_problem(
    graph: OpGraph,
    platform: Any = "edge-soc",
    *,
    cost_model: Any = None,
    memory: bool = False,
    link_contention: bool = False,
) -> Problem:
    """Compile ``graph`` on ``platform`` (a ``Platform`` or a preset name)."""
    return Problem.build(
        graph, platform, cost_model, memory=memory, link_contention=link_contention
    )


def solve(
    graph: OpGraph,
    platform: Any = "edge-soc",
    *,
    objective: str = "latency",
    solver: str = "portfolio",
    time_limit: float = 10.0,
    seed: int = 0,
    cost_model: Any = None,
    memory: bool = False,
    link_contention: bool = False,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    stop: StopToken | None = None,
    **options: Any,
) -> Plan:
    """Place and schedule every op of ``graph`` on ``platform``; return a validated plan.

    Parameters
    ----------
    graph : the operator DAG (see :mod:`hetsched.graph`).
    platform : a ``Platform`` or a preset name (``hetsched platforms`` lists them).
    objective : ``"latency"`` (makespan of one inference), ``"throughput"`` (pipeline
        period) or ``"modulo"`` (initiation interval of repeated iterations).
    solver : one of :data:`hetsched.solver.SOLVERS` for latency.
    time_limit, seed : explicit solver parameters; ``workers`` for solvers that run parallel
        workers (default 2 there; an error for the others).
    memory, link_contention : turn on device-capacity and link-overlap constraints.
    stop : a :class:`~hetsched.solver.StopToken` that cuts this solve short (it returns its
        best plan so far, marked ``interrupted``); each solve gets a fresh one by default.

    Raises
    ------
    InfeasibleError : an op no device supports, memory that cannot fit.
    UsageError, SolverError : bad arguments, or an option the solver does not take.
    """
    if objective not in OBJECTIVES:
        msg = f"unknown objective {objective!r} (choose from {', '.join(OBJECTIVES)})"
        raise UsageError(msg)
    problem = build_problem(
        graph, platform, cost_model=cost_model, memory=memory, link_contention=link_contention
    )
    if objective != "latency":
        from hetsched.schedule.throughput import solve_objective

        return solve_objective(
            problem,
            graph,
            objective=objective,
            solver=solver,
            time_limit=time_limit,
            seed=seed,
            progress=progress,
            workers=workers,
            stop=stop,
            **options,
        )
    return run_solver(
        solver,
        problem,
        time_limit=time_limit,
        seed=seed,
        progress=progress,
        workers=workers,
        stop=stop,
        **options,
    )
