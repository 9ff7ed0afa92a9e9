"""Independent plan validation: re-check every constraint, name the first violation.

:func:`validate` knows nothing about the solver that produced a plan. It converts the
plan's real times back to the problem's integer units and checks: every op in one of its
own modes (devices that support it, memory that fits it), durations, that no device runs
two ops at once (a multi-device mode occupies all its devices), every tensor on every device
that reads it before the reader starts (produced there, or moved there once by a transfer
from a device of its producer's mode), link overlap (when link contention is on), memory
(:mod:`~hetsched.plan.memory`, when memory is on), the error budget (the modes' errors
added up, when there is one), the makespan and the bound.

Examples
--------
>>> import numpy as np
>>> from hetsched.plan import plan_from_schedule
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b"], devices=["cpu", "gpu"],
...     exec_time=np.array([[4.0, 1.0], [3.0, 2.0]]), edges=[(0, 1, 10.0)],
...     comm_inv_bandwidth=np.array([[0.0, 0.1], [0.1, 0.0]]), quantum=1.0)
>>> ok = plan_from_schedule(p, assign=[1, 1], start=[0, 1], solver="manual")
>>> validate(ok, p)
>>> bad = plan_from_schedule(p, assign=[1, 0], start=[0, 1], solver="manual")
>>> validate(bad, p)
Traceback (most recent call last):
...
hetsched.errors.PlanError: node 'b' on 'cpu' starts at 1 but tensor 'a->b' from 'a' ...
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from hetsched.errors import PlanError
from hetsched.plan.memory import Live, MemoryProfile, memory_profile
from hetsched.plan.plan import Plan, Transfer, mode_ids
from hetsched.problem import Problem
from hetsched.problem.constraints import count_segments
from hetsched.problem.problem import ERROR_UNIT

__all__ = ["graph_mismatch", "memory_overflow_message", "validate"]


def validate(plan: Plan, problem: Problem, *, tol: float = 1e-6) -> None:
    """Check every constraint of ``plan`` against ``problem``; raise :class:`PlanError`.

    Independent of any solver: works on real times converted back to units, with an
    absolute tolerance of ``tol`` units.
    """
    other = graph_mismatch(plan, problem.name, problem.n, problem.graph_sha256)
    if other:
        raise PlanError(other)
    if problem.constraints is not None:
        _check_constraints(plan, problem)
    m = mode_ids(plan, problem)
    q = problem.quantum
    names = problem.names
    st = np.array([plan.start[x] / q for x in names])
    fi = np.array([plan.finish[x] / q for x in names])
    for i in range(problem.n):
        if not (math.isfinite(st[i]) and math.isfinite(fi[i])) or st[i] < -tol:
            msg = f"node {names[i]!r} has invalid times start={plan.start[names[i]]!r}"
            raise PlanError(msg)
    want = problem.mode_dur[m]
    wrong = np.flatnonzero(np.abs(fi - st - want) > tol)
    if wrong.size:
        i = int(wrong[0])
        msg = (
            f"node {names[i]!r} on {_where(problem, int(m[i]))} runs {_fmt(fi[i] - st[i])} "
            f"units, cost table says {want[i]}"
        )
        raise PlanError(msg)
    _check_devices(problem, m, st, fi, tol)
    _check_chains(problem, m)
    xfers = _transfers_by_target(plan, problem, m, tol)
    _check_inputs(problem, m, fi, st, xfers, tol)
    if problem.link_contention:
        _check_links(problem, xfers, tol)
    budget = problem.error_budget_units
    if budget is not None:
        used = int(problem.mode_error_units[m].sum())
        if used > budget:
            msg = (
                f"plan's predicted error {used * ERROR_UNIT:.6g} exceeds the error budget "
                f"{problem.error_budget:.6g}"
            )
            raise PlanError(msg)
    if problem.use_memory:
        profile = memory_profile(problem, m, st, fi, xfers)
        d = profile.over(problem.capacity)
        if d is not None:
            raise PlanError(memory_overflow_message(problem, profile, d))
    ms = float(fi.max())
    if abs(plan.makespan / q - ms) > tol:
        msg = f"plan makespan {plan.makespan!r} is not the last finish time {ms * q!r}"
        raise PlanError(msg)
    if plan.lower_bound > plan.makespan * (1 + 1e-9) + tol * q:
        msg = f"plan lower bound {plan.lower_bound!r} exceeds its makespan {plan.makespan!r}"
        raise PlanError(msg)


def _check_chains(problem: Problem, m: np.ndarray) -> None:
    """A mode that keeps its output sharded is followed by consumers that read it so
    (:mod:`hetsched.problem.chains`)."""
    for k, v, ok in problem.chain_rules:
        u = int(problem.modes.op[k])
        if int(m[u]) == k and int(m[v]) not in ok:
            msg = (
                f"node {problem.names[u]!r} leaves its output sharded on {_where(problem, k)}, "
                f"but its consumer {problem.names[v]!r} on {_where(problem, int(m[v]))} "
                "does not read it so"
            )
            raise PlanError(msg)


def _check_constraints(plan: Plan, problem: Problem) -> None:
    """Pins and forbids (each op's devices), colocated groups (one device set), the cap on
    segments (device changes along the op order)."""
    rules = problem.constraints
    assert rules is not None
    names = problem.names
    devs = [plan.modes[x].devices for x in names]
    for v, ds in enumerate(devs):
        bad = [d for d in ds if not rules.allowed[v, problem.device_index[d]]]
        if bad:
            msg = f"node {names[v]!r} runs on {bad[0]!r}, which {rules.rules_of(v)} rule(s) out"
            raise PlanError(msg)
    for group, label in zip(rules.groups, rules.group_labels, strict=True):
        split = sorted({devs[v] for v in group})
        if len(split) > 1:
            where = ", ".join(f"{names[v]} on {'+'.join(devs[v])}" for v in group[:4])
            msg = f"{label} is broken: {where}"
            raise PlanError(msg)
    if rules.max_segments is not None:
        count = count_segments(devs)
        if count > rules.max_segments:
            msg = f"plan has {count} segments along the op order; the cap is {rules.max_segments}"
            raise PlanError(msg)


def memory_overflow_message(problem: Problem, profile: MemoryProfile, d: int) -> str:
    """One line: the device, when it peaks, by how much, and the largest things it holds."""
    q = problem.quantum
    when = float(profile.peak_time[d])
    held = profile.live_at(d, when)[:3]

    def name(x: Live) -> str:
        label = problem.tensors.names[x.item] if x.what == "received" else problem.names[x.item]
        return f"{label} ({x.what}, {_mib(x.nbytes)})"

    return (
        f"device {problem.devices[d]!r} holds {_mib(float(profile.peak[d]))} at "
        f"{when * q:.6g} {problem.units}, over its capacity {_mib(float(problem.capacity[d]))}; "
        f"largest live: {', '.join(name(x) for x in held)}"
    )


def _mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:.2f} MiB" if nbytes >= 2**20 else f"{nbytes:.0f} B"


def graph_mismatch(plan: Plan, name: str, ops: int, sha256: str) -> str | None:
    """``None`` when ``plan`` is for the graph ``name`` (``ops`` ops, hash ``sha256``; an
    empty hash on either side is not checked), else a message saying which graph the plan is
    for, which it was given, and the likely reason they differ."""
    if not (plan.graph_sha256 and sha256) or plan.graph_sha256 == sha256:
        return None
    mine = len(plan.modes)
    if plan.graph_name != name:
        why = "give the graph the plan was solved for"
    elif mine < ops:
        why = "the plan's has fewer ops: solved with --coarsen or fusion? Build this one so too"
    elif mine > ops:
        why = "this one has fewer ops: coarsened or fused where the plan's graph was not?"
    else:
        why = "same op count, other sizes or costs: exported with other --size/--batch/--seq?"
    return (
        f"plan is for graph {plan.graph_name!r} ({mine} ops, sha256 {plan.graph_sha256[:12]}), "
        f"not {name!r} ({ops} ops, sha256 {sha256[:12]}): {why}"
    )


def _where(problem: Problem, mode: int) -> str:
    return " + ".join(repr(problem.devices[d]) for d in problem.modes.devices_of(mode))


def _check_devices(
    problem: Problem, m: np.ndarray, st: np.ndarray, fi: np.ndarray, tol: float
) -> None:
    """No device runs two ops at once (zero-length ops take no time)."""
    on: list[list[int]] = [[] for _ in problem.devices]
    for i, k in enumerate(m.tolist()):
        for d in problem.modes.devices_of(k):
            on[d].append(i)
    names = problem.names
    for d, ops in enumerate(on):
        arr = np.array(ops, dtype=np.int64)
        if arr.size < 2:
            continue
        arr = arr[np.lexsort((fi[arr], st[arr]))]
        busy = arr[fi[arr] - st[arr] > tol]
        for x, y in itertools.pairwise(busy.tolist()):
            if st[y] < fi[x] - tol:
                msg = (
                    f"nodes {names[x]!r} [{_fmt(st[x])}, {_fmt(fi[x])}) and {names[y]!r} "
                    f"[{_fmt(st[y])}, {_fmt(fi[y])}) overlap on {problem.devices[d]!r}"
                )
                raise PlanError(msg)


def _transfers_by_target(
    plan: Plan, problem: Problem, m: np.ndarray, tol: float
) -> dict[tuple[int, int], tuple[float, float, int]]:
    """``(tensor, device) -> (start, finish, source device)`` in units, each checked: from
    a device of the producer's mode, after the producer, for its transfer time, to a device
    where some op reads it and the producer's mode does not hold it."""
    tensor_id = {x: t for t, x in enumerate(problem.tensors.names)}
    edge_tensor = {
        (problem.names[int(u)], problem.names[int(v)]): int(t)
        for u, v, t in zip(problem.edge_src, problem.edge_dst, problem.edge_tensor, strict=True)
    }
    q = problem.quantum
    out: dict[tuple[int, int], tuple[float, float, int]] = {}
    for x in plan.transfers:
        t = _tensor_of(x, tensor_id, edge_tensor)
        u = int(problem.tensors.src[t])
        if x.src != problem.names[u]:
            msg = (
                f"transfer of tensor {x.tensor!r} names producer {x.src!r}, "
                f"not {problem.names[u]!r}"
            )
            raise PlanError(msg)
        a = problem.device_index.get(x.src_device, -1)
        b = problem.device_index.get(x.dst_device, -1)
        have = problem.modes.devices_of(int(m[u]))
        if a not in have:
            msg = (
                f"transfer of tensor {x.tensor!r} leaves {x.src_device!r}, but {x.src!r} runs "
                f"on {_where(problem, int(m[u]))}"
            )
            raise PlanError(msg)
        readers = [
            int(c) for c in problem.tensors.consumers(t) if b in problem.modes.devices_of(int(m[c]))
        ]
        if b in have or not readers:
            msg = f"transfer of tensor {x.tensor!r} to {x.dst_device!r}, where no op needs it"
            raise PlanError(msg)
        if (t, b) in out:
            msg = f"tensor {x.tensor!r} is moved to {x.dst_device!r} twice"
            raise PlanError(msg)
        t0, t1 = x.start / q, x.finish / q
        c = int(problem.tensor_comm[t, a, b])
        fin_u = problem.mode_dur[int(m[u])] + plan.start[x.src] / q
        if t0 < fin_u - tol or abs(t1 - t0 - c) > tol:
            msg = (
                f"transfer of tensor {x.tensor!r} to {x.dst_device!r} runs [{_fmt(t0)}, "
                f"{_fmt(t1)}) but must start after {_fmt(fin_u)} and last {c} units"
            )
            raise PlanError(msg)
        out[(t, b)] = (t0, t1, a)
    return out


def _tensor_of(
    x: Transfer, tensor_id: dict[str, int], edge_tensor: dict[tuple[str, str], int]
) -> int:
    if x.tensor in tensor_id:
        return tensor_id[x.tensor]
    if not x.tensor and len(x.dsts) == 1 and (x.src, x.dsts[0]) in edge_tensor:
        return edge_tensor[(x.src, x.dsts[0])]  # a first-format plan: one transfer per edge
    msg = f"plan moves tensor {x.tensor or x.src!r}, which the graph does not have"
    raise PlanError(msg)


def _check_inputs(
    problem: Problem,
    m: np.ndarray,
    fi: np.ndarray,
    st: np.ndarray,
    xfers: dict[tuple[int, int], tuple[float, float, int]],
    tol: float,
) -> None:
    """Every op starts after each input is on each of its devices."""
    names = problem.names
    for k in range(problem.num_edges):
        u, v, t = int(problem.edge_src[k]), int(problem.edge_dst[k]), int(problem.edge_tensor[k])
        have = problem.modes.devices_of(int(m[u]))
        for b in problem.modes.devices_of(int(m[v])):
            if b in have:
                arrive, c = fi[u], 0
            elif (t, b) in xfers:
                arrive = xfers[(t, b)][1]
                c = int(problem.tensor_comm[t, xfers[(t, b)][2], b])
            elif problem.link_contention and min(problem.tensor_comm[t, a, b] for a in have) > 0:
                msg = (
                    f"plan lacks the transfer of tensor {problem.tensors.names[t]!r} to "
                    f"{problem.devices[b]!r} for {names[v]!r}"
                )
                raise PlanError(msg)
            else:
                c = min(int(problem.tensor_comm[t, a, b]) for a in have)
                arrive = fi[u] + c
            if st[v] < arrive - tol:
                msg = (
                    f"node {names[v]!r} on {problem.devices[b]!r} starts at {_fmt(st[v])} but "
                    f"tensor {problem.tensors.names[t]!r} from {names[u]!r} on "
                    f"{_where(problem, int(m[u]))} arrives at {_fmt(arrive)} "
                    f"(finish {_fmt(fi[u])} + transfer {c})"
                )
                raise PlanError(msg)


def _check_links(
    problem: Problem, xfers: dict[tuple[int, int], tuple[float, float, int]], tol: float
) -> None:
    """Transfers on one link never overlap (a route holds all its links)."""
    by_link: dict[int, list[tuple[float, float, int, int]]] = {}
    for (t, b), (t0, t1, a) in xfers.items():
        if problem.tensor_comm[t, a, b] == 0:
            continue
        for link in problem.route_links.get((a, b), ()):
            by_link.setdefault(link, []).append((t0, t1, t, b))
    for link, items in by_link.items():
        items.sort()
        for (a0, a1, ta, ba), (b0, b1, tb, bb) in itertools.pairwise(items):
            if b0 < a1 - tol:
                ea = f"{problem.tensors.names[ta]}->{problem.devices[ba]}"
                eb = f"{problem.tensors.names[tb]}->{problem.devices[bb]}"
                msg = (
                    f"transfers {ea} [{_fmt(a0)}, {_fmt(a1)}) and {eb} [{_fmt(b0)}, {_fmt(b1)}) "
                    f"overlap on link {problem.link_names[link]!r}"
                )
                raise PlanError(msg)


def _fmt(x: float) -> str:
    r = round(x)
    return str(int(r)) if abs(x - r) < 1e-6 else f"{x:.6g}"
