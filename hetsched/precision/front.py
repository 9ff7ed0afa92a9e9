"""Latency against output error: the error budget swept, each plan measured end to end.

Both answer budgets on the root-sum-square error (independent rounding noise adds in power:
measured on 36 plans of the base models, 0.90-1.18x the root-sum-square, 0.17-0.42x the
plain sum), so the solvers get per-op noise powers
(:meth:`~hetsched.precision.table.SensitivityTable.noise_powers`) and the budget.
:func:`solve_measured` answers the question a user asks, *the fastest plan whose measured
error stays within the budget*: it solves, measures the plan on held-out inputs and, while
the measurement leaves room (or is over), solves again with the model's budget scaled by
what the measurement showed; it keeps the fastest plan measured within the budget. Its
lower bound is that of every precision allowed (the measured question has no tighter one),
so such a plan is proven optimal only when it reaches the all-lossy bound.

:func:`precision_front` solves one graph for latency at each error budget (smallest first,
each solve hinted with the plan of the budget below, which fits every larger budget), and
measures every plan's error on held-out inputs with ``measure``. Each point keeps the plan's
makespan, its proven lower bound and status (of the noise-power model), the predicted error
(root-sum-square) and the measured one. :func:`ceiling` is the plan with every op that some
device runs in int8 free to run so (the all-int8 speed-up the budget is judged against).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hetsched.errors import InfeasibleError, SolverError
from hetsched.graph import OpGraph
from hetsched.plan import Plan
from hetsched.precision.table import SensitivityTable
from hetsched.problem import Problem
from hetsched.problem.constraints import Constraints
from hetsched.schedule.latency.portfolio import solve_portfolio
from hetsched.schedule.latency.warmstart import carry_plan

__all__ = [
    "FrontPoint",
    "ceiling",
    "lowered_ops",
    "plot_front",
    "precision_front",
    "solve_measured",
]


@dataclass(frozen=True)
class FrontPoint:
    """One budget: the plan's makespan, bound and status, its predicted and measured
    error, and how many ops run in each lowered precision; ``model_budget`` the
    root-sum-square budget its bound and status belong to (below ``budget`` when the first
    plan measured over it)."""

    budget: float
    makespan: float
    lower_bound: float
    status: str
    predicted: float
    measured: float | None
    lowered: Mapping[str, int]
    model_budget: float | None = None


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
    split: bool = False,
    constraints: Constraints | None = None,
) -> tuple[Plan, Problem]:
    problem = Problem.build(
        graph, platform, errors=errors, error_budget=budget, split=split, constraints=constraints
    )
    carried = carry_plan(hint, problem) if hint is not None else None
    plan = solve_portfolio(problem, time_limit=time_limit, seed=seed, hint=carried)
    return plan, problem


def _solve_rss(
    graph: OpGraph,
    platform: Any,
    table: SensitivityTable,
    budget: float,
    *,
    time_limit: float,
    hint: Plan | None,
    seed: int,
    split: bool = False,
    constraints: Constraints | None = None,
) -> Plan:
    """The plan for a root-sum-square ``budget`` (every op as exported at 0), its ``error``
    the predicted root-sum-square."""
    errors = table.noise_powers(budget) if budget > 0 else None
    plan, _ = _solve(
        graph,
        platform,
        errors,
        budget,
        time_limit=time_limit,
        hint=hint,
        seed=seed,
        split=split,
        constraints=constraints,
    )
    return plan.with_(error=table.predicted_rss(lowered_ops(plan, graph)))


def ceiling(
    graph: OpGraph,
    platform: Any,
    table: SensitivityTable,
    *,
    time_limit: float,
    seed: int = 0,
    hint: Plan | None = None,
    split: bool = False,
    constraints: Constraints | None = None,
) -> Plan:
    """The best plan found with every op free to run in any precision the table lists for
    it (int8 wherever a device runs it so, float16, bfloat16), no error limit: the
    reference a budget's speed-up is judged against (same solver and cost model). ``hint``
    (e.g. the fastest budgeted plan) starts the search."""
    free = {op: dict.fromkeys(row, 0.0) for op, row in table.errors.items()}
    plan, _ = _solve(
        graph, platform, free, float("inf"), time_limit=time_limit, hint=hint, seed=seed,
        split=split, constraints=constraints,
    )  # fmt: skip
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
    split: bool = False,
    constraints: Constraints | None = None,
) -> list[FrontPoint]:
    """One :class:`FrontPoint` per budget, in the order given (see the module docstring)."""
    table.check_for(graph)
    out: dict[int, FrontPoint] = {}
    hint: Plan | None = None
    for k in sorted(range(len(budgets)), key=lambda i: budgets[i]):
        budget = float(budgets[k])
        try:
            if measure is not None and budget > 0:
                plan, tried = _measured_rounds(
                    graph, platform, table, budget, measure,
                    time_limit=time_limit, seed=seed, rounds=3, hint=hint, split=split,
                    constraints=constraints,
                )  # fmt: skip
                model_budget = next(b for b, ms, m in tried if ms == plan.makespan and m <= budget)
                measured = plan.measured_error
            else:
                plan = _solve_rss(
                    graph, platform, table, budget,
                    time_limit=time_limit, hint=hint, seed=seed, split=split,
                    constraints=constraints,
                )  # fmt: skip
                model_budget, measured = budget, 0.0 if plan.error == 0 else None
        except (InfeasibleError, SolverError):
            continue
        hint = plan
        counts: dict[str, int] = {}
        for p in lowered_ops(plan, graph).values():
            counts[p] = counts.get(p, 0) + 1
        out[k] = FrontPoint(
            budget=budget,
            makespan=plan.makespan,
            lower_bound=plan.lower_bound,
            status=plan.status,
            predicted=plan.error,
            measured=measured,
            lowered=counts,
            model_budget=model_budget,
        )
    return [out[k] for k in sorted(out)]


def solve_measured(
    graph: OpGraph,
    platform: Any,
    table: SensitivityTable,
    budget: float,
    measure: Callable[[Plan], float],
    *,
    time_limit: float = 10.0,
    seed: int = 0,
    rounds: int = 4,
    split: bool = False,
    constraints: Constraints | None = None,
) -> tuple[Plan, list[tuple[float, float, float]]]:
    """The fastest plan found whose ``measure`` (end-to-end error) is at most ``budget``,
    and the rounds tried as ``(model budget, makespan, measured error)`` (see the module
    docstring). ``time_limit`` is per solve; the plan carries ``measured_error``."""
    table.check_for(graph)
    free = Problem.build(
        graph,
        platform,
        errors=table.errors,
        error_budget=float("inf"),
        split=split,
        constraints=constraints,
    )
    from hetsched.schedule.bounds import quick_lower_bound

    bound = quick_lower_bound(free) * free.quantum
    best, tried = _measured_rounds(
        graph, platform, table, budget, measure,
        time_limit=time_limit, seed=seed, rounds=rounds, split=split, constraints=constraints,
    )  # fmt: skip
    return best.with_bound(bound, searched=False), tried


def _measured_rounds(
    graph: OpGraph,
    platform: Any,
    table: SensitivityTable,
    budget: float,
    measure: Callable[[Plan], float],
    *,
    time_limit: float,
    seed: int,
    rounds: int,
    hint: Plan | None = None,
    split: bool = False,
    constraints: Constraints | None = None,
) -> tuple[Plan, list[tuple[float, float, float]]]:
    """:func:`solve_measured`'s rounds; the plan keeps the bound and status of its own
    solve (the noise-power model at the budget of the round that found it, the last
    round's when it is the latest)."""
    internal = budget
    best: Plan | None = None
    tried: list[tuple[float, float, float]] = []
    for _ in range(max(1, rounds)):
        plan = _solve_rss(
            graph, platform, table, internal,
            time_limit=time_limit, hint=hint, seed=seed, split=split, constraints=constraints,
        )  # fmt: skip
        measured = measure(plan) if plan.error > 0 else 0.0
        tried.append((internal, plan.makespan, measured))
        if measured <= budget:
            hint = plan
            if best is None or plan.makespan < best.makespan:
                best = plan.with_(measured_error=measured)
        if measured <= budget and (plan.error < internal * 0.7 or measured > 0.95 * budget):
            break  # the model's budget does not bind, or the measurement is nearly full
        if len(tried) > 1 and tried[-2][1] <= plan.makespan and measured <= budget:
            break  # more of the model's budget bought nothing
        scale = budget / measured if measured > 0 else 2.0
        internal *= min(max(scale, 0.5), 2.0)
        if measured > budget:  # below this plan's own prediction: the next one must differ
            internal = 0.95 * min(internal, plan.error)
    if best is None:  # every round measured over: the exported precisions, error 0
        best, _ = _solve(
            graph,
            platform,
            None,
            0.0,
            time_limit=time_limit,
            hint=None,
            seed=seed,
            split=split,
            constraints=constraints,
        )
        best = best.with_(measured_error=0.0)
        tried.append((0.0, best.makespan, 0.0))
    return best, tried


def plot_front(
    points: Sequence[FrontPoint], path: Any, *, title: str, ceiling_s: float | None = None
) -> None:
    """Latency (µs) against measured error (log scale) with each point's proven bound,
    written as a PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [max(p.measured or 0.0, 1e-7) for p in points]
    ax.plot(xs, [p.makespan * 1e6 for p in points], "o-", label="plan (measured error)")
    ax.plot(xs, [p.lower_bound * 1e6 for p in points], "v:", label="proven lower bound")
    if ceiling_s is not None:
        ax.axhline(ceiling_s * 1e6, color="0.6", ls="--", label="every op lowered freely")
    ax.set_xscale("log")
    ax.set_xlabel("output error, relative L2, held-out inputs")
    ax.set_ylabel("makespan (µs)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
