"""The steady-state cost of a pipelined assignment: loads, period, stage graph, memory.

The graph runs once per iteration (a frame, a micro-batch) and iterations stream through
the devices. With op ``v`` on device ``a(v)``:

* device load ``L_d = sum_{v: a(v)=d} dur[v, d]`` (compute per iteration);
* channel load ``C_l = sum_{e=u->v, a(u)!=a(v), l in route} share[e, a(u), a(v)]``: a
  transfer over an ``h``-hop route occupies each hop for ``ceil(comm / h)`` units. Links are
  shared by both directions (the presets name them ``a<->b``). Device pairs without a route
  in the problem (``Problem.from_arrays``) get one channel per unordered pair;
* period ``P = max(max_d L_d, max_l C_l)``: one iteration leaves the pipeline every ``P``;
* stage graph: devices, with an arc ``a(u) -> a(v)`` per cut edge. It must be acyclic; the
  stage of a device is its rank in the (deterministic, smallest index first) topological
  order of the used devices, and the pipeline has ``stages`` = number of used devices;
* latency model: ``stages x P`` (a synchronous pipeline advances every stage once a period);
* memory of device ``d``: ``sum_{v on d} memory[v]`` (parameters + the op's outputs of the
  iteration in flight, as :class:`~hetsched.problem.Problem` defines it) plus one receive
  buffer per producer ``u`` off ``d`` feeding ``d`` (``max`` bytes of its edges): the next
  iteration's input arrives while the current one computes (double buffering).

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

from hetsched.problem import Problem

__all__ = ["Channels", "PipelineCost", "channels", "pipeline_cost", "simple_period_bound"]


@dataclass(frozen=True, eq=False)
class Channels:
    """Transfer channels of a problem and the share each edge puts on them.

    ``route[(a, b)]`` lists the channel ids a transfer from ``a`` to ``b`` uses;
    ``share[e, a, b]`` is the units it puts on each of them.
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
    share = np.zeros_like(p.comm)
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
            if p.num_edges:
                share[:, a, b] = -(-p.comm[:, a, b] // len(r))
    return Channels(tuple(names), route, share)


@dataclass(frozen=True, eq=False)
class PipelineCost:
    """Steady-state figures of one assignment (integer units; memory in bytes)."""

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
    d_count = p.num_devices
    idx = np.arange(p.n)
    supported = bool(p.allowed[idx, a].all())
    load = np.zeros(d_count, dtype=np.int64)
    np.add.at(load, a, np.where(p.allowed[idx, a], p.dur[idx, a], 0))
    ch = channels(p)
    cload = np.zeros(len(ch.names), dtype=np.int64)
    arcs: set[tuple[int, int]] = set()
    recv: dict[tuple[int, int], float] = {}
    for k in range(p.num_edges):
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        da, db = int(a[u]), int(a[v])
        if da == db:
            continue
        arcs.add((da, db))
        recv[u, db] = max(recv.get((u, db), 0.0), float(p.edge_bytes[k]))
        for c in ch.route[da, db]:
            cload[c] += int(ch.share[k, da, db])
    used = sorted(set(a.tolist()))
    order = _topo(used, arcs)
    acyclic = order is not None
    rank = {dv: r for r, dv in enumerate(order or used)}
    mem = np.zeros(d_count)
    np.add.at(mem, a, p.memory)
    for (_u, db), b in recv.items():
        mem[db] += b
    memory_ok = not p.use_memory or bool(np.all(mem <= p.capacity * (1 + 1e-12)))
    period = int(max(load.max(initial=0), cload.max(initial=0)))
    return PipelineCost(
        assign=a,
        device_load=load,
        channel_load=cload,
        period=period,
        acyclic=acyclic,
        device_order=tuple(order or used),
        stage=np.array([rank[int(x)] for x in a], dtype=np.int64),
        stages=len(used),
        memory=mem,
        memory_ok=memory_ok,
        supported=supported,
    )


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
