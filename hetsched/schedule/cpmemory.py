"""Device memory as CP-SAT rows, shared by every CP-SAT model (latency, pipeline, modulo).

The one memory model (:mod:`hetsched.plan.memory`: the bytes of every mode on each of its
devices, plus one receive buffer per tensor on each device that reads it without its
producer's mode holding it) as linear rows over presence literals, so that a plan a model
accepts is one :func:`hetsched.plan.validate` accepts. Bytes and capacities are scaled by a
power of ten that makes them integers; when none up to 10^6 does, sizes round up and
capacities down, the rows are tighter than the checker and a model's optimum is not a proof
(:func:`add_static_memory` says so).

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

__all__ = ["add_static_memory", "memory_scale"]


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
