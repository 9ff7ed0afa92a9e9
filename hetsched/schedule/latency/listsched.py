"""List-scheduling machinery shared by the heuristics: timelines, insertion, re-timing.

All times are integer units of a :class:`~hetsched.problem.Problem`.

Examples
--------
>>> t = Timeline()
>>> t.reserve(0, 4); t.reserve(6, 9)
>>> t.earliest_fit(ready=1, length=2)
4
>>> t.earliest_fit(ready=1, length=3)
9
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Sequence

import numpy as np

from hetsched.errors import SolverError
from hetsched.problem import Problem

__all__ = ["ListScheduler", "Timeline", "makespan_units", "priority_order", "retime"]


class Timeline:
    """Busy intervals ``[start, end)`` of one device or link, kept sorted and disjoint."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def earliest_fit(self, ready: int, length: int, *, insertion: bool = True) -> int:
        """Earliest start ``>= ready`` of a free gap of ``length`` units."""
        if not self.starts:
            return ready
        if not insertion:
            return max(ready, self.ends[-1])
        if length == 0:
            return ready
        # First busy interval that ends after `ready`.
        i = bisect.bisect_right(self.ends, ready)
        t = ready
        while i < len(self.starts):
            if self.starts[i] - t >= length:
                return t
            t = max(t, self.ends[i])
            i += 1
        return t

    def reserve(self, start: int, end: int) -> None:
        if end <= start:
            return
        i = bisect.bisect_left(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)


class ListScheduler:
    """Places ops one at a time at their earliest finish time, with insertion.

    Handles transfer delays, optional link contention (each transfer reserves every link
    of its route) and optional static memory capacity.
    """

    def __init__(self, problem: Problem, *, insertion: bool = True) -> None:
        self.p = problem
        self.insertion = insertion
        self.assign = np.full(problem.n, -1, dtype=np.int64)
        self.start = np.zeros(problem.n, dtype=np.int64)
        self.finish = np.zeros(problem.n, dtype=np.int64)
        self.devices = [Timeline() for _ in problem.devices]
        self.links = [Timeline() for _ in problem.link_names]
        self.transfer_start: dict[int, int] = {}
        self.mem_used = np.zeros(problem.num_devices)

    def fits_memory(self, v: int, d: int) -> bool:
        p = self.p
        return not p.use_memory or self.mem_used[d] + p.memory[v] <= p.capacity[d] * (1 + 1e-12)

    def evaluate(self, v: int, d: int) -> tuple[int, int, dict[int, int]]:
        """``(start, finish, transfer starts)`` of op ``v`` on device ``d`` without committing."""
        p = self.p
        ready = 0
        transfers: dict[int, int] = {}
        contention = p.link_contention and bool(p.link_names)
        tentative: dict[int, list[tuple[int, int]]] = {}
        for u, k in sorted(p.preds[v], key=lambda uk: int(self.finish[uk[0]])):
            a = int(self.assign[u])
            if a < 0:
                msg = f"op {p.names[v]!r} scheduled before its predecessor {p.names[u]!r}"
                raise SolverError(msg)
            c = int(p.comm[k, a, d])
            t = int(self.finish[u])
            if a != d and c > 0 and contention:
                route = p.route_links.get((a, d), ())
                t = self._link_fit(route, t, c, tentative)
                for link in route:
                    tentative.setdefault(link, []).append((t, t + c))
                transfers[k] = t
            elif a != d:
                transfers[k] = t
            ready = max(ready, t + c)
        length = int(p.dur[v, d])
        s = self.devices[d].earliest_fit(ready, length, insertion=self.insertion)
        return s, s + length, transfers

    def _link_fit(
        self, route: Sequence[int], t: int, c: int, tentative: dict[int, list[tuple[int, int]]]
    ) -> int:
        while True:
            moved = False
            for link in route:
                t2 = self.links[link].earliest_fit(t, c)
                for s0, e0 in tentative.get(link, ()):
                    if t2 < e0 and s0 < t2 + c:
                        t2 = e0
                if t2 != t:
                    t, moved = t2, True
            if not moved:
                return t

    def commit(self, v: int, d: int, start: int, finish: int, transfers: dict[int, int]) -> None:
        p = self.p
        self.assign[v] = d
        self.start[v] = start
        self.finish[v] = finish
        self.devices[d].reserve(start, finish)
        self.mem_used[d] += p.memory[v]
        for k, t in transfers.items():
            self.transfer_start[k] = t
            u = int(p.edge_src[k])
            a = int(self.assign[u])
            c = int(p.comm[k, a, d])
            if p.link_contention:
                for link in p.route_links.get((a, d), ()):
                    self.links[link].reserve(t, t + c)

    def best_device(
        self, v: int, key_extra: np.ndarray | None = None
    ) -> tuple[int, int, int, dict[int, int]]:
        """Device minimising finish time (+ ``key_extra[d]``); ties to the lower index."""
        best: tuple[float, int, int, int, dict[int, int]] | None = None
        for d in self.p.allowed_devices[v]:
            if not self.fits_memory(v, d):
                continue
            s, f, tr = self.evaluate(v, d)
            key = f + (float(key_extra[d]) if key_extra is not None else 0.0)
            if best is None or key < best[0]:
                best = (key, d, s, f, tr)
        if best is None:
            msg = f"no device has memory left for op {self.p.names[v]!r}"
            raise SolverError(msg)
        return best[1], best[2], best[3], best[4]


def retime(
    problem: Problem, assign: np.ndarray, order: Sequence[int]
) -> tuple[np.ndarray, dict[int, int]]:
    """Earliest integer start times for a fixed assignment and a global dispatch ``order``.

    ``order`` must be a topological order; each device (and link) runs its ops in that order.
    Turns a float-time or foreign schedule into a feasible integer one (used for hints).
    Returns ``(start, transfer_start)``.
    """
    p = problem
    dev_free = np.zeros(p.num_devices, dtype=np.int64)
    link_free = np.zeros(max(1, len(p.link_names)), dtype=np.int64)
    start = np.zeros(p.n, dtype=np.int64)
    finish = np.zeros(p.n, dtype=np.int64)
    transfer_start: dict[int, int] = {}
    seen = np.zeros(p.n, dtype=bool)
    for v in order:
        d = int(assign[v])
        ready = 0
        for u, k in p.preds[v]:
            if not seen[u]:
                msg = f"order places {p.names[v]!r} before its predecessor {p.names[u]!r}"
                raise SolverError(msg)
            a = int(assign[u])
            c = int(p.comm[k, a, d])
            t = int(finish[u])
            if a != d:
                if p.link_contention and c > 0:
                    route = p.route_links.get((a, d), ())
                    if route:
                        t = max(t, *(int(link_free[x]) for x in route))
                        for x in route:
                            link_free[x] = t + c
                transfer_start[k] = t
            ready = max(ready, t + c)
        s = max(ready, int(dev_free[d]))
        start[v] = s
        finish[v] = s + int(p.dur[v, d])
        dev_free[d] = max(dev_free[d], finish[v])
        seen[v] = True
    return start, transfer_start


def makespan_units(problem: Problem, assign: np.ndarray, start: np.ndarray) -> int:
    """The makespan (integer units) of the schedule ``(assign, start)``."""
    return int((start + problem.dur[np.arange(problem.n), assign]).max())


def priority_order(problem: Problem, key: np.ndarray) -> list[int]:
    """A topological order that follows ``key`` (smallest first) wherever precedence allows."""
    indeg = np.array([len(x) for x in problem.preds])
    heap = [(float(key[v]), v) for v in range(problem.n) if indeg[v] == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        _, v = heapq.heappop(heap)
        order.append(v)
        for s, _k in problem.succs[v]:
            indeg[s] -= 1
            if indeg[s] == 0:
                heapq.heappush(heap, (float(key[s]), s))
    return order
