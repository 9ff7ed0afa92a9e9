"""Re-planning after a device failure: the default list-scheduling re-planner.

Semantics (see also :func:`~hetsched.exec.executor.execute`): when a device fails at time
``T``, ops that finished keep their results on every surviving device that holds a copy
(where they ran, and wherever a transfer delivered them). Ops that ran on the failed device
and whose results are still needed (by an op not yet run, or as a graph output) and have no
surviving copy are re-run on a survivor. The re-planner places the ops to (re)run on the
surviving devices, no earlier than ``T`` and after each device's running op, reading each
input from its earliest-available copy.

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
>>> req = ReplanRequest(problem=q, time=3.0, run=("b",), copies={"a": {"y": 1.0}},
...                     device_free={"x": 4.0}, failed=("y",))
>>> plan = replan_list(req)
>>> plan.assignment["b"], plan.start["b"], plan.transfers[0].start
('x', 4.0, 3.0)
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from hetsched.errors import InfeasibleError
from hetsched.plan import Plan, Transfer
from hetsched.problem import Problem
from hetsched.schedule.latency.heuristics import upward_rank
from hetsched.schedule.latency.listsched import Timeline

__all__ = ["ReplanRequest", "Replanner", "mask_devices", "replan_list"]


def mask_devices(problem: Problem, devices: Collection[str]) -> Problem:
    """``problem`` with ``devices`` unusable (their columns masked as unsupported).

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
    topological order; ``copies[op]`` maps each surviving device holding ``op``'s result to
    the time it is there (for every finished op not in ``run``); ``device_free`` and
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


def replan_list(request: ReplanRequest) -> Plan:
    """HEFT-style list scheduling of ``request.run`` on the surviving devices.

    Ops are taken by upward rank among those whose inputs are placed; each goes to the
    device where it finishes first (insertion into idle gaps, transfers from the copy that
    arrives first, links reserved when the problem has link contention). Returns a plan of
    the re-run ops and the transfers into them, status ``heuristic``, solver ``replan-list``.
    """
    p, q = request.problem, request.problem.quantum
    t0 = math.ceil(request.time / q - 1e-9)
    dev_tl = [Timeline() for _ in p.devices]
    for d, name in enumerate(p.devices):
        dev_tl[d].reserve(0, max(t0, math.ceil(request.device_free.get(name, 0.0) / q - 1e-9)))
    link_tl = [Timeline() for _ in p.link_names]
    for x, name in enumerate(p.link_names):
        link_tl[x].reserve(0, max(t0, math.ceil(request.link_free.get(name, 0.0) / q - 1e-9)))
    contention = p.link_contention and bool(p.link_names)
    copies = {
        p.index[u]: {p.device_index[d]: math.ceil(t / q - 1e-9) for d, t in c.items()}
        for u, c in request.copies.items()
    }
    todo = {p.index[x] for x in request.run}
    rank = upward_rank(p)
    missing = {v: sum(1 for u, _ in p.preds[v] if u in todo) for v in todo}
    heap = [(-rank[v], v) for v in todo if missing[v] == 0]
    heapq.heapify(heap)
    assign: dict[int, int] = {}
    start: dict[int, int] = {}
    finish: dict[int, int] = {}
    xfers: dict[int, tuple[int, int, int]] = {}  # edge -> (src device, start, duration)
    while heap:
        _, v = heapq.heappop(heap)
        best = None
        for d in p.allowed_devices[v]:
            s, plan_x = _evaluate(p, v, d, t0, assign, finish, copies, dev_tl, link_tl, contention)
            f = s + int(p.dur[v, d])
            if best is None or f < best[0]:
                best = (f, d, s, plan_x)
        if best is None:
            msg = f"op {p.names[v]!r} can run on no surviving device"
            raise InfeasibleError(msg)
        f, d, s, plan_x = best
        assign[v], start[v], finish[v] = d, s, f
        dev_tl[d].reserve(s, f)
        for k, (a, ts, c) in plan_x.items():
            xfers[k] = (a, ts, c)
            if contention:
                for x in p.route_links.get((a, d), ()):
                    link_tl[x].reserve(ts, ts + c)
        for w, _ in p.succs[v]:
            if w in todo:
                missing[w] -= 1
                if missing[w] == 0:
                    heapq.heappush(heap, (-rank[w], w))
    transfers = tuple(
        Transfer(
            src=p.names[int(p.edge_src[k])],
            dst=p.names[int(p.edge_dst[k])],
            bytes=float(p.edge_bytes[k]),
            src_device=p.devices[a],
            dst_device=p.devices[assign[int(p.edge_dst[k])]],
            links=tuple(
                p.link_names[x] for x in p.route_links.get((a, assign[int(p.edge_dst[k])]), ())
            ),
            start=ts * q,
            finish=(ts + c) * q,
        )
        for k, (a, ts, c) in sorted(xfers.items())
    )
    order = sorted(assign)
    return Plan(
        assignment=MappingProxyType({p.names[v]: p.devices[assign[v]] for v in order}),
        start=MappingProxyType({p.names[v]: float(start[v]) * q for v in order}),
        finish=MappingProxyType({p.names[v]: float(finish[v]) * q for v in order}),
        transfers=transfers,
        makespan=float(max(finish.values(), default=t0)) * q,
        lower_bound=0.0,
        status="heuristic",
        solver="replan-list",
        graph_name=p.name,
        graph_sha256=p.graph_sha256,
        platform=p.platform_name,
        units=p.units,
    )


def _evaluate(
    p: Problem, v: int, d: int, t0: int, assign: dict[int, int], finish: dict[int, int],
    copies: dict[int, dict[int, int]], dev_tl: list[Timeline], link_tl: list[Timeline],
    contention: bool,
) -> tuple[int, dict[int, tuple[int, int, int]]]:  # fmt: skip
    """Earliest start of ``v`` on ``d`` and the transfers it needs (edge -> src, start, dur)."""
    ready = t0
    plan_x: dict[int, tuple[int, int, int]] = {}
    tentative: dict[int, int] = {}  # link -> end of the transfers this op already claimed
    for u, k in p.preds[v]:
        where = {assign[u]: finish[u]} if u in assign else copies.get(u, {})
        if d in where:
            ready = max(ready, where[d])
            continue
        best = None
        for a, ta in sorted(where.items()):
            c = int(p.comm[k, a, d])
            ts = max(ta, t0)
            if contention and c > 0:
                for x in p.route_links.get((a, d), ()):
                    ts = max(
                        ts, tentative.get(x, 0), link_tl[x].earliest_fit(ts, c, insertion=False)
                    )
            if best is None or ts + c < best[1] + best[2]:
                best = (a, ts, c)
        if best is None:
            msg = f"input {p.names[u]!r} of op {p.names[v]!r} survives on no device"
            raise InfeasibleError(msg)
        plan_x[k] = best
        if contention:
            for x in p.route_links.get((best[0], d), ()):
                tentative[x] = best[1] + best[2]
        ready = max(ready, best[1] + best[2])
    return dev_tl[d].earliest_fit(ready, int(p.dur[v, d])), plan_x
