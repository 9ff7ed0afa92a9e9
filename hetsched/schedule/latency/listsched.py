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
from functools import cached_property
from typing import NamedTuple

import numpy as np

from hetsched.errors import SolverError
from hetsched.plan.memory import LiveTracker
from hetsched.plan.plan import nearest_source
from hetsched.problem import Problem
from hetsched.problem.chains import chain_ok

__all__ = [
    "SNAPSHOT_EVERY",
    "ListScheduler",
    "MoveTables",
    "Retimer",
    "Timeline",
    "least_time_after",
    "makespan_units",
    "priority_order",
    "retime",
    "retime_by_key",
    "retime_modes",
]


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
    """Places ops one at a time at their earliest finish time, with insertion, over modes.

    A mode occupies all its devices at once (the earliest common gap). A tensor goes once to
    each device that reads it, from the producer's device that reaches it fastest; a later
    reader on that device reuses the transfer. With link contention each transfer reserves
    every link of its route; with memory on, a mode and start that would overflow a device
    at some instant are skipped (:class:`~hetsched.plan.memory.LiveTracker`: live bytes).
    """

    def __init__(self, problem: Problem, *, insertion: bool = True) -> None:
        self.p = problem
        self.insertion = insertion
        self.mode = np.full(problem.n, -1, dtype=np.int64)
        self.start = np.zeros(problem.n, dtype=np.int64)
        self.finish = np.zeros(problem.n, dtype=np.int64)
        self.devices = [Timeline() for _ in problem.devices]
        self.links = [Timeline() for _ in problem.link_names]
        self.transfer_start: dict[tuple[int, int], int] = {}
        self.arrival: dict[tuple[int, int], int] = {}
        self.memory = LiveTracker(problem)

    @property
    def assign(self) -> np.ndarray:
        """First device of each placed op's mode (-1 where not placed)."""
        first = self.p.modes.devs[self.p.modes.dev_start[:-1]]
        return np.where(self.mode >= 0, first[np.maximum(self.mode, 0)], -1)

    @cached_property
    def chain_cost(self) -> np.ndarray:
        """Per mode, what keeping its output sharded costs the consumers at least: the
        most, over its consumers, that their fastest mode that can follow it is slower
        than their fastest mode (0 for other modes): a one-step look-ahead, so that a
        greedy choice does not keep an output sharded for readers that would lose more
        (a reduced precision they could not take) than the gather it saves."""
        p = self.p
        out = np.zeros(p.num_modes)
        fastest = np.minimum.reduceat(p.mode_dur, p.modes.op_start[:-1])
        for k, v, ok in p.chain_rules:
            out[k] = max(out[k], float(p.mode_dur[ok].min() - fastest[v]) if ok.size else np.inf)
        return out

    def follows(self, v: int, m: int) -> bool:
        """Whether ``v`` in mode ``m`` reads every placed producer that keeps its output
        sharded as that producer requires (:mod:`hetsched.problem.chains`)."""
        p = self.p
        if not p.has_chains:
            return True
        return all(
            chain_ok(p.modes, int(self.mode[u]), m) for u, _ in p.preds[v] if self.mode[u] >= 0
        )

    def fits_memory(self, v: int, m: int) -> bool:
        """Whether ``v`` in mode ``m``, at its earliest start, fits memory."""
        s, _, tr = self.evaluate(v, m)
        return self.memory.fits(m, s, tr)

    def evaluate(self, v: int, m: int) -> tuple[int, int, dict[tuple[int, int], int]]:
        """``(start, finish, new transfers)`` of op ``v`` in mode ``m`` without committing.

        New transfers map ``(tensor, device)`` to their start.
        """
        p = self.p
        devs = p.modes.devices_of(m)
        ready = 0
        transfers: dict[tuple[int, int], int] = {}
        contention = p.link_contention and bool(p.link_names)
        tentative: dict[int, list[tuple[int, int]]] = {}
        for u, k in sorted(p.preds[v], key=lambda uk: int(self.finish[uk[0]])):
            mu = int(self.mode[u])
            if mu < 0:
                msg = f"op {p.names[v]!r} scheduled before its predecessor {p.names[u]!r}"
                raise SolverError(msg)
            have = p.modes.devices_of(mu)
            t = int(p.edge_tensor[k])
            for b in devs:
                if b in have:
                    ready = max(ready, int(self.finish[u]))
                    continue
                if (t, b) in self.arrival:
                    ready = max(ready, self.arrival[(t, b)])
                    continue
                a = nearest_source(p, t, have, b)
                c = int(p.tensor_comm[t, a, b])
                t0 = int(self.finish[u]) if (t, b) not in transfers else transfers[(t, b)]
                if (t, b) not in transfers and c > 0 and contention:
                    route = p.route_links.get((a, b), ())
                    t0 = self._link_fit(route, t0, c, tentative)
                    for link in route:
                        tentative.setdefault(link, []).append((t0, t0 + c))
                transfers[(t, b)] = t0
                ready = max(ready, t0 + c)
        length = int(p.mode_dur[m])
        s = self._common_fit(devs, ready, length)
        return s, s + length, transfers

    def _common_fit(self, devs: Sequence[int], ready: int, length: int) -> int:
        """Earliest start >= ``ready`` free on every device of ``devs`` for ``length``."""
        t = ready
        while True:
            moved = False
            for d in devs:
                t2 = self.devices[d].earliest_fit(t, length, insertion=self.insertion)
                if t2 != t:
                    t, moved = t2, True
            if not moved:
                return t

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

    def commit(
        self, v: int, m: int, start: int, finish: int, transfers: dict[tuple[int, int], int]
    ) -> None:
        p = self.p
        self.memory.place(v, m, start, finish, transfers)
        self.mode[v] = m
        self.start[v] = start
        self.finish[v] = finish
        for d in p.modes.devices_of(m):
            self.devices[d].reserve(start, finish)
        for (t, b), t0 in transfers.items():
            u = int(p.tensors.src[t])
            a = nearest_source(p, t, p.modes.devices_of(int(self.mode[u])), b)
            c = int(p.tensor_comm[t, a, b])
            self.transfer_start[(t, b)] = t0
            self.arrival[(t, b)] = t0 + c
            if p.link_contention and c > 0:
                for link in p.route_links.get((a, b), ()):
                    self.links[link].reserve(t0, t0 + c)

    def best_mode(
        self, v: int, key_extra: np.ndarray | None = None
    ) -> tuple[int, int, int, dict[tuple[int, int], int]]:
        """Mode minimising finish time (+ ``key_extra[mode]``, indexed by the op's modes in
        order); ties to the first mode. ``(mode, start, finish, transfers)``."""
        best: tuple[float, int, int, int, dict[tuple[int, int], int]] | None = None
        for i, m in enumerate(self.p.modes.ops_modes(v).tolist()):
            if not self.follows(v, m):
                continue
            s, f, tr = self.evaluate(v, m)
            if not self.memory.fits(m, s, tr):
                continue
            key = f + (float(key_extra[i]) if key_extra is not None else 0.0)
            key += self.chain_cost[m]
            if best is None or key < best[0]:
                best = (key, m, s, f, tr)
        if best is None:
            msg = f"no device has memory left for op {self.p.names[v]!r}"
            raise SolverError(msg)
        return best[1], best[2], best[3], best[4]

    def place_best(self, v: int, key_extra: np.ndarray | None = None) -> None:
        """Commit :meth:`best_mode`."""
        m, s, f, tr = self.best_mode(v, key_extra)
        self.commit(v, m, s, f, tr)


def retime(
    problem: Problem, assign: np.ndarray, order: Sequence[int]
) -> tuple[np.ndarray, dict[tuple[int, int], int]]:
    """Earliest integer start times for fixed devices (device views) and a dispatch order.

    See :func:`retime_modes`; ``assign`` is a device index per op.
    """
    from hetsched.plan import mode_array

    return retime_modes(problem, mode_array(problem, assign=assign), order)


def retime_modes(
    problem: Problem, modes: np.ndarray, order: Sequence[int]
) -> tuple[np.ndarray, dict[tuple[int, int], int]]:
    """Earliest integer start times for a fixed mode per op and a global dispatch ``order``.

    ``order`` must be a topological order; each device (and link) runs its ops in that order.
    Turns a float-time or foreign schedule into a feasible integer one (used for hints).
    Returns ``(start, transfer_start)`` with transfers keyed by ``(tensor, device)``.
    """
    p = problem
    if not p.modes.multi_device:
        return _retime_single(p, modes, order)
    dev_free = np.zeros(p.num_devices, dtype=np.int64)
    link_free = np.zeros(max(1, len(p.link_names)), dtype=np.int64)
    start = np.zeros(p.n, dtype=np.int64)
    finish = np.zeros(p.n, dtype=np.int64)
    transfer_start: dict[tuple[int, int], int] = {}
    arrival: dict[tuple[int, int], int] = {}
    seen = np.zeros(p.n, dtype=bool)
    devs_of = p.modes.mode_devices
    for v in order:
        devs = devs_of[int(modes[v])]
        ready = 0
        for u, k in p.preds[v]:
            if not seen[u]:
                msg = f"order places {p.names[v]!r} before its predecessor {p.names[u]!r}"
                raise SolverError(msg)
            have = devs_of[int(modes[u])]
            t = int(p.edge_tensor[k])
            for b in devs:
                if b in have:
                    ready = max(ready, int(finish[u]))
                    continue
                if (t, b) not in arrival:
                    a = nearest_source(p, t, have, b)
                    c = int(p.tensor_comm[t, a, b])
                    t0 = int(finish[u])
                    if p.link_contention and c > 0:
                        route = p.route_links.get((a, b), ())
                        if route:
                            t0 = max(t0, *(int(link_free[x]) for x in route))
                            for x in route:
                                link_free[x] = t0 + c
                    transfer_start[(t, b)] = t0
                    arrival[(t, b)] = t0 + c
                ready = max(ready, arrival[(t, b)])
        s = max(ready, *(int(dev_free[d]) for d in devs))
        start[v] = s
        finish[v] = s + int(p.mode_dur[int(modes[v])])
        for d in devs:
            dev_free[d] = max(dev_free[d], finish[v])
        seen[v] = True
    return start, transfer_start


def _retime_single(
    p: Problem, modes: np.ndarray, order: Sequence[int]
) -> tuple[np.ndarray, dict[tuple[int, int], int]]:
    """:func:`retime_modes` when every mode has one device (the hot path on large graphs)."""
    dev = p.modes.devs[p.modes.dev_start[np.asarray(modes, dtype=np.int64)]].tolist()
    dur = p.mode_dur[np.asarray(modes, dtype=np.int64)].tolist()
    preds = p.preds
    edge_tensor = p.edge_tensor.tolist()
    comm = p.tensor_comm
    contention = p.link_contention
    dev_free = [0] * p.num_devices
    link_free = [0] * max(1, len(p.link_names))
    start = [0] * p.n
    finish = [0] * p.n
    seen = [False] * p.n
    transfer_start: dict[tuple[int, int], int] = {}
    arrival: dict[tuple[int, int], int] = {}
    for v in order:
        d = dev[v]
        ready = 0
        for u, k in preds[v]:
            if not seen[u]:
                msg = f"order places {p.names[v]!r} before its predecessor {p.names[u]!r}"
                raise SolverError(msg)
            a = dev[u]
            if a == d:
                ready = max(ready, finish[u])
                continue
            t = edge_tensor[k]
            got = arrival.get((t, d))
            if got is None:
                c = int(comm[t, a, d])
                t0 = finish[u]
                if contention and c > 0:
                    route = p.route_links.get((a, d), ())
                    if route:
                        t0 = max(t0, *(link_free[x] for x in route))
                        for x in route:
                            link_free[x] = t0 + c
                transfer_start[(t, d)] = t0
                got = arrival[(t, d)] = t0 + c
            ready = max(ready, got)
        s = max(ready, dev_free[d])
        start[v] = s
        finish[v] = s + dur[v]
        dev_free[d] = max(dev_free[d], finish[v])
        seen[v] = True
    return np.array(start, dtype=np.int64), transfer_start


def least_time_after(problem: Problem) -> np.ndarray:
    """Per op, at least the time (units) from its finish to the end of any schedule: its
    successors' least tails (their times and transfers after, at their cheapest)."""
    from hetsched.schedule.bounds.levels import heads_and_tails_fast

    _, tail = heads_and_tails_fast(problem)
    out = np.zeros(problem.n, dtype=np.int64)
    np.maximum.at(out, problem.edge_src, tail[problem.edge_dst])
    return out


class MoveTables(NamedTuple):
    """Per op, as lists: its neighbours (inputs and consumers), inputs, consumers, and the
    devices it may run on: what an annealing move reads
    (:mod:`~hetsched.schedule.latency.anneal`), in Python and in the compiled loop."""

    neighbours: list[list[int]]
    preds: list[list[int]]
    succs: list[list[int]]
    allowed: list[list[int]]

    @classmethod
    def of(cls, p: Problem) -> MoveTables:
        n = p.n
        return cls(
            [sorted({u for u, _ in p.preds[v]} | {w for w, _ in p.succs[v]}) for v in range(n)],
            [[u for u, _ in p.preds[v]] for v in range(n)],
            [[w for w, _ in p.succs[v]] for v in range(n)],
            [np.flatnonzero(p.allowed[v]).tolist() for v in range(n)],
        )


class Retimer:
    """:func:`retime` for a device view, with the problem's tables precomputed as Python
    lists: one evaluation of ``(assign, order)`` for the searches that make tens of
    thousands of them (about 0.07 ms at 100 ops for the whole graph against 0.4-0.6 ms for
    :func:`retime_by_key`, which rebuilds its tables and its order on every call).

    :meth:`resume` re-times only the ops from a given place in the order on: the earlier
    ones keep their finish times, and the devices' state there comes from a snapshot taken
    every :data:`SNAPSHOT_EVERY` places (without link contention; with it, every op again).

    Examples
    --------
    >>> import numpy as np
    >>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
    ...     exec_time=np.array([[2.0, 3.0], [4.0, 1.0]]), edges=[(0, 1, 1.0)],
    ...     comm_latency=np.array([[0, 5], [5, 0]]), quantum=1.0)
    >>> r = Retimer(p)
    >>> r.finish([0, 0], [0, 1]), r.finish([0, 1], [0, 1])
    ([2, 6], [2, 8])
    >>> base = r.resume([0, 0], [0, 1])
    >>> r.resume([0, 1], [0, 1], base=base, first=1)[0]   # a's finish kept, b's re-timed
    [2, 8]
    """

    def __init__(self, problem: Problem) -> None:
        p = problem
        self.n, self.num_devices = p.n, p.num_devices
        self.dur: list[list[int]] = p.dur.astype(np.int64).tolist()
        tensor = p.edge_tensor.tolist()
        self.preds: list[list[tuple[int, int]]] = [
            [(u, int(tensor[k])) for u, k in p.preds[v]] for v in range(p.n)
        ]
        self.comm: list[list[list[int]]] = p.tensor_comm.tolist()
        # per input, the transfer times of its tensor [from][to]: no lookup by tensor
        self.inputs: list[list[tuple[int, list[list[int]]]]] = [
            [(u, self.comm[t]) for u, t in self.preds[v]] for v in range(p.n)
        ]
        self.contention = bool(p.link_contention)
        self.routes = dict(p.route_links)
        self.num_links = max(1, len(p.link_names))
        self.problem = p

    @cached_property
    def after(self) -> list[int]:
        """:func:`least_time_after` of each op, as a list."""
        return least_time_after(self.problem).tolist()

    def finish(self, assign: Sequence[int], order: Sequence[int]) -> list[int]:
        """Each op's finish (units) when every device, and link, runs its ops in ``order``
        (a topological order) as early as its inputs allow, as :func:`retime` does."""
        timing = self.resume(assign, order)
        assert timing is not None  # no cap
        return timing[0]

    def resume(
        self,
        assign: Sequence[int],
        order: Sequence[int],
        *,
        base: tuple[list[int], list[tuple[int, ...]]] | None = None,
        first: int = 0,
        cap: float | None = None,
    ) -> tuple[list[int], list[tuple[int, ...]]] | None:
        """:meth:`finish` and the devices' free times before every :data:`SNAPSHOT_EVERY`-th
        place of ``order``. ``base``: what this returned for a schedule with the same ops on
        the same devices at the places before ``first`` of ``order``; those keep their
        finish times and only the rest are re-timed (from the snapshot before ``first``).
        ``cap``: ``None`` as soon as an op's finish plus :attr:`after` shows the makespan
        will exceed it (a search that would reject such a schedule stops re-timing it)."""
        if self.contention:
            fin = self._finish_links(assign, order)
            return None if cap is not None and max(fin) > cap else (fin, [])
        dur, inputs = self.dur, self.inputs
        after = self.after if cap is not None else None
        limit = cap if cap is not None else 0.0
        if base is None or first <= 0:
            at = 0
            fin = [0] * self.n
            free = [0] * self.num_devices
            snaps: list[tuple[int, ...]] = []
        else:
            at = min(first // SNAPSHOT_EVERY, len(base[1]) - 1)
            fin = list(base[0])
            snaps = base[1][:at]
            free = list(base[1][at])
            at *= SNAPSHOT_EVERY
        for i in range(at, len(order)):
            if i % SNAPSHOT_EVERY == 0:
                snaps.append(tuple(free))
            v = order[i]
            d = assign[v]
            ready = free[d]
            for u, c in inputs[v]:
                a = assign[u]
                got = fin[u] if a == d else fin[u] + c[a][d]
                if got > ready:
                    ready = got
            fin[v] = free[d] = ready + dur[v][d]
            if after is not None and fin[v] + after[v] > limit:
                return None
        return fin, snaps

    def _finish_links(self, assign: Sequence[int], order: Sequence[int]) -> list[int]:
        """:meth:`finish` with link contention: each transfer waits for its route's links."""
        dur, preds, comm = self.dur, self.preds, self.comm
        free = [0] * self.num_devices
        link_free = [0] * self.num_links
        fin = [0] * self.n
        arrival: dict[tuple[int, int], int] = {}
        for v in order:
            d = assign[v]
            ready = 0
            for u, t in preds[v]:
                a = assign[u]
                if a == d:
                    got = fin[u]
                else:
                    got = arrival.get((t, d), -1)
                    if got < 0:
                        c = comm[t][a][d]
                        t0 = fin[u]
                        route = self.routes.get((a, d), ()) if c > 0 else ()
                        if route:
                            t0 = max(t0, *(link_free[x] for x in route))
                            for x in route:
                                link_free[x] = t0 + c
                        got = arrival[(t, d)] = t0 + c
                if got > ready:
                    ready = got
            s = free[d] if free[d] > ready else ready
            fin[v] = free[d] = s + dur[v][d]
        return fin


# Places of the order between two snapshots of the devices' state in Retimer.resume.
SNAPSHOT_EVERY = 16


def retime_by_key(
    problem: Problem, assign: np.ndarray, key: np.ndarray
) -> tuple[np.ndarray, dict[tuple[int, int], int], int]:
    """:func:`retime` in the order :func:`priority_order` makes of ``key``, and the makespan
    (units): one evaluation of an assignment for the local searches."""
    start, xfer = retime(problem, assign, priority_order(problem, key))
    return start, xfer, makespan_units(problem, assign, start)


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
