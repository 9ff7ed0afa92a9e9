"""Exact placement and scheduling as a mixed-integer program (OR-Tools ``pywraplp``).

Why disjunctive, not time-indexed: a time-indexed MIP needs one binary per (op, device,
time unit), and the integer quantum of a :class:`~hetsched.problem.Problem` is chosen so
that the makespan is ~1000 x (ops on the longest path) units; that is millions of columns
for a 20-op model. The disjunctive (big-M) model below has ``O(n^2 D)`` rows independent of
the time scale, so its scope is *small graphs*: :data:`MAX_OPS` ops and
:data:`MAX_DISJUNCTIONS` pair-device rows; larger instances raise
:class:`~hetsched.errors.SolverError` on entry (use ``cpsat``). Link contention is not
modelled (``SolverError`` on entry); static memory is.

Model (integer units; ``M`` = per-row tightest big-M from the windows):

* ``on_v_d`` binary per allowed (op, device), ``sum_d on_v_d = 1``; ``start_v`` continuous
  in the window ``[head_v, H - tail_v]`` with ``H`` the heuristic's makespan.
* Precedence ``start_v >= start_u + sum_d dur[u,d] on_u_d + delay``; the delay is
  ``c (on_u_a - on_v_a)`` when edge ``e`` costs ``c`` from ``a`` to every other device,
  else ``comm[e,a,b] (on_u_a + on_v_b - 1)`` per pair.
* ``before_u_v`` binary for pairs that may share a device and are not ordered by a path;
  per common device ``d``: ``start_v >= start_u + dur_u - M (3 - on_u_d - on_v_d - before)``
  and the mirror row.
* ``makespan >= start_v + sum_d dur on_v_d`` and ``>= start_v + tail_v``; per-device load
  ``<= makespan``; static memory knapsack; symmetry breaking between identical devices.

Backends are tried in :data:`BACKENDS` order (the first that the ``ortools`` wheel ships);
SCIP and CBC take the heuristic plan as a hint (:data:`HINTED_BACKENDS`). Thread count (1)
and seed are set explicitly.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0)], comm_latency=np.array([[0, 1], [1, 0]]), quantum=1.0)
>>> plan = solve_milp(p, time_limit=5, seed=0)
>>> plan.status, plan.makespan
('optimal', 7.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ortools.linear_solver import pywraplp

from hetsched.errors import SolverError
from hetsched.plan import Plan, plan_from_schedule
from hetsched.plan.memory import envelope_binds, linear_terms
from hetsched.problem import Problem
from hetsched.schedule.bounds import heads_and_tails
from hetsched.schedule.latency.listsched import retime
from hetsched.schedule.latency.rounding import search_floored
from hetsched.schedule.latency.warmstart import (
    canonical_devices,
    prepare_hint,
    require_warm_start,
    start_order,
)
from hetsched.solver import Capabilities, SolveContext, Solver

__all__ = [
    "BACKENDS",
    "HINTED_BACKENDS",
    "MAX_DISJUNCTIONS",
    "MAX_OPS",
    "MilpModel",
    "build_model",
    "create_backend",
    "reachability",
    "solve_milp",
]

BACKENDS = ("SCIP", "HIGHS", "CBC")
# pywraplp's HiGHS interface crashes on SetHint (ortools 9.15); the others take the hint.
HINTED_BACKENDS = ("SCIP", "CBC")
# Scope of the disjunctive model (see the module docstring).
MAX_OPS = 150
MAX_DISJUNCTIONS = 60_000


@dataclass
class MilpModel:
    """A built MIP and the variables solvers read back."""

    solver: Any
    backend: str
    node_to_start: list[Any]
    node_device_to_on: list[dict[int, Any]]
    pair_to_before: dict[tuple[int, int], Any]
    makespan: Any
    horizon: int
    disjunctions: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


def create_backend(backend: str | None = None) -> tuple[Any, str]:
    """The MIP solver object and its name: ``backend`` or the first of :data:`BACKENDS`.

    >>> create_backend("SCIP")[1]
    'SCIP'
    """
    names = (backend.upper(),) if backend else BACKENDS
    for name in names:
        solver = pywraplp.Solver.CreateSolver(name)
        if solver is not None:
            return solver, name
    msg = f"no MIP backend available among {', '.join(names)} in this ortools build"
    raise SolverError(msg)


def _pairs(p: Problem, lo: np.ndarray, hi: np.ndarray) -> dict[tuple[int, int], list[int]]:
    """Unordered op pairs and the devices on which they could overlap."""
    reach = reachability(p)
    out: dict[tuple[int, int], list[int]] = {}
    for u in range(p.n):
        for v in range(u + 1, p.n):
            if (reach[u] >> v) & 1:
                continue
            devs = []
            for d in set(p.allowed_devices[u]) & set(p.allowed_devices[v]):
                du, dv = int(p.dur[u, d]), int(p.dur[v, d])
                if du == 0 or dv == 0 or hi[u] + du <= lo[v] or hi[v] + dv <= lo[u]:
                    continue
                devs.append(d)
            if devs:
                out[(u, v)] = sorted(devs)
    return out


def build_model(
    problem: Problem, *, horizon: int, lower: int = 0, backend: str | None = None
) -> MilpModel:
    """Build the disjunctive MIP with makespan in ``[lower, horizon]``; check the scope."""
    p = problem
    if p.link_contention:
        msg = "milp does not model link contention; use cpsat"
        raise SolverError(msg)
    if p.n > MAX_OPS:
        msg = f"{p.n} ops is out of scope for milp (at most {MAX_OPS}); use cpsat"
        raise SolverError(msg)
    head, tail = heads_and_tails(p)
    lo, hi = head.astype(np.int64), horizon - tail.astype(np.int64)
    pairs = _pairs(p, lo, hi)
    rows = 2 * sum(len(d) for d in pairs.values())
    if rows > MAX_DISJUNCTIONS:
        msg = (
            f"{rows} disjunctive rows is out of scope for milp (max {MAX_DISJUNCTIONS}); use cpsat"
        )
        raise SolverError(msg)
    solver, name = create_backend(backend)
    starts = [solver.NumVar(float(lo[v]), float(hi[v]), f"start_{p.names[v]}") for v in range(p.n)]
    on = [
        {d: solver.BoolVar(f"on_{p.names[v]}_{p.devices[d]}") for d in p.allowed_devices[v]}
        for v in range(p.n)
    ]
    makespan = solver.IntVar(float(max(lower, 0)), float(horizon), "makespan")
    built = MilpModel(solver, name, starts, on, {}, makespan, horizon, rows)
    _add_assignment(built, p)
    _add_precedence(built, p)
    _add_disjunctions(built, p, pairs, lo, hi)
    _add_makespan(built, p, tail)
    _add_load(built, p)
    if p.use_memory:
        _add_memory(built, p)
    _add_symmetry_breaking(built, p)
    solver.Minimize(makespan)
    return built


def _dur_expr(built: MilpModel, p: Problem, v: int) -> Any:
    return sum(int(p.dur[v, d]) * x for d, x in built.node_device_to_on[v].items())


def _add_assignment(built: MilpModel, p: Problem) -> None:
    # For each op v: sum_d on[v,d] = 1.
    for v in range(p.n):
        built.solver.Add(sum(built.node_device_to_on[v].values()) == 1, f"assign_{p.names[v]}")


def _add_precedence(built: MilpModel, p: Problem) -> None:
    # For each edge u->v: start_v >= start_u + dur_u + comm[e, dev(u), dev(v)] (linearised).
    s, on, add = built.node_to_start, built.node_device_to_on, built.solver.Add
    for k in range(p.num_edges):
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        base = s[u] + _dur_expr(built, p, u)
        add(s[v] >= base, f"prec_{k}")
        for a, x_ua in on[u].items():
            row = {b: int(p.comm[k, a, b]) for b in on[v] if b != a}
            if not row or max(row.values()) == 0:
                continue
            if min(row.values()) == max(row.values()):
                c = max(row.values())
                x_va = on[v].get(a, 0)
                add(s[v] >= base + c * (x_ua - x_va), f"comm_{k}_{a}")
                continue
            for b, c in row.items():
                if c > 0:
                    add(s[v] >= base + c * (x_ua + on[v][b] - 1), f"comm_{k}_{a}_{b}")


def _add_disjunctions(
    built: MilpModel,
    p: Problem,
    pairs: dict[tuple[int, int], list[int]],
    lo: np.ndarray,
    hi: np.ndarray,
) -> None:
    # Pairs u,v on a common device d: before_uv -> start_v >= end_u, else start_u >= end_v.
    s, on, solver = built.node_to_start, built.node_device_to_on, built.solver
    for (u, v), devs in pairs.items():
        y = solver.BoolVar(f"before_{p.names[u]}_{p.names[v]}")
        built.pair_to_before[(u, v)] = y
        for d in devs:
            du, dv = int(p.dur[u, d]), int(p.dur[v, d])
            m_uv = float(hi[u] + du - lo[v])
            m_vu = float(hi[v] + dv - lo[u])
            both = on[u][d] + on[v][d]
            solver.Add(s[v] >= s[u] + du - m_uv * (3 - both - y), f"uv_{u}_{v}_{d}")
            solver.Add(s[u] >= s[v] + dv - m_vu * (2 - both + y), f"vu_{u}_{v}_{d}")


def _add_makespan(built: MilpModel, p: Problem, tail: np.ndarray) -> None:
    # For each op v: makespan >= start_v + dur_v and makespan >= start_v + tail_v.
    for v in range(p.n):
        sv = built.node_to_start[v]
        built.solver.Add(built.makespan >= sv + _dur_expr(built, p, v), f"end_{p.names[v]}")
        built.solver.Add(built.makespan >= sv + int(tail[v]), f"tail_{p.names[v]}")


def _add_load(built: MilpModel, p: Problem) -> None:
    # For each device d: sum_v dur[v,d] on[v,d] <= makespan.
    for d in range(p.num_devices):
        terms = [int(p.dur[v, d]) * x[d] for v, x in enumerate(built.node_device_to_on) if d in x]
        if terms:
            built.solver.Add(sum(terms) <= built.makespan, f"load_{p.devices[d]}")


def _add_memory(built: MilpModel, p: Problem) -> None:
    # For each device d: sum_v bytes[v,d] on[v,d] + sum_t bytes_t recv[t,d] <= capacity[d],
    # recv[t,d] >= on[c,d] - on[src(t),d] for each reader c (hetsched.plan.memory).
    op_bytes, buffers = linear_terms(p)
    on, solver = built.node_device_to_on, built.solver
    terms: dict[int, list] = {d: [] for d in range(p.num_devices)}
    for v in range(p.n):
        for d, x in on[v].items():
            if op_bytes[v, d] > 0:
                terms[d].append(float(op_bytes[v, d]) * x)
    for t, d, readers in buffers:
        u = int(p.tensors.src[t])
        recv = solver.NumVar(0.0, 1.0, f"recv_{t}_{d}")
        for c in readers.tolist():
            solver.Add(recv >= on[c][d] - on[u].get(d, 0), f"recv_{t}_{d}_{c}")
        terms[d].append(float(p.tensors.nbytes[t]) * recv)
    for d, ts in terms.items():
        if ts and math.isfinite(p.capacity[d]):
            solver.Add(sum(ts) <= float(p.capacity[d]), f"mem_{p.devices[d]}")


def _add_symmetry_breaking(built: MilpModel, p: Problem) -> None:
    # Identical devices g_0 < g_1 < ...: on[v,g_j] <= sum_{u<v} on[u,g_{j-1}] (first use order).
    on = built.node_device_to_on
    for g in p.device_groups:
        if len(g) < 2:
            continue
        for v in range(p.n):
            if g[0] not in on[v]:
                continue
            for j in range(1, len(g)):
                earlier = [on[u][g[j - 1]] for u in range(v) if g[j - 1] in on[u]]
                built.solver.Add(on[v][g[j]] <= sum(earlier), f"sym_{v}_{g[j]}")


def _set_hint(built: MilpModel, p: Problem, assign: np.ndarray, start: np.ndarray) -> None:
    """A complete hint: placement, starts, pair orders and makespan of a feasible plan."""
    variables, values = [], []
    for v in range(p.n):
        variables.append(built.node_to_start[v])
        values.append(float(start[v]))
        for d, x in built.node_device_to_on[v].items():
            variables.append(x)
            values.append(float(d == assign[v]))
    for (u, v), y in built.pair_to_before.items():
        variables.append(y)
        values.append(float((start[u], u) < (start[v], v)))
    variables.append(built.makespan)
    values.append(float((start + p.dur[np.arange(p.n), assign]).max()))
    built.solver.SetHint(variables, values)


def _configure(built: MilpModel, seed: int, seconds: float) -> None:
    solver = built.solver
    solver.SetTimeLimit(max(10, int(seconds * 1000)))
    solver.SetNumThreads(1)
    solver.SuppressOutput()
    params = {"SCIP": f"randomization/randomseedshift = {seed}", "HIGHS": f"random_seed = {seed}"}
    if built.backend in params:
        solver.SetSolverSpecificParametersAsString(params[built.backend])


def _extract(built: MilpModel, p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Placement and earliest integer starts for the MIP's device orders (re-timed)."""
    assign = np.array(
        [max(x, key=lambda d: x[d].solution_value()) for x in built.node_device_to_on],
        dtype=np.int64,
    )
    raw = np.array([round(s.solution_value()) for s in built.node_to_start], dtype=np.int64)
    start, _ = retime(p, assign, start_order(raw))
    return assign, start


def _milp_integer(
    problem: Problem,
    ctx: SolveContext,
    *,
    backend: str | None = None,
    export_model: str | None = None,
) -> Plan:
    """Minimise makespan with the disjunctive MIP; never worse than the warm start.

    Without a hint the best of HEFT/PEFT/CPOP is the warm start; it sets the big-M horizon.
    ``export_model`` writes the model in LP format for debugging.

    Raises
    ------
    SolverError
        Instance out of scope, or no MIP backend.
    """
    warm = require_warm_start(prepare_hint(problem, ctx), "milp")
    h_makespan, lb = warm.makespan, warm.lb
    hint_plan = warm.plan.with_(searched=envelope_binds(problem) is None)
    if h_makespan <= lb:
        return hint_plan.with_(stats={"proved_by": "bounds", "hint_solver": warm.plan.solver})
    built = build_model(problem, horizon=h_makespan, lower=lb, backend=backend)
    if built.backend in HINTED_BACKENDS:
        _set_hint(built, problem, canonical_devices(problem, warm.assign), warm.start)
    if export_model:
        with open(export_model, "w", encoding="utf-8") as fh:
            fh.write(built.solver.ExportModelAsLpFormat(False))
    _configure(built, ctx.seed, ctx.remaining())
    remove = ctx.stop.on_stop(built.solver.InterruptSolve)
    try:
        status = built.solver.Solve()
    finally:
        remove()
    stats: dict[str, Any] = {
        "backend": built.backend,
        "mip_status": _STATUS_NAMES.get(status, str(status)),
        "nodes": built.solver.nodes(),
        "disjunctions": built.disjunctions,
        "variables": built.solver.NumVariables(),
        "constraints": built.solver.NumConstraints(),
        "hint_solver": warm.plan.solver,
        "hint_makespan": warm.plan.makespan,
    }
    if status == pywraplp.Solver.INFEASIBLE:
        msg = f"the MIP is infeasible at horizon {h_makespan}, but the hint is feasible (bug)"
        raise SolverError(msg)
    if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        # No solution within the limit (NOT_SOLVED / ABNORMAL): the warm start is the answer.
        return hint_plan.with_(stats={**stats, "fallback": "hint"})
    assign, start = _extract(built, problem)
    value = int((start + problem.dur[np.arange(problem.n), assign]).max())
    exact = envelope_binds(problem) is None  # else the memory rows are a restriction
    bound = max(lb, math.ceil(built.solver.Objective().BestBound() - 1e-6)) if exact else lb
    if status == pywraplp.Solver.OPTIMAL and exact:
        bound = max(bound, value)
    bound = min(bound, value)
    ctx.report("milp", value * problem.quantum, bound * problem.quantum)
    if value >= h_makespan and bound < h_makespan:
        return hint_plan.with_(
            lower_bound=bound * problem.quantum,
            stats={**stats, "fallback": "hint (no improvement)"},
        )
    return plan_from_schedule(
        problem,
        assign=assign,
        start=start,
        solver="milp",
        searched=exact,
        lower_bound=bound,
        stats=stats,
        baselines=warm.plan.baselines,
    )


def _milp(problem: Problem, ctx: SolveContext, **options: Any) -> Plan:
    """:func:`_milp_integer` on the rounded-down twin (:mod:`.rounding`): a real bound."""
    return search_floored(problem, ctx, lambda p, c: _milp_integer(p, c, **options))


solve_milp = Solver(
    "milp",
    _milp,
    Capabilities(hint=True, anytime=False, exact=True, links=False),
    options=("backend", "export_model"),
)


def reachability(p: Problem) -> list[int]:
    """``reach[u]`` is a bitset of the ops reachable from ``u`` by a path of edges."""
    reach = [0] * p.n
    for u in range(p.n - 1, -1, -1):
        for v, _ in p.succs[u]:
            reach[u] |= (1 << v) | reach[v]
    return reach


_STATUS_NAMES = {
    pywraplp.Solver.OPTIMAL: "OPTIMAL",
    pywraplp.Solver.FEASIBLE: "FEASIBLE",
    pywraplp.Solver.INFEASIBLE: "INFEASIBLE",
    pywraplp.Solver.UNBOUNDED: "UNBOUNDED",
    pywraplp.Solver.ABNORMAL: "ABNORMAL",
    pywraplp.Solver.NOT_SOLVED: "NOT_SOLVED",
    pywraplp.Solver.MODEL_INVALID: "MODEL_INVALID",
}
