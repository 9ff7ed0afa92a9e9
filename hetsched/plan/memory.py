"""The one memory model: the bytes every device holds, over time, for any plan.

**Liveness** (:func:`memory_profile`, what the validator checks and a plan reports). A device
holds, at time ``x``:

* the *resident weights* of every op whose mode occupies it (``Modes.weights``), for the
  whole run; a ``streamed`` mode's weights pass through the DMA's tile buffers instead
  (not counted: the mode pays for them in time, reading them at the device's
  ``stream_bandwidth``);
* the outputs of every op whose mode occupies it (``Modes.memory - Modes.weights``), from
  the op's start until every reader there, and every transfer out of there, of each of its
  tensors has finished; an op no op reads (a graph output) keeps them to the end of the run;
* every tensor received there (one buffer per tensor, however many ops read it), from the
  transfer's start until the transfer and its last reader there have finished.

Intervals are half-open ``[begin, end)``: bytes freed at ``x`` can be reused by an op that
starts at ``x``. The peak over time is each device's memory need.

**Static envelope** (:func:`static_usage`): what a device holds if nothing is ever freed
(every mode's ``memory`` plus one receive buffer per tensor it gets). It bounds the live
peak from above, so a solver that keeps the envelope within capacity (CP-SAT, MILP, the list
schedulers, LNS, the pipeline partitioner: by these functions or the same sums,
:func:`linear_terms`) returns plans the liveness check accepts; such a solver's optimum is
optimal only for the envelope, which the status rule accounts for. One tolerance rule
(:func:`within`).

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.ones((3, 2)), tensors=[(0, (1, 2), 8.0)],
...     memory_bytes=np.array([10.0, 1.0, 1.0]), quantum=1.0)
>>> m = p.device_mode[np.arange(3), [0, 1, 1]]
>>> static_usage(p, m).tolist()  # y holds b, c and one copy of a's tensor
[10.0, 10.0]
>>> prof = memory_profile(p, m, start=[0, 2, 3], finish=[1, 3, 4], sends={(0, 1): (1, 2, 0)})
>>> prof.peak.tolist()  # bytes of unknown kind (memory_bytes) are held throughout
[10.0, 10.0]
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hetsched.problem import Problem

__all__ = [
    "Live",
    "LiveTracker",
    "MemoryProfile",
    "MemoryTracker",
    "envelope_binds",
    "linear_terms",
    "live_intervals",
    "memory_profile",
    "overflow",
    "peaks",
    "received",
    "static_usage",
    "within",
]

_REL = 1e-12


def within(used: np.ndarray | float, capacity: np.ndarray | float) -> np.ndarray | bool:
    """The one tolerance rule: ``used <= capacity`` up to float rounding."""
    return np.asarray(used) <= np.asarray(capacity) * (1 + _REL)  # type: ignore[no-any-return]


def received(problem: Problem, op_mode: np.ndarray) -> list[tuple[int, int]]:
    """``(tensor, device)`` of every receive buffer: a device that reads a tensor it does not
    produce. Sorted."""
    devs = problem.modes.mode_devices
    m = np.asarray(op_mode, dtype=np.int64)
    if not problem.modes.multi_device:
        first = problem.modes.devs[problem.modes.dev_start[:-1]]
        a = first[m[problem.edge_src]]
        b = first[m[problem.edge_dst]]
        cross = a != b
        pairs = np.unique(np.stack([problem.edge_tensor[cross], b[cross]], axis=1), axis=0)
        return [(int(t), int(d)) for t, d in pairs]
    out: set[tuple[int, int]] = set()
    for k in range(problem.num_edges):
        have = devs[int(m[problem.edge_src[k]])]
        for b2 in devs[int(m[problem.edge_dst[k]])]:
            if b2 not in have:
                out.add((int(problem.edge_tensor[k]), b2))
    return sorted(out)


def static_usage(problem: Problem, op_mode: np.ndarray) -> np.ndarray:
    """Bytes each device holds if nothing is freed under ``op_mode`` (mode id per op): the
    static envelope, an upper bound of every plan's live peak with these modes."""
    m = np.asarray(op_mode, dtype=np.int64)
    modes = problem.modes
    usage = np.zeros(problem.num_devices)
    if modes.multi_device:
        flat = np.concatenate([modes.devs[modes.dev_start[k] : modes.dev_start[k + 1]] for k in m])
        np.add.at(usage, flat, np.repeat(modes.memory[m], modes.width[m]))
    else:
        np.add.at(usage, modes.devs[modes.dev_start[m]], modes.memory[m])
    for t, b in received(problem, m):
        usage[b] += problem.tensors.nbytes[t]
    return usage


def overflow(problem: Problem, op_mode: np.ndarray) -> int | None:
    """The first device over its capacity under ``op_mode``, or ``None`` (also without
    memory constraints)."""
    if not problem.use_memory:
        return None
    bad = np.flatnonzero(~within(static_usage(problem, op_mode), problem.capacity))
    return int(bad[0]) if bad.size else None


def envelope_binds(problem: Problem) -> int | None:
    """A device where the static envelope can exceed capacity under some choice of modes
    (every op there in its largest mode, plus a buffer for every tensor), or ``None``.

    Where none can, capacity never constrains a plan and a solver that keeps the envelope
    within capacity solves the question exactly; otherwise it solves a restriction of it
    (live bytes are freed, the envelope never is), and its optimum proves nothing.
    """
    if not problem.use_memory:
        return None
    modes = problem.modes
    mode_of_entry = np.repeat(np.arange(modes.num_modes), modes.width)  # one per (mode, dev)
    per_op = np.zeros((problem.n, problem.num_devices))  # each op's largest mode per device
    np.maximum.at(per_op, (modes.op[mode_of_entry], modes.devs), modes.memory[mode_of_entry])
    worst = per_op.sum(axis=0) + problem.tensors.nbytes.sum()
    bad = np.flatnonzero(~within(worst, problem.capacity))
    return int(bad[0]) if bad.size else None


def linear_terms(problem: Problem) -> tuple[np.ndarray, list[tuple[int, int, np.ndarray]]]:
    """The model as linear terms for exact solvers, on device views.

    Returns ``(op_bytes[n, D], buffers)``: placing op ``v`` on ``d`` costs ``op_bytes[v, d]``
    there; each ``(tensor, device b, consumers)`` costs the tensor's bytes on ``b`` when some
    consumer runs on ``b`` and the producer does not (``recv >= on[c, b] - on[src, b]``).
    Only pairs where that can happen are listed.
    """
    buffers = []
    allowed = problem.allowed
    for t in range(problem.tensors.num_tensors):
        if problem.tensors.nbytes[t] <= 0:
            continue
        u = int(problem.tensors.src[t])
        cons = problem.tensors.consumers(t)
        for b in range(problem.num_devices):
            readers = cons[allowed[cons, b]]
            if readers.size and not (allowed[u, b] and allowed[u].sum() == 1):
                buffers.append((t, b, readers))
    return problem.dev_memory, buffers


class MemoryTracker:
    """Incremental :func:`static_usage` for list schedulers that place producers first."""

    def __init__(self, problem: Problem) -> None:
        self.p = problem
        self.used = np.zeros(problem.num_devices)
        self.mode = np.full(problem.n, -1, dtype=np.int64)
        self.buffers: set[tuple[int, int]] = set()
        # every byte an op's inputs could need on a device: a bound on its receive buffers
        read = np.zeros(problem.n)
        if problem.num_edges:
            np.add.at(read, problem.edge_dst, problem.tensors.nbytes[problem.edge_tensor])
        self._inputs = read
        self._cap = problem.capacity * (1 + _REL)

    def extra(self, v: int, m: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Bytes added per device, and the new receive buffers, if ``v`` runs in mode ``m``."""
        p = self.p
        add = np.zeros(p.num_devices)
        devs = p.modes.devices_of(m)
        add[list(devs)] += p.modes.memory[m]
        new = []
        for u, k in p.preds[v]:
            mu = int(self.mode[u])
            if mu < 0:
                continue
            have = p.modes.devices_of(mu)
            t = int(p.edge_tensor[k])
            for b in devs:
                if b not in have and (t, b) not in self.buffers and (t, b) not in new:
                    new.append((t, b))
                    add[b] += p.tensors.nbytes[t]
        return add, new

    def fits(self, v: int, m: int) -> bool:
        """Whether ``v`` in mode ``m`` keeps every device within capacity (always without
        memory constraints)."""
        if not self.p.use_memory:
            return True
        most = self.p.modes.memory[m] + self._inputs[v]  # at least what extra() adds
        if all(self.used[d] + most <= self._cap[d] for d in self.p.modes.devices_of(m)):
            return True
        add, _ = self.extra(v, m)
        return bool(np.all(within(self.used + add, self.p.capacity)))

    def place(self, v: int, m: int) -> None:
        add, new = self.extra(v, m)
        self.used += add
        self.buffers.update(new)
        self.mode[v] = m


@dataclass(frozen=True)
class Live:
    """Bytes one device holds over ``[begin, end)``: ``what`` is ``"weights"``, ``"outputs"``
    (of op ``item``) or ``"received"`` (tensor ``item``)."""

    device: int
    begin: float
    end: float
    nbytes: float
    what: str
    item: int


@dataclass(frozen=True)
class MemoryProfile:
    """Live bytes per device over time (see the module docstring).

    ``peak[d]`` bytes at ``peak_time[d]``; ``resident[d]`` the whole-run part (resident
    weights); ``intervals`` everything a device holds, for explanations and plots.
    """

    peak: np.ndarray
    peak_time: np.ndarray
    resident: np.ndarray
    intervals: tuple[Live, ...]

    def live_at(self, device: int, time: float) -> list[Live]:
        """What ``device`` holds at ``time``, largest first."""
        out = [x for x in self.intervals if x.device == device and x.begin <= time < x.end]
        return sorted(out, key=lambda x: -x.nbytes)

    def over(self, capacity: np.ndarray) -> int | None:
        """The first device whose peak exceeds ``capacity``, or ``None``."""
        bad = np.flatnonzero(~within(self.peak, capacity))
        return int(bad[0]) if bad.size else None


def live_intervals(
    problem: Problem,
    op_mode: np.ndarray,
    start: Sequence[float] | np.ndarray,
    finish: Sequence[float] | np.ndarray,
    sends: Mapping[tuple[int, int], tuple[float, float, int]],
) -> list[Live]:
    """Everything each device holds, and when (units of ``start``/``finish``).

    ``sends[(tensor, device)] = (start, finish, source device)`` for every transfer; a
    tensor some reader needs on a device outside its producer's mode and that ``sends``
    lacks is taken as sent when its producer finishes, from the fastest source.
    """
    p = problem
    m = np.asarray(op_mode, dtype=np.int64)
    st = np.asarray(start, dtype=np.float64)
    fi = np.asarray(finish, dtype=np.float64)
    end_of_run = float(fi.max()) if fi.size else 0.0
    devs = p.modes.mode_devices
    out: list[Live] = []
    weights = p.modes.w[m]
    outputs = p.modes.memory[m] - weights
    # when each op's outputs may go on each device of its mode: after its last use there
    read = np.zeros(p.n, dtype=bool)
    read[p.tensors.src] = True
    free_at: list[dict[int, float]] = [
        {a: (float(fi[v]) if read[v] else end_of_run) for a in devs[int(m[v])]} for v in range(p.n)
    ]
    for t in range(p.tensors.num_tensors):
        u = int(p.tensors.src[t])
        have = devs[int(m[u])]
        recv: dict[int, float] = {}
        for c in p.tensors.consumers(t).tolist():
            for b in devs[int(m[c])]:
                if b in have:
                    free_at[u][b] = max(free_at[u][b], float(fi[c]))
                else:
                    recv[b] = max(recv.get(b, -np.inf), float(fi[c]))
        size = float(p.tensors.nbytes[t])
        for b, reader_end in sorted(recv.items()):
            if (t, b) in sends:
                t0, t1, a = sends[(t, b)]
            else:
                a = min(have, key=lambda x: (int(p.tensor_comm[t, x, b]), x))
                t0 = float(fi[u])
                t1 = t0 + float(p.tensor_comm[t, a, b])
            free_at[u][a] = max(free_at[u][a], float(t1))
            if size > 0:
                out.append(Live(b, float(t0), max(float(t1), reader_end), size, "received", t))
    for v in range(p.n):
        for d, end in free_at[v].items():
            if weights[v] > 0:
                out.append(Live(d, 0.0, end_of_run, float(weights[v]), "weights", v))
            if outputs[v] > 0:
                out.append(Live(d, float(st[v]), end, float(outputs[v]), "outputs", v))
    return out


def memory_profile(
    problem: Problem,
    op_mode: np.ndarray,
    start: Sequence[float] | np.ndarray,
    finish: Sequence[float] | np.ndarray,
    sends: Mapping[tuple[int, int], tuple[float, float, int]],
) -> MemoryProfile:
    """Peak live bytes of every device (see :func:`live_intervals` for the arguments)."""
    intervals = live_intervals(problem, op_mode, start, finish, sends)
    resident = np.zeros(problem.num_devices)
    for x in intervals:
        if x.what == "weights":
            resident[x.device] += x.nbytes
    peak, peak_time = peaks(intervals, problem.num_devices)
    return MemoryProfile(peak, peak_time, resident, tuple(intervals))


def peaks(intervals: Iterable[Live], num_devices: int) -> tuple[np.ndarray, np.ndarray]:
    """``(peak bytes, first time at the peak)`` of every device: a sweep in time order,
    frees before allocations at one instant (half-open intervals), empty ones left out."""
    events: list[list[tuple[float, int, float]]] = [[] for _ in range(num_devices)]
    for x in intervals:
        if x.nbytes > 0 and x.end > x.begin:
            events[x.device] += [(x.begin, 1, x.nbytes), (x.end, 0, -x.nbytes)]
    peak = np.zeros(num_devices)
    peak_time = np.zeros(num_devices)
    for d, evs in enumerate(events):
        level = best = when = 0.0
        for time, _kind, delta in sorted(evs):  # (time, 0 = free / 1 = allocation, bytes)
            level += delta
            if level > best * (1 + 1e-15) and delta > 0:
                best, when = level, time
        peak[d], peak_time[d] = best, when
    return peak, peak_time


class LiveTracker:
    """Live bytes per device while a list scheduler places ops, producers first.

    What an op allocates (its resident weights from time 0, its outputs from its start, a
    buffer per tensor moved to a device from the transfer's start) stays allocated until
    every consumer of the tensors involved is placed; then it ends when the model says
    (:func:`live_intervals`). An allocation still open counts to the end of time, so a
    later placement can only free bytes: every check :meth:`fits` passed stays true, and
    the finished schedule's live peak is within capacity.

    >>> import numpy as np
    >>> from hetsched.problem import Problem
    >>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"], exec_time=np.ones((2, 2)),
    ...     tensors=[(0, (1,), 8.0)], memory_bytes=np.array([4.0, 4.0]),
    ...     capacity=np.array([8.0, 8.0]), use_memory=True, quantum=1.0)
    >>> tr = LiveTracker(p)
    >>> tr.place(0, 0, 0, 1, {})                 # a on x
    >>> tr.fits(2, 1, {})                        # b on x: 4 + 4 bytes of weights
    True
    >>> tr.fits(3, 1, {(0, 1): 1})               # b on y: 4 + a's 8-byte tensor received
    False
    """

    def __init__(self, problem: Problem) -> None:
        p = problem
        self.p = p
        self.on = bool(p.use_memory) and bool(np.isfinite(p.capacity).any())
        self.events: list[list[tuple[float, float]]] = [[] for _ in p.devices]
        self.mode = np.full(p.n, -1, dtype=np.int64)
        self.finish = np.zeros(p.n, dtype=np.int64)
        self.pending = np.diff(p.tensors.cons_start).astype(np.int64)  # unplaced readers
        self.open_tensors = np.bincount(p.tensors.src, minlength=p.n).astype(np.int64)
        self.sends: dict[tuple[int, int], tuple[int, int, int]] = {}
        self.recv_at: dict[int, list[int]] = {}  # tensor -> devices it is moved to
        self.tensors_of: list[list[int]] = [[] for _ in range(p.n)]
        for t, u in enumerate(p.tensors.src.tolist()):
            self.tensors_of[u].append(t)

    def _add(self, d: int, time: float, delta: float) -> None:
        # (time, delta) order: frees before allocations at one instant
        bisect.insort(self.events[d], (time, delta))

    def _allocations(
        self, m: int, start: int, transfers: Mapping[tuple[int, int], int]
    ) -> dict[int, list[tuple[float, float]]]:
        p = self.p
        out: dict[int, list[tuple[float, float]]] = {}
        w = float(p.modes.w[m])
        o = float(p.modes.memory[m]) - w
        for d in p.modes.devices_of(m):
            if w > 0:
                out.setdefault(d, []).append((0.0, w))
            if o > 0:
                out.setdefault(d, []).append((float(start), o))
        for (t, b), t0 in transfers.items():
            if p.tensors.nbytes[t] > 0:
                out.setdefault(b, []).append((float(t0), float(p.tensors.nbytes[t])))
        return out

    def fits(self, m: int, start: int, transfers: Mapping[tuple[int, int], int]) -> bool:
        """Whether an op in mode ``m`` from ``start``, with its new ``transfers`` (``(tensor,
        device) -> start``), keeps every device within capacity at every instant."""
        if not self.on:
            return True
        cap = self.p.capacity
        for d, allocs in self._allocations(m, start, transfers).items():
            if not np.isfinite(cap[d]):
                continue
            a = np.array(sorted(allocs))
            ev = np.array([(-np.inf, 0.0), *self.events[d]], dtype=np.float64)
            times, level = ev[:, 0], np.cumsum(ev[:, 1])
            first = float(a[0, 0])
            points = np.unique(np.concatenate([times[times >= first], a[:, 0]]))
            have = level[np.searchsorted(times, points, side="right") - 1]
            new = np.cumsum(a[:, 1])[np.searchsorted(a[:, 0], points, side="right") - 1]
            if not np.all(within(have + new, cap[d])):
                return False
        return True

    def place(
        self, v: int, m: int, start: int, finish: int, transfers: Mapping[tuple[int, int], int]
    ) -> None:
        """Record ``v`` placed; close what its placement completes."""
        p = self.p
        self.mode[v] = m
        self.finish[v] = finish
        for d, allocs in self._allocations(m, start, transfers).items():
            for time, nbytes in allocs:
                self._add(d, time, nbytes)
        for (t, b), t0 in transfers.items():
            u = int(p.tensors.src[t])
            a = min(
                p.modes.devices_of(int(self.mode[u])),
                key=lambda x: (int(p.tensor_comm[t, x, b]), x),
            )
            self.sends[(t, b)] = (t0, t0 + int(p.tensor_comm[t, a, b]), a)
            self.recv_at.setdefault(t, []).append(b)
        for u, k in p.preds[v]:
            t = int(p.edge_tensor[k])
            self.pending[t] -= 1
            if self.pending[t] == 0:
                self._close_tensor(t)
                self.open_tensors[u] -= 1
                if self.open_tensors[u] == 0:
                    self._close_outputs(u)

    def _readers_end(self, t: int, d: int) -> float:
        p = self.p
        ends = [
            float(self.finish[c])
            for c in p.tensors.consumers(t).tolist()
            if d in p.modes.devices_of(int(self.mode[c]))
        ]
        return max(ends, default=-np.inf)

    def _close_tensor(self, t: int) -> None:
        nbytes = float(self.p.tensors.nbytes[t])
        for b in self.recv_at.pop(t, []):
            end = max(float(self.sends[(t, b)][1]), self._readers_end(t, b))
            if nbytes > 0:
                self._add(b, end, -nbytes)

    def _close_outputs(self, u: int) -> None:
        p = self.p
        m = int(self.mode[u])
        o = float(p.modes.memory[m] - p.modes.w[m])
        if o <= 0:
            return
        for d in p.modes.devices_of(m):
            end = float(self.finish[u])
            for t in self.tensors_of[u]:
                end = max(end, self._readers_end(t, d))
                for b in range(p.num_devices):
                    send = self.sends.get((t, b))
                    if send is not None and send[2] == d:
                        end = max(end, float(send[1]))
            self._add(d, end, -o)
