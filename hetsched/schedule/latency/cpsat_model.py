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

from hetsched.errors import InfeasibleError, SolverError
from hetsched.plan.memory import envelope_binds
from hetsched.problem import Problem
from hetsched.schedule.bounds import heads_and_tails
from hetsched.schedule.cpmemory import add_live_memory, add_static_memory, live_encodable

__all__ = ["CpSatModel", "build_model", "distinct_choices", "mode_delay", "pooled_groups"]


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
    tensor_pair_to_transfer_start: dict[tuple[int, int, int], cp_model.IntVar] = field(
        default_factory=dict
    )
    lower_bound: int = 0
    node_mode_to_presence: list[dict[int, Any]] = field(default_factory=list)
    # False when the memory rows round fractional bytes (tighter than the checker): the
    # model's optimum is then no proof
    memory_exact: bool = True


def pooled_groups(p: Problem) -> list[tuple[int, ...]]:
    """Classes of >= 2 interchangeable devices whose mutual transfers are all free."""
    out: list[tuple[int, ...]] = []
    if p.link_contention or p.use_memory:  # both are per device, not per class
        return out
    if p.constraints is not None and p.constraints.structural:  # groups, segments: per unit
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

    ``hint`` is ``(mode id, start)`` per op. ``fixed`` (op -> (device, start)) pins ops to
    their device-view mode (large-neighbourhood search, re-planning). ``branches``: classes of
    interchangeable branches (:func:`~hetsched.schedule.latency.symmetry.branch_classes`);
    the members of a class start their first ops in class order (the hint must agree: see
    ``symmetry.canonical_hint``). ``tighten=False`` leaves out the head/tail windows (start
    domains and ``makespan >= start + tail`` rows): the fallback when CP-SAT wrongly reports a
    model infeasible.

    A problem whose modes are one per (op, device) gets the device model (pooled classes of
    identical devices, symmetry breaking); any other gets the mode model: an optional
    interval per mode in the NoOverlap of each of its devices.
    """
    if not problem.is_device_table:
        return _build_mode_model(problem, horizon=horizon, lower=lower, hint=hint, tighten=tighten)
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
        m.add_exactly_one(lits)
        if fixed and v in fixed:
            m.add(s == fixed[v][1])
        starts.append(s)
        ends.append(e)
        presence.append(choices)
    makespan = _add_makespan(m, p, starts, ends, tail, lower, horizon)
    _add_no_overlap(m, dev_intervals)
    _add_pooled_cumulative(m, pool_intervals)
    _add_load(m, load_terms, pooled, makespan)
    _add_precedence(m, p, starts, ends, presence)
    transfer_starts = (
        _add_link_contention(m, p, horizon, starts, ends, presence) if p.link_contention else {}
    )
    # the device model's literal of (v, d) is the literal of v's mode on d
    modes = [{int(p.device_mode[v, d]): lit for d, lit in presence[v].items()} for v in range(p.n)]
    memory_exact = _add_memory(m, p, starts, ends, presence, modes, makespan, horizon)
    _add_error_budget(m, p, modes)
    _add_chains(m, p, modes)
    _add_structure(m, p, modes)
    _add_symmetry_breaking(m, p, presence, pooled)
    for cls in branches or []:
        # Swapping two identical branches maps a schedule to a schedule: order them.
        for a, b in itertools.pairwise(cls):
            m.add(starts[int(a[0])] <= starts[int(b[0])])
    if hint is not None:
        _add_hint(m, p, hint, starts, ends, modes, makespan)
    m.minimize(makespan)
    return CpSatModel(
        m,
        starts,
        ends,
        presence,
        makespan,
        horizon,
        pooled,
        transfer_starts,
        lower,
        modes,
        memory_exact,
    )


def _build_mode_model(
    p: Problem,
    *,
    horizon: int,
    lower: int,
    hint: tuple[np.ndarray, np.ndarray] | None,
    tighten: bool,
) -> CpSatModel:
    """The model over modes: one optional interval per mode, in the NoOverlap of each of its
    devices; transfer delays per (producer mode, consumer mode)."""
    if p.link_contention:
        msg = "cpsat models link contention for one mode per (op, device) only"
        raise SolverError(msg)
    m = cp_model.CpModel()
    if tighten:
        head, tail = heads_and_tails(p)  # of the relaxation: valid for every mode
    else:
        head, tail = np.zeros(p.n, dtype=np.int64), np.asarray(p.min_dur, dtype=np.int64)
    starts, ends, modes = [], [], []
    dev_intervals: dict[int, list] = {d: [] for d in range(p.num_devices)}
    load_terms: dict[int, list] = {d: [] for d in range(p.num_devices)}
    for v in range(p.n):
        lo, hi = int(head[v]), int(horizon - tail[v])
        if hi < lo:
            msg = (
                f"op {p.names[v]!r} cannot fit below horizon {horizon} (head {lo}, tail {tail[v]})"
            )
            raise InfeasibleError(msg)
        s = m.new_int_var(lo, hi, f"start_{p.names[v]}")
        e = m.new_int_var(lo + int(p.min_dur[v]), horizon, f"end_{p.names[v]}")
        ids = p.modes.ops_modes(v).tolist()
        lits = {}
        for k in ids:
            label = str(p.describe_mode(k))
            lit = (
                m.new_bool_var(f"mode_{p.names[v]}_{label}") if len(ids) > 1 else m.new_constant(1)
            )
            dur = int(p.mode_dur[k])
            iv = m.new_optional_interval_var(s, dur, e, lit, f"run_{p.names[v]}_{label}")
            for d in p.modes.devices_of(k):
                dev_intervals[d].append(iv)
                load_terms[d].append((dur, lit))
            lits[k] = lit
        m.add_exactly_one(list(lits.values()))
        starts.append(s)
        ends.append(e)
        modes.append(lits)
    makespan = _add_makespan(m, p, starts, ends, tail, lower, horizon)
    _add_no_overlap(m, dev_intervals)
    _add_load(m, load_terms, [], makespan)
    _add_mode_precedence(m, p, starts, ends, modes)
    presence = [_device_literals(m, p, modes[v]) for v in range(p.n)]
    memory_exact = _add_memory(m, p, starts, ends, presence, modes, makespan, horizon)
    _add_error_budget(m, p, modes)
    _add_chains(m, p, modes)
    _add_structure(m, p, modes)
    if hint is not None:
        _add_hint(m, p, hint, starts, ends, modes, makespan)
    m.minimize(makespan)
    return CpSatModel(
        m, starts, ends, presence, makespan, horizon, [], {}, lower, modes, memory_exact
    )


def _add_error_budget(m: cp_model.CpModel, p: Problem, modes: list[dict[int, Any]]) -> None:
    """The modes' errors (integer units, as the validator adds them) within the budget."""
    budget = p.error_budget_units
    if budget is None or not p.has_error_modes:
        return
    units = p.mode_error_units
    terms = [int(units[k]) * lit for v in range(p.n) for k, lit in modes[v].items() if units[k]]
    if terms:
        m.add(sum(terms) <= budget)


def _add_chains(m: cp_model.CpModel, p: Problem, modes: list[dict[int, Any]]) -> None:
    """A mode that keeps its output sharded implies, for each consumer, one of the modes
    that read it so (:mod:`hetsched.problem.chains`)."""
    for k, v, ok in p.chain_rules:
        lit = modes[int(p.modes.op[k])][k]
        m.add_bool_or([modes[v][int(j)] for j in ok.tolist()]).only_enforce_if(lit)


def _add_structure(m: cp_model.CpModel, p: Problem, modes: list[dict[int, Any]]) -> None:
    """Colocated groups (every member on the same device set) and the cap on segments
    (device-set changes along the op order, counted by one switch literal per position)."""
    rules = p.constraints
    if rules is None or not rules.structural:
        return

    def on(v: int) -> dict[tuple[int, ...], Any]:
        """Presence of each device set ``v`` may run on (a sum of its modes' literals)."""
        out: dict[tuple[int, ...], list[Any]] = {}
        for k, lit in modes[v].items():
            out.setdefault(tuple(p.modes.devices_of(k)), []).append(lit)
        return {key: sum(lits) for key, lits in out.items()}

    for group in rules.groups:
        first = on(group[0])
        for v in group[1:]:
            other = on(v)
            for key in set(first) | set(other):
                m.add(first.get(key, 0) == other.get(key, 0))
    if rules.max_segments is not None and p.n > 1:
        switches = []
        prev = on(0)
        for v in range(1, p.n):
            cur = on(v)
            sw = m.new_bool_var(f"switch_{p.names[v]}")
            for key, here in cur.items():
                m.add(sw >= here - prev.get(key, 0))
            switches.append(sw)
            prev = cur
        m.add(sum(switches) <= rules.max_segments - 1)


def _add_memory(
    m: cp_model.CpModel,
    p: Problem,
    starts: list,
    ends: list,
    presence: list[dict[int, Any]],
    modes: list[dict[int, Any]],
    makespan: Any,
    horizon: int,
) -> bool:
    """Device memory: live bytes, exactly, where the encoding allows
    (:func:`~hetsched.schedule.cpmemory.add_live_memory`); otherwise the static envelope, a
    restriction wherever it can bind. True when the model is exact."""
    if envelope_binds(p) is None:  # memory off, or no choice can fill a device
        return True
    if live_encodable(p):
        add_live_memory(m, p, starts, ends, presence, modes, makespan, horizon)
        return True
    return add_static_memory(m, p, presence, modes) and envelope_binds(p) is None


def _device_literals(m: cp_model.CpModel, p: Problem, lits: dict[int, Any]) -> dict[int, Any]:
    """``on[v, d]``: some mode of ``v`` on ``d`` is chosen (the OR of those modes)."""
    by_dev: dict[int, list] = {}
    for k, lit in lits.items():
        for d in p.modes.devices_of(k):
            by_dev.setdefault(d, []).append(lit)
    out = {}
    for d, xs in by_dev.items():
        if len(xs) == 1:
            out[d] = xs[0]
        else:
            y = m.new_bool_var("")
            m.add_max_equality(y, xs)
            out[d] = y
    return out


def mode_delay(p: Problem, t: int, mu: int, mv: int) -> int:
    """Time from the end of a producer in mode ``mu`` until tensor ``t`` is on every device of
    a consumer's mode ``mv``: per device, 0 if ``mu`` holds it, else the fastest transfer."""
    have = p.modes.devices_of(mu)
    delay = 0
    for b in p.modes.devices_of(mv):
        if b not in have:
            delay = max(delay, min(int(p.tensor_comm[t, a, b]) for a in have))
    return delay


def _add_mode_precedence(
    m: cp_model.CpModel, p: Problem, starts: list, ends: list, modes: list[dict[int, Any]]
) -> None:
    # For each edge u->v and each mode mv of v:
    #   start_v >= end_u + sum_mu delay(mu, mv) x_mu   if x_mv.
    for k in range(p.num_edges):
        u, v, t = int(p.edge_src[k]), int(p.edge_dst[k]), int(p.edge_tensor[k])
        m.add(starts[v] >= ends[u])
        for mv, lit_v in modes[v].items():
            terms = [(mode_delay(p, t, mu, mv), lit_u) for mu, lit_u in modes[u].items()]
            terms = [(c, lit) for c, lit in terms if c > 0]
            if terms:
                m.add(starts[v] >= ends[u] + sum(c * lit for c, lit in terms)).only_enforce_if(
                    lit_v
                )


def _add_makespan(
    m: cp_model.CpModel,
    p: Problem,
    starts: list,
    ends: list,
    tail: np.ndarray,
    lower: int,
    horizon: int,
) -> cp_model.IntVar:
    # makespan in [lower, horizon]; makespan >= start_v + tail_v, and >= end_v for sinks.
    makespan = m.new_int_var(max(lower, 0), horizon, "makespan")
    for v in range(p.n):
        m.add(makespan >= starts[v] + int(tail[v]))
        if not p.succs[v]:
            m.add(makespan >= ends[v])
    return makespan


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
    # For each link l: the transfers routed over l are disjoint. A transfer moves tensor t
    # from a to b once (on[src(t), a] and some reader of t on b); every reader on b waits
    # for it.
    by_link: dict[int, list] = {}
    out = {}
    for t in range(p.tensors.num_tensors):
        u = int(p.tensors.src[t])
        cons = [int(c) for c in p.tensors.consumers(t)]
        label = p.tensors.names[t]
        for a, lit_a in presence[u].items():
            for b in range(p.num_devices):
                c_ab = int(p.tensor_comm[t, a, b])
                route = p.route_links.get((a, b), ())
                readers = [c for c in cons if b in presence[c]]
                if a == b or c_ab == 0 or not route or not readers:
                    continue
                need = m.new_bool_var(f"need_{label}_{b}")
                m.add_max_equality(need, [presence[c][b] for c in readers])
                both = m.new_bool_var(f"xfer_{label}_{a}_{b}")
                m.add_bool_and([lit_a, need]).only_enforce_if(both)
                m.add_bool_or([lit_a.Not(), need.Not(), both])
                ts = m.new_int_var(0, horizon, f"xstart_{label}_{a}_{b}")
                iv = m.new_optional_fixed_size_interval_var(ts, c_ab, both, f"xfer_iv_{t}_{a}_{b}")
                m.add(ts >= ends[u]).only_enforce_if(both)
                for c in readers:
                    m.add(starts[c] >= ts + c_ab).only_enforce_if([both, presence[c][b]])
                for link in route:
                    by_link.setdefault(link, []).append(iv)
                out[(t, a, b)] = ts
    for ivs in by_link.values():
        if len(ivs) > 1:
            m.add_no_overlap(ivs)
    return out


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
    modes: list[dict[int, Any]],
    makespan: cp_model.IntVar,
) -> None:
    mode, start = hint
    fin = start + p.mode_dur[mode]
    for v in range(p.n):
        m.add_hint(starts[v], int(start[v]))
        m.add_hint(ends[v], int(fin[v]))
        lits = distinct_choices(modes[v])
        if len(lits) < 2:
            continue  # a single choice is the constant 1 (shared by every such op): no hint
        chosen = modes[v].get(int(mode[v]))
        for _k, lit in lits:
            m.add_hint(lit, lit is chosen)
    m.add_hint(makespan, int(fin.max()))
