"""Latency against output error: the error budget swept, each plan measured end to end.

:func:`precision_front` solves one graph for latency at each error budget (smallest first,
each solve hinted with the plan of the budget below, which fits every larger budget), and
measures every plan's error on held-out inputs with ``measure``. Each point keeps the plan's
makespan, its proven lower bound and status, the predicted error (the sum of per-op
errors) and the measured one. :func:`ceiling` is the plan with every op that some device
runs in int8 free to run so (the all-int8 speed-up the budget is judged against).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hetsched.errors import InfeasibleError, PlanError, SolverError
from hetsched.graph import OpGraph
from hetsched.plan import Plan, validate
from hetsched.precision.table import SensitivityTable
from hetsched.problem import Problem
from hetsched.schedule.latency.portfolio import solve_portfolio

__all__ = ["FrontPoint", "ceiling", "lowered_ops", "precision_front"]


@dataclass(frozen=True)
class FrontPoint:
    """One budget: the plan's makespan, bound and status, its predicted and measured
    error, and how many ops run in each lowered precision."""

    budget: float
    makespan: float
    lower_bound: float
    status: str
    predicted: float
    measured: float | None
    lowered: Mapping[str, int]


def lowered_ops(plan: Plan, graph: OpGraph) -> dict[str, str]:
    """``{op: precision}`` of the ops ``plan`` runs in another precision than exported."""
    native = {x.name: x.dtype for x in graph.nodes}
    return {op: m.precision for op, m in plan.modes.items() if m.precision != native[op]}


def _solve(
    graph: OpGraph,
    platform: Any,
    errors: Mapping[str, Mapping[str, float]] | None,
    budget: float,
    *,
    time_limit: float,
    hint: Plan | None,
    seed: int,
) -> tuple[Plan, Problem]:
    problem = Problem.build(graph, platform, errors=errors, error_budget=budget)
    if hint is not None:
        try:
            validate(hint, problem)
            hint = hint.with_(lower_bound=0.0, searched=False)
        except PlanError:
            hint = None
    plan = solve_portfolio(problem, time_limit=time_limit, seed=seed, hint=hint)
    return plan, problem


def ceiling(
    graph: OpGraph, platform: Any, table: SensitivityTable, *, time_limit: float, seed: int = 0
) -> Plan:
    """The best plan found with every op the table lists in int8 free to run in int8 (no
    error limit): the all-int8 speed-up's reference, same solver and cost model."""
    int8 = {op: {"int8": 0.0} for op, row in table.errors.items() if "int8" in row}
    free = float("inf")
    plan, _ = _solve(graph, platform, int8, free, time_limit=time_limit, hint=None, seed=seed)
    return plan


def precision_front(
    graph: OpGraph,
    platform: Any,
    table: SensitivityTable,
    budgets: Sequence[float],
    *,
    time_limit: float = 10.0,
    seed: int = 0,
    measure: Callable[[Plan], float] | None = None,
) -> list[FrontPoint]:
    """One :class:`FrontPoint` per budget, in the order given (see the module docstring)."""
    table.check_for(graph)
    out: dict[int, FrontPoint] = {}
    hint: Plan | None = None
    for k in sorted(range(len(budgets)), key=lambda i: budgets[i]):
        budget = float(budgets[k])
        try:
            plan, _ = _solve(
                graph, platform, table.errors, budget, time_limit=time_limit, hint=hint, seed=seed
            )
        except (InfeasibleError, SolverError):
            continue
        hint = plan
        low = lowered_ops(plan, graph)
        counts: dict[str, int] = {}
        for p in low.values():
            counts[p] = counts.get(p, 0) + 1
        out[k] = FrontPoint(
            budget=budget,
            makespan=plan.makespan,
            lower_bound=plan.lower_bound,
            status=plan.status,
            predicted=plan.error,
            measured=measure(plan) if measure is not None and low else 0.0,
            lowered=counts,
        )
    return [out[k] for k in sorted(out)]
