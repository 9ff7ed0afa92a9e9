"""The CP-SAT model of pipeline partitioning for throughput (the solver: :mod:`.pipesolve`).

Minimise the period ``P`` (:mod:`hetsched.schedule.throughput.pipecost` has the steady-state
model):

* ``on[v,d]`` per allowed (op, device), exactly one per op;
* device load ``sum_v dur[v,d] on[v,d] <= P``;
* link load ``sum_t share[t,a,b] send[t,a,b] <= P`` per channel, one transfer per tensor and
  destination device: ``send[t,a,b] >= on[src(t),a] + on[c,b] - 1`` for each consumer ``c``;
* acyclic stage graph: general variant - a rank per device (all different) and
  ``rank[dev(u)] <= rank[dev(v)]`` per edge (an element constraint per op); contiguous
  variant - each device's ops form one interval of the topological order;
* memory (when ``problem.use_memory``): the one memory model, op bytes + receive buffers
  <= capacity (:func:`~hetsched.schedule.cpmemory.add_static_memory`);
* optional stage count ``sum_d used[d] = K`` and latency ``stages x P <= max_latency``;
* symmetry: interchangeable devices are first used in index order.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=list("abc"), devices=["x", "y"], exec_time=np.ones((3, 2)),
...     edges=[(0, 1, 1.0), (1, 2, 1.0)], quantum=1.0)
>>> built = build_pipeline_model(p, lower=1, upper=3)
>>> [sorted(x) for x in built.node_device_to_on]
[[0, 1], [0, 1], [0, 1]]
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from ortools.sat.python import cp_model

from hetsched.problem import Problem
from hetsched.schedule.cpmemory import add_static_memory
from hetsched.schedule.throughput.pipecost import channels

__all__ = ["PipelineModel", "build_pipeline_model"]


@dataclass
class PipelineModel:
    """A built CP-SAT pipeline model and the variables read back."""

    model: cp_model.CpModel
    node_device_to_on: list[dict[int, Any]]
    period: cp_model.IntVar
    stage_count: cp_model.IntVar
    device_to_used: list[Any] = field(default_factory=list)


def build_pipeline_model(
    problem: Problem,
    *,
    lower: int,
    upper: int,
    contiguous: bool = False,
    stages: int | None = None,
    max_latency: int | None = None,
) -> PipelineModel:
    """Build the model with ``P`` in ``[lower, upper]`` (units; see the module docstring)."""
    p = problem
    m = cp_model.CpModel()
    on: list[dict[int, Any]] = []
    for v in range(p.n):
        lits = {d: m.new_bool_var(f"on_{p.names[v]}_{p.devices[d]}") for d in p.allowed_devices[v]}
        m.add_exactly_one(lits.values())
        on.append(lits)
    period = m.new_int_var(lower, max(lower, upper), "period")
    _add_device_load(m, p, on, period)
    _add_link_load(m, p, on, period)
    if contiguous:
        _add_contiguous(m, p, on)
    else:
        _add_acyclic_ranks(m, p, on)
    add_static_memory(m, p, on)
    used, count = _add_stage_count(m, p, on, stages)
    if max_latency is not None:
        _add_latency(m, p, period, count, max_latency)
    _add_symmetry_breaking(m, p, on)
    m.minimize(period)
    return PipelineModel(m, on, period, count, used)


def _add_device_load(
    m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]], period: Any
) -> None:
    # For each device d: sum_v dur[v,d] on[v,d] <= P.
    for d in range(p.num_devices):
        terms = [int(p.dur[v, d]) * on[v][d] for v in range(p.n) if d in on[v] and p.dur[v, d]]
        if terms:
            m.add(sum(terms) <= period)


def _add_link_load(m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]], period: Any) -> None:
    # For each channel l: sum_{t, a->b routed over l} share[t,a,b] * send[t,a,b] <= P, with
    # send[t,a,b] >= on[src(t),a] + on[c,b] - 1 for each consumer c: once per destination.
    ch = channels(p)
    terms: dict[int, list[Any]] = {}
    for t in range(p.tensors.num_tensors):
        u = int(p.tensors.src[t])
        readers = p.tensors.consumers(t).tolist()
        for b in range(p.num_devices):
            lits = [on[c][b] for c in readers if b in on[c]]
            if not lits:
                continue
            for a, la in on[u].items():
                c = int(ch.share[t, a, b]) if a != b else 0
                if c == 0:
                    continue
                send = m.new_bool_var(f"send_{p.tensors.names[t]}_{p.devices[a]}_{p.devices[b]}")
                for lb in lits:
                    m.add_bool_or([la.Not(), lb.Not(), send])
                for link in ch.route[a, b]:
                    terms.setdefault(link, []).append(c * send)
    for link_terms in terms.values():
        m.add(sum(link_terms) <= period)


def _add_acyclic_ranks(m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]]) -> None:
    # rank[d] all different; pos[v] = rank[dev(v)]; for each edge u->v: pos[u] <= pos[v].
    dcount = p.num_devices
    rank = [m.new_int_var(0, dcount - 1, f"rank_{x}") for x in p.devices]
    m.add_all_different(rank)
    pos = []
    for v in range(p.n):
        devs = sorted(on[v])
        if len(devs) == 1:
            pos.append(rank[devs[0]])
            continue
        dev = m.new_int_var_from_domain(cp_model.Domain.from_values(devs), f"dev_{p.names[v]}")
        m.add(dev == sum(d * lit for d, lit in on[v].items()))
        x = m.new_int_var(0, dcount - 1, f"pos_{p.names[v]}")
        m.add_element(dev, rank, x)
        pos.append(x)
    for k in range(p.num_edges):
        m.add(pos[int(p.edge_src[k])] <= pos[int(p.edge_dst[k])])


def _add_contiguous(m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]]) -> None:
    # For each device d: sum_v max(0, on[v,d] - on[v-1,d]) <= 1 (one interval of the order).
    for d in range(p.num_devices):
        rises = []
        for v in range(p.n):
            if d not in on[v]:
                continue
            prev = on[v - 1].get(d) if v else None
            if prev is None:
                rises.append(on[v][d])
                continue
            r = m.new_bool_var(f"rise_{p.names[v]}_{p.devices[d]}")
            m.add_bool_or([on[v][d].Not(), prev, r])
            rises.append(r)
        if len(rises) > 1:
            m.add(sum(rises) <= 1)


def _add_stage_count(
    m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]], stages: int | None
) -> tuple[list[Any], Any]:
    # used[d] = OR_v on[v,d]; stages = sum_d used[d] (= K when given).
    used = []
    for d in range(p.num_devices):
        lits = [on[v][d] for v in range(p.n) if d in on[v]]
        u = m.new_bool_var(f"used_{p.devices[d]}")
        if lits:
            m.add_max_equality(u, lits)
        else:
            m.add(u == 0)
        used.append(u)
    count = m.new_int_var(1, p.num_devices, "stages")
    m.add(count == sum(used))
    if stages is not None:
        m.add(count == stages)
    return used, count


def _add_latency(m: cp_model.CpModel, p: Problem, period: Any, count: Any, limit: int) -> None:
    # stages x P <= max_latency.
    for k in range(1, p.num_devices + 1):
        is_k = m.new_bool_var(f"stages_is_{k}")
        m.add(count == k).only_enforce_if(is_k)
        m.add(count != k).only_enforce_if(is_k.Not())
        m.add(k * period <= limit).only_enforce_if(is_k)


def _add_symmetry_breaking(m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]]) -> None:
    # Interchangeable devices g1 < g2: first op on g1 comes before the first op on g2.
    for g in p.device_groups:
        if len(g) < 2:
            continue
        first = []
        for d in g:
            f = m.new_int_var(0, p.n, f"first_{p.devices[d]}")
            m.add_min_equality(f, [p.n - (p.n - v) * on[v][d] for v in range(p.n) if d in on[v]])
            first.append(f)
        for f1, f2 in itertools.pairwise(first):
            m.add(f1 <= f2)
