"""Device memory as CP-SAT rows, shared by the pipeline, modulo and ResMII models.

The one memory model (:mod:`hetsched.plan.memory`: every op's bytes on its device, plus one
receive buffer per tensor on each device that reads it without producing it) in the linear
form :func:`~hetsched.plan.memory.linear_terms` gives, so that a plan the model accepts is
one :func:`hetsched.plan.validate` accepts. Byte counts round up and capacities down: the
rows are never looser than the checker.

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
>>> _ = m.add(on[0][0] + on[1][1] == 2)  # a on x, b on y: 3 + 4 (buffer) > 6
>>> cp_model.CpSolver().solve(m) == cp_model.INFEASIBLE
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from hetsched.plan.memory import linear_terms
from hetsched.problem import Problem

__all__ = ["add_static_memory"]


def add_static_memory(m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]]) -> None:
    """Add the memory rows over the presence literals ``on[v][d]`` (nothing without memory).

    For each device d with a finite capacity:
    ``sum_v bytes[v,d] on[v,d] + sum_t bytes[t] recv[t,d] <= cap[d]``, with
    ``recv[t,d] >= on[c,d] - on[src(t),d]`` for every consumer ``c`` of ``t``.
    """
    if not p.use_memory:
        return
    op_bytes, buffers = linear_terms(p)
    rows: dict[int, list[Any]] = {
        d: [
            int(np.ceil(op_bytes[v, d])) * on[v][d]
            for v in range(p.n)
            if d in on[v] and op_bytes[v, d] > 0
        ]
        for d in range(p.num_devices)
        if np.isfinite(p.capacity[d])
    }
    for t, b, readers in buffers:
        if b not in rows:
            continue
        u = int(p.tensors.src[t])
        recv = m.new_bool_var(f"recv_{p.tensors.names[t]}_{p.devices[b]}")
        own = [on[u][b]] if b in on[u] else []
        for c in readers.tolist():
            m.add_bool_or([on[c][b].Not(), recv, *own])
        rows[b].append(int(np.ceil(p.tensors.nbytes[t])) * recv)
    for d, terms in rows.items():
        if terms:
            m.add(sum(terms) <= int(np.floor(p.capacity[d])))
