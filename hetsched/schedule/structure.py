"""Colocation and the segment cap as a restriction: every op pinned, so any solver honours them.

The exact solvers model colocated groups and the cap on segments as constraints. Every other
solver runs on this restriction instead: each colocated group is pinned to the one device
all its ops may use where they take least time together, then, with a cap of ``K``
segments, a dynamic program over the op order picks at most ``K`` runs of ops and one
device per run with the least total op time (transfers are not counted; the list scheduler
times them), and pins every op to its run's device. A plan of the restriction is a plan of
the problem; its bound is not, so solvers on it claim the problem's own bound only
(:func:`hetsched.solver.run_solver`).

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> from hetsched.problem.constraints import Constraints
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[1.0, 4.0], [5.0, 1.0], [1.0, 3.0]]),
...     edges=[(0, 1, 0.0), (1, 2, 0.0)], quantum=1.0)
>>> r, how = structure_restriction(p.with_constraints(Constraints(max_segments=2)))
>>> [r.devices[int(r.modes.devs[r.modes.dev_start[m]])] for m in range(r.num_modes)], how
(['x', 'y', 'y'], 'at most 2 segments: least op time along the op order')
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hetsched.errors import InfeasibleError, SolverError
from hetsched.problem.constraints import check_devices_left
from hetsched.problem.problem import Problem

__all__ = ["structure_assignment", "structure_restriction"]


def structure_restriction(problem: Problem) -> tuple[Problem, str]:
    """``problem`` with every op of a colocated group, and with a segment cap every op,
    pinned to one device (module docstring); and a phrase saying how."""
    rules = problem.constraints
    if rules is None or not rules.structural:
        return problem, ""
    allowed = problem.allowed.copy()
    dur = np.where(allowed, problem.dur, 0).astype(np.float64)
    how = []
    check_devices_left(rules, allowed, problem.names)  # every group has a common device
    for group in rules.groups:
        members = list(group)
        common = allowed[members].all(axis=0)
        total = np.where(common, dur[members].sum(axis=0), np.inf)
        d = int(np.argmin(total))
        allowed[members] = False
        allowed[members, d] = True
    if rules.groups:
        how.append("each colocated group on its least-time device")
    if rules.max_segments is not None:
        chosen = _segment_devices(np.where(allowed, dur, np.inf), rules.max_segments)
        if chosen is None:  # the groups' devices were chosen badly, or nothing works
            chosen = structure_assignment(problem)
            how = ["a device per op that meets every rule (CP-SAT, op time not weighed)"]
        else:
            how.append(f"at most {rules.max_segments} segments: least op time along the op order")
        allowed[:] = False
        allowed[np.arange(problem.n), chosen] = True
    keep = [
        m
        for m in range(problem.num_modes)
        if len(problem.modes.devices_of(m)) == 1
        and allowed[int(problem.modes.op[m]), problem.modes.devices_of(m)[0]]
    ]
    restricted = problem.select_modes(np.array(keep, dtype=np.int64))
    pins_only = dataclasses.replace(rules, groups=(), group_labels=(), max_segments=None)
    return dataclasses.replace(restricted, constraints=pins_only), "; ".join(how)


def structure_assignment(problem: Problem, *, time_limit: float = 10.0) -> np.ndarray:
    """A device per op (single-device modes) meeting the colocated groups and the segment
    cap, found by CP-SAT over the assignment alone; :class:`InfeasibleError` naming the
    rules that cannot hold together (a core of the assumptions, one per rule)."""
    from ortools.sat.python import cp_model

    from hetsched.schedule.cpsolver import new_cp_solver

    rules = problem.constraints
    assert rules is not None
    m = cp_model.CpModel()
    allowed = problem.allowed
    x = [{d: m.new_bool_var(f"x{v}_{d}") for d in np.flatnonzero(allowed[v]).tolist()}
         for v in range(problem.n)]  # fmt: skip
    for v in range(problem.n):
        m.add_exactly_one(list(x[v].values()))
    label_of: dict[int, str] = {}
    assumptions = []

    def assumption(label: str) -> cp_model.IntVar:
        lit = m.new_bool_var(label)
        label_of[lit.index] = label
        assumptions.append(lit)
        return lit

    for group, label in zip(rules.groups, rules.group_labels, strict=True):
        a = assumption(label)
        for d in range(problem.num_devices):
            on = [x[v].get(d) for v in group]
            for lit in on:
                if lit is None:  # a member cannot use d: none may
                    for other in on:
                        if other is not None:
                            m.add(other == 0).only_enforce_if(a)
                    break
            else:
                for lit in on[1:]:
                    m.add(lit == on[0]).only_enforce_if(a)
    if rules.max_segments is not None and problem.n > 1:
        a = assumption(f"max_segments {rules.max_segments}")
        switches = []
        for v in range(1, problem.n):
            sw = m.new_bool_var(f"sw{v}")
            for d, lit in x[v].items():
                prev = x[v - 1].get(d)
                m.add(sw >= lit - prev if prev is not None else sw >= lit)
            switches.append(sw)
        m.add(sum(switches) <= rules.max_segments - 1).only_enforce_if(a)
    m.add_assumptions(assumptions)
    solver = new_cp_solver(time_limit=time_limit, workers=1, seed=0)
    status = solver.solve(m)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return np.array([next(d for d, lit in x[v].items() if solver.boolean_value(lit))
                         for v in range(problem.n)], dtype=np.int64)  # fmt: skip
    if status != cp_model.INFEASIBLE:
        msg = f"could not decide in {time_limit:g} s whether the colocation and segment rules hold"
        raise SolverError(msg)
    core = [label_of[i] for i in solver.sufficient_assumptions_for_infeasibility()]
    ops = {v for group, label in zip(rules.groups, rules.group_labels, strict=True)
           if label in core for v in group}  # fmt: skip
    if any(c.startswith("max_segments") for c in core):
        ops = set(range(problem.n))
    pins = sorted({r for v in ops for r in rules.why.get(v, ())})
    extra = f" (with {', '.join(pins)})" if pins else ""
    msg = f"these rules cannot all hold: {', '.join(core)}{extra}"
    raise InfeasibleError(msg)


def _segment_devices(cost: np.ndarray, cap: int) -> np.ndarray | None:
    """A device per op (``cost[v, d]``, ``inf`` = not allowed) with at most ``cap`` runs
    along the op order and the least total cost; ``None`` when no such choice exists."""
    n, d = cost.shape
    k_max = min(cap, n)
    best = np.full((k_max, d), np.inf)  # best[k, j]: ops so far in k+1 runs, last on j
    best[0] = cost[0]
    back = np.zeros((n, k_max, d), dtype=np.int64)  # previous device (or -1: same run)
    cols = np.arange(d)[None, :]
    for v in range(1, n):
        # switching onto j: the best state with one run fewer on another device than j
        order = np.argsort(best, axis=1)
        first = order[:, 0]
        second = order[:, 1] if d > 1 else first
        rows = np.arange(k_max)
        low1, low2 = best[rows, first], best[rows, second] if d > 1 else np.full(k_max, np.inf)
        on_first = first[:, None] == cols
        cand = np.where(on_first, low2[:, None], low1[:, None])
        from_dev = np.where(on_first, second[:, None], first[:, None])
        switch = np.full((k_max, d), np.inf)
        switch[1:] = cand[:-1]
        prev = np.full((k_max, d), -1, dtype=np.int64)
        prev[1:] = np.where(switch[1:] < best[1:], from_dev[:-1], -1)
        best = np.minimum(best, switch) + cost[v][None, :]
        back[v] = prev
    flat = int(np.argmin(best))
    if not np.isfinite(best.flat[flat]):
        return None
    out = np.empty(n, dtype=np.int64)
    k, j = divmod(flat, d)
    for v in range(n - 1, -1, -1):
        out[v] = j
        p = int(back[v, k, j])
        if p >= 0:
            k, j = k - 1, p
    return out
