"""The CP-SAT model of joint placement and scheduling (see :mod:`hetsched.schedule.latency.cpsat`).

One function per constraint family; variables are named (``start_<op>``, ``on_<op>_<dev>``)
and kept in :class:`CpSatModel`'s ``<key>_to_<var>`` containers.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 1.0]]), edges=[(0, 1, 1.0)], quantum=1.0)
>>> built = build_model(p, horizon=10)
>>> len(built.node_to_start), built.horizon
(2, 10)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from hetsched.errors import InfeasibleError
from hetsched.problem import Problem
from hetsched.schedule.bounds import heads_and_tails

__all__ = ["CpSatModel", "build_model", "distinct_choices", "pooled_groups"]


@dataclass
class CpSatModel:
    """A built CP-SAT model and the variables solvers read back."""

    model: cp_model.CpModel
    node_to_start: list[cp_model.IntVar]
    node_to_end: list[cp_model.IntVar]
    node_device_to_presence: list[dict[int, Any]]
    makespan: cp_model.IntVar
    horizon: int
    pooled_groups: list[tuple[int, ...]] = field(default_factory=list)
    edge_pair_to_transfer_start: dict[tuple[int, int, int], cp_model.IntVar] = field(
        default_factory=dict
    )
    lower_bound: int = 0


def pooled_groups(p: Problem) -> list[tuple[int, ...]]:
    """Classes of >= 2 interchangeable devices whose mutual transfers are all free."""
    out: list[tuple[int, ...]] = []
    if p.link_contention:
        return out
    for g in p.device_groups:
        if len(g) < 2:
            continue
        sub = p.comm[:, list(g)][:, :, list(g)] if p.num_edges else np.zeros(0)
        if not np.any(sub):
            out.append(g)
    return out


def build_model(
    problem: Problem,
    *,
    horizon: int,
    lower: int = 0,
    hint: tuple[np.ndarray, np.ndarray] | None = None,
    fixed: dict[int, tuple[int, int]] | None = None,
    branches: list[list[np.ndarray]] | None = None,
    tighten: bool = True,
) -> CpSatModel:
    """Build the CP-SAT model of ``problem`` with makespan in ``[lower, horizon]``.

    ``fixed`` (op -> (device, start)) pins ops (large-neighbourhood search, re-planning).
    ``branches``: classes of interchangeable branches
    (:func:`~hetsched.schedule.latency.symmetry.branch_classes`); the members of a class start their
    first ops in class order (the hint must agree: see ``symmetry.canonical_hint``).
    ``tighten=False`` leaves out the head/tail windows (start domains and ``makespan >=
    start + tail`` rows): the fallback when CP-SAT wrongly reports a model infeasible.
    """
    p = problem
    m = cp_model.CpModel()
    if tighten:
        head, tail = heads_and_tails(p)
    else:
        head, tail = np.zeros(p.n, dtype=np.int64), np.asarray(p.min_dur, dtype=np.int64)
    pooled = pooled_groups(p)
    pooled_of = {d: g for g in pooled for d in g}
    starts, ends, presence = [], [], []
    dev_intervals: dict[int, list] = {d: [] for d in range(p.num_devices)}
    pool_intervals: dict[tuple[int, ...], list] = {g: [] for g in pooled}
    load_terms: dict[int, list] = {d: [] for d in range(p.num_devices)}
    mem_terms: dict[int, list] = {d: [] for d in range(p.num_devices)}
    for v in range(p.n):
        lo = int(head[v])
        hi = int(horizon - tail[v])
        if hi < lo:
            msg = (
                f"op {p.names[v]!r} cannot fit below horizon {horizon} (head {lo}, tail {tail[v]})"
            )
            raise InfeasibleError(msg)
        s = m.new_int_var(lo, hi, f"start_{p.names[v]}")
        e = m.new_int_var(lo + int(p.min_dur[v]), horizon, f"end_{p.names[v]}")
        devs = p.allowed_devices[v]
        if fixed and v in fixed:
            devs = (fixed[v][0],)
        # Ops in one pooled class share one literal: the class, not the unit, is chosen.
        choices: dict[int, Any] = {}
        seen_pools: set[tuple[int, ...]] = set()
        lits = []
        for d in devs:
            g = pooled_of.get(d)
            if g is not None:
                if g in seen_pools:
                    continue
                seen_pools.add(g)
            lit = (
                m.new_bool_var(f"on_{p.names[v]}_{p.devices[d]}")
                if len(devs) > 1
                else m.new_constant(1)
            )
            lits.append(lit)
            dur = int(p.dur[v, d])
            iv = m.new_optional_interval_var(s, dur, e, lit, f"run_{p.names[v]}_{p.devices[d]}")
            if g is not None:
                pool_intervals[g].append(iv)
                for d2 in g:
                    choices[d2] = lit
                load_terms[g[0]].append((dur, lit))
            else:
                dev_intervals[d].append(iv)
                choices[d] = lit
                load_terms[d].append((dur, lit))
            if p.use_memory and p.memory[v] > 0:
                mem_terms[d].append((int(p.memory[v]), lit))
        m.add_exactly_one(lits)
        if fixed and v in fixed:
            m.add(s == fixed[v][1])
        starts.append(s)
        ends.append(e)
        presence.append(choices)
    makespan = m.new_int_var(max(lower, 0), horizon, "makespan")
    for v in range(p.n):
        m.add(makespan >= starts[v] + int(tail[v]))
        if not p.succs[v]:
            m.add(makespan >= ends[v])
    _add_no_overlap(m, dev_intervals)
    _add_pooled_cumulative(m, pool_intervals)
    _add_load(m, load_terms, pooled, makespan)
    _add_precedence(m, p, starts, ends, presence)
    transfer_starts = (
        _add_link_contention(m, p, horizon, starts, ends, presence) if p.link_contention else {}
    )
    if p.use_memory:
        _add_memory(m, p, mem_terms)
    _add_symmetry_breaking(m, p, presence, pooled)
    for cls in branches or []:
        # Swapping two identical branches maps a schedule to a schedule: order them.
        for a, b in itertools.pairwise(cls):
            m.add(starts[int(a[0])] <= starts[int(b[0])])
    if hint is not None:
        _add_hint(m, p, hint, starts, ends, presence, makespan)
    m.minimize(makespan)
    return CpSatModel(m, starts, ends, presence, makespan, horizon, pooled, transfer_starts, lower)


def _add_no_overlap(m: cp_model.CpModel, dev_intervals: dict[int, list]) -> None:
    # For each device d: the intervals of the ops placed on d are pairwise disjoint.
    for ivs in dev_intervals.values():
        if len(ivs) > 1:
            m.add_no_overlap(ivs)


def _add_pooled_cumulative(
    m: cp_model.CpModel, pool_intervals: dict[tuple[int, ...], list]
) -> None:
    # For each pooled class G: at any time at most |G| of its ops run.
    for g, ivs in pool_intervals.items():
        if len(ivs) > len(g):
            m.add_cumulative(ivs, [1] * len(ivs), len(g))


def _add_load(
    m: cp_model.CpModel,
    load_terms: dict[int, list],
    pooled: list[tuple[int, ...]],
    makespan: cp_model.IntVar,
) -> None:
    # For each device d: sum_v dur[v,d] on[v,d] <= makespan (x |G| for a pooled class).
    pool_size = {g[0]: len(g) for g in pooled}
    for d, terms in load_terms.items():
        terms = [(c, lit) for c, lit in terms if c > 0]
        if terms:
            m.add(sum(c * lit for c, lit in terms) <= pool_size.get(d, 1) * makespan)


def _add_precedence(
    m: cp_model.CpModel,
    p: Problem,
    starts: list,
    ends: list,
    presence: list[dict[int, Any]],
) -> None:
    # For each edge u->v: start_v >= end_u + comm[e, dev(u), dev(v)], as
    #   uniform from a:   start_v >= end_u + c_a (on[u,a] - on[v,a])            (linear), or
    #   otherwise, per b: start_v >= end_u + sum_a comm[e,a,b] on[u,a]  if on[v,b]  (D rows).
    for k in range(p.num_edges):
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        m.add(starts[v] >= ends[u])
        comm = p.comm[k]
        if not comm.any():
            continue
        src = distinct_choices(presence[u])
        dst = distinct_choices(presence[v])
        uniform = True
        for a, _lit in src:
            row = [int(comm[a, b]) for b, _ in dst if presence[v][b] is not presence[u][a]]
            if row and min(row) != max(row):
                uniform = False
        if uniform:
            for a, lit_a in src:
                row = [int(comm[a, b]) for b, _ in dst if presence[v][b] is not lit_a]
                if not row or row[0] == 0:
                    continue
                c = row[0]
                lit_va = presence[v].get(a)
                if lit_va is None:
                    m.add(starts[v] >= ends[u] + c).only_enforce_if(lit_a)
                else:
                    m.add(starts[v] >= ends[u] + c * lit_a - c * lit_va)
            continue
        for b, lit_b in dst:
            terms = [(int(comm[a, b]), lit_a) for a, lit_a in src if lit_a is not lit_b]
            terms = [(c, lit) for c, lit in terms if c > 0]
            if terms:
                delay = sum(c * lit for c, lit in terms)
                m.add(starts[v] >= ends[u] + delay).only_enforce_if(lit_b)


def distinct_choices(choices: dict[int, Any]) -> list[tuple[int, Any]]:
    """(device, literal) pairs with one entry per distinct literal (pooled classes share)."""
    out, seen = [], set()
    for d, lit in choices.items():
        if id(lit) in seen:
            continue
        seen.add(id(lit))
        out.append((d, lit))
    return out


def _add_link_contention(
    m: cp_model.CpModel,
    p: Problem,
    horizon: int,
    starts: list,
    ends: list,
    presence: list[dict[int, Any]],
) -> dict[tuple[int, int, int], cp_model.IntVar]:
    # For each link l: transfers routed over l (edge e, a->b with on[u,a] & on[v,b]) are disjoint.
    by_link: dict[int, list] = {}
    out = {}
    for k in range(p.num_edges):
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        for a, lit_a in presence[u].items():
            for b, lit_b in presence[v].items():
                c = int(p.comm[k, a, b])
                route = p.route_links.get((a, b), ())
                if a == b or c == 0 or not route:
                    continue
                both = m.new_bool_var(f"xfer_{p.names[u]}_{p.names[v]}_{a}_{b}")
                m.add_bool_and([lit_a, lit_b]).only_enforce_if(both)
                m.add_bool_or([lit_a.Not(), lit_b.Not(), both])
                ts = m.new_int_var(0, horizon, f"xstart_{p.names[u]}_{p.names[v]}_{a}_{b}")
                iv = m.new_optional_fixed_size_interval_var(ts, c, both, f"xfer_iv_{k}_{a}_{b}")
                m.add(ts >= ends[u]).only_enforce_if(both)
                m.add(starts[v] >= ts + c).only_enforce_if(both)
                for link in route:
                    by_link.setdefault(link, []).append(iv)
                out[(k, a, b)] = ts
    for ivs in by_link.values():
        if len(ivs) > 1:
            m.add_no_overlap(ivs)
    return out


def _add_memory(m: cp_model.CpModel, p: Problem, mem_terms: dict[int, list]) -> None:
    # For each device d: sum_v mem[v] on[v,d] <= capacity[d] (static residency).
    for d, terms in mem_terms.items():
        if terms and np.isfinite(p.capacity[d]):
            m.add(sum(c * lit for c, lit in terms) <= int(p.capacity[d]))


def _add_symmetry_breaking(
    m: cp_model.CpModel, p: Problem, presence: list[dict[int, Any]], pooled: list[tuple[int, ...]]
) -> None:
    # Interchangeable devices g1 < g2 < ...: g_j is used by op v only if g_{j-1} was used by
    # some op u <= v (devices enter the schedule in index order).
    pooled_set = {d for g in pooled for d in g}
    for g in p.device_groups:
        g = tuple(d for d in g if d not in pooled_set)
        if len(g) < 2:
            continue
        used_prev: dict[int, Any] = {}
        for v in range(p.n):
            lits = presence[v]
            if not all(d in lits for d in g):
                continue
            for j in range(1, len(g)):
                prev = used_prev.get(g[j - 1])
                if prev is None:
                    m.add(lits[g[j]] == 0)
                else:
                    m.add_implication(lits[g[j]], prev)
            for d in g:
                u = m.new_bool_var("")
                prev = used_prev.get(d)
                if prev is None:
                    m.add(u == lits[d])
                else:
                    m.add_max_equality(u, [prev, lits[d]])
                used_prev[d] = u


def _add_hint(
    m: cp_model.CpModel,
    p: Problem,
    hint: tuple[np.ndarray, np.ndarray],
    starts: list,
    ends: list,
    presence: list[dict[int, Any]],
    makespan: cp_model.IntVar,
) -> None:
    assign, start = hint
    fin = start + p.dur[np.arange(p.n), assign]
    for v in range(p.n):
        m.add_hint(starts[v], int(start[v]))
        m.add_hint(ends[v], int(fin[v]))
        choices = distinct_choices(presence[v])
        if len(choices) < 2:
            continue  # a single choice is the constant 1 (shared by every such op): no hint
        for _d, lit in choices:
            m.add_hint(lit, presence[v].get(int(assign[v])) is lit)
    m.add_hint(makespan, int(fin.max()))
