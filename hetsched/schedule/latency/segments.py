"""Solve a large graph segment by segment along its series cuts (see :mod:`.series`).

Between two series cuts nothing else can run, so a graph whose cuts split it into segments
(a transformer: the attention of each layer between its layer norm and the ``cat`` of the
heads, then a chain of single ops) is scheduled well by scheduling every segment well. Each
*class* of identical segments (the 48 attention blocks of a 48-layer model are one class) is
solved once, exactly with CP-SAT where it is small enough (LNS otherwise), as its own
problem: the cut before it (on its current device), the segment, the cut closing it and the
op after that (on its current device), so the transfers at both ends are the real ones. The
pattern (devices and order) is copied onto every member of the class and the whole schedule
is re-timed by :func:`~hetsched.schedule.latency.listsched.retime`, so the result is always valid;
callers keep it only if it is shorter.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> from hetsched.schedule.latency.eft import first_plan
>>> from hetsched.plan import schedule_arrays
>>> rng = np.random.default_rng(0)
>>> names, edges, ex = [], [], []
>>> for layer in range(4):  # a cut, four parallel ops, repeated
...     c = len(names); names.append(f"cut{layer}"); ex.append([3.0, 1.0])
...     if layer: edges += [(c - 4 + i, c, 1.0) for i in range(4)]
...     for i in range(4):
...         names.append(f"op{layer}_{i}"); ex.append([2.0, 2.0 + i])
...         edges.append((c, c + 1 + i, 1.0))
>>> p = Problem.from_arrays(names=names, devices=["x", "y"], exec_time=np.array(ex),
...     edges=sorted(edges), comm_latency=np.array([[0, 1], [1, 0]]), quantum=1.0)
>>> assign, start = schedule_arrays(first_plan(p), p)
>>> [c.total_ops for c in segment_classes(p)]  # three "four ops, then a cut" segments
[15]
>>> out = solve_segments(p, assign, start, time_limit=5, workers=1)
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np

from hetsched.plan import Plan, plan_from_schedule, schedule_arrays
from hetsched.problem import Problem, subproblem
from hetsched.schedule.bounds import segment_key, series_cuts
from hetsched.schedule.latency.eft import fits_memory
from hetsched.schedule.latency.listsched import makespan_units, priority_order, retime
from hetsched.solver import StopToken

__all__ = ["SegmentClass", "segment_classes", "solve_segments"]

# Classes smaller than this many ops in total are left to LNS.
MIN_CLASS_OPS = 8
# Above this many ops a segment is solved by LNS instead of one CP-SAT model.
SEGMENT_CPSAT_MAX_OPS = 120
# Share of an LNS segment's time for scheduling the rounded window-LP assignment first.
LP_ROUNDED_SHARE = 0.4
# ... and the rounded plan starts LNS unless it is more than this factor longer.
LP_ROUNDED_SLACK = 1.03


@dataclass
class SegmentClass:
    """Identical segments: each member is ``[cut before, *segment ops, closing cut]``."""

    key: str
    members: list[np.ndarray]

    @property
    def total_ops(self) -> int:
        return sum(m.size - 1 for m in self.members)


def segment_classes(p: Problem) -> list[SegmentClass]:
    """Classes of identical multi-op segments closed by a cut, most ops first."""
    cuts = series_cuts(p).tolist()
    classes: dict[str, SegmentClass] = {}
    for prev, cut in itertools.pairwise(cuts):
        if cut - prev == 1:  # consecutive cuts (a lone op between two cuts is a cut too)
            continue
        ops = np.arange(prev, cut + 1)
        key = segment_key(p, ops)
        classes.setdefault(key, SegmentClass(key, [])).members.append(ops)
    out = [c for c in classes.values() if c.total_ops >= MIN_CLASS_OPS]
    return sorted(out, key=lambda c: -c.total_ops)


def _boundary_problem(
    p: Problem, rep: np.ndarray, assign: np.ndarray
) -> tuple[Problem, np.ndarray]:
    """``rep`` plus the op after its closing cut, as a Problem whose first and (if present)
    last op stay on their current devices: the op before the segment and the one after it
    are where they are, so the transfers into and out of the segment are the real ones."""
    ops = rep
    if rep[-1] + 1 < p.n:
        ops = np.concatenate([rep, [rep[-1] + 1]])
    sub = subproblem(p, ops, name="segment")
    allowed = sub.allowed.copy()
    pinned = [0, ops.size - 1] if ops.size > rep.size else [0]
    for i in pinned:
        allowed[i] = False
        allowed[i, assign[ops[i]]] = True
    return sub.restrict(allowed), ops


def _solve_one(
    sub: Problem,
    hint_assign: np.ndarray,
    hint_start: np.ndarray,
    limit: float,
    seed: int,
    workers: int,
    stop: StopToken,
) -> Plan:
    """Best plan of one segment from the current schedule's pattern."""
    hint_start, _ = retime(sub, hint_assign, priority_order(sub, hint_start))
    hint = plan_from_schedule(sub, assign=hint_assign, start=hint_start, solver="current")
    from hetsched.schedule.latency.cpsat import solve_cpsat

    if sub.n <= SEGMENT_CPSAT_MAX_OPS:
        return solve_cpsat(sub, time_limit=limit, seed=seed, hint=hint, workers=workers, stop=stop)
    from hetsched.schedule.latency.lns import solve_lns

    t0 = time.perf_counter()
    rounded = _lp_rounded_plan(sub, LP_ROUNDED_SHARE * limit, seed, workers, stop)
    # LNS keeps the structure of its start: from the LP's device mix it goes further than
    # from a greedy one, so the rounded plan starts it unless it is clearly worse
    if rounded is not None and rounded.makespan <= LP_ROUNDED_SLACK * hint.makespan:
        hint = rounded
    remaining = max(0.05, limit - (time.perf_counter() - t0))
    return solve_lns(sub, time_limit=remaining, seed=seed, hint=hint, workers=workers, stop=stop)


def _lp_rounded_plan(
    sub: Problem, limit: float, seed: int, workers: int, stop: StopToken
) -> Plan | None:
    """The window LP's assignment, rounded by class, scheduled exactly by CP-SAT with the
    devices fixed (a sequencing problem, far easier than the joint one)."""
    from hetsched.schedule.latency.cpsat import solve_cpsat
    from hetsched.schedule.latency.heuristics import solve_heft
    from hetsched.schedule.latency.lpround import lp_rounded_problem

    fixed = lp_rounded_problem(sub) if limit >= 0.1 else None
    if fixed is None:
        return None
    plan = solve_cpsat(
        fixed,
        time_limit=limit,
        seed=seed,
        hint=solve_heft(fixed),
        workers=workers,
        stop=stop,
    )
    a, st = schedule_arrays(plan, fixed)
    return plan_from_schedule(sub, assign=a, start=st, solver="lp-rounded")


def solve_segments(
    p: Problem,
    assign: np.ndarray,
    start: np.ndarray,
    *,
    time_limit: float,
    seed: int = 0,
    workers: int = 2,
    stop: StopToken | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[tuple[int, int], int]] | None:
    """Solve each class of identical segments once and copy its pattern onto every member.

    The time is shared between classes by their op counts. Returns ``(assign, start,
    transfer_start)`` re-timed, or ``None`` unless the makespan got shorter.
    """
    stop = stop or StopToken()
    t0 = time.perf_counter()
    classes = segment_classes(p)
    if not classes:
        return None
    new_assign = assign.copy()
    key = start.astype(np.float64).copy()
    for i, cls in enumerate(classes):
        remaining = time_limit - (time.perf_counter() - t0)
        if remaining < 0.05 or stop.is_set():
            break
        share = remaining * cls.total_ops / sum(c.total_ops for c in classes[i:])
        rep = cls.members[len(cls.members) // 2]
        sub, ops = _boundary_problem(p, rep, new_assign)
        plan = _solve_one(sub, new_assign[ops], start[ops], share, seed, workers, stop)
        pat_assign, pat_start = schedule_arrays(plan, sub)
        pat_assign, pat_start = pat_assign[: rep.size], pat_start[: rep.size]
        rel = pat_start - pat_start.min() + np.arange(rep.size) / (rep.size + 1)
        for member in cls.members:
            # not the opening cut: it is the previous member's closing cut (or stays put)
            new_assign[member[1:]] = pat_assign[1:]
            key[member] = float(start[member].min()) + rel
    if not fits_memory(p, new_assign):
        return None
    new_start, xfer = retime(p, new_assign, priority_order(p, key))
    better = makespan_units(p, new_assign, new_start) < makespan_units(p, assign, start)
    return (new_assign, new_start, xfer) if better else None
