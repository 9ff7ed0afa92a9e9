"""Cluster moves: plans that move less data on communication-heavy graphs.

When a transfer costs ten times an op (CCR 10), moving one op to another device rarely
helps: it pays a transfer in and one out. What helps is moving a *cluster*, ops joined by
edges that run on one device, so that the edges between them stay free. Starting from a
plan, this search walks the edges between devices, dearest transfer first, and for each
tries to put its two ends on one device by moving one end's cluster to the other's device
(the end alone, the end with its neighbours on its device, or the end's whole connected
group there); a move is kept when the re-timed makespan does not grow, as in Sarkar's edge
zeroing (Sarkar, *Partitioning and Scheduling Parallel Programs for Multiprocessors*, MIT
Press 1989) but on heterogeneous devices and for a whole group at a time. It also tries
emptying each device into the others it talks to most. Every evaluation is one linear
re-timing (:class:`~hetsched.schedule.latency.listsched.Retimer`) in the order of the
current start times, so thousands fit in a second at a few hundred ops. Never worse than its start.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> from hetsched.schedule.latency.heuristics import solve_heft
>>> rng = np.random.default_rng(0)
>>> n = 40
>>> edges = [(i, j, float(rng.integers(50, 150)))
...          for j in range(1, n) for i in rng.choice(j, size=min(j, 2), replace=False)]
>>> p = Problem.from_arrays(names=[f"t{i}" for i in range(n)], devices=["a", "b", "c"],
...     exec_time=rng.integers(5, 20, size=(n, 3)).astype(float), edges=edges,
...     comm_inv_bandwidth=np.ones((3, 3)) - np.eye(3), quantum=1.0)
>>> h = solve_heft(p)
>>> plan = solve_clusters(p, time_limit=1, seed=0, hint=h)
>>> plan.makespan <= h.makespan
True
"""

from __future__ import annotations

import numpy as np

from hetsched.plan import Plan, overflow, plan_from_schedule, schedule_arrays
from hetsched.problem import Problem
from hetsched.schedule.bounds import quick_lower_bound
from hetsched.schedule.latency.heuristics import solve_heft
from hetsched.schedule.latency.listsched import Retimer, makespan_units, priority_order, retime
from hetsched.solver import Capabilities, SolveContext, Solver

__all__ = ["group_of", "solve_clusters"]


def group_of(p: Problem, assign: np.ndarray, v: int, radius: int | None) -> list[int]:
    """``v`` and the ops on its device reachable from it over edges (either way) whose
    ends share that device, at most ``radius`` edges away (``None``: no limit)."""
    d = int(assign[v])
    seen = {v}
    frontier = [v]
    depth = 0
    while frontier and (radius is None or depth < radius):
        nxt = []
        for x in frontier:
            for y, _k in (*p.preds[x], *p.succs[x]):
                if y not in seen and int(assign[y]) == d:
                    seen.add(y)
                    nxt.append(y)
        frontier = nxt
        depth += 1
    return sorted(seen)


class _Search:
    """The current schedule and the evaluation of moves against it: the current start
    times order the ops (a moved op keeps its place), so one order serves every move tried
    from a state."""

    def __init__(self, p: Problem, assign: np.ndarray, start: np.ndarray) -> None:
        self.p = p
        self.idx = np.arange(p.n)
        self.retimer = Retimer(p)
        self.assign = assign
        self.start = start
        self.order = priority_order(p, start + self.idx * 1e-6)
        self.timed_order = self.order
        self.best = makespan_units(p, assign, start)
        self.evaluations = 0
        self.moves = 0

    def try_move(self, ops: list[int], device: int) -> bool:
        """Move ``ops`` to ``device`` if every one may run there, memory fits and the
        re-timed makespan does not grow; whether it was kept."""
        p = self.p
        if not all(p.allowed[v, device] for v in ops):
            return False
        trial = self.assign.copy()
        trial[ops] = device
        if np.array_equal(trial, self.assign):
            return False
        if overflow(p, p.device_mode[self.idx, trial]) is not None:
            return False
        finish = np.array(self.retimer.finish(trial.tolist(), self.order), dtype=np.int64)
        ms = int(finish.max())
        self.evaluations += 1
        if ms > self.best:
            return False
        self.assign, self.start = trial, finish - p.dur[self.idx, trial].astype(np.int64)
        self.timed_order = self.order  # the order these start times come from
        self.order = priority_order(p, self.start + self.idx * 1e-6)
        self.moves += ms < self.best
        self.best = ms
        return True


def _edge_devices(p: Problem, assign: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per edge under ``assign``: its source's device, its destination's and its transfer."""
    src, dst = assign[p.edge_src], assign[p.edge_dst]
    return src, dst, p.comm[np.arange(p.num_edges), src, dst]


def _cross_edges(p: Problem, assign: np.ndarray) -> list[int]:
    """Edges whose ends run on different devices, dearest transfer first."""
    src, dst, cost = _edge_devices(p, assign)
    cross = np.flatnonzero(src != dst)
    return cross[np.argsort(-cost[cross], kind="stable")].tolist()


def _clusters(problem: Problem, ctx: SolveContext) -> Plan:
    """Improve the hint (default: HEFT) by moving clusters across its dearest transfers."""
    p = problem
    hint = ctx.hint if ctx.hint is not None else solve_heft.within(p, ctx.child())
    if not p.is_device_table:  # moves are between devices: one mode per (op, device)
        return hint.with_(stats={**hint.stats, "clusters": "needs one mode per (op, device)"})
    assign, start = schedule_arrays(hint, p)
    lb = quick_lower_bound(p)
    search = _Search(p, assign, start)
    first = search.best
    rng = np.random.default_rng(ctx.seed)
    improved = True
    while improved and search.best > lb and not ctx.expired():
        improved = False
        before = search.best
        for k in _cross_edges(p, search.assign):
            if ctx.expired():
                break
            u, v = int(p.edge_src[k]), int(p.edge_dst[k])
            if search.assign[u] == search.assign[v]:
                continue  # joined by an earlier move of this pass
            ends = [(v, int(search.assign[u])), (u, int(search.assign[v]))]
            if rng.random() < 0.5:
                ends.reverse()
            for end, device in ends:
                if any(
                    search.try_move(group_of(p, search.assign, end, r), device)
                    for r in (0, 1, None)
                ):
                    break
        for d in rng.permutation(p.num_devices).tolist():  # empty a device
            ops = np.flatnonzero(search.assign == d).tolist()
            if ops and not ctx.expired():
                for other in _partners(p, search.assign, d):
                    if search.try_move(ops, other):
                        break
        improved = search.best < before
        if improved:
            ctx.report("clusters", search.best * p.quantum, lb * p.quantum)
    stats = {"evaluations": search.evaluations, "moves": search.moves, "start_makespan": first}
    if search.best >= first:
        return hint.with_(stats={**hint.stats, "clusters": stats})
    start, xfer = retime(p, search.assign, search.timed_order)
    return plan_from_schedule(
        p,
        assign=search.assign,
        start=start,
        solver="clusters",
        lower_bound=lb * p.quantum,
        stats=stats,
        transfer_start=xfer or None,
        baselines=hint.baselines,
    )


def _partners(p: Problem, assign: np.ndarray, d: int) -> list[int]:
    """The other devices in use, those ``d`` exchanges the most transfer time with first."""
    src, dst, cost = _edge_devices(p, assign)
    talk = np.zeros(p.num_devices)
    np.add.at(talk, dst[src == d], cost[src == d])
    np.add.at(talk, src[dst == d], cost[dst == d])
    used = np.zeros(p.num_devices, dtype=bool)
    used[assign] = True
    return [int(x) for x in np.argsort(-talk, kind="stable") if x != d and used[x]]


solve_clusters = Solver("clusters", _clusters, Capabilities(hint=True, anytime=True))
