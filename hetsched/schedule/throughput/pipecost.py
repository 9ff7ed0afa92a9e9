"""The steady-state cost of a pipelined assignment: loads, period, stage graph, memory.

The graph runs once per iteration (a frame, a micro-batch) and iterations stream through
the devices. With op ``v`` on device ``a(v)`` (its device-view mode there):

* device load ``L_d = sum_{v: a(v)=d} dur[v, d]`` (compute per iteration);
* channel load ``C_l``: each tensor goes once to each device that reads it without
  producing it (however many of its ops read it there), and a transfer over an ``h``-hop
  route occupies each hop for ``ceil(comm / h)`` units. Links are shared by both
  directions (the presets name them ``a<->b``). Device pairs without a route in the
  problem (``Problem.from_arrays``) get one channel per unordered pair;
* period ``P = max(max_d L_d, max_l C_l)``: one iteration leaves the pipeline every ``P``;
* stage graph: devices, with an arc ``a(u) -> a(v)`` per cut edge. It must be acyclic; the
  stage of a device is its rank in the (deterministic, smallest index first) topological
  order of the used devices, and the pipeline has ``stages`` = number of used devices;
* latency model: ``stages x P`` (a synchronous pipeline advances every stage once a period);
* memory: the one memory model, :func:`hetsched.plan.memory.static_usage` (each op's bytes
  on its device plus one receive buffer per tensor a device reads from another).

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [1.0, 5.0]]),
...     edges=[(0, 1, 1.0), (1, 2, 1.0)], comm_latency=np.array([[0, 1], [1, 0]]), quantum=1.0)
>>> c = pipeline_cost(p, [0, 1, 0])
>>> c.device_load.tolist(), c.period, c.acyclic
([3, 4], 4, False)
>>> c = pipeline_cost(p, [1, 0, 0])
>>> c.period, c.acyclic, c.stage.tolist(), c.stages
(5, True, [0, 1, 1], 2)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hetsched.plan.memory import static_usage, within
from hetsched.problem import Problem

__all__ = [
    "Channels",
    "PipelineCost",
    "channels",
    "is_contiguous",
    "pipeline_cost",
    "simple_period_bound",
]


@dataclass(frozen=True, eq=False)
class Channels:
    """Transfer channels of a problem and the share each tensor puts on them.

    ``route[(a, b)]`` lists the channel ids a transfer from ``a`` to ``b`` uses;
    ``share[t, a, b]`` is the units tensor ``t`` puts on each of them.
    """

    names: tuple[str, ...]
    route: dict[tuple[int, int], tuple[int, ...]]
    share: np.ndarray


@lru_cache(maxsize=32)
def channels(problem: Problem) -> Channels:
    """The :class:`Channels` of ``problem`` (cached per problem object)."""
    p = problem
    names = list(p.link_names)
    route: dict[tuple[int, int], tuple[int, ...]] = {}
    d = p.num_devices
    share = np.zeros_like(p.tensor_comm)
    for a in range(d):
        for b in range(d):
            if a == b:
                continue
            r = tuple(p.route_links.get((a, b), ()))
            if not r:
                key = f"{p.devices[min(a, b)]}<->{p.devices[max(a, b)]}"
                if key not in names:
                    names.append(key)
                r = (names.index(key),)
            route[a, b] = r
            share[:, a, b] = -(-p.tensor_comm[:, a, b] // len(r))
    share.setflags(write=False)
    return Channels(tuple(names), route, share)


@dataclass(frozen=True, eq=False)
class PipelineCost:
    """Steady-state figures of one assignment (integer units; memory in bytes).

    ``memory`` is :func:`~hetsched.plan.memory.static_usage` (``nan`` where an op sits on a
    device it has no mode on: such an assignment is not ``supported``).
    """

    assign: np.ndarray
    device_load: np.ndarray
    channel_load: np.ndarray
    period: int
    acyclic: bool
    device_order: tuple[int, ...]
    stage: np.ndarray
    stages: int
    memory: np.ndarray
    memory_ok: bool
    supported: bool

    @property
    def feasible(self) -> bool:
        """Supported everywhere, acyclic stage graph, memory within capacity."""
        return self.supported and self.acyclic and self.memory_ok

    def latency(self) -> int:
        """Pipeline latency model: ``stages x period``."""
        return self.stages * self.period


def pipeline_cost(problem: Problem, assign: Sequence[int] | np.ndarray) -> PipelineCost:
    """Evaluate ``assign`` (device index per op) as a pipeline; see the module docstring."""
    p = problem
    a = np.asarray(assign, dtype=np.int64)
    idx = np.arange(p.n)
    modes = p.device_mode[idx, a]
    supported = bool(np.all(modes >= 0))
    load = np.zeros(p.num_devices, dtype=np.int64)
    np.add.at(load, a, p.dur[idx, a])
    ch = channels(p)
    cload = np.zeros(len(ch.names), dtype=np.int64)
    src_dev, dst_dev = a[p.edge_src], a[p.edge_dst]
    cut = src_dev != dst_dev
    # One transfer per (tensor, destination device); its source is the producer's device.
    sends = np.unique(np.stack([p.edge_tensor[cut], src_dev[cut], dst_dev[cut]], axis=1), axis=0)
    for t, x, y in sends.tolist():
        for c in ch.route[x, y]:
            cload[c] += int(ch.share[t, x, y])
    arcs = {(int(x), int(y)) for _t, x, y in sends.tolist()}
    used = sorted(set(a.tolist()))
    order = _topo(used, arcs)
    rank = {dv: r for r, dv in enumerate(order or used)}
    if supported:
        memory = static_usage(p, modes)
        memory_ok = not p.use_memory or bool(np.all(within(memory, p.capacity)))
    else:
        memory, memory_ok = np.full(p.num_devices, np.nan), False
    return PipelineCost(
        assign=a,
        device_load=load,
        channel_load=cload,
        period=int(max(load.max(initial=0), cload.max(initial=0))),
        acyclic=order is not None,
        device_order=tuple(order or used),
        stage=np.array([rank[int(x)] for x in a], dtype=np.int64),
        stages=len(used),
        memory=memory,
        memory_ok=memory_ok,
        supported=supported,
    )


def is_contiguous(assign: np.ndarray) -> bool:
    """Whether every device holds one contiguous run of the (topological) op order.

    >>> is_contiguous(np.array([0, 0, 1, 1])), is_contiguous(np.array([0, 1, 0]))
    (True, False)
    """
    a = np.asarray(assign)
    runs = a[np.concatenate([[0], np.flatnonzero(np.diff(a)) + 1])]
    return len(set(runs.tolist())) == len(runs)


def _topo(nodes: list[int], arcs: set[tuple[int, int]]) -> list[int] | None:
    """Kahn's algorithm, smallest index first; ``None`` on a cycle."""
    indeg = dict.fromkeys(nodes, 0)
    for _a, b in arcs:
        indeg[b] += 1
    ready = sorted(x for x in nodes if indeg[x] == 0)
    out = []
    while ready:
        x = ready.pop(0)
        out.append(x)
        for a, b in sorted(arcs):
            if a == x:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
                    ready.sort()
    return out if len(out) == len(nodes) else None


def simple_period_bound(problem: Problem) -> dict[str, int]:
    """Cheap period bounds: ``ceil(sum min dur / D)`` and the longest single op."""
    p = problem
    return {
        "work_per_device": math.ceil(int(p.min_dur.sum()) / p.num_devices),
        "max_op": int(p.min_dur.max()),
    }
