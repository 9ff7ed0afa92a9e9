"""Modulo scheduling: the minimum initiation interval of a graph run over and over.

Iteration ``i`` (a frame, a head, a micro-batch) starts op ``v`` at ``s_v + i * II`` on the
same device. Model (integer units of the :class:`~hetsched.problem.Problem`):

* ``on[v,d]`` per allowed (op, device), exactly one; ``dur[v,d] <= II`` when chosen;
* residue ``r_v = s_v mod II``; device capacity modulo ``II``: the arcs ``[r_v, r_v + dur)``
  of a device's ops are disjoint on the circle, i.e. NoOverlap over the intervals
  ``[r_v, r_v + dur)`` and ``[r_v + II, r_v + II + dur)``;
* dependencies within an iteration ``s_v >= s_u + dur_u + comm[e, dev u, dev v]``;
* loop-carried edges ``(u, v, delta)``: ``s_v + delta * II >= s_u + dur_u + comm``;
* static memory (when ``problem.use_memory``): the one memory model
  (:func:`~hetsched.schedule.cpmemory.add_static_memory`); transfers are delays,
  links are not reserved modulo ``II`` (link contention is not modelled here).

A modulo list schedule gives a first ``II``; fixed-``II`` CP-SAT models then bisect between
the lower bound and it, and sweep down the IIs left untried; then the latency at the best
``II`` is minimised. Lower bounds: ResMII (least max device load over assignments: LP, then
an exact CP-SAT bin packing) and RecMII (least ``II`` with no positive cycle through carried
edges). ``II`` is proven when it meets them or every smaller ``II`` is proven infeasible.

:data:`solve_modulo` is a :class:`~hetsched.solver.Solver` (limits, seed, a stop token per
solve, validation by :func:`validate_modulo`); the plan's ``modulo`` is a
:class:`~hetsched.plan.ModuloResult`.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 4.0], [3.0, 3.0], [2.0, 2.0]]),
...     edges=[(0, 1, 1.0), (1, 2, 1.0)], quantum=1.0)
>>> plan = solve_modulo(p, time_limit=5, workers=1)
>>> plan.modulo.ii, plan.status, plan.modulo.res_mii
(4.0, 'optimal', 4.0)
>>> validate_modulo(plan, p, iterations=5)
>>> solve_modulo(p, carried=[("c", "a", 1)], time_limit=5, workers=1).modulo.rec_mii
7.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from hetsched.errors import SolverError
from hetsched.plan import ModuloResult, Plan, overflow, plan_from_schedule, schedule_arrays
from hetsched.problem import Problem
from hetsched.schedule.bounds import critical_path_bound
from hetsched.schedule.cpmemory import add_static_memory, memory_scale
from hetsched.schedule.cpsolver import new_cp_solver, solve_cp
from hetsched.schedule.throughput.modulo_plan import (
    Carried,
    carried_comm,
    carried_index,
    offsets,
    rec_mii,
    res_mii,
    validate_modulo,
)
from hetsched.solver import Capabilities, SolveContext, Solver

__all__ = [
    "compact",
    "folded_ii",
    "latency_at",
    "list_modulo",
    "real_ii_bound",
    "rec_mii",
    "res_mii",
    "solve_modulo",
    "validate_modulo",
]


@dataclass
class _Vars:
    on: list[dict[int, Any]]
    start: list[Any]
    latency: Any


def _build(
    p: Problem, carried: list[tuple[int, int, int]], ii: int, horizon: int
) -> tuple[cp_model.CpModel, _Vars]:
    """The feasibility model at a fixed ``II`` (objective: latency, set by the caller)."""
    m = cp_model.CpModel()
    on = [
        {d: m.new_bool_var(f"on_{p.names[v]}_{p.devices[d]}") for d in p.allowed_devices[v]}
        for v in range(p.n)
    ]
    start = [m.new_int_var(0, horizon, f"start_{x}") for x in p.names]
    ends = []
    for v in range(p.n):
        m.add_exactly_one(on[v].values())
        ends.append(start[v] + sum(int(p.dur[v, d]) * lit for d, lit in on[v].items()))
    _add_modulo_capacity(m, p, on, start, ii, horizon)
    _add_precedence(m, p, on, start, ends)
    _add_carried(m, p, on, start, ends, ii, carried)
    add_static_memory(m, p, on)
    latency = m.new_int_var(0, horizon + int(p.dur.max()), "latency")
    for v in range(p.n):
        m.add(latency >= ends[v])
    return m, _Vars(on, start, latency)


def _add_modulo_capacity(
    m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]], start: list, ii: int, horizon: int
) -> None:
    # For each device d: arcs [r_v, r_v + dur) mod II disjoint, s_v = II k_v + r_v, dur <= II.
    per_dev: dict[int, list] = {d: [] for d in range(p.num_devices)}
    for v in range(p.n):
        r = m.new_int_var(0, ii - 1, f"res_{p.names[v]}")
        k = m.new_int_var(0, horizon // ii + 1, f"iter_{p.names[v]}")
        m.add(start[v] == ii * k + r)
        for d, lit in on[v].items():
            c = int(p.dur[v, d])
            if c > ii:
                m.add(lit == 0)
                continue
            if c == 0:
                continue
            tag = f"{p.names[v]}_{p.devices[d]}"
            per_dev[d].append(m.new_optional_fixed_size_interval_var(r, c, lit, f"arc_{tag}"))
            per_dev[d].append(m.new_optional_fixed_size_interval_var(r + ii, c, lit, f"arc2_{tag}"))
    for ivs in per_dev.values():
        if len(ivs) > 2:
            m.add_no_overlap(ivs)


def _comm_terms(p: Problem, k: int, on: list[dict[int, Any]]) -> list[tuple[int, Any, Any]]:
    u, v = int(p.edge_src[k]), int(p.edge_dst[k])
    return [
        (int(p.comm[k, a, b]), la, lb)
        for a, la in on[u].items()
        for b, lb in on[v].items()
        if a != b and p.comm[k, a, b] > 0
    ]


def _add_precedence(
    m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]], start: list, ends: list
) -> None:
    # For each edge u->v: s_v >= e_u + comm[e, dev u, dev v].
    for k in range(p.num_edges):
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        m.add(start[v] >= ends[u])
        for c, la, lb in _comm_terms(p, k, on):
            m.add(start[v] >= ends[u] + c).only_enforce_if([la, lb])


def _add_carried(
    m: cp_model.CpModel,
    p: Problem,
    on: list[dict[int, Any]],
    start: list,
    ends: list,
    ii: int,
    carried: list[tuple[int, int, int]],
) -> None:
    # For each carried edge (u, v, delta): s_v + delta * II >= e_u + comm(u's output, a -> b).
    for u, v, dist in carried:
        m.add(start[v] + dist * ii >= ends[u])
        for a, la in on[u].items():
            for b, lb in on[v].items():
                c = carried_comm(p, u, a, b)
                if c:
                    m.add(start[v] + dist * ii >= ends[u] + c).only_enforce_if([la, lb])


def _solve(m: cp_model.CpModel, limit: float, ctx: SolveContext) -> tuple[Any, Any]:
    """Solve under the solve's stop token."""
    s = new_cp_solver(time_limit=limit, workers=ctx.workers, seed=ctx.seed)
    return s, solve_cp(s, m, ctx.stop)


def list_modulo(
    p: Problem, assign: np.ndarray, ii: int, carried: list[tuple[int, int, int]]
) -> np.ndarray | None:
    """Iterative modulo list scheduling at ``ii``: each op at its earliest start whose arc
    is free modulo ``ii`` on its device; ``None`` if an op does not fit or a carried edge fails.
    """
    arcs: dict[int, list[tuple[int, int]]] = {}
    start = np.zeros(p.n, dtype=np.int64)
    fin = np.zeros(p.n, dtype=np.int64)
    for v in range(p.n):
        d = int(assign[v])
        c = int(p.dur[v, d])
        if c > ii:
            return None
        ready = max([int(fin[u]) + int(p.comm[k, assign[u], d]) for u, k in p.preds[v]], default=0)
        taken = arcs.setdefault(d, [])
        cands = sorted({ready, *(ready + (r + w - ready) % ii for r, w in taken)})
        for t in cands:
            r = t % ii
            if c == 0 or all((r - r0) % ii >= w0 and (r0 - r) % ii >= c for r0, w0 in taken):
                break
        else:
            return None
        start[v], fin[v] = t, t + c
        if c:
            taken.append((t % ii, c))
    for u, v, dist in carried:
        c = carried_comm(p, u, int(assign[u]), int(assign[v]))
        if start[v] + dist * ii < fin[u] + c:
            return None
    return start


def _packed_modulo(
    p: Problem, assign: np.ndarray, ii: int, carried: list[tuple[int, int, int]]
) -> np.ndarray | None:
    """Residues packed back to back per device (no fragmentation: works at any ``II`` >= the
    max load), each op at the first start >= ready with its residue."""
    load = np.zeros(p.num_devices, dtype=np.int64)
    start = np.zeros(p.n, dtype=np.int64)
    for v in range(p.n):
        d = int(assign[v])
        r = int(load[d])
        load[d] += int(p.dur[v, d])
        if load[d] > ii:
            return None
        ready = max(
            [int(start[u] + p.dur[u, assign[u]] + p.comm[k, assign[u], d]) for u, k in p.preds[v]],
            default=0,
        )
        start[v] = ready + (r - ready) % ii
    for u, v, dist in carried:
        c = carried_comm(p, u, int(assign[u]), int(assign[v]))
        if start[v] + dist * ii < start[u] + p.dur[u, assign[u]] + c:
            return None
    return start


def compact(
    p: Problem, assign: np.ndarray, start: np.ndarray, ii: int, carried: list[tuple[int, int, int]]
) -> np.ndarray:
    """``start`` with each op moved to its first start at or after its ready time that keeps
    its residue modulo ``ii`` (ops in topological order): the arcs stay where they were, so
    the schedule stays valid, and one iteration's latency only shrinks. A carried edge the
    moves would break keeps the original starts.

    >>> import numpy as np
    >>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
    ...     exec_time=np.array([[2.0, 2.0], [3.0, 3.0]]), edges=[(0, 1, 0.0)], quantum=1.0)
    >>> compact(p, np.array([0, 1]), np.array([0, 14]), 3, []).tolist()   # b: 14 = 2 mod 3
    [0, 2]
    """
    out = np.asarray(start, dtype=np.int64).copy()
    dur = p.dur[np.arange(p.n), assign].astype(np.int64)
    for v in range(p.n):
        d = int(assign[v])
        ready = max(
            [int(out[u] + dur[u] + p.comm[k, assign[u], d]) for u, k in p.preds[v]], default=0
        )
        out[v] = ready + (int(start[v]) - ready) % ii
    for u, v, dist in carried:
        c = carried_comm(p, u, int(assign[u]), int(assign[v]))
        if out[v] + dist * ii < out[u] + dur[u] + c:
            return np.asarray(start, dtype=np.int64)
    return out


def _heuristic(
    p: Problem, assign: np.ndarray, lo: int, hi: int, carried: list[tuple[int, int, int]]
) -> tuple[int, np.ndarray]:
    ii = lo
    while True:
        start = _packed_modulo(p, assign, ii, carried)
        if start is None:
            start = list_modulo(p, assign, ii, carried)
        if start is not None:
            return ii, start
        if ii >= hi:
            msg = f"modulo list scheduling failed at the serial II {hi} (solver bug)"
            raise SolverError(msg)
        ii = min(hi, max(ii + 1, int(ii * 1.03)))


def folded_ii(
    p: Problem,
    assign: np.ndarray,
    start: np.ndarray,
    carried: list[tuple[int, int, int]],
    lo: int = 1,
    *,
    tries: int = 48,
    dur: np.ndarray | None = None,
) -> int | None:
    """The least ``II`` (among ``tries`` candidates from the busiest device's load up to
    the span) at which one iteration scheduled at ``start`` on ``assign`` (integer units;
    a latency plan, say) repeats as a modulo schedule: every arc disjoint modulo ``II`` on
    its device and every dependency met, carried ones included; ``None`` if none (a
    carried edge the span cannot meet). ``dur``: each op's duration (default: its device
    mode's on ``assign``; a plan's own modes may run longer, streamed say).

    >>> import numpy as np
    >>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
    ...     exec_time=np.array([[2.0, 2.0], [3.0, 3.0]]), edges=[(0, 1, 0.0)], quantum=1.0)
    >>> folded_ii(p, np.array([0, 1]), np.array([0, 2]), [])  # x busy 2, y busy 3 per II
    3
    """
    if dur is None:
        dur = p.dur[np.arange(p.n), assign]
    dur = np.asarray(dur, dtype=np.int64)
    fin = start + dur
    for k in range(p.num_edges):
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        if start[v] < fin[u] + int(p.comm[k, assign[u], assign[v]]):
            return None
    load = np.bincount(assign, weights=dur, minlength=p.num_devices)
    first = max(int(lo), int(load.max()), int(dur.max()), 1)
    span = max(int(fin.max()), first)
    steps = np.unique(np.geomspace(first, span, num=tries).round().astype(np.int64))
    for ii in [*steps.tolist(), span]:
        if _arcs_disjoint(assign, start, dur, ii) and all(
            start[v] + dist * ii >= fin[u] + carried_comm(p, u, int(assign[u]), int(assign[v]))
            for u, v, dist in carried
        ):
            return int(ii)
    return None


def latency_at(
    p: Problem,
    ii: int,
    carried: list[tuple[int, int, int]],
    *,
    time_limit: float,
    seed: int = 0,
    workers: int = 1,
    hint: tuple[np.ndarray, np.ndarray] | None = None,
    stop: Any = None,
) -> tuple[np.ndarray, np.ndarray, int, bool] | None:
    """The least latency of one iteration among modulo schedules at initiation interval
    ``ii`` (units): ``(assign, start, latency bound, proven)``, or ``None`` when CP-SAT
    found none in ``time_limit`` (``hint``: an ``(assign, start)`` to start from)."""
    serial = int(p.dur.max(axis=1).sum() + (p.comm.max(axis=(1, 2)).sum() if p.num_edges else 0))
    last = int(hint[1].max()) if hint is not None else 0
    horizon = serial + 2 * int(p.dur.max()) + last + p.n * ii
    model, var = _build(p, carried, ii, horizon)
    if hint is not None:
        for v in range(p.n):
            model.add_hint(var.start[v], int(hint[1][v]))
            for d, lit in var.on[v].items():
                model.add_hint(lit, int(hint[0][v]) == d)
    model.minimize(var.latency)
    s = new_cp_solver(time_limit=time_limit, workers=workers, seed=seed)
    status = solve_cp(s, model, stop)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    start = np.array([s.value(x) for x in var.start])
    bound = int(np.ceil(s.best_objective_bound - 1e-9))
    return _assign_of(s, var, p), start, bound, status == cp_model.OPTIMAL


def _arcs_disjoint(assign: np.ndarray, start: np.ndarray, dur: np.ndarray, ii: int) -> bool:
    """Whether the arcs ``[start, start + dur)`` modulo ``ii`` are disjoint per device."""
    for d in np.unique(assign).tolist():
        mine = np.flatnonzero((assign == d) & (dur > 0))
        if mine.size == 0:
            continue
        if dur[mine].max() > ii:
            return False
        res = start[mine] % ii
        order = np.argsort(res, kind="stable")
        r, w = res[order], dur[mine][order]
        if np.any(r[:-1] + w[:-1] > r[1:]) or r[-1] + w[-1] > r[0] + ii:
            return False
    return True


def _modulo(
    problem: Problem, ctx: SolveContext, *, carried: Carried = (), hints: Sequence[Plan] = ()
) -> Plan:
    """Minimum initiation interval, then minimum latency at it; see the module docstring.

    ``carried`` are the loop-carried edges ``(src, dst, distance)``. ``hints``: plans of
    ``problem`` (a latency plan, a pipeline) whose one-iteration schedule, repeated at the
    least ``II`` it folds into (:func:`folded_ii`), starts the search when it beats the
    list schedule: the answer is never worse than any of them.

    Raises
    ------
    UsageError : a carried edge naming an unknown op or with distance < 1.
    InfeasibleError : no assignment fits device memory.
    SolverError : no memory-feasible schedule found within the time limit.
    """
    p = problem
    carried_idx = carried_index(p, carried)
    res, res_exact, res_assign = res_mii(
        p, time_limit=min(2.0, ctx.remaining() / 5), seed=ctx.seed, stop=ctx.stop
    )
    rec = rec_mii(p, carried)
    lo = max(res, rec, 1)
    serial = int(p.dur.max(axis=1).sum() + (p.comm.max(axis=(1, 2)).sum() if p.num_edges else 0))
    if res_assign is None:
        res_assign = np.argmin(np.where(p.allowed, p.dur, np.iinfo(np.int64).max), axis=1)
    best_ii, h_start = _heuristic(p, res_assign, lo, max(lo, serial), carried_idx)
    best = (res_assign, h_start)
    for hint in hints:
        assign, start = schedule_arrays(hint, p)
        if overflow(p, p.device_mode[np.arange(p.n), assign]) is not None:
            continue
        # its own schedule repeated, and its assignment packed at its busiest load
        folded = folded_ii(p, assign, start, carried_idx, lo)
        if folded is not None and folded < best_ii:
            best_ii, best, h_start = folded, (assign, start), start
        load = np.bincount(assign, weights=p.dur[np.arange(p.n), assign], minlength=p.num_devices)
        first = max(lo, int(load.max()))
        if first < best_ii:
            try:
                packed_ii, packed = _heuristic(p, assign, first, best_ii, carried_idx)
            except SolverError:  # carried edges it cannot meet below best_ii
                continue
            if packed_ii < best_ii:
                best_ii, best, h_start = packed_ii, (assign, packed), packed
    # A schedule at an II <= best_ii compacts (each op to its first start at or after its
    # ready time with the same residue: at most II - 1 late) into this horizon when there
    # are no carried edges, so a fixed-II model proven infeasible refutes that II.
    horizon = serial + 2 * int(p.dur.max()) + int(h_start.max()) + p.n * best_ii
    q = p.quantum
    ctx.report("modulo-list", best_ii * q, lo * q)
    search = _Search(p, carried_idx, horizon, ctx, lo, best_ii, best)
    search.bisect()
    search.sweep()
    best_ii, best = search.best_ii, search.best
    bound = search.bound() if p.exact else real_ii_bound(p, carried, res, ctx)
    best = (best[0], compact(p, best[0], best[1], best_ii, carried_idx))
    greedy = list_modulo(p, best[0], best_ii, carried_idx)  # latency-greedy, same arcs' load
    if greedy is not None and _span(p, best[0], greedy) < _span(p, *best):
        best = (best[0], greedy)
    model, var = _build(p, carried_idx, best_ii, horizon)
    for v in range(p.n):
        model.add_hint(var.start[v], int(best[1][v]))
        for d, lit in var.on[v].items():
            model.add_hint(lit, int(best[0][v]) == d)
    model.minimize(var.latency)
    s2, st2 = _solve(model, ctx.remaining(), ctx)
    if st2 in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        assign = _assign_of(s2, var, p)
        start = compact(p, assign, np.array([s2.value(x) for x in var.start]), best_ii, carried_idx)
        if _span(p, assign, start) <= _span(p, *best):
            best = (assign, start)
    assign, start = best
    modes = p.device_mode[np.arange(p.n), assign]
    if overflow(p, modes) is not None:
        msg = f"no modulo schedule of {p.name!r} within device memory found in the time limit"
        raise SolverError(msg)
    if p.exact:
        proved_by = (
            "bound" if best_ii <= lo else ("smaller IIs infeasible" if bound >= best_ii else "")
        )
    else:  # refutations hold in the rounded-up model only
        proved_by = "bound" if best_ii <= bound * (1 + p.tolerance) else ""
    stats = {
        "res_mii_exact": res_exact,
        "latency_optimal": st2 == cp_model.OPTIMAL,
        "fixed_ii_models": search.models,
        "refuted": sorted(search.refuted),
    }
    result = ModuloResult(
        ii=best_ii * q,
        ii_bound=bound * q,
        res_mii=res * q,
        rec_mii=rec * q,
        offset=offsets(p, start, best_ii),
        carried=tuple((str(a), str(b), int(c)) for a, b, c in carried),
        proved_by=proved_by,
    )
    ctx.report("modulo", result.ii, result.ii_bound)
    latency = int((start + p.dur[np.arange(p.n), assign]).max())
    return plan_from_schedule(
        p, assign=assign, start=start, solver="modulo", searched=search.models > 0,
        lower_bound=min(critical_path_bound(p.floored), latency),
        stats=stats, objective="modulo", modulo=result,
    )  # fmt: skip


def real_ii_bound(problem: Problem, carried: Carried, res: int, ctx: SolveContext) -> int:
    """A lower bound (units) of the initiation interval of the real-valued problem: the
    ``ResMII`` and ``RecMII`` of :attr:`~hetsched.problem.Problem.floored` (every duration
    and transfer rounded down; ``res``, the rounded-up model's ``ResMII``, where the
    durations were whole quanta already). The rounded-up model's refuted ``II`` values
    are not bounds of it: rounding up can push a real schedule's ``II`` past them."""
    fl = problem.floored
    if not np.array_equal(fl.mode_dur, problem.mode_dur):
        limit = min(2.0, ctx.remaining() / 5)
        res = res_mii(fl, time_limit=limit, seed=ctx.seed, stop=ctx.stop)[0]
    return max(res, rec_mii(fl, carried), 1)


class _Search:
    """Fixed-``II`` CP-SAT models between the lower bound and the best ``II`` found.

    ``refuted`` holds the IIs proven infeasible (only without carried edges, see the
    horizon in :func:`_modulo`); ``models`` counts the models solved.
    """

    def __init__(
        self,
        p: Problem,
        carried: list[tuple[int, int, int]],
        horizon: int,
        ctx: SolveContext,
        lo: int,
        best_ii: int,
        best: tuple[np.ndarray, np.ndarray],
    ) -> None:
        self.p, self.carried, self.horizon, self.ctx = p, carried, horizon, ctx
        self.lo, self.best_ii, self.best = lo, best_ii, best
        self.refuted: set[int] = set()
        self.models = 0
        # memory rows that round fractional bytes are tighter than the question: no refutation
        self.memory_exact = not p.use_memory or memory_scale(p)[1]
        # The last fifth of the time goes to the latency at the best II.
        self.deadline = 0.8 * ctx.remaining()
        self.t0 = ctx.elapsed()

    def left(self) -> float:
        if self.ctx.stop.is_set():
            return 0.0
        return self.deadline - (self.ctx.elapsed() - self.t0)

    def try_ii(self, ii: int, limit: float) -> bool:
        """Solve at ``ii``; True if a schedule was found (it becomes the best)."""
        model, var = _build(self.p, self.carried, ii, self.horizon)
        s, st = _solve(model, limit, self.ctx)
        self.models += 1
        if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            self.best_ii = ii
            assign = _assign_of(s, var, self.p)
            start = np.array([s.value(x) for x in var.start])
            self.best = (assign, compact(self.p, assign, start, ii, self.carried))
            self.ctx.report("modulo", ii * self.p.quantum, self.bound() * self.p.quantum)
            return True
        if st == cp_model.INFEASIBLE and not self.carried and self.memory_exact:
            self.refuted.add(ii)
        return False

    def bisect(self) -> None:
        lo_open = self.lo
        while lo_open < self.best_ii and self.left() > 0:
            mid = (lo_open + self.best_ii) // 2
            if not self.try_ii(mid, self.left() / 2):
                lo_open = mid + 1

    def sweep(self) -> None:
        """Try each untried ``II`` below the best, largest first (feasibility in ``II`` is
        not monotone, so the bisection alone proves nothing)."""
        ii = self.best_ii - 1
        while ii >= self.lo and self.left() > 0:
            if ii not in self.refuted:
                found = self.try_ii(ii, self.left() / 2)
                if not found and ii not in self.refuted:
                    return  # not refuted within its time: the bound stops above it
            ii -= 1

    def bound(self) -> int:
        """Least ``II`` in ``[lo, best]`` not proven infeasible."""
        b = self.lo
        while b < self.best_ii and b in self.refuted:
            b += 1
        return b


def _span(p: Problem, assign: np.ndarray, start: np.ndarray) -> int:
    """The latency of one iteration: its last finish (starts are from 0)."""
    return int((start + p.dur[np.arange(p.n), assign]).max())


def _assign_of(s: Any, var: _Vars, p: Problem) -> np.ndarray:
    return np.array([next(d for d, x in var.on[v].items() if s.value(x)) for v in range(p.n)])


solve_modulo = Solver(
    "modulo",
    _modulo,
    Capabilities(workers=True, anytime=True, exact=True, links=False),
    options=("carried", "hints"),
    check=validate_modulo,
)
