"""Annealing's move loop compiled with numba: the moves of
:mod:`~hetsched.schedule.latency.anneal` over arrays, ten to twenty times as many per second.

A move costs a re-timing of the order from its first changed place; in Python that is about
35 us at 100 ops on 8 devices, and the plans annealing finds track the moves it can afford
(BENCHMARKS.md, issue 20). This module holds the same loop — the same moves, drawn from the
same uniforms, the same re-timing (:meth:`~hetsched.schedule.latency.listsched.Retimer.resume`
with its snapshots and cap), the same acceptance (a move rejected without re-timing
where the busy time of the device it fills is past the draw) — as one function numba compiles once
(cached beside this file) and runs without the GIL. It serves graphs without link contention
and without a memory limit; :mod:`~hetsched.schedule.latency.anneal` runs the rest in Python,
and its tests check that both give the same plan for the same seed.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 1.0]]), edges=[(0, 1, 1.0)],
...     comm_latency=np.array([[0, 5], [5, 0]]), quantum=1.0)
>>> from hetsched.schedule.latency.listsched import MoveTables
>>> k = Kernel(p, MoveTables.of(p), assign=[0, 0], order=[0, 1], tie_weight=0.1)
>>> k.fin.tolist(), k.makespan
([2, 6], 6)
"""

from __future__ import annotations

import math

# The compiled functions read ``min`` and ``max`` from this module, not from ``builtins``,
# where a non-strict ``torch.export`` on another thread puts ``functools.partial`` objects
# while it traces (numba cannot type them: the compile failed).
from builtins import max, min  # noqa: UP029

import numba
import numpy as np

from hetsched.problem import Problem
from hetsched.schedule.latency.listsched import SNAPSHOT_EVERY, MoveTables, least_time_after

__all__ = ["Kernel", "compile_kernel"]


class Kernel:
    """The annealing state as arrays (devices, order, places, finish times, snapshots, the
    best seen) and the compiled loop that moves it. ``problem`` must be a device view without
    link contention or a memory limit.

    :meth:`run` makes a block of the ``moves``, one row of uniforms each
    (:data:`~hetsched.schedule.latency.anneal.DRAWS` per row); the state persists between
    calls, so a caller can read the clock between blocks and the plan does not depend on
    where the blocks end.
    """

    def __init__(
        self,
        problem: Problem,
        tables: MoveTables,
        *,
        assign: list[int],
        order: list[int],
        tie_weight: float,
    ) -> None:
        p = problem
        n = p.n
        self.n = n
        self.tie_weight = tie_weight
        i64 = np.int64
        dur = np.ascontiguousarray(p.dur, dtype=i64)
        in_ptr, in_src = _csr(tables.preds)
        _, in_tensor = _csr([[int(p.edge_tensor[k]) for _, k in p.preds[v]] for v in range(n)])
        comm = np.ascontiguousarray(p.tensor_comm, dtype=i64)
        if comm.size == 0:
            comm = np.zeros((1, p.num_devices, p.num_devices), dtype=i64)
        after = least_time_after(p)
        self.graph = (
            dur, in_ptr, in_src, in_tensor, comm, after,
            *_csr(tables.neighbours), *_csr(tables.succs),
            np.ascontiguousarray(p.allowed, dtype=np.bool_), *_csr(tables.allowed),
        )  # fmt: skip
        snaps = (n + SNAPSHOT_EVERY - 1) // SNAPSHOT_EVERY
        self.assign = np.array(assign, dtype=i64)
        self.order = np.array(order, dtype=i64)
        self.pos = np.empty(n, dtype=i64)
        self.pos[self.order] = np.arange(n)
        self.fin = np.zeros(n, dtype=i64)
        self.snaps = np.zeros((max(snaps, 1), p.num_devices), dtype=i64)
        # each device's busy time (the sum of its ops' durations): no trial ends before it
        self.load = np.bincount(
            self.assign, weights=dur[np.arange(n), self.assign], minlength=p.num_devices
        ).astype(i64)
        self.best_assign = self.assign.copy()
        self.best_order = self.order.copy()
        # scratch: a trial's finish times, snapshots and order, a group and its old devices
        self.scratch = (
            np.zeros(n, dtype=i64), np.zeros_like(self.snaps), np.zeros(n, dtype=i64),
            np.zeros(n, dtype=i64), np.zeros(n, dtype=i64), np.zeros(p.num_devices, dtype=i64),
        )  # fmt: skip
        # cost, best makespan; evaluations
        self.values = np.zeros(2, dtype=np.float64)
        self.counts = np.zeros(1, dtype=i64)
        _first_timing(self)

    @property
    def makespan(self) -> int:
        """The best makespan seen (units)."""
        return int(self.values[1])

    @property
    def evaluations(self) -> int:
        """Trials re-timed so far."""
        return int(self.counts[0])

    def run(
        self,
        draws: np.ndarray,
        done: int,
        moves: int,
        heat: float,
        shares: tuple[float, float, float],
    ) -> None:
        """Make moves ``done`` .. ``done + len(draws) - 1`` of ``moves`` (temperature
        ``heat * (1 - done / moves) ** 2``), with the move mix ``shares`` (device moves,
        group moves, neighbour's device)."""
        _loop(
            draws, done, moves, heat, self.tie_weight, *shares, SNAPSHOT_EVERY, self.graph,
            self.assign, self.order, self.pos, self.fin, self.snaps, self.load,
            self.best_assign, self.best_order, self.values, self.counts, self.scratch,
        )  # fmt: skip


def compile_kernel() -> None:
    """Compile (or load from numba's cache) the move loop: the first call in a fresh
    environment takes seconds (3-10 s measured on 2 cores; loading the cache 0.35-0.7 s,
    numba's import and registries included), which a caller may not want charged to a solve
    (:func:`~hetsched.schedule.latency.anneal.warm_up`)."""
    p = Problem.from_arrays(
        names=["a", "b"], devices=["x", "y"], exec_time=np.ones((2, 2)), edges=[(0, 1, 1.0)],
        comm_latency=np.ones((2, 2)) - np.eye(2), quantum=1.0,
    )  # fmt: skip
    k = Kernel(p, MoveTables.of(p), assign=[0, 0], order=[0, 1], tie_weight=0.1)
    k.run(np.full((4, 5), 0.5), 0, 4, 1.0, (0.5, 0.2, 0.5))


def _csr(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ints as offsets and one flat array (one unused entry when all are empty)."""
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(r) for r in rows])
    flat = np.array([x for r in rows for x in r], dtype=np.int64)
    return ptr, flat if flat.size else np.zeros(1, dtype=np.int64)


def _first_timing(k: Kernel) -> None:
    """Time the start state (no cap) into ``k.fin`` and ``k.snaps``; cost and best."""
    trial_fin, trial_snaps = k.scratch[0], k.scratch[1]
    ok, _ = _retime(
        k.graph, k.assign, k.order, k.fin, k.snaps, trial_fin, trial_snaps, 0, 0.0, False,
        SNAPSHOT_EVERY, k.scratch[5],
    )  # fmt: skip
    assert ok
    k.fin[:] = trial_fin
    k.snaps[:] = trial_snaps
    k.values[:] = _cost(k.fin, k.tie_weight)


_jit = numba.njit(cache=True, nogil=True)


@_jit
def _retime(graph, assign, order, fin, snaps, trial_fin, trial_snaps, first, limit, capped,
           every, free):  # fmt: skip
    """Re-time ``order`` from the snapshot before place ``first`` into ``trial_fin`` and
    ``trial_snaps`` (:meth:`Retimer.resume`): whether it stayed within ``limit`` (when
    ``capped``), and the first snapshot it rewrote."""
    dur, in_ptr, in_src, in_tensor, comm, after = graph[:6]
    n = order.shape[0]
    at = min(first // every, snaps.shape[0] - 1)
    trial_fin[:] = fin
    if first <= 0:
        at = 0
        free[:] = 0
    else:
        free[:] = snaps[at]
    for i in range(at * every, n):
        if i % every == 0:
            trial_snaps[i // every] = free
        v = order[i]
        d = assign[v]
        ready = free[d]
        for e in range(in_ptr[v], in_ptr[v + 1]):
            u = in_src[e]
            a = assign[u]
            got = trial_fin[u] if a == d else trial_fin[u] + comm[in_tensor[e], a, d]
            if got > ready:
                ready = got
        f = ready + dur[v, d]
        trial_fin[v] = f
        free[d] = f
        if capped and f + after[v] > limit:
            return False, at
    return True, at


@_jit
def _cost(fin, tie_weight):
    n = fin.shape[0]
    makespan = 0
    total = 0
    for x in fin:
        total += x
        if x > makespan:
            makespan = x
    return makespan + tie_weight * total / (n * n), makespan


@_jit
def _accept(graph, assign, order, first, floor, draw, temperature, fin, snaps, values,
           counts, scratch, every, tie_weight):  # fmt: skip
    """:func:`anneal._accept` over arrays: whether the trial is taken; if so its
    timing is the state's (the caller updates the best). ``floor``: a least makespan of
    the trial (a device's busy time); above what the draw accepts, the trial is rejected
    without re-timing it (its cost is at least its makespan: the same answer)."""
    trial_fin, trial_snaps = scratch[0], scratch[1]
    if temperature <= 0:
        rise = 0.0
    elif draw <= 0:
        rise = math.inf
    else:
        rise = -temperature * math.log(draw)
    cost = values[0]
    if floor > cost + rise:
        return False, 0
    counts[0] += 1
    ok, at = _retime(graph, assign, order, fin, snaps, trial_fin, trial_snaps, first,
                     cost + rise, True, every, scratch[5])  # fmt: skip
    if not ok:
        return False, 0
    trial_cost, makespan = _cost(trial_fin, tie_weight)
    delta = trial_cost - cost
    if delta > 0 and not delta < rise:
        return False, 0
    values[0] = trial_cost
    fin[:] = trial_fin
    snaps[at:] = trial_snaps[at:]
    return True, makespan


@_jit
def _loop(draws, done, moves, heat, tie_weight, device_share, group_share, neighbour_share,
         every, graph, assign, order, pos, fin, snaps, load, best_assign, best_order, values,
         counts, scratch):  # fmt: skip
    """Moves ``done`` .. of ``moves`` (:func:`anneal._move`), one row of ``draws``
    each."""
    nb_ptr, nb, succ_ptr, succ, allowed, al_ptr, al = graph[6:]
    dur = graph[0]
    in_ptr, in_src = graph[1], graph[2]
    n = assign.shape[0]
    trial_order, group, old = scratch[2], scratch[3], scratch[4]
    for m in range(draws.shape[0]):
        t = 1.0 - (done + m) / moves
        temperature = heat * t * t
        u = draws[m]
        v = min(int(u[0] * n), n - 1)
        r = u[1]
        degree = nb_ptr[v + 1] - nb_ptr[v]
        if r < device_share + group_share:
            grouped = r >= device_share
            if degree == 0 and grouped:
                continue
            if degree > 0 and (grouped or u[2] < neighbour_share):
                device = assign[nb[nb_ptr[v] + min(int(u[3] * degree), degree - 1)]]
            else:
                k = al_ptr[v + 1] - al_ptr[v]
                device = al[al_ptr[v] + min(int(u[3] * k), k - 1)]
            if device == assign[v]:
                continue
            size = 1
            group[0] = v
            if grouped:
                for e in range(nb_ptr[v], nb_ptr[v + 1]):
                    x = nb[e]
                    if assign[x] == assign[v]:
                        group[size] = x
                        size += 1
            fits = True
            first = n
            busy = load[device]
            for g in range(size):
                x = group[g]
                if not allowed[x, device]:
                    fits = False
                    break
                if pos[x] < first:
                    first = pos[x]
                busy += dur[x, device]
            if not fits:
                continue
            for g in range(size):
                old[g] = assign[group[g]]
                assign[group[g]] = device
            taken, makespan = _accept(graph, assign, order, first, busy, u[4],
                                     temperature, fin, snaps, values, counts, scratch, every,
                                     tie_weight)  # fmt: skip
            if not taken:
                for g in range(size):
                    assign[group[g]] = old[g]
                continue
            for g in range(size):
                x = group[g]
                load[old[g]] -= dur[x, old[g]]
                load[device] += dur[x, device]
            if makespan < values[1]:
                values[1] = makespan
                best_assign[:] = assign
                best_order[:] = order
            continue
        # an order move: v anywhere between its last input and its first consumer
        lo = 0
        for e in range(in_ptr[v], in_ptr[v + 1]):
            if pos[in_src[e]] + 1 > lo:
                lo = pos[in_src[e]] + 1
        hi = n - 1
        for e in range(succ_ptr[v], succ_ptr[v + 1]):
            if pos[succ[e]] - 1 < hi:
                hi = pos[succ[e]] - 1
        i = pos[v]
        if hi <= lo:
            continue
        j = lo + min(int(u[3] * (hi - lo + 1)), hi - lo)
        if j == i:
            continue
        trial_order[:] = order
        if j > i:
            trial_order[i:j] = order[i + 1 : j + 1]
        else:
            trial_order[j + 1 : i + 1] = order[j:i]
        trial_order[j] = v
        first = min(i, j)
        taken, makespan = _accept(graph, assign, trial_order, first, 0, u[4],
                                 temperature, fin, snaps, values, counts, scratch, every,
                                 tie_weight)  # fmt: skip
        if taken:
            order[:] = trial_order
            for k in range(first, max(i, j) + 1):
                pos[order[k]] = k
            if makespan < values[1]:
                values[1] = makespan
                best_assign[:] = assign
                best_order[:] = order
