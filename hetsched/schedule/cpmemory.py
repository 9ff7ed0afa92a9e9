"""Device memory as CP-SAT rows, shared by every CP-SAT model (latency, pipeline, modulo).

The one memory model (:mod:`hetsched.plan.memory`: the bytes of every mode on each of its
devices, plus one receive buffer per tensor on each device that reads it without its
producer's mode holding it) as linear rows over presence literals, so that a plan a model
accepts is one :func:`hetsched.plan.validate` accepts. Bytes and capacities are scaled by a
power of ten that makes them integers; when none up to 10^6 does, sizes round up and
capacities down, the rows are tighter than the checker and a model's optimum is not a proof
(:func:`add_static_memory` says so). The rows keep the *static envelope* within capacity;
for a latency plan, whose live bytes the checker limits, that is a restriction of the
question wherever the envelope can bind (:func:`~hetsched.plan.memory.envelope_binds`), and
the latency CP-SAT then claims no proof.

Examples
--------
>>> import numpy as np
>>> from ortools.sat.python import cp_model
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"], exec_time=np.ones((2, 2)),
...     tensors=[(0, (1,), 4.0)], memory_bytes=np.array([3.0, 3.0]),
...     capacity=np.array([6.0, 6.0]), use_memory=True, quantum=1.0)
>>> m = cp_model.CpModel()
>>> on = [{d: m.new_bool_var(f"on_{v}_{d}") for d in range(2)} for v in range(2)]
>>> _ = [m.add_exactly_one(lits.values()) for lits in on]
>>> add_static_memory(m, p, on)
True
>>> _ = m.add(on[0][0] + on[1][1] == 2)  # a on x, b on y: 3 + 4 (buffer) > 6
>>> cp_model.CpSolver().solve(m) == cp_model.INFEASIBLE
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from hetsched.problem import Problem

__all__ = ["add_live_memory", "add_static_memory", "live_encodable", "memory_scale"]


def memory_scale(p: Problem) -> tuple[int, bool]:
    """``(scale, exact)``: the least power of ten (up to 10^6) that makes every mode's bytes,
    tensor size and finite capacity an integer, and whether one does."""
    values = np.concatenate([p.modes.memory, p.tensors.nbytes, p.capacity[np.isfinite(p.capacity)]])
    for k in range(7):
        scaled = values * 10**k
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-9 * np.maximum(1.0, scaled)):
            return 10**k, True
    return 10**6, False


def add_static_memory(
    m: cp_model.CpModel,
    p: Problem,
    on: list[dict[int, Any]],
    modes: list[dict[int, Any]] | None = None,
) -> bool:
    """Add the memory rows; True when they are exact (see the module docstring).

    ``on[v][d]`` is true when op ``v`` occupies device ``d``; ``modes[v][m]`` when it runs in
    mode ``m`` (default: the device-view mode of each ``on`` literal). For each device ``d``
    with a finite capacity: ``sum_m bytes[m] x[m] (m on d) + sum_t bytes[t] recv[t,d] <=
    cap[d]``, with ``recv[t,d] >= on[c,d] - on[src(t),d]`` for every reader ``c`` of ``t``.
    Nothing is added without memory constraints.
    """
    if not p.use_memory:
        return True
    scale, exact = memory_scale(p)
    if modes is None:
        modes = [{int(p.device_mode[v, d]): lit for d, lit in on[v].items()} for v in range(p.n)]
    rows: dict[int, list[Any]] = {d: [] for d in range(p.num_devices) if np.isfinite(p.capacity[d])}
    for v in range(p.n):
        for k, lit in modes[v].items():
            size = math.ceil(p.modes.memory[k] * scale - 1e-9)
            for d in p.modes.devices_of(k):
                if d in rows and size > 0:
                    rows[d].append(size * lit)
    for t in range(p.tensors.num_tensors):
        size = math.ceil(p.tensors.nbytes[t] * scale - 1e-9)
        if size <= 0:
            continue
        u = int(p.tensors.src[t])
        for d in rows:
            readers = [on[int(c)][d] for c in p.tensors.consumers(t) if d in on[int(c)]]
            if not readers:
                continue
            if d in on[u] and len(on[u]) == 1:
                continue  # the producer always holds it there
            recv = m.new_bool_var(f"recv_{p.tensors.names[t]}_{p.devices[d]}")
            own = [on[u][d]] if d in on[u] else []
            for lit in readers:
                m.add_bool_or([lit.Not(), recv, *own])
            rows[d].append(size * recv)
    for d, terms in rows.items():
        if terms:
            m.add(sum(terms) <= math.floor(p.capacity[d] * scale + 1e-9))
    return exact


def live_encodable(p: Problem) -> bool:
    """Whether :func:`add_live_memory` encodes ``p``'s memory exactly: transfers that start
    when their producer ends (no link contention) and integer-scalable bytes."""
    return p.use_memory and not p.link_contention and memory_scale(p)[1]


def add_live_memory(
    m: cp_model.CpModel,
    p: Problem,
    starts: list[Any],
    ends: list[Any],
    on: list[dict[int, Any]],
    modes: list[dict[int, Any]],
    makespan: Any,
    horizon: int,
) -> None:
    """Live bytes within capacity at every instant, exactly as the checker counts them
    (:mod:`hetsched.plan.memory`), for a problem :func:`live_encodable` accepts.

    Per device ``d`` with a finite capacity, one Cumulative whose capacity is ``cap[d]``
    less the resident weights of the modes chosen there, over optional intervals:

    * op ``v``'s outputs, present when its mode occupies ``d``: from ``start[v]`` to a
      variable end ``>= end[v]``, ``>= end[c]`` for every reader ``c`` there, ``>= end[v] +
      transfer`` for every transfer ``d`` sends (the mode's device nearest the reader's), and
      ``= makespan`` when no op reads them;
    * tensor ``t`` received on ``d``, present when a reader's mode occupies ``d`` and the
      producer's does not: from the producer's end (the transfer's start) to a variable end
      ``>=`` the transfer's arrival and every reader's end there.

    ``on[v][d]`` is true when ``v``'s mode occupies ``d``; ``modes[v][k]`` when it is ``k``.
    """
    from hetsched.plan.plan import nearest_source

    scale, _ = memory_scale(p)
    devs = [d for d in range(p.num_devices) if np.isfinite(p.capacity[d])]
    intervals: dict[int, list[Any]] = {d: [] for d in devs}
    demands: dict[int, list[int]] = {d: [] for d in devs}
    weights: dict[int, list[Any]] = {d: [] for d in devs}
    readers_of = [p.tensors.consumers(t).tolist() for t in range(p.tensors.num_tensors)]
    tensors_of: list[list[int]] = [[] for _ in range(p.n)]
    for t, u in enumerate(p.tensors.src.tolist()):
        tensors_of[u].append(t)

    def size(x: float) -> int:
        return math.ceil(x * scale - 1e-9)

    def interval(start: Any, end: Any, lit: Any, d: int, nbytes: int) -> None:
        span = m.new_int_var(0, horizon, "")
        intervals[d].append(m.new_optional_interval_var(start, span, end, lit, ""))
        demands[d].append(nbytes)

    for v in range(p.n):
        for k, lit in modes[v].items():
            for d in p.modes.devices_of(k):
                if d in weights and size(p.modes.w[k]) > 0:
                    weights[d].append(size(p.modes.w[k]) * lit)
        for d in devs:
            mine = {k: lit for k, lit in modes[v].items() if d in p.modes.devices_of(k)}
            outs = {k: size(p.modes.memory[k] - p.modes.w[k]) for k in mine}
            if not any(b > 0 for b in outs.values()):
                continue
            end = m.new_int_var(0, horizon, "")
            m.add(end >= ends[v])
            if not tensors_of[v]:
                m.add(end == makespan).only_enforce_if(on[v][d])
            for t in tensors_of[v]:
                for c in readers_of[t]:
                    if d in on[c]:
                        m.add(end >= ends[c]).only_enforce_if(on[c][d])
                for k, lit in mine.items():
                    have = p.modes.devices_of(k)
                    for c in readers_of[t]:
                        for b, lit_c in on[c].items():
                            if b not in have and nearest_source(p, t, have, b) == d:
                                send = int(p.tensor_comm[t, d, b])
                                m.add(end >= ends[v] + send).only_enforce_if([lit, lit_c])
            for k, nbytes in outs.items():
                if nbytes > 0:
                    interval(starts[v], end, mine[k], d, nbytes)
    for t in range(p.tensors.num_tensors):
        nbytes = size(p.tensors.nbytes[t])
        if nbytes <= 0:
            continue
        u = int(p.tensors.src[t])
        for b in devs:
            readers = [c for c in readers_of[t] if b in on[c]]
            if not readers or (b in on[u] and len(on[u]) == 1):
                continue
            recv = m.new_bool_var("")
            own = [on[u][b]] if b in on[u] else []
            for c in readers:
                m.add_bool_or([on[c][b].Not(), recv, *own])
            if own:
                m.add_implication(own[0], recv.Not())
            end = m.new_int_var(0, horizon, "")
            m.add(end >= ends[u])
            for c in readers:
                m.add(end >= ends[c]).only_enforce_if(on[c][b])
            for k, lit in modes[u].items():
                have = p.modes.devices_of(k)
                if b not in have:
                    arrive = int(p.tensor_comm[t, nearest_source(p, t, have, b), b])
                    m.add(end >= ends[u] + arrive).only_enforce_if([lit, recv])
            interval(ends[u], end, recv, b, nbytes)
    for d in devs:
        cap = math.floor(p.capacity[d] * scale + 1e-9)
        free = m.new_int_var(0, cap, f"free_{p.devices[d]}")
        m.add(free == cap - sum(weights[d]))
        if intervals[d]:
            m.add_cumulative(intervals[d], demands[d], free)
