"""One LNS neighbourhood as an exact CP-SAT sub-model of the whole schedule.

The current schedule (integer ``assign``/``start``) is split at ``t_lo`` (the earliest start
of the freed *window* ``W``) into three parts:

* ``B`` (start ``< t_cut``, the earliest window start): constants; those still running
  after ``t_lo`` (the earliest time an op of ``M`` has its inputs) block their device.
* ``M`` (the window plus the next ops by start time, up to a cap): window ops choose device
  and start; the other ops of ``M`` keep their device and their order on it (a precedence
  chain) but their start times are free, so the makespan can really shrink.
* ``A`` (everything later): unchanged device and order; represented exactly by its
  *tail* ``tail[w]`` (longest path from the end of ``w`` to the makespan in the current
  disjunctive graph), so ``obj`` equals the makespan that :func:`~.listsched.retime`
  produces when ``B`` then ``M`` (by new start) then ``A`` (by old start) are dispatched.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 2.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0)], quantum=1.0)
>>> assign, start = np.array([0, 0, 0]), np.array([0, 2, 6])
>>> sub = solve_neighbourhood(p, assign, start, np.array([2]), time_limit=2, seed=0, workers=1)
>>> sub.makespan, sub.assign.tolist()
(6, [0, 0, 1])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from hetsched.plan.memory import static_usage
from hetsched.problem import Problem
from hetsched.schedule.cpsolver import new_cp_solver, solve_cp
from hetsched.solver import StopToken

__all__ = ["SubResult", "disjunctive_tails", "dispatch_key", "solve_neighbourhood"]


def _device_order(p: Problem, assign: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Ops sorted by (start, finish, index): each device runs its ops in this order."""
    fin = start + p.dur[np.arange(p.n), assign]
    return np.lexsort((np.arange(p.n), fin, start))


def disjunctive_tails(p: Problem, assign: np.ndarray, start: np.ndarray) -> np.ndarray:
    """``tail[v]``: longest path from the end of ``v`` to the end of the schedule.

    Paths follow data edges (with the transfer of the current assignment) and the next op on
    the same device; ``fin[v] + tail[v] <= makespan`` for every ``v`` of a left-justified
    schedule.

    >>> import numpy as np
    >>> from hetsched.problem import Problem
    >>> p = Problem.from_arrays(names=["a", "b"], devices=["x"],
    ...     exec_time=np.array([[2.0], [3.0]]), edges=[(0, 1, 0.0)], quantum=1.0)
    >>> disjunctive_tails(p, np.array([0, 0]), np.array([0, 2])).tolist()
    [3, 0]
    """
    order = _device_order(p, assign, start)
    dur = p.dur[np.arange(p.n), assign]
    tail = np.zeros(p.n, dtype=np.int64)
    nxt = np.full(p.num_devices, -1, dtype=np.int64)
    comm, succs = p.comm, p.succs
    for v in order[::-1].tolist():
        a = int(assign[v])
        t = 0
        w = int(nxt[a])
        if w >= 0:
            t = int(dur[w] + tail[w])
        for s, k in succs[v]:
            c = int(comm[k, a, assign[s]]) + int(dur[s] + tail[s])
            if c > t:
                t = c
        tail[v] = t
        nxt[a] = v
    return tail


def dispatch_key(
    start: np.ndarray, new_start: np.ndarray, model_ops: np.ndarray, after: np.ndarray
) -> np.ndarray:
    """Dispatch priorities: old starts for ``B``, new starts for ``M``, ``A`` after both."""
    key = start.astype(np.float64).copy()
    key[model_ops] = new_start[model_ops]
    offset = float(max(int(new_start[model_ops].max(initial=0)), int(start.max())) + 1)
    key[after] += offset
    return key


@dataclass(frozen=True)
class SubResult:
    """Outcome of one neighbourhood solve (integer units)."""

    assign: np.ndarray
    start: np.ndarray
    key: np.ndarray
    makespan: int
    optimal: bool
    size: int
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Vars:
    start: dict[int, Any] = field(default_factory=dict)
    end: dict[int, Any] = field(default_factory=dict)
    on: dict[int, dict[int, Any]] = field(default_factory=dict)
    dev_intervals: dict[int, list[Any]] = field(default_factory=dict)


def _split(
    p: Problem, start: np.ndarray, window: np.ndarray, flex_cap: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(in_b, in_m, in_a, t_lo)``: before / modelled / after masks."""
    t_lo = int(start[window].min())
    in_w = np.zeros(p.n, dtype=bool)
    in_w[window] = True
    order = np.lexsort((np.arange(p.n), start))
    pos = np.empty(p.n, dtype=np.int64)
    pos[order] = np.arange(p.n)
    first = int(np.searchsorted(start[order], t_lo, side="left"))
    cut = max(int(pos[window].max()) + 1, min(p.n, first + flex_cap))
    in_m = np.zeros(p.n, dtype=bool)
    in_m[order[first:cut]] = True
    in_b = start < t_lo
    in_a = ~(in_b | in_m)
    return in_b, in_m, in_a, t_lo


def _earliest_ready(p: Problem, fin: np.ndarray, ops: np.ndarray) -> int:
    """Earliest time any of ``ops`` has all its inputs computed (transfers ignored)."""
    ready = np.zeros(p.n, dtype=np.int64)
    np.maximum.at(ready, p.edge_dst, fin[p.edge_src])
    return int(ready[ops].min(initial=0))


def _add_ops(
    m: cp_model.CpModel,
    p: Problem,
    v: _Vars,
    ops: list[int],
    in_w: np.ndarray,
    assign: np.ndarray,
    start: np.ndarray,
    t_lo: int,
    horizon: int,
) -> None:
    # start_v >= t_lo; window op on exactly one allowed device; others on their own device.
    for x in ops:
        s = m.new_int_var(t_lo, horizon, f"start_{x}")
        e = m.new_int_var(t_lo, horizon, f"end_{x}")
        v.start[x], v.end[x] = s, e
        m.add_hint(s, int(start[x]))
        if in_w[x]:
            lits = {}
            for d in p.allowed_devices[x]:
                lit = m.new_bool_var(f"on_{x}_{d}")
                m.add_hint(lit, int(assign[x]) == d)
                iv = m.new_optional_interval_var(s, int(p.dur[x, d]), e, lit, f"iv_{x}_{d}")
                v.dev_intervals[d].append(iv)
                lits[d] = lit
            m.add_exactly_one(list(lits.values()))
            v.on[x] = lits
        else:
            d = int(assign[x])
            m.add(e == s + int(p.dur[x, d]))
            v.dev_intervals[d].append(m.new_interval_var(s, int(p.dur[x, d]), e, f"iv_{x}"))
        m.add_hint(e, int(start[x] + p.dur[x, int(assign[x])]))


def _device_lits(v: _Vars, x: int, assign: np.ndarray) -> dict[int, Any]:
    return v.on.get(x, {int(assign[x]): None})


def _add_precedence(
    m: cp_model.CpModel,
    p: Problem,
    v: _Vars,
    ops: list[int],
    in_m: np.ndarray,
    assign: np.ndarray,
    fin: np.ndarray,
) -> None:
    # start_v >= end_u + comm[k, dev_u, dev_v] for every data edge u -> v into M.
    for x in ops:
        lx = _device_lits(v, x, assign)
        for u, k in p.preds[x]:
            lu = _device_lits(v, u, assign) if in_m[u] else {int(assign[u]): None}
            end_u = v.end[u] if in_m[u] else int(fin[u])
            for a, la in lu.items():
                for b, lb in lx.items():
                    cond = [c for c in (la, lb) if c is not None]
                    m.add(v.start[x] >= end_u + int(p.comm[k, a, b])).only_enforce_if(cond)


def _add_device_chains(
    m: cp_model.CpModel,
    p: Problem,
    v: _Vars,
    in_b: np.ndarray,
    in_w: np.ndarray,
    in_m: np.ndarray,
    assign: np.ndarray,
    start: np.ndarray,
    fin: np.ndarray,
    t_lo: int,
) -> dict[int, int]:
    # Per device: NoOverlap(B running at t_lo, M); chain end_x <= start_y for fixed M ops.
    order = _device_order(p, assign, start)
    last: dict[int, int] = {}
    for x in order.tolist():
        d = int(assign[x])
        if in_b[x] and fin[x] > t_lo:
            iv = m.new_fixed_size_interval_var(int(start[x]), int(fin[x] - start[x]), f"b_{x}")
            v.dev_intervals[d].append(iv)
        elif in_m[x] and not in_w[x]:
            if d in last:
                m.add(v.start[x] >= v.end[last[d]])
            last[d] = x
    for ivs in v.dev_intervals.values():
        if len(ivs) > 1:
            m.add_no_overlap(ivs)
    return last


def _add_memory(
    m: cp_model.CpModel, p: Problem, v: _Vars, in_w: np.ndarray, assign: np.ndarray
) -> None:
    # sum_{x in window on d} bytes[x,d] <= cap_d - (what the rest holds there now): window
    # ops' own bytes fit what the others leave free. Receive buffers are not modelled here:
    # the caller checks the whole plan with the memory model (hetsched.plan.memory).
    if not p.use_memory:
        return
    rest = assign.copy()
    used = static_usage(p, p.device_mode[np.arange(p.n), rest])
    np.subtract.at(used, assign[in_w], p.dev_memory[np.flatnonzero(in_w), assign[in_w]])
    for d in range(p.num_devices):
        if not np.isfinite(p.capacity[d]):
            continue
        terms = [
            (int(np.ceil(p.dev_memory[x, d])), lits[d]) for x, lits in v.on.items() if d in lits
        ]
        if terms:
            m.add(sum(c * lit for c, lit in terms) <= int(np.floor(p.capacity[d] - used[d])))


def _add_objective(
    m: cp_model.CpModel,
    p: Problem,
    v: _Vars,
    ops: list[int],
    in_a: np.ndarray,
    in_b: np.ndarray,
    assign: np.ndarray,
    start: np.ndarray,
    fin: np.ndarray,
    tail: np.ndarray,
    last: dict[int, int],
    horizon: int,
) -> Any:
    # obj >= end_x + (transfer + dur + tail of each A successor, data or device).
    obj = m.new_int_var(0, horizon, "makespan")
    order = _device_order(p, assign, start)
    dur = p.dur[np.arange(p.n), assign]
    first_a: dict[int, int] = {}
    last_b: dict[int, int] = {}
    for x in order.tolist():
        d = int(assign[x])
        if in_a[x] and d not in first_a:
            first_a[d] = x
        if in_b[x]:
            last_b[d] = x
    after_dev = {d: int(dur[w] + tail[w]) for d, w in first_a.items()}
    const = 0
    for d, u in last_b.items():
        const = max(const, int(fin[u]) + after_dev.get(d, 0))
    for u in np.flatnonzero(in_b).tolist():
        for w, k in p.succs[u]:
            if in_a[w]:
                c = int(p.comm[k, assign[u], assign[w]])
                const = max(const, int(fin[u]) + c + int(dur[w] + tail[w]))
    m.add(obj >= const)
    for x in ops:
        for a, la in _device_lits(v, x, assign).items():
            cond = [] if la is None else [la]
            if la is not None or last.get(a) == x:
                m.add(obj >= v.end[x] + after_dev.get(a, 0)).only_enforce_if(cond)
            else:
                m.add(obj >= v.end[x])
            for w, k in p.succs[x]:
                if in_a[w]:
                    c = int(p.comm[k, a, assign[w]]) + int(dur[w] + tail[w])
                    m.add(obj >= v.end[x] + c).only_enforce_if(cond)
    m.add_hint(obj, int(fin.max()))
    # min obj (a secondary sum-of-ends term made sub-solves 10x slower, measured)
    m.minimize(obj)
    return obj


def solve_neighbourhood(
    p: Problem,
    assign: np.ndarray,
    start: np.ndarray,
    window: np.ndarray,
    *,
    tail: np.ndarray | None = None,
    flex_cap: int = 200,
    time_limit: float = 1.0,
    seed: int = 0,
    workers: int = 2,
    stop: StopToken | None = None,
) -> SubResult | None:
    """Re-optimise ``window`` (device and start) with the rest fixed as described above.

    Returns ``None`` when CP-SAT finds nothing in ``time_limit`` (it is hinted with the
    current schedule, so this only happens on a timeout before the hint is loaded).
    """
    if tail is None:
        tail = disjunctive_tails(p, assign, start)
    fin = start + p.dur[np.arange(p.n), assign]
    in_b, in_m, in_a, t_cut = _split(p, start, window, flex_cap)
    in_w = np.zeros(p.n, dtype=bool)
    in_w[window] = True
    # Let M reach back into idle gaps before t_cut, by at most the window's time span (or
    # its longest op): further back would put most of B into the NoOverlap constraints.
    span = max(int(start[window].max()) - t_cut, int(p.dur[window].max())) + 1
    t_lo = max(t_cut - span, min(t_cut, _earliest_ready(p, fin, np.flatnonzero(in_m))))
    ops = np.flatnonzero(in_m).tolist()
    sub_dur = int(p.dur[in_m].max(axis=1).sum()) + int(p.comm.max(initial=0)) * 2
    horizon = int(fin.max()) + int(tail.max(initial=0)) + sub_dur
    m = cp_model.CpModel()
    v = _Vars(dev_intervals={d: [] for d in range(p.num_devices)})
    _add_ops(m, p, v, ops, in_w, assign, start, t_lo, horizon)
    _add_precedence(m, p, v, ops, in_m, assign, fin)
    last = _add_device_chains(m, p, v, in_b, in_w, in_m, assign, start, fin, t_lo)
    _add_memory(m, p, v, in_w, assign)
    obj = _add_objective(m, p, v, ops, in_a, in_b, assign, start, fin, tail, last, horizon)
    solver = new_cp_solver(time_limit=time_limit, workers=workers, seed=seed)
    status = solve_cp(solver, m, stop)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    new_assign = assign.copy()
    new_start = start.copy()
    for x in ops:
        new_start[x] = solver.value(v.start[x])
        if x in v.on:
            new_assign[x] = next(d for d, lit in v.on[x].items() if solver.boolean_value(lit))
    key = dispatch_key(start, new_start, np.asarray(ops, dtype=np.int64), in_a)
    return SubResult(
        assign=new_assign,
        start=new_start,
        key=key,
        makespan=int(solver.value(obj)),
        optimal=status == cp_model.OPTIMAL,
        size=len(ops),
        stats={"wall": solver.wall_time},
    )
