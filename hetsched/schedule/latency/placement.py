"""The placement relaxation: a lower bound that sees data move when work spreads.

On a graph whose transfers cost ten times its ops, spreading work over eight devices
divides the load by eight but puts transfers on the paths between them; the load and path
bounds each see one side, the heads and tails one op at a time. This relaxation keeps the
choice that couples them and drops only the order of ops on a device:

* each op picks one device it may use (``x[v, d]``) and runs for its duration there,
  from a start ``s_v``; every device's load is at most the makespan ``T``;
* every edge ``u -> v`` waits for ``u``'s end, plus, with ``u`` on ``a`` and ``v`` on
  ``b != a``, the transfer over the link from ``a`` to ``b``;
* with ``v`` on ``d``: ``s_v`` is at least its head on ``d`` and ``T`` at least its end
  plus its tail on ``d`` (:func:`~hetsched.schedule.bounds.delays.device_delay_heads_tails`,
  transfers counted), and every ancestor (descendant) of ``v`` on ``d`` runs on ``d``
  before (after) it, one at a time: ``s_v >= sum of their durations on d``.

Every schedule of the problem is a solution (each op on one device of its mode in the
:meth:`~hetsched.problem.Problem.relaxation`, times rounded down on
:attr:`~hetsched.problem.Problem.floored`), so CP-SAT's proven lower bound of this model
is a bound of the real problem. Without the devices' sequencing the search is much
smaller: on the random suite's 100-op CCR-10 graphs the optimum is 995 (8 related devices,
other bounds 679), 951 (8 unrelated, 603) and 929 (3 unrelated, 718). Charging each
transfer only the cheapest link into the consumer's device, whichever device sends, the
first two are 872 and 851; the links (one and two units a byte there) take longer to prove,
so the search refutes horizons of that looser model first and goes on from the last one
refuted with the links (:func:`placement_bound`). CP-SAT searches without
its LP (:func:`_new_solver`: a fractional assignment spreads every op over every device and
cuts no edge): the three looser optima are proved in 2.1, 5.0 and 5.1 s (two workers; 4-19 s
with the LP, 868 and 771 after 9 s), the two with each transfer's own link in 20 s (not in
60 s with the LP: 974 and 885).

Minimising the makespan, CP-SAT's bound stays at its floor until the proof completes, so a
search cut short proves nothing. The bound is searched from below instead (destructive lower
bounding): is there a solution within ``floor + step``? Each refuted horizon is a proven
bound, and the step doubles; the first solution found is the hint of a minimisation between
the two.

:func:`sequenced_bound` adds the order back: each device runs its ops one at a time (a
NoOverlap of optional intervals per device): on a device table without link contention,
the problem itself (every solution a schedule, its optimum the problem's). Each refutation
costs seconds more, so it starts from the relaxation's proven optimum, searched the same
way; from there, in 60 s, 929 -> 995 (the problem's optimum, proved in 17 s), 995 -> 1,022
and 951 -> 978 on the two 8-device graphs; with ``--solver bounds`` in 120 s in all, one
worker: 1,058 and 1,014, the best plans known 1,076 and 1,026. At 50 ops it proves its
optimum in 1.1-5.7 s (0.2-13% above the relaxation's; with the LP), at 30 ops the
problem's (560, 550) in under a second. ``--solver bounds`` runs it once the relaxation's
optimum is proved, and so does the portfolio, on a worker of its own beside its plan
search.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> from hetsched.schedule.bounds import lower_bound
>>> p = Problem.from_arrays(names=list("abcdef"), devices=["x", "y"],
...     exec_time=np.full((6, 2), 3.0), edges=[(0, 1, 11.0), (2, 3, 11.0), (4, 5, 11.0)],
...     comm_latency=np.array([[0, 11], [11, 0]]), quantum=1.0)
>>> lower_bound(p)   # 18 units of work over two devices
9
>>> placement_bound(p, time_limit=5, seed=0, workers=1)   # no pair splits: two on a device
(12, True)
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
from ortools.sat.python import cp_model
from ortools.util.python.sorted_interval_list import Domain

from hetsched.problem import Problem
from hetsched.schedule.bounds import quick_lower_bound
from hetsched.schedule.bounds.delays import (
    DEVICE_NEVER,
    ancestor_matrix,
    device_delay_heads_tails,
)
from hetsched.schedule.cpsolver import new_cp_solver, solve_cp
from hetsched.solver import StopToken

log_ = logging.getLogger(__name__)

__all__ = [
    "PLACEMENT_MAX_OPS",
    "PLACEMENT_MAX_TERMS",
    "placement_bound",
    "placement_model",
    "sequenced_bound",
]

# Solvers ask for this bound up to this many ops: on the random suite's CCR-10 graphs it
# proved its optimum in 0.1-9 s at 20-50 ops (one worker; above every other bound on 20 of
# 24, by 0.3-41%), in 1.2-19 s at 100 ops (two workers), and not within 60 s on three of
# four 300-op ones.
PLACEMENT_MAX_OPS = 200

# Above this many ancestor and descendant terms (ops x devices x ancestors, both ways) the
# model leaves out the co-located ancestors' work (its rows would cost more to build and
# propagate than they prune). The random suite's layered graphs on 8 devices: 27,000 terms
# at 100 ops (0.24 s to build the whole model), 93,000 at 200 (0.5 s), 228,000 at 300.
PLACEMENT_MAX_TERMS = 2_000_000

# The first probe asks for a solution within 1/FIRST_STEP_DIVISOR above the floor; each
# refuted one doubles the step.
FIRST_STEP_DIVISOR = 25
# The same for the relaxation with sequencing, started from the relaxation's optimum: its
# refutations cost seconds each at 100 ops, and the first above that optimum the most.
SEQUENCED_STEP_DIVISOR = 100
# A probe gets half the time left, and none starts with less than this.
MIN_PROBE_SECONDS = 0.05


# The searches a probe runs on its workers, none with an LP; more workers run no more.
NO_LP_SUBSOLVERS = ("no_lp", "quick_restart_no_lp")


def _new_solver(*, time_limit: float, workers: int, seed: int) -> Any:
    """A CP-SAT solver for the relaxation's probes without its LP relaxation (linearization
    level 0, :data:`NO_LP_SUBSOLVERS`): the LP is weak here (a fractional assignment
    spreads every op over all devices and cuts no edge) and costs time. On the random
    suite's 100-op CCR-10 graphs, the cheapest link into a device, one worker: optima 929,
    872 and 851 proved in 1.9, 5.6 and 5.4 s (with the LP: 5.4 s, then 868 and 771 after
    9 s); two workers without an LP, 2.1, 4.6 and 5.5 s; two with CP-SAT's default searches
    (an LP in one): 4.3 s, then 868 and 771 after 9 s. With each transfer's own link, one
    worker: 995 and 951 in 20 and 18 s (with the LP and two workers: 31-61 s)."""
    solver = new_cp_solver(
        time_limit=time_limit, workers=min(workers, len(NO_LP_SUBSOLVERS)), seed=seed
    )
    solver.parameters.linearization_level = 0
    if workers >= 2:
        solver.parameters.subsolvers.extend(NO_LP_SUBSOLVERS)
    return solver


def placement_model(
    problem: Problem, *, floor: int = 0, hint: tuple[np.ndarray, np.ndarray] | None = None
) -> cp_model.CpModel:
    """The relaxation of ``problem`` (already floored and relaxed) as a CP-SAT model that
    minimises its makespan, at least ``floor``; ``hint``: a schedule's ``(device, start)``
    per op in units."""
    m, makespan = _relaxation(problem, floor, hint)
    m.minimize(makespan)
    return m


def _relaxation(
    problem: Problem,
    floor: int,
    hint: tuple[np.ndarray, np.ndarray] | None,
    sequenced: bool = False,
    links: bool = True,
) -> tuple[cp_model.CpModel, cp_model.IntVar]:
    """The relaxation's rows and its makespan variable (no objective); ``sequenced``: each
    device also runs its ops one at a time; ``links``: each transfer pays the link from the
    producer's device (else the cheapest into the consumer's, :func:`_add_transfers`)."""
    p = problem
    n, num = p.n, p.num_devices
    allowed = p.allowed
    dur = np.where(allowed, p.dur, 0).astype(np.int64)
    head, tail = device_delay_heads_tails(p)
    horizon = int(dur.max(axis=1).sum()) + sum(int(p.comm[k].max()) for k in range(p.num_edges))
    horizon = max(horizon, floor)
    m = cp_model.CpModel()
    x: dict[tuple[int, int], Any] = {
        (v, d): m.new_bool_var(f"on_{v}_{d}") for v in range(n) for d in p.allowed_devices[v]
    }
    start = [m.new_int_var(0, horizon, f"start_{v}") for v in range(n)]
    end = [m.new_int_var(0, horizon, f"end_{v}") for v in range(n)]
    makespan = m.new_int_var(floor, horizon, "makespan")
    for v in range(n):
        devs = p.allowed_devices[v]
        m.add_exactly_one([x[v, d] for d in devs])
        m.add(end[v] == start[v] + sum(int(dur[v, d]) * x[v, d] for d in devs))
        m.add(makespan >= end[v])
        for d in devs:
            if head[v, d] < DEVICE_NEVER:
                m.add(start[v] >= int(head[v, d])).only_enforce_if(x[v, d])
            if tail[v, d] < DEVICE_NEVER:
                m.add(makespan >= end[v] + int(tail[v, d])).only_enforce_if(x[v, d])
    for d in range(num):
        ops = [v for v in range(n) if allowed[v, d] and dur[v, d] > 0]
        if ops:
            m.add(
                cp_model.LinearExpr.weighted_sum([x[v, d] for v in ops], dur[ops, d].tolist())
                <= makespan
            )
    _add_transfers(m, p, x, start, end, links=links)
    if sequenced:
        for d in range(num):
            m.add_no_overlap(
                [
                    m.new_optional_fixed_size_interval_var(
                        start[v], int(dur[v, d]), x[v, d], f"run_{v}_{d}"
                    )
                    for v in range(n)
                    if allowed[v, d] and dur[v, d] > 0
                ]
            )
    anc = ancestor_matrix(p)
    if int(anc.sum()) * 2 * num <= PLACEMENT_MAX_TERMS:
        _add_local_work(m, p, x, dur, anc, lambda v: start[v])
        _add_local_work(m, p, x, dur, anc.T, lambda v: makespan - end[v])
    if hint is not None:
        assign, begin = hint
        for (v, d), lit in x.items():
            m.add_hint(lit, int(assign[v]) == d)
        for v in range(n):
            m.add_hint(start[v], int(begin[v]))
    return m, makespan


def _add_transfers(
    m: cp_model.CpModel, p: Problem, x: dict, start: list, end: list, *, links: bool
) -> None:
    """Per edge ``u -> v`` and device ``b`` of ``v``, when ``v`` is on ``b``: ``s_v >= e_u +
    c (1 - x[u, b])``, ``c`` the cheapest transfer into ``b`` from another device of ``u``,
    and where the devices ``u`` may use send to ``b`` at different costs, ``s_v >= e_u +
    sum over a of comm[a, b] x[u, a]``: the transfer from wherever ``u`` runs (exactly one
    ``x[u, a]`` is 1; ``comm[b, b] = 0``). The second row alone is exact; the first, one
    term, propagates sooner (with both, the random suite's 100-op CCR-10 graphs on 8
    devices proved their optima in 31 and 40 s, against 40 and 55 s with the second alone)."""
    allowed = p.allowed
    off = ~np.eye(p.num_devices, dtype=bool)
    for k in range(p.num_edges):
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        m.add(start[v] >= end[u])
        into = np.where(allowed[u][:, None] & off, p.comm[k], np.inf).min(axis=0)
        for b in p.allowed_devices[v]:
            c = into[b]
            if not np.isfinite(c):
                continue
            if c > 0:
                row = (
                    start[v] >= end[u] + int(c) - int(c) * x[u, b]
                    if (u, b) in x
                    else start[v] >= end[u] + int(c)
                )
                m.add(row).only_enforce_if(x[v, b])
            sent = [(int(p.comm[k, a, b]), x[u, a]) for a in p.allowed_devices[u] if a != b]
            if links and any(cost > c for cost, _ in sent):  # the link, not only the cut
                paid = cp_model.LinearExpr.weighted_sum(
                    [lit for _, lit in sent], [cost for cost, _ in sent]
                )
                m.add(start[v] >= end[u] + paid).only_enforce_if(x[v, b])


def _add_local_work(
    m: cp_model.CpModel,
    p: Problem,
    x: dict,
    dur: np.ndarray,
    related: np.ndarray,
    room: Any,
) -> None:
    """With ``v`` on ``d``, the ops ``related[v]`` on ``d`` fit in ``room(v)`` (the rows
    hold on every device wherever ``v`` runs, but written for all devices they proved no
    faster: 4.3-17.6 s against 1.8-19.2 s on the random suite's 100-op CCR-10 graphs)."""
    for v in range(p.n):
        others = np.flatnonzero(related[v])
        if not others.size:
            continue
        for d in p.allowed_devices[v]:
            ops = [int(u) for u in others if (int(u), d) in x and dur[u, d] > 0]
            if ops:
                work = cp_model.LinearExpr.weighted_sum(
                    [x[u, d] for u in ops], dur[ops, d].tolist()
                )
                m.add(room(v) >= work).only_enforce_if(x[v, d])


def placement_bound(
    problem: Problem,
    *,
    time_limit: float,
    seed: int = 0,
    workers: int = 1,
    stop: StopToken | None = None,
    hint: tuple[np.ndarray, np.ndarray] | None = None,
    floor: int = 0,
    links: bool = True,
) -> tuple[int, bool]:
    """CP-SAT's proven lower bound (units) of the placement relaxation of ``problem`` within
    ``time_limit`` seconds, never below :func:`~hetsched.schedule.bounds.quick_lower_bound`
    nor ``floor`` (a proven bound of ``problem`` from elsewhere: the search starts there),
    and whether it proved the relaxation's optimum (or the floor). ``hint``: a schedule of
    ``problem`` (device and start per op, units) to start from; used only where ``problem``
    is a device table (one mode per op and device) and exact (else its units differ).

    Searched in two steps: with each transfer charged the cheapest link into the
    consumer's device (:func:`_add_transfers`: its optimum proved in 5 s on the random
    suite's 100-op CCR-10 graphs on 8 devices), then, with ``links`` and where links
    differ, with the link from the producer's device (the optimum of
    both rows together, searched from the start: not proved within 20 s there, with the
    LP; without ``links``, ``proved`` is the first step's). Where the second step follows,
    the first only refutes horizons and the second goes on from the last one refuted, not
    from the first step's proved optimum: on the 100-op graphs on 8 devices, one worker,
    that proof took 1.4-1.8 s (872 and 851, from 868 and 771), where the links model
    refuted up to 902 and 861 by 3 s and proved 995 at 8.1 s, not 11.5 s (951: 12.3 s,
    not 11.0 s)."""
    deadline = time.perf_counter() + time_limit
    value, proved = max(floor, quick_lower_bound(problem)), False
    both = links and _links_matter(problem)
    for paid in (False, True) if both else (False,):  # the cheapest link, then every link
        left = deadline - time.perf_counter()
        if left < MIN_PROBE_SECONDS or (stop is not None and stop.is_set()):
            break
        value, proved = _search_from_below(
            problem,
            sequenced=False,
            links=paid,
            hint=hint,
            step_divisor=FIRST_STEP_DIVISOR,
            time_limit=left,
            seed=seed,
            workers=workers,
            stop=stop,
            floor=value,
            minimise=paid or not both,  # the second step's refutations go on from there
        )
    return value, proved


def _links_matter(problem: Problem) -> bool:
    """Whether some consumer's device receives a tensor at different costs from the devices
    its producer may use (else the cheapest link into it is every link's cost)."""
    p = problem.floored.relaxation()
    if p.num_edges == 0:
        return False
    src = p.allowed[p.edge_src][:, :, None] & ~np.eye(p.num_devices, dtype=bool)
    high = np.where(src, p.comm, -np.inf).max(axis=1)
    low = np.where(src, p.comm, np.inf).min(axis=1)
    return bool((np.isfinite(low) & (high > low)).any())


def sequenced_bound(
    problem: Problem,
    *,
    time_limit: float,
    seed: int = 0,
    workers: int = 1,
    stop: StopToken | None = None,
    floor: int = 0,
) -> tuple[int, bool]:
    """CP-SAT's proven lower bound (units) of the placement relaxation of ``problem`` with
    each device running its ops one at a time, within ``time_limit`` seconds, searched
    from ``floor`` up as :func:`placement_bound` searches its own, and whether it proved
    that relaxation's optimum. Slower per horizon than :func:`placement_bound` (6-28 s
    per refutation on the random suite's 100-op CCR-10 graphs on 8 devices, one worker),
    so solvers start it from that bound's proven optimum.

    >>> import numpy as np
    >>> from hetsched.problem import Problem
    >>> inf = np.inf   # a runs on y only, b and c on x only, each waiting for a's output
    >>> p = Problem.from_arrays(names=list("abc"), devices=["x", "y"],
    ...     exec_time=np.array([[inf, 1.0], [1.0, inf], [3.0, inf]]),
    ...     edges=[(0, 1, 5.0), (0, 2, 5.0)], comm_latency=np.array([[0, 5], [5, 0]]),
    ...     quantum=1.0)
    >>> placement_bound(p, time_limit=5)   # b and c overlap on x from 6
    (9, True)
    >>> sequenced_bound(p, time_limit=5)   # x runs one after the other
    (10, True)
    """
    return _search_from_below(
        problem,
        sequenced=True,
        links=True,
        hint=None,
        step_divisor=SEQUENCED_STEP_DIVISOR,
        time_limit=time_limit,
        seed=seed,
        workers=workers,
        stop=stop,
        floor=floor,
    )


def _search_from_below(
    problem: Problem,
    *,
    sequenced: bool,
    links: bool,
    hint: tuple[np.ndarray, np.ndarray] | None,
    step_divisor: int,
    time_limit: float,
    seed: int,
    workers: int,
    stop: StopToken | None,
    floor: int,
    minimise: bool = True,
) -> tuple[int, bool]:
    """The relaxation (``sequenced`` or not, paying ``links`` or not) of ``problem`` from
    ``floor`` up: refuted horizons (:func:`_refute_upwards`, the first step
    ``1/step_divisor`` of the floor), then, with ``minimise``, a minimisation from the first
    solution found (:func:`_minimise_from`); ``(bound, proved)``."""
    t0 = time.perf_counter()  # building the model comes out of the time limit
    floor = max(floor, quick_lower_bound(problem))
    p = problem.floored.relaxation()
    if p.n == 0 or p.num_devices < 2:
        return floor, False
    if hint is not None and (p is not problem):
        hint = None
    model, makespan = _relaxation(p, floor, hint, sequenced, links)
    deadline = t0 + time_limit
    step = floor // step_divisor
    low, found = _refute_upwards(model, makespan, floor, step, deadline, seed, workers, stop)
    if found is None or not minimise:
        return low, False
    return _minimise_from(model, makespan, low, found, deadline, seed, workers, stop)


def _refute_upwards(
    model: cp_model.CpModel,
    makespan: cp_model.IntVar,
    floor: int,
    step: int,
    deadline: float,
    seed: int,
    workers: int,
    stop: StopToken | None,
) -> tuple[int, cp_model.CpSolver | None]:
    """Ask for a solution within horizons from ``floor`` up, the first ``step`` above it,
    each refuted one a proven bound and the next step twice as long; ``(bound, solver
    holding a solution or None)``."""
    low, step = floor, max(1, step)
    while stop is None or not stop.is_set():
        left = deadline - time.perf_counter()
        if left < MIN_PROBE_SECONDS:
            break
        horizon = low + step - 1
        makespan.with_domain(Domain(low, horizon))
        solver = _new_solver(time_limit=0.5 * left, workers=workers, seed=seed)
        status = solve_cp(solver, model, stop)
        log_.debug(
            "probe [%d, %d]: %s in %.2f s",
            low,
            horizon,
            solver.status_name(status),
            solver.wall_time,
        )
        if status == cp_model.INFEASIBLE:
            low, step = horizon + 1, 2 * step
        elif status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return low, solver
        elif step > 1:
            step = max(1, step // 4)  # no answer in time: nearer the bound refutes faster
        else:
            break
    return low, None


def _minimise_from(
    model: cp_model.CpModel,
    makespan: cp_model.IntVar,
    low: int,
    found: cp_model.CpSolver,
    deadline: float,
    seed: int,
    workers: int,
    stop: StopToken | None,
) -> tuple[int, bool]:
    """Minimise the makespan between the proven bound ``low`` and the solution ``found``
    holds (its values the hint) in the time left; ``(bound, proved)``."""
    model.clear_hints()
    for index in range(len(model.proto.variables)):
        var = model.get_int_var_from_proto_index(index)
        model.add_hint(var, int(found.value(var)))
    high = int(found.value(makespan))
    makespan.with_domain(Domain(low, high))
    model.minimize(makespan)
    left = max(0.01, deadline - time.perf_counter())
    solver = _new_solver(time_limit=left, workers=workers, seed=seed)
    status = solve_cp(solver, model, stop)
    log_.debug(
        "minimise [%d, %d]: %s in %.2f s", low, high, solver.status_name(status), solver.wall_time
    )
    if status == cp_model.OPTIMAL:
        return round(solver.objective_value), True
    if status == cp_model.FEASIBLE:
        return max(low, math.ceil(solver.best_objective_bound - 1e-9)), False
    return low, False
