"""Re-planning after a device failure: the default list-scheduling re-planner.

Semantics (see also :func:`~hetsched.exec.executor.execute`): when a device fails at time
``T``, the tensors of ops that finished survive on every surviving device that holds a copy
(the devices of the producer's mode, and wherever a transfer delivered them). Producers of
tensors still needed (by an op not yet run, or as a graph output) that survive nowhere are
re-run. The re-planner places the ops to (re)run, each in one of its modes on the surviving
devices, no earlier than ``T`` and after each device's running op; each tensor goes once to
each device that reads it, from the copy that delivers it first.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 1.0], [2.0, 1.0]]), edges=[(0, 1, 1.0)],
...     comm_latency=np.array([[0, 1], [1, 0]]), quantum=1.0)
>>> q = mask_devices(p, ["y"])
>>> q.allowed.tolist()
[[True, False], [True, False]]
>>> tensor = p.tensors.names[0]
>>> req = ReplanRequest(problem=q, time=3.0, run=("b",), copies={tensor: {"y": 1.0}},
...                     device_free={"x": 4.0}, failed=("y",))
>>> plan = replan_list(req)
>>> plan.assignment["b"], plan.start["b"], plan.transfers[0].start, plan.status
('x', 4.0, 3.0, 'heuristic')
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from hetsched.errors import InfeasibleError
from hetsched.plan import Plan
from hetsched.plan.memory import Live, live_intervals, peaks
from hetsched.plan.plan import transfer_record
from hetsched.problem import Problem
from hetsched.problem.sub import subproblem
from hetsched.schedule.latency.heuristics import upward_rank
from hetsched.schedule.latency.listsched import Timeline

__all__ = ["ReplanRequest", "Replanner", "mask_devices", "replan_list"]


def mask_devices(problem: Problem, devices: Collection[str]) -> Problem:
    """``problem`` with ``devices`` unusable: only the modes that avoid all of them.

    Device indices stay as they are, so plans of the two problems compare directly.

    Raises
    ------
    InfeasibleError
        If some op is supported by none of the remaining devices.
    """
    keep = np.ones((problem.n, problem.num_devices), dtype=bool)
    keep[:, [problem.device_index[d] for d in devices]] = False
    try:
        return problem.restrict(keep)
    except InfeasibleError as err:
        msg = f"{err} (lost: {', '.join(devices)})"
        raise InfeasibleError(msg) from err


@dataclass(frozen=True)
class ReplanRequest:
    """What a re-planner gets after a failure. Times are plan times (seconds or units).

    ``problem`` has the failed devices masked out; ``run`` are the ops to (re)run, in
    topological order; ``copies[tensor]`` maps each surviving device holding a tensor of
    a finished op not in ``run`` to the time it is there; ``device_free`` and
    ``link_free`` give when in-flight work ends.
    """

    problem: Problem
    time: float
    run: tuple[str, ...]
    copies: Mapping[str, Mapping[str, float]]
    device_free: Mapping[str, float] = field(default_factory=dict)
    link_free: Mapping[str, float] = field(default_factory=dict)
    failed: tuple[str, ...] = ()


Replanner = Callable[[ReplanRequest], Plan]


@dataclass
class _State:
    """The re-plan so far, in integer units: busy timelines, placed ops, planned transfers
    (``(tensor, device) -> (source device, start, duration)``), where each tensor is."""

    p: Problem
    t0: int
    dev_tl: list[Timeline]
    link_tl: list[Timeline]
    copies: dict[int, dict[int, int]]
    mode: dict[int, int] = field(default_factory=dict)
    start: dict[int, int] = field(default_factory=dict)
    finish: dict[int, int] = field(default_factory=dict)
    xfers: dict[tuple[int, int], tuple[int, int, int]] = field(default_factory=dict)

    @property
    def contention(self) -> bool:
        return self.p.link_contention and bool(self.p.link_names)

    def sources(self, t: int) -> dict[int, int]:
        """Devices a transfer of ``t`` may leave from, and since when: the producer's mode
        when it is re-planned here, else the surviving copies."""
        u = int(self.p.tensors.src[t])
        if u in self.mode:
            return dict.fromkeys(self.p.modes.devices_of(self.mode[u]), self.finish[u])
        return self.copies.get(t, {})


def replan_list(request: ReplanRequest) -> Plan:
    """HEFT-style list scheduling of ``request.run`` on the surviving devices.

    Ops are taken by upward rank among those whose inputs are placed; each goes to the
    mode where it finishes first (the earliest gap common to all its devices, insertion;
    each input tensor on each of its devices, moved once per device from the source that
    delivers first; links reserved when the problem has link contention). Returns a plan
    of the re-run ops and the transfers into them (solver ``replan-list``, not searched).
    """
    p, q = request.problem, request.problem.quantum
    t0 = math.ceil(request.time / q - 1e-9)
    dev_tl = [Timeline() for _ in p.devices]
    for d, name in enumerate(p.devices):
        dev_tl[d].reserve(0, max(t0, math.ceil(request.device_free.get(name, 0.0) / q - 1e-9)))
    link_tl = [Timeline() for _ in p.link_names]
    for x, name in enumerate(p.link_names):
        link_tl[x].reserve(0, max(t0, math.ceil(request.link_free.get(name, 0.0) / q - 1e-9)))
    tensor_id = {x: t for t, x in enumerate(p.tensors.names)}
    copies = {
        tensor_id[x]: {p.device_index[d]: math.ceil(t / q - 1e-9) for d, t in c.items()}
        for x, c in request.copies.items()
    }
    st = _State(p, t0, dev_tl, link_tl, copies)
    todo = {p.index[x] for x in request.run}
    rank = upward_rank(p)
    missing = {v: sum(1 for u, _ in p.preds[v] if u in todo) for v in todo}
    heap = [(-rank[v], v) for v in todo if missing[v] == 0]
    heapq.heapify(heap)
    while heap:
        _, v = heapq.heappop(heap)
        best = None
        for m in p.modes.ops_modes(v).tolist():
            s, new = _evaluate(st, v, m)
            f = s + int(p.mode_dur[m])
            if best is None or f < best[0]:
                best = (f, m, s, new)
        if best is None:  # pragma: no cover - a Problem gives every op a mode
            msg = f"op {p.names[v]!r} can run on no surviving device"
            raise InfeasibleError(msg)
        _commit(st, v, *best)
        for w, _ in p.succs[v]:
            if w in todo:
                missing[w] -= 1
                if missing[w] == 0:
                    heapq.heappush(heap, (-rank[w], w))
    return _plan(st)


def _evaluate(
    st: _State, v: int, m: int
) -> tuple[int, dict[tuple[int, int], tuple[int, int, int]]]:
    """Earliest start of ``v`` in mode ``m`` and the new transfers it needs."""
    p = st.p
    devs = p.modes.devices_of(m)
    ready = st.t0
    new: dict[tuple[int, int], tuple[int, int, int]] = {}
    tentative: dict[int, int] = {}  # link -> end of the transfers this op already claimed
    for _u, k in p.preds[v]:
        t = int(p.edge_tensor[k])
        where = st.sources(t)
        if not where:
            msg = f"input {p.tensors.names[t]!r} of op {p.names[v]!r} survives on no device"
            raise InfeasibleError(msg)
        for b in devs:
            if b in where:
                ready = max(ready, where[b])
                continue
            if (t, b) in st.xfers:  # moved there already for another reader
                _, ts, c = st.xfers[t, b]
                ready = max(ready, ts + c)
                continue
            best = None
            for a, ta in sorted(where.items()):
                c = int(p.tensor_comm[t, a, b])
                ts = max(ta, st.t0)
                if st.contention and c > 0:
                    for x in p.route_links.get((a, b), ()):
                        ts = max(
                            ts,
                            tentative.get(x, 0),
                            st.link_tl[x].earliest_fit(ts, c, insertion=False),
                        )
                if best is None or ts + c < best[1] + best[2]:
                    best = (a, ts, c)
            assert best is not None
            new[t, b] = best
            if st.contention:
                for x in p.route_links.get((best[0], b), ()):
                    tentative[x] = best[1] + best[2]
            ready = max(ready, best[1] + best[2])
    return _common_gap(st, devs, ready, int(p.mode_dur[m])), new


def _common_gap(st: _State, devs: tuple[int, ...], ready: int, length: int) -> int:
    """Earliest start ``>= ready`` of a gap of ``length`` free on every device of ``devs``."""
    s = ready
    while True:
        nxt = max(st.dev_tl[d].earliest_fit(s, length) for d in devs)
        if nxt == s:
            return s
        s = nxt


def _commit(
    st: _State, v: int, f: int, m: int, s: int, new: dict[tuple[int, int], tuple[int, int, int]]
) -> None:
    p = st.p
    st.mode[v], st.start[v], st.finish[v] = m, s, f
    for d in p.modes.devices_of(m):
        st.dev_tl[d].reserve(s, f)
    for (t, b), (a, ts, c) in new.items():
        st.xfers[t, b] = (a, ts, c)
        if st.contention:
            for x in p.route_links.get((a, b), ()):
                st.link_tl[x].reserve(ts, ts + c)


def _plan(st: _State) -> Plan:
    p, q = st.p, st.p.quantum
    devs = p.modes.mode_devices
    transfers = []
    for (t, b), (a, ts, _c) in sorted(st.xfers.items()):
        readers = [int(x) for x in p.tensors.consumers(t) if x in st.mode and b in devs[st.mode[x]]]
        transfers.append(transfer_record(p, t, a, b, readers, ts))
    usage = _live_peak(st)
    order = sorted(st.mode)
    return Plan(
        modes=MappingProxyType({p.names[v]: p.describe_mode(st.mode[v]) for v in order}),
        start=MappingProxyType({p.names[v]: float(st.start[v]) * q for v in order}),
        finish=MappingProxyType({p.names[v]: float(st.finish[v]) * q for v in order}),
        transfers=tuple(transfers),
        makespan=float(max(st.finish.values(), default=st.t0)) * q,
        lower_bound=0.0,
        solver="replan-list",
        searched=False,
        graph_name=p.name,
        graph_sha256=p.graph_sha256,
        platform=p.platform_name,
        units=p.units,
        memory=MappingProxyType({p.devices[d]: float(usage[d]) for d in range(p.num_devices)}),
    )


def _live_peak(st: _State) -> np.ndarray:
    """Each device's live peak, by the one model (:func:`~hetsched.plan.memory.live_intervals`),
    of what the re-plan places: its ops (as a sub-problem, with the re-plan's transfers
    among them), plus the receive buffer of each survivor's copy it moves, held from the
    transfer's start until the transfer and its last reader there have finished. What the
    run held before the failure is not counted."""
    p = st.p
    ops = np.array(sorted(st.mode), dtype=np.int64)
    if ops.size == 0:
        return np.zeros(p.num_devices)
    sub = subproblem(p, ops, name="replan")
    _, kept = p.tensors.subset(ops, p.n)
    tid = {int(t): i for i, t in enumerate(kept.tolist())}
    vs = ops.tolist()
    rank = [st.mode[v] - int(p.modes.op_start[v]) for v in vs]  # the mode among the op's own
    modes = sub.modes.op_start[:-1] + np.array(rank, dtype=np.int64)
    sends = {(tid[t], b): (ts, ts + c, a) for (t, b), (a, ts, c) in st.xfers.items() if t in tid}
    intervals = live_intervals(
        sub, modes, [st.start[v] for v in vs], [st.finish[v] for v in vs], sends
    )
    devs = p.modes.mode_devices
    for (t, b), (_a, ts, c) in sorted(st.xfers.items()):
        if t in tid:
            continue
        readers = [x for x in p.tensors.consumers(t).tolist() if x in st.mode]
        end = max([ts + c, *(st.finish[x] for x in readers if b in devs[st.mode[x]])])
        size = float(p.tensors.nbytes[t])
        intervals.append(Live(b, float(ts), float(end), size, "received", t))
    return peaks(intervals, p.num_devices)[0]
