"""Exact joint placement and scheduling with OR-Tools CP-SAT.

Model (integer units of the :class:`~hetsched.problem.Problem`):

* ``start_v``, ``end_v`` per op; a presence literal ``on_v_d`` and an optional interval per
  allowed (op, device); exactly one presence per op.
* NoOverlap per device - or, for a class of interchangeable devices with free transfers
  among them (STG's identical processors), one Cumulative of the class size with the
  per-unit assignment recovered afterwards (interval-graph colouring).
* Precedence ``start_v >= end_u`` and, when the ops sit on different devices, the transfer
  delay ``comm[e, a, b]`` (linear form when it does not depend on the destination).
* Optional link contention: one optional transfer interval per (edge, device pair) in a
  NoOverlap per link of its route. Optional static memory: ``sum mem_v on_v_d <= cap_d``.
* Tightening that makes proofs possible: heads/tails windows, per-device load
  ``sum dur on <= makespan``, ``makespan >= lower bound``, symmetry breaking between
  interchangeable devices, and a complete hint (assignment *and* start times) from the
  best heuristic, re-timed in integer time so it is feasible.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0)], comm_latency=np.array([[0, 1], [1, 0]]), quantum=1.0)
>>> plan = solve_cpsat(p, time_limit=5, seed=0, workers=1)
>>> plan.status, plan.makespan
('optimal', 7.0)
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from hetsched.errors import InfeasibleError, SolverError
from hetsched.plan import Plan, plan_from_schedule
from hetsched.problem import Problem
from hetsched.schedule.bounds import BOUND_SHARE, lower_bound_within
from hetsched.schedule.bounds.paths import serial_horizon
from hetsched.schedule.cpsolver import new_cp_solver, solve_cp
from hetsched.schedule.latency.cpsat_model import CpSatModel, build_model
from hetsched.schedule.latency.rounding import search_floored
from hetsched.schedule.latency.symmetry import branch_classes, canonical_hint
from hetsched.schedule.latency.warmstart import prepare_hint
from hetsched.schedule.structure import structure_assignment
from hetsched.solver import Capabilities, SolveContext, Solver

log_ = logging.getLogger(__name__)

__all__ = ["CpSatModel", "build_model", "solve_cpsat"]


class _Callback(cp_model.CpSolverSolutionCallback):
    """Records each improving solution and reports it to ``progress``."""

    def __init__(self, built: CpSatModel, problem: Problem, ctx: SolveContext):
        super().__init__()
        self.built, self.p, self.ctx = built, problem, ctx
        self.best: tuple[np.ndarray, np.ndarray, dict[tuple[int, int], int]] | None = None
        self.best_value: int | None = None
        self.count = 0
        self.paused = False  # stopped for probes (see _cpsat_integer)

    def on_solution_callback(self) -> None:
        value = int(self.objective_value)
        self.count += 1
        if self.best_value is not None and value >= self.best_value:
            return
        self.best_value = value
        self.best = _extract(self, self.built, self.p)
        bound = max(int(self.best_objective_bound), self.built.lower_bound)
        self.ctx.report("cpsat", value * self.p.quantum, min(bound, value) * self.p.quantum)


def _extract(
    values: Any, built: CpSatModel, p: Problem
) -> tuple[np.ndarray, np.ndarray, dict[tuple[int, int], int]]:
    """``(mode id, start, transfer starts by (tensor, device))`` of the solution."""
    start = np.array([values.value(s) for s in built.node_to_start], dtype=np.int64)
    mode = np.empty(p.n, dtype=np.int64)
    for v in range(p.n):
        for k, lit in built.node_mode_to_presence[v].items():
            if values.boolean_value(lit):
                mode[v] = k
                break
    if built.pooled_groups:
        first = p.modes.devs[p.modes.dev_start[mode]]
        assign = _colour_pools(p, first, start, built.pooled_groups)
        mode = p.device_mode[np.arange(p.n), assign]
    xfer = {}
    for (t, a, b), ts in built.tensor_pair_to_transfer_start.items():
        u = int(p.tensors.src[t])
        if a in p.modes.devices_of(int(mode[u])) and any(
            b in p.modes.devices_of(int(mode[c])) for c in p.tensors.consumers(t)
        ):
            xfer[(t, b)] = int(values.value(ts))
    return mode, start, xfer


def _colour_pools(
    p: Problem, assign: np.ndarray, start: np.ndarray, pools: list[tuple[int, ...]]
) -> np.ndarray:
    """Give each op of a pooled class a concrete unit: greedy interval colouring by start."""
    out = assign.copy()
    for g in pools:
        members = [v for v in range(p.n) if int(assign[v]) in g]
        members.sort(key=lambda v: (int(start[v]), v))
        free_at = dict.fromkeys(g, 0)
        for v in members:
            d0 = int(assign[v])
            dur = int(p.dur[v, d0])
            unit = min(g, key=lambda d: (free_at[d] > start[v], d))
            if free_at[unit] > start[v]:
                msg = f"cumulative schedule of {p.names[v]!r} cannot be coloured (solver bug)"
                raise SolverError(msg)
            out[v] = unit
            if dur > 0:
                free_at[unit] = int(start[v]) + dur
    return out


def _cpsat_integer(
    problem: Problem, ctx: SolveContext, *, export_model: str | None = None, log: bool = False
) -> Plan:
    """Minimise makespan with CP-SAT; anytime; never worse than the warm start.

    Without a hint the best of HEFT/PEFT/CPOP is the warm start (and when all of them run out
    of memory, CP-SAT searches from scratch). ``export_model`` writes the model (text proto)
    for debugging. The plan carries CP-SAT's proof (lower bound = its value when OPTIMAL) or
    the best bound known; without an improvement within the time limit it is the warm start.

    Raises
    ------
    InfeasibleError : no plan fits the devices' memory (proven).
    SolverError : no warm start and nothing found within the time limit.
    """
    warm = prepare_hint(problem, ctx)
    deadline = time.perf_counter() + BOUND_SHARE * ctx.remaining()
    lb = warm.lb if warm is not None else lower_bound_within(problem, deadline)[0]
    hint_plan = warm.plan.with_(searched=True) if warm is not None else None
    if warm is not None and hint_plan is not None:
        ctx.report(warm.plan.solver, hint_plan.makespan, lb * problem.quantum)  # start point
        if warm.makespan <= lb:
            return hint_plan.with_(stats={"proved_by": "bounds", "hint_solver": warm.plan.solver})
    device_model = problem.is_device_table
    structural = problem.constraints is not None and problem.constraints.structural
    branches = branch_classes(problem) if device_model and not structural else []
    hint: tuple[np.ndarray, np.ndarray] | None = None
    horizon = serial_horizon(problem)
    if warm is not None:
        horizon = warm.makespan
        h_mode, h_start = warm.modes, warm.start
        if branches:
            h_assign, h_start = canonical_hint(branches, warm.assign, h_start)
            h_mode = problem.device_mode[np.arange(problem.n), h_assign]
        hint = (h_mode, h_start)

    def run(
        tighten: bool, pause: tuple[float, int] | None = None
    ) -> tuple[CpSatModel, cp_model.CpSolver, _Callback, Any]:
        """One search; ``pause=(after, at)``: stop it once its best plan is within ``at``
        units, checked ``after`` seconds in and every third of that since (the probes take
        over)."""
        built = build_model(
            problem, horizon=horizon, lower=lb, hint=hint, branches=branches, tighten=tighten
        )
        if export_model:
            built.model.export_to_file(export_model)
        solver = new_cp_solver(time_limit=ctx.remaining(), workers=ctx.workers, seed=ctx.seed)
        solver.parameters.log_search_progress = log
        _configure(solver, built)
        cb = _Callback(built, problem, ctx)

        done = threading.Event()

        def watch() -> None:  # pause[0] seconds in, then every third of that
            assert pause is not None
            wait = pause[0]
            while not done.wait(wait):
                if cb.best_value is not None and cb.best_value <= pause[1]:
                    cb.paused = True
                    solver.stop_search()
                    return
                wait = max(0.1, pause[0] / 3)

        watcher = threading.Thread(target=watch, daemon=True) if pause is not None else None
        if watcher is not None:
            watcher.start()
        try:
            status = solve_cp(solver, built.model, ctx.stop, cb)
        finally:
            done.set()
            if watcher is not None:
                watcher.join()
        cb.paused = cb.paused and status != cp_model.OPTIMAL
        return built, solver, cb, status

    # A search still open after PROBE_AFTER_SHARE of the time (checked again every third of
    # that) with a plan within PROBE_GAP of the bound stops; horizons are probed from the
    # bound up (_probe); if they prove nothing the search goes on from the best plan.
    probe_stats: dict[str, Any] = {}
    held = None  # the best plan when the search stopped for the probes, or theirs
    pause = None
    if warm is not None:
        pause = (PROBE_AFTER_SHARE * ctx.remaining(), int(lb + max(1, PROBE_GAP * lb)))
    built, solver, cb, status = run(tighten=True, pause=pause)
    if cb.paused and cb.best is not None and cb.best_value is not None:
        lb, probed = _probe(problem, ctx, lb, cb.best_value, branches, probe_stats)
        held = probed if probed is not None else cb.best
        if _value(problem, held) > lb and not ctx.expired():
            hint, horizon = (held[0], held[1]), _value(problem, held)
            built, solver, cb, status = run(tighten=True)
    if held is not None and _value(problem, held) <= lb:  # every shorter horizon refuted
        mode, start, xfer = held
        return plan_from_schedule(
            problem,
            modes=mode,
            start=start,
            solver="cpsat",
            searched=True,
            lower_bound=_value(problem, held),
            stats={"proved_by": "probes", "probes": probe_stats, "workers": ctx.workers},
            transfer_start=xfer,
            baselines=warm.plan.baselines if warm is not None else None,
        )
    wrongly_infeasible = status == cp_model.INFEASIBLE and hint_plan is not None
    if wrongly_infeasible:
        # The horizon is the hint's makespan, which is feasible, so INFEASIBLE is a solver
        # fault (seen with OR-Tools 9.15 on ~0.4% of tiny random instances, always with the
        # head/tail windows; the same model with every variable fixed to the hint solves) or
        # memory rows rounded tighter than the question. Retry without the windows; never
        # report a proof that is not one.
        log_.warning(
            "CP-SAT reported the model infeasible at horizon %d although the hint is "
            "feasible; retrying without head/tail windows",
            horizon,
        )
        built, solver, cb, status = run(tighten=False)
    stats = {
        "cp_status": solver.status_name(status),
        "solutions": cb.count,
        "branches": solver.num_branches,
        "conflicts": solver.num_conflicts,
        "hint_solver": warm.plan.solver if warm is not None else None,
        "hint_makespan": warm.plan.makespan if warm is not None else None,
        "workers": ctx.workers,
        "model": "devices" if device_model else "modes",
    }
    if probe_stats:
        stats["probes"] = probe_stats
    if not built.memory_exact:
        # rounded or static memory rows: the model is tighter than the question, no proof
        stats["memory_restricted"] = True
    if wrongly_infeasible:
        stats["solver_fault"] = "INFEASIBLE with a feasible hint; retried without windows"
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) or held is not None:
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            mode, start, xfer = _extract(solver, built, problem)
        else:  # the search after the probes found nothing (not even its hint): theirs
            assert held is not None
            mode, start, xfer = held
            status = cp_model.FEASIBLE
        value = _value(problem, (mode, start))
        if not built.memory_exact:
            bound = lb
        elif status == cp_model.OPTIMAL:
            bound = value
        else:
            bound = max(lb, int(np.ceil(solver.best_objective_bound - 1e-9)))
        return plan_from_schedule(
            problem,
            modes=mode,
            start=start,
            solver="cpsat",
            searched=built.memory_exact,
            lower_bound=min(bound, value),
            stats=stats,
            transfer_start=xfer,
            baselines=warm.plan.baselines if warm is not None else None,
        )
    if status == cp_model.MODEL_INVALID:
        msg = f"CP-SAT rejected the model: {built.model.validate()}"
        raise SolverError(msg)
    if hint_plan is not None:
        # UNKNOWN (no solution within the limit) or INFEASIBLE again (a solver fault, see
        # above): the (feasible) warm start, without claiming anything.
        return hint_plan.with_(searched=built.memory_exact, stats={**stats, "fallback": "hint"})
    if status == cp_model.INFEASIBLE and structural:
        structure_assignment(problem)  # names the rules when they cannot hold together
    if status == cp_model.INFEASIBLE and built.memory_exact:
        msg = f"no plan of {problem.name!r} fits the devices' memory (proven by CP-SAT)"
        raise InfeasibleError(msg)
    msg = (
        f"cpsat found no plan of {problem.name!r} within {ctx.time_limit:g} s and no "
        "heuristic found one that fits memory; raise the time limit"
    )
    raise SolverError(msg)


# A search still open after PROBE_AFTER_SHARE of its time (or later) with a plan within
# PROBE_GAP of the bound stops, horizons are probed from the bound up for at most
# PROBE_SHARE of the time left (each probe at most half of what is left of that), and the
# search goes on.
PROBE_AFTER_SHARE = 0.3
PROBE_GAP = 0.02
PROBE_SHARE = 0.2


def _probe(
    p: Problem,
    ctx: SolveContext,
    lb: int,
    best: int,
    branches: list[list[np.ndarray]],
    stats: dict[str, Any],
) -> tuple[int, tuple[np.ndarray, np.ndarray, dict[tuple[int, int], int]] | None]:
    """Destructive lower bounding: ask CP-SAT for a plan within a horizon ``h`` below
    ``best``, from ``h = lb`` up in steps that double while horizons are refuted. A refuted
    horizon raises the bound to ``h + 1``; a plan found within ``h`` becomes the best and the
    probes start again from the bound, so a plan at the bound is optimal. The model within
    a tight horizon propagates far more than the optimisation run's, so both answers often
    come in a second where minimising from the warm start takes minutes (100-op random
    DAGs, CCR <= 1). A refutation counts only if the model without head/tail windows
    refutes it too (OR-Tools 9.15 has been seen calling a feasible windowed model
    infeasible) and the model is exact (no rounded memory rows). Returns ``(bound, best
    plan found or None)``."""
    deadline = time.perf_counter() + PROBE_SHARE * ctx.remaining()
    refuted = 0

    def solve(h: int, tighten: bool) -> tuple[Any, cp_model.CpSolver, CpSatModel]:
        built = build_model(p, horizon=h, lower=lb, branches=branches, tighten=tighten)
        limit = 0.5 * (deadline - time.perf_counter())
        solver = new_cp_solver(time_limit=max(limit, 0.01), workers=ctx.workers, seed=ctx.seed)
        _configure(solver, built)
        return solve_cp(solver, built.model, ctx.stop), solver, built

    found = None
    step, h = 1, lb
    while lb < best and time.perf_counter() < deadline and not ctx.stop.is_set():
        h = min(h, best - 1)
        try:
            status, solver, built = solve(h, tighten=True)
        except InfeasibleError:  # an op cannot fit below h: refuted by the windows alone
            status, solver, built = cp_model.INFEASIBLE, None, None
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            assert solver is not None and built is not None
            found = _extract(solver, built, p)
            best = _value(p, found)
            stats["found_at"] = best
            step, h = 1, lb  # a plan within h: close the rest from the bound up
            continue
        if status != cp_model.INFEASIBLE or (built is not None and not built.memory_exact):
            break
        confirm, _, again = solve(h, tighten=False)
        if confirm != cp_model.INFEASIBLE or not again.memory_exact:
            break
        refuted += 1
        lb = h + 1
        ctx.report("cpsat-probe", best * p.quantum, lb * p.quantum)
        step *= 2  # refuted: the next horizon twice as far above the new bound
        h = lb + step - 1
    stats.update(refuted=refuted)
    return lb, found


def _value(p: Problem, found: tuple[Any, ...]) -> int:
    """The makespan (units) of ``(mode, start, ...)``."""
    return int((found[1] + p.mode_dur[found[0]]).max())


def _configure(solver: cp_model.CpSolver, built: CpSatModel) -> None:
    """Identical devices share one Cumulative: its edge-finding propagators are what prove
    P|prec|Cmax optima (STG rand0001 on 4 processors: 12 s without, 0.04 s)."""
    if built.pooled_groups:
        solver.parameters.use_timetable_edge_finding_in_cumulative = True
        solver.parameters.use_overload_checker_in_cumulative = True


def _cpsat(problem: Problem, ctx: SolveContext, **options: Any) -> Plan:
    """:func:`_cpsat_integer` on the rounded-down twin (:mod:`.rounding`): a real bound."""
    return search_floored(problem, ctx, lambda p, c: _cpsat_integer(p, c, **options))


solve_cpsat = Solver(
    "cpsat",
    _cpsat,
    Capabilities(hint=True, workers=True, anytime=True, exact=True, modes=True, structure=True),
    options=("export_model", "log"),
)
