"""Exact scheduling with a SAT solver (PySAT): time-indexed, incremental on the makespan.

Encoding of "is there a schedule with makespan <= T?" over integer time:

* Resources: each device, except that a class of interchangeable devices with free
  transfers among them (STG's identical processors) is one resource of capacity ``|G|``;
  units are given back afterwards by interval colouring. This pooling is what makes the
  STG set tractable.
* ``on_v_r`` picks the resource (exactly one); ``by_v_t`` is the order encoding of the
  start: ``by_v_t <=> start_v <= t``, ``by_v_t -> by_v_{t+1}``, within the window
  ``[head_v_r, H - tail_v_r]`` of per-device heads and tails (``H`` = heuristic makespan).
* ``run_v_r_t <- on_v_r & by_v_t & ~by_v_{t-dur}``; at most ``cap_r`` runs per resource and
  time step (sequential-counter encoding).
* Precedence with transfers, as order-encoded difference constraints: for each edge
  ``u -> v`` and resources ``a, b``: ``on_u_a & on_v_b & by_v_t -> by_u_{t - dur[u,a] - comm}``.
* ``makespan <= T`` is one activation literal ``le_T``: ``le_T & on_v_r -> by_v_{T - tail_v_r}``.

One solver instance is built for ``H`` and solved under the assumption ``le_T`` for
``T = best - 1`` downward; UNSAT at ``T`` proves ``T + 1`` optimal. The time limit and the
:class:`~hetsched.solver.StopToken` interrupt the running call (``solve_limited``),
so the solver must support interrupts (glucose, minisat, maplesat; not CaDiCaL here).

Scope: the number of start positions (sum over ops and resources of window width) must stay
below :data:`MAX_POSITIONS`. Measured: STG 50-task graphs on 2-8 identical processors need
1-10 thousand positions (30-90 thousand clauses) and are solved or proved in 0.1-5 s when the
optimum is found at all. A random 20-op, 3-device heterogeneous graph at the default quantum
(horizon ~13 000 units) needs 160 000 positions, 1.2 million clauses and 6 s just to build:
use ``cpsat`` there. The sweet spot is unit-cost graphs (STG, ``quantum=1``).
Link contention and a binding memory capacity are not modelled: ``SolverError`` on entry.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0)], comm_latency=np.array([[0, 1], [1, 0]]), quantum=1.0)
>>> plan = solve_sat(p, time_limit=5, seed=0)
>>> plan.status, plan.makespan
('optimal', 7.0)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pysat.card import CardEnc, EncType
from pysat.formula import IDPool
from pysat.solvers import Solver as PySatSolver

from hetsched.errors import SolverError
from hetsched.plan import Plan, plan_from_schedule
from hetsched.plan.memory import envelope_binds
from hetsched.problem import Problem
from hetsched.schedule.latency.listsched import retime
from hetsched.schedule.latency.rounding import search_floored
from hetsched.schedule.latency.warmstart import prepare_hint, require_warm_start, start_order
from hetsched.solver import Capabilities, SolveContext, Solver

__all__ = ["MAX_POSITIONS", "SatModel", "build_model", "device_windows", "solve_sat"]

MAX_POSITIONS = 2_000_000
_TRUE, _FALSE = 0, None  # constants in clauses; 0 is never a variable id in PySAT
_BIG = np.iinfo(np.int64).max // 8


@dataclass
class SatModel:
    """A built CNF and the variables the search reads back."""

    pool: IDPool
    clauses: list[list[int]]
    resources: list[tuple[int, ...]]
    horizon: int
    node_resource_to_on: list[dict[int, int]]
    lo: np.ndarray
    hi: np.ndarray
    tail: np.ndarray  # [n, R], _BIG where unusable
    positions: int = 0
    stats: dict[str, int] = field(default_factory=dict)

    def by(self, v: int, t: int) -> int | None:
        """Literal of ``start_v <= t`` (``_TRUE``/``_FALSE`` outside the window)."""
        if t < self.lo[v]:
            return _FALSE
        if t >= self.hi[v]:
            return _TRUE
        return self.pool.id(("by", v, t))


def device_windows(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Per-device head (earliest start) and tail (min time from start to the end), ``[n, D]``.

    ``_BIG``-sized values where the op is not allowed.

    >>> import numpy as np
    >>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
    ...     exec_time=np.array([[2.0, 1.0], [3.0, np.inf]]), edges=[(0, 1, 0.0)],
    ...     comm_latency=np.array([[0, 5], [5, 0]]), quantum=1.0)
    >>> h, t = device_windows(p)
    >>> int(h[1, 0]), int(t[0, 0]), int(t[0, 1])
    (2, 5, 9)
    """
    dur = np.where(p.allowed, p.dur, _BIG).astype(np.int64)
    fin = dur.copy()
    for v in range(p.n):
        ready = np.zeros(p.num_devices, dtype=np.int64)
        for u, k in p.preds[v]:
            ready = np.maximum(ready, (fin[u][:, None] + p.comm[k]).min(axis=0))
        fin[v] = np.where(p.allowed[v], ready + dur[v], _BIG)
    tail = dur.copy()
    for v in range(p.n - 1, -1, -1):
        after = np.zeros(p.num_devices, dtype=np.int64)
        for s, k in p.succs[v]:
            after = np.maximum(after, (p.comm[k] + tail[s][None, :]).min(axis=1))
        tail[v] = np.where(p.allowed[v], dur[v] + after, _BIG)
    head = np.where(p.allowed, fin - dur, _BIG)
    return head, tail


def _resources(p: Problem) -> list[tuple[int, ...]]:
    """Single devices, and pooled classes of interchangeable devices with free transfers."""
    out: list[tuple[int, ...]] = []
    for g in p.device_groups:
        sub = p.comm[:, list(g)][:, :, list(g)] if p.num_edges else np.zeros(0)
        if len(g) > 1 and not np.any(sub):
            out.append(tuple(g))
        else:
            out.extend((d,) for d in g)
    return sorted(out)


def _check_scope(p: Problem) -> None:
    if p.link_contention:
        msg = "sat does not model link contention; use cpsat"
        raise SolverError(msg)
    d = envelope_binds(p)  # not modelled: accepted only where it cannot bind
    if d is not None:
        msg = f"sat does not model memory capacity (binding on {p.devices[d]!r}); use cpsat"
        raise SolverError(msg)


def build_model(problem: Problem, *, horizon: int) -> SatModel:
    """CNF of "makespan <= horizon" (tighter makespans come as assumptions, see ``_le``).

    >>> import numpy as np
    >>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
    ...     exec_time=np.array([[2.0, 2.0], [2.0, 2.0]]), quantum=1.0)
    >>> m = build_model(p, horizon=4)
    >>> m.resources, m.positions
    ([(0, 1)], 6)
    """
    p = problem
    _check_scope(p)
    res = _resources(p)
    head_d, tail_d = device_windows(p)
    rep = [g[0] for g in res]
    head = head_d[:, rep]
    tail = tail_d[:, rep]
    usable = (head <= horizon - tail) & p.allowed[:, rep]
    if not usable.any(axis=1).all():
        v = int(np.flatnonzero(~usable.any(axis=1))[0])
        msg = f"op {p.names[v]!r} cannot fit below horizon {horizon} (hint infeasible?)"
        raise SolverError(msg)
    positions = int(np.where(usable, horizon - tail - head + 1, 0).sum())
    if positions > MAX_POSITIONS:
        msg = (
            f"{positions} start positions is out of scope for sat (max {MAX_POSITIONS}); use cpsat"
        )
        raise SolverError(msg)
    lo = np.where(usable, head, _BIG).min(axis=1)
    hi = np.where(usable, horizon - tail, -1).max(axis=1)
    pool = IDPool()
    on: list[dict[int, int]] = []
    for v in range(p.n):
        rs = np.flatnonzero(usable[v]).tolist()
        on.append({r: (pool.id(("on", v, r)) if len(rs) > 1 else _TRUE) for r in rs})
    m = SatModel(pool, [], res, horizon, on, lo, hi, np.where(usable, tail, _BIG), positions)
    _add_choice_and_windows(m, p, head)
    _add_capacity(m, p, head)
    _add_precedence(m, p)
    m.stats = {"variables": pool.top, "clauses": len(m.clauses), "positions": positions}
    return m


def _clause(m: SatModel, lits: list[int | None]) -> None:
    """Add a clause, simplifying the ``_TRUE``/``_FALSE`` constants."""
    out = []
    for x in lits:
        if x == _TRUE:
            return
        if x is not _FALSE:
            out.append(x)
    if not out:
        msg = "the SAT encoding is trivially unsatisfiable (bug)"
        raise SolverError(msg)
    m.clauses.append(out)


def _neg(x: int | None) -> int | None:
    return _FALSE if x == _TRUE else _TRUE if x is _FALSE else -x


def _add_choice_and_windows(m: SatModel, p: Problem, head: np.ndarray) -> None:
    # exactly_one_r on[v,r]; by[v,t] -> by[v,t+1]; on[v,r] -> head_vr <= start_v <= H - tail_vr.
    for v in range(p.n):
        lits = [x for x in m.node_resource_to_on[v].values() if x != _TRUE]
        if lits:
            m.clauses.append(lits)
            m.clauses.extend([-x, -y] for i, x in enumerate(lits) for y in lits[i + 1 :])
        for t in range(int(m.lo[v]), int(m.hi[v]) - 1):
            m.clauses.append([-m.pool.id(("by", v, t)), m.pool.id(("by", v, t + 1))])
        for r, x in m.node_resource_to_on[v].items():
            _clause(m, [_neg(x), _neg(m.by(v, int(head[v, r]) - 1))])
            _clause(m, [_neg(x), m.by(v, int(m.horizon - m.tail[v, r]))])


def _add_capacity(m: SatModel, p: Problem, head: np.ndarray) -> None:
    # For each resource r and time t: sum_v run[v,r,t] <= cap_r, run <- on & by_t & ~by_{t-dur}.
    by_time: dict[tuple[int, int], list[int]] = {}
    for v in range(p.n):
        for r, x in m.node_resource_to_on[v].items():
            dur = int(p.dur[v, m.resources[r][0]])
            if dur == 0:
                continue
            first = int(head[v, r])
            last = int(m.horizon - m.tail[v, r]) + dur - 1
            for t in range(first, last + 1):
                run = m.pool.id(("run", v, r, t))
                _clause(m, [_neg(x), _neg(m.by(v, t)), m.by(v, t - dur), run])
                by_time.setdefault((r, t), []).append(run)
    for (r, _), lits in sorted(by_time.items()):
        cap = len(m.resources[r])
        if len(lits) > cap:
            enc = CardEnc.atmost(lits, bound=cap, vpool=m.pool, encoding=EncType.seqcounter)
            m.clauses.extend(enc.clauses)


def _add_precedence(m: SatModel, p: Problem) -> None:
    # Edge u->v, resources a,b: on[u,a] & on[v,b] & by[v,t] -> by[u, t - dur[u,a] - comm[e,a,b]].
    for k in range(p.num_edges):
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        for a, xa in m.node_resource_to_on[u].items():
            da = m.resources[a][0]
            delays = {
                b: int(p.dur[u, da]) + (0 if a == b else int(p.comm[k, da, m.resources[b][0]]))
                for b in m.node_resource_to_on[v]
            }
            if len(set(delays.values())) == 1:
                groups: list[tuple[int | None, int]] = [(_TRUE, next(iter(delays.values())))]
            else:
                groups = [(m.node_resource_to_on[v][b], d) for b, d in delays.items()]
            for xb, delay in groups:
                last = min(int(m.hi[v]), int(m.hi[u]) + delay - 1)
                for t in range(int(m.lo[v]), last + 1):
                    _clause(m, [_neg(xa), _neg(xb), _neg(m.by(v, t)), m.by(u, t - delay)])


def _le(m: SatModel, p: Problem, solver: PySatSolver, bound: int) -> int:
    """Activation literal of ``makespan <= bound``; its clauses are added to ``solver``."""
    act = m.pool.id(("le", bound))
    for v in range(p.n):
        for r, x in m.node_resource_to_on[v].items():
            lits = [-act, _neg(x), m.by(v, bound - int(m.tail[v, r]))]
            if _TRUE not in lits:
                solver.add_clause([y for y in lits if y is not _FALSE])
    return act


def _decode(m: SatModel, p: Problem, model: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Placement and (re-timed) start times from a satisfying assignment."""
    true = {x for x in model if x > 0}
    start = np.empty(p.n, dtype=np.int64)
    res = np.empty(p.n, dtype=np.int64)
    for v in range(p.n):
        t = int(m.lo[v])
        while t < m.hi[v] and m.pool.id(("by", v, t)) not in true:
            t += 1
        start[v] = t
        res[v] = next(r for r, x in m.node_resource_to_on[v].items() if x == _TRUE or x in true)
    assign = _colour(m, p, res, start)
    compact, _ = retime(p, assign, start_order(start))
    return assign, compact


def _colour(m: SatModel, p: Problem, res: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Give each op on a pooled resource a unit: greedy interval colouring by start time."""
    assign = np.array([m.resources[r][0] for r in res], dtype=np.int64)
    free_at: dict[int, int] = {}
    for v in start_order(start):
        g = m.resources[int(res[v])]
        dur = int(p.dur[v, g[0]])
        if len(g) == 1 or dur == 0:
            continue
        unit = min(g, key=lambda d: (free_at.get(d, 0) > start[v], d))
        if free_at.get(unit, 0) > start[v]:
            msg = f"pooled schedule of {p.names[v]!r} cannot be coloured (encoding bug)"
            raise SolverError(msg)
        assign[v] = unit
        free_at[unit] = int(start[v]) + dur
    return assign


def _open_solver(name: str, clauses: list[list[int]]) -> PySatSolver:
    solver = PySatSolver(name=name, bootstrap_with=clauses)
    try:
        solver.interrupt()
        solver.clear_interrupt()
    except NotImplementedError as err:
        solver.delete()
        msg = f"SAT solver {name!r} cannot be interrupted in PySAT; use glucose4 or minisat22"
        raise SolverError(msg) from err
    return solver


def _sat_integer(problem: Problem, ctx: SolveContext, *, solver_name: str = "glucose4") -> Plan:
    """Minimise makespan by incremental SAT calls on ``makespan <= T``, ``T`` descending.

    The solvers are deterministic; the seed only reaches the heuristic warm start.

    Raises
    ------
    SolverError
        Binding memory, out of scope, or a solver without interrupts.
    """
    _check_scope(problem)
    warm = require_warm_start(prepare_hint(problem, ctx), "sat")
    hint_plan = warm.plan.with_(searched=True)
    lb, q = warm.lb, problem.quantum
    best_value = warm.makespan
    if best_value <= lb:
        return hint_plan.with_(stats={"proved_by": "bounds", "hint_solver": warm.plan.solver})
    built = build_model(problem, horizon=best_value)
    solver = _open_solver(solver_name, built.clauses)
    best: tuple[np.ndarray, np.ndarray] | None = None
    calls, outcome = 0, "interrupted"
    remove = ctx.stop.on_stop(solver.interrupt)
    try:
        while best_value - 1 >= lb:
            remaining = ctx.remaining()
            solver.clear_interrupt()
            if remaining <= 0 or ctx.stop.is_set():
                break
            act = _le(built, problem, solver, best_value - 1)
            timer = threading.Timer(remaining, solver.interrupt)
            timer.start()
            try:
                sat = solver.solve_limited(assumptions=[act], expect_interrupt=True)
            finally:
                timer.cancel()
            calls += 1
            if sat is None:
                break
            if not sat:
                lb, outcome = best_value, "proved"
                break
            best = _decode(built, problem, solver.get_model())
            best_value = int((best[1] + problem.dur[np.arange(problem.n), best[0]]).max())
            ctx.report("sat", best_value * q, lb * q)
        else:
            outcome = "proved"
    finally:
        remove()
        solver.delete()
    stats = {
        **built.stats,
        "calls": calls,
        "outcome": outcome,
        "solver_name": solver_name,
        "hint_solver": warm.plan.solver,
        "hint_makespan": warm.plan.makespan,
    }
    if best is None:
        return hint_plan.with_(
            lower_bound=min(lb, best_value) * q, stats={**stats, "fallback": "hint"}
        )
    return plan_from_schedule(
        problem,
        assign=best[0],
        start=best[1],
        solver="sat",
        searched=True,
        lower_bound=min(lb, best_value),
        stats=stats,
        baselines=warm.plan.baselines,
    )


def _sat(problem: Problem, ctx: SolveContext, **options: Any) -> Plan:
    """:func:`_sat_integer` on the rounded-down twin (:mod:`.rounding`): a real bound."""
    return search_floored(problem, ctx, lambda p, c: _sat_integer(p, c, **options))


solve_sat = Solver(
    "sat", _sat, Capabilities(hint=True, exact=True, links=False), options=("solver_name",)
)
