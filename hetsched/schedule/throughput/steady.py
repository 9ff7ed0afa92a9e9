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
(the fractional load and the recurrences). Where weights may stay resident or stream,
each way is solved as a device table (:func:`device_tables`) and the better kept; the plan
then claims only the bound of the whole question.

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

import numpy as np

from hetsched.errors import HetschedError, SolverError
from hetsched.plan import ModuloResult, Plan, mode_ids, plan_from_schedule, schedule_arrays
from hetsched.problem import Problem
from hetsched.problem.problem import is_streamed
from hetsched.schedule.bounds import critical_path_bound, load_bound
from hetsched.schedule.throughput.modulo import folded_ii, solve_modulo
from hetsched.schedule.throughput.modulo_plan import Carried, carried_index, offsets, rec_mii
from hetsched.schedule.throughput.pipesolve import solve_pipeline
from hetsched.solver import Capabilities, SolveContext, Solver

if TYPE_CHECKING:
    from hetsched.graph.opgraph import OpGraph

__all__ = ["device_tables", "solve_steady"]


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
    idx = carried_index(problem, carried)  # bad carried edges fail before any solve
    q = problem.quantum
    fl = problem.floored  # bounds of the real-valued problem (durations rounded down)
    load, recurrence = load_bound(fl), rec_mii(fl, carried)
    floor = max(load, recurrence) * q
    if problem.is_device_table:
        plan = _periodic(problem, ctx, graph, carried)
        stats: dict[str, Any] = {**plan.stats, "bound_any_assignment": floor}
        return replace(plan, objective=objective, stats=stats, solver="steady")
    # Weights that may stay resident or stream: the periodic model holds each op's weights
    # one way per device, so each way is solved as a device table, and the latency plan of
    # the whole question runs back to back as a candidate too; the better is kept, and it
    # claims only the bound of the whole question (the load over every mode).
    from hetsched.schedule.latency.portfolio import solve_portfolio

    single = solve_portfolio.within(problem, ctx.child(time_limit=0.15 * ctx.remaining()))
    candidates: list[tuple[int, np.ndarray, np.ndarray, Plan | None, str]] = []
    modes = mode_ids(single, problem)
    if (problem.modes.width[modes] == 1).all():
        start = schedule_arrays(single, problem)[1]
        assign = np.array([problem.modes.devices_of(int(k))[0] for k in modes], np.int64)
        ii = folded_ii(problem, assign, start, idx, dur=problem.mode_dur[modes])
        if ii is not None:
            candidates.append((ii, modes, start, None, "as the latency plan holds them"))
    variants = device_tables(problem)
    errors: list[str] = []
    for k, (label, kept) in enumerate(variants):
        sub = problem.select_modes(kept)
        share = ctx.child(time_limit=ctx.remaining() / (len(variants) - k))
        try:
            plan = _periodic(sub, share, graph, carried)
        except HetschedError as err:  # e.g. resident weights overflow the static model
            errors.append(f"{label}: {err}")
            continue
        assert plan.modulo is not None
        ii = round(plan.modulo.ii / q)
        candidates.append(
            (ii, kept[mode_ids(plan, sub)], schedule_arrays(plan, problem)[1], plan, label)
        )
    if not candidates:
        msg = "no periodic schedule found: " + "; ".join(errors)
        raise SolverError(msg)
    ii, modes, start, chosen, label = min(candidates, key=lambda c: c[0])
    baselines = dict(chosen.baselines) if chosen is not None else {}
    if not carried:
        baselines["latency back to back"] = single.makespan
    result = ModuloResult(
        ii=ii * q, ii_bound=floor, res_mii=load * q, rec_mii=recurrence * q,
        offset=offsets(problem, start, ii),
        carried=tuple((str(a), str(b), int(c)) for a, b, c in carried),
        proved_by="bound" if ii * q <= floor * (1 + 1e-12) else "",
    )  # fmt: skip
    stats = {**(chosen.stats if chosen is not None else {}), "bound_any_assignment": floor}
    latency = int((start + problem.mode_dur[modes]).max())
    return plan_from_schedule(
        problem, modes=modes, start=start, solver="steady", searched=True,
        lower_bound=min(critical_path_bound(problem.floored), latency),
        stats={**stats, "weights": label}, objective=objective, baselines=baselines,
        modulo=result,
    )  # fmt: skip


def _periodic(problem: Problem, ctx: SolveContext, graph: Any, carried: Carried) -> Plan:
    """The latency plan and the pipeline as hints, then the modulo search (device table)."""
    from hetsched.schedule.latency.portfolio import solve_portfolio

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
    return replace(plan, baselines=baselines)


def device_tables(problem: Problem) -> list[tuple[str, np.ndarray]]:
    """``(label, kept mode ids)``: restrictions of ``problem`` to one single-device mode per
    (op, device), in the op's own precision (no splits, no lowered precisions): weights
    ``resident`` where a resident mode exists, and ``streamed`` where the device streams
    them (only when that differs)."""
    m = problem.modes
    width = m.width
    out: list[tuple[str, np.ndarray]] = []
    for label, prefer in (("resident", False), ("streamed", True)):
        kept: list[int] = []
        for v in range(problem.n):
            by_device: dict[int, int] = {}
            for k in m.ops_modes(v).tolist():
                if width[k] != 1 or m.err[k] > 0:
                    continue
                d = m.devices_of(k)[0]
                streamed = is_streamed(m.tag[k])
                old = by_device.get(d)
                if old is None or (streamed == prefer and is_streamed(m.tag[old]) != prefer):
                    by_device[d] = k
            kept += sorted(by_device.values())
        ids = np.array(sorted(kept), dtype=np.int64)
        if not any(np.array_equal(ids, other) for _, other in out):
            out.append((label, ids))
    return out


solve_steady = Solver(
    "steady",
    _steady,
    Capabilities(workers=True, anytime=True, exact=True, links=False, modes=True),
    options=("graph", "carried", "objective"),
)
"""The throughput objective: the best periodic schedule (see the module docstring)."""
