"""One answer to "how many inferences per second": the best periodic schedule.

:data:`solve_steady` answers the throughput question over every assignment of ops to
devices (a device may hold any set of ops, several "stages" or none): a modulo schedule
(:mod:`.modulo`) that starts an iteration every ``II``, each op on one device at the same
offset every period. It runs the latency portfolio (one inference at a time: its plan,
run back to back, repeats every makespan or less, :func:`~.modulo.folded_ii`) and the
pipeline solver (one stage per device in a fixed order: a restricted family), then the
modulo search hinted with both, so its period is never worse than either; all of them
stand side by side in ``plan.baselines`` (without carried edges: the pipeline family has no
recurrences, and back to back meets them only where the plan folds, as a hint). The
proven ``ii_bound`` holds for the question (modulo schedules: one assignment repeated);
``stats["bound_any_assignment"]`` holds even when iterations may take turns on devices
(the fractional load and the recurrences).

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=list("abcd"), devices=["x", "y"],
...     exec_time=np.array([[3.0, 6.0], [1.0, 2.0], [2.0, 2.0], [2.0, 1.0]]),
...     edges=[(0, 1, 1.0), (1, 2, 1.0), (2, 3, 1.0)], quantum=1.0)
>>> plan = solve_steady(p, time_limit=5, workers=1)
>>> plan.modulo.ii, plan.status, plan.objective
(4.0, 'optimal', 'throughput')
>>> plan.baselines["latency back to back"], plan.baselines["pipeline"]
(7.0, 4.0)
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hetsched.errors import HetschedError
from hetsched.plan import Plan
from hetsched.problem import Problem
from hetsched.schedule.bounds import load_bound
from hetsched.schedule.throughput.modulo import solve_modulo
from hetsched.schedule.throughput.modulo_plan import Carried, carried_index, rec_mii
from hetsched.schedule.throughput.pipesolve import solve_pipeline
from hetsched.solver import Capabilities, SolveContext, Solver

if TYPE_CHECKING:
    from hetsched.graph.opgraph import OpGraph

__all__ = ["solve_steady"]


def _steady(
    problem: Problem,
    ctx: SolveContext,
    *,
    graph: OpGraph | None = None,
    carried: Carried = (),
    objective: str = "throughput",
) -> Plan:
    """Minimum period over all assignments; see the module docstring. ``objective``: the
    tag of the plan (``"throughput"`` or ``"modulo"``: the same question)."""
    from hetsched.schedule.latency.portfolio import solve_portfolio

    carried_index(problem, carried)  # bad carried edges fail before any solve
    total = ctx.remaining()
    hints: list[Plan] = []
    baselines: dict[str, float] = {}
    latency = solve_portfolio.within(problem, ctx.child(time_limit=0.2 * total))
    hints.append(latency)
    if not carried:  # back to back meets a carried edge only where it folds (a hint then)
        baselines["latency back to back"] = latency.makespan
    pipe = None
    if not carried:  # the pipeline family has no recurrences
        try:
            pipe = solve_pipeline.within(problem, ctx.child(time_limit=0.2 * total), graph=graph)
        except HetschedError:  # memory, or no stage order: the family has no plan
            pipe = None
    if pipe is not None and pipe.pipeline is not None:
        hints.append(pipe)
        baselines["pipeline"] = pipe.pipeline.period
        baselines.update(pipe.baselines)
    plan = solve_modulo.within(problem, ctx.child(), carried=carried, hints=hints)
    q = problem.quantum
    floor = max(load_bound(problem), rec_mii(problem, carried)) * q
    stats: dict[str, Any] = {**plan.stats, "bound_any_assignment": floor}
    return replace(plan, objective=objective, baselines=baselines, stats=stats, solver="steady")


solve_steady = Solver(
    "steady",
    _steady,
    Capabilities(workers=True, anytime=True, exact=True, links=False),
    options=("graph", "carried", "objective"),
)
"""The throughput objective: the best periodic schedule (see the module docstring)."""
