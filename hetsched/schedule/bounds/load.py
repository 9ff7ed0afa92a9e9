"""Load bounds: no device finishes before it has done its share of the work.

* :func:`load_bound` - an LP over fractional assignments, min T s.t. per-device load <= T
  (its Lagrangian dual :func:`load_dual` above :data:`LOAD_LP_MAX_OPS` ops).
* :func:`lp_bound` - the LP relaxation that couples fractional assignment, start times with
  precedence, and per-device load (transfers: those the ends' devices force,
  :func:`forced_delays`).
* :func:`budget_lp_bound` - the same over modes, with what every plan must pay for its
  fast modes: the error budget (a mode that adds error spends it) and each device's
  capacity for resident weights (held for the whole run, so they must fit together: a
  knapsack, relaxed), so the bound assumes neither every op in its lossiest precision nor
  every weight resident in SRAM.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0)], quantum=1.0)
>>> load_bound(p), load_bound_dual(p)
(5, 5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hetsched.problem import Problem
from hetsched.schedule.bounds.paths import serial_horizon
from hetsched.schedule.bounds.verified import LPMinimum, lp_minimum

__all__ = [
    "LOAD_LP_MAX_OPS",
    "AssignmentLP",
    "budget_lp_bound",
    "forced_delay_tables",
    "forced_delays",
    "least_horizon",
    "least_horizon_within",
    "load_bound",
    "load_bound_dual",
    "load_dual",
    "lp_bound",
    "new_lp_model",
    "priced_cheapest",
]

# Above this many ops the load bound uses the Lagrangian dual instead of a GLOP model.
LOAD_LP_MAX_OPS = 2000


def load_bound(problem: Problem) -> int:
    """Minimum over fractional assignments of the maximum device load (an LP)."""
    problem = problem.relaxation()  # bounds of the question asked
    p = problem
    if p.num_devices == 1:
        return int(p.dur[:, 0].sum())
    identical = len(p.device_groups) == 1
    if identical:
        return math.ceil(p.min_dur.sum() / p.num_devices)
    if p.n > LOAD_LP_MAX_OPS:
        from hetsched.schedule.bounds.load import load_bound_dual

        # Building the GLOP model takes ~10 s at 12k ops; the Lagrangian dual of the same LP
        # is a valid bound for any multipliers and lands within 1e-4 of it in 0.2 s.
        return load_bound_dual(p)
    return _load_lp(p)


def _load_lp(p: Problem) -> int:
    """The load LP's verified minimum, rounded up (:func:`least_horizon`)."""
    solver = new_lp_model()
    # every op on its fastest device loads none more than all of them: T's box
    t = solver.NumVar(0, float(p.min_dur.sum()), "T")
    load: list[list] = [[] for _ in range(p.num_devices)]
    for v in range(p.n):
        xs = []
        for d in p.allowed_devices[v]:
            x = solver.NumVar(0, 1, f"x_{v}_{d}")
            xs.append(x)
            if p.dur[v, d]:
                load[d].append(int(p.dur[v, d]) * x)
        solver.Add(solver.Sum(xs) == 1)
    return max(least_horizon(solver, t, load), math.ceil(p.min_dur.sum() / p.num_devices))


@dataclass(frozen=True)
class AssignmentLP:
    """An LP model (:func:`new_lp_model`) of fractional assignments: ``T``, a start per
    op, per op its fraction on each device it may use (``mix[v][d]``, summing to one), its
    duration under them and each device's load terms, with every op's start plus duration
    within ``T`` (written for the ops that feed none: the others end before those they
    feed), all times within a horizon no optimum passes. The LP bounds add their
    precedence rows, then :func:`least_horizon`."""

    solver: Any
    t: Any
    starts: list[Any]
    mix: list[dict[int, Any]]
    dur: list[Any]
    load: list[list[Any]]

    @classmethod
    def build(cls, p: Problem) -> AssignmentLP:
        """The model of ``p`` (a device view)."""
        solver = new_lp_model()
        # no optimum ends after every op and transfer one after another (a bounded box
        # keeps HiGHS's interior point method from declaring the LP infeasible, as it did
        # on a 1,000-op graph on 3 devices with T unbounded)
        horizon = float(serial_horizon(p))
        t = solver.NumVar(0, horizon, "T")
        starts = [solver.NumVar(0, horizon, f"S_{v}") for v in range(p.n)]
        mix: list[dict[int, Any]] = []
        dur: list[Any] = []
        load: list[list[Any]] = [[] for _ in range(p.num_devices)]
        feeds = np.zeros(p.n, dtype=bool)
        feeds[p.edge_src] = True  # an op that feeds another ends before it: T sees sinks only
        for v in range(p.n):
            xs = {d: solver.NumVar(0, 1, f"x_{v}_{d}") for d in p.allowed_devices[v]}
            solver.Add(solver.Sum(list(xs.values())) == 1)
            mix.append(xs)
            terms = [int(p.dur[v, d]) * x for d, x in xs.items() if p.dur[v, d]]
            dur.append(solver.Sum(terms) if terms else 0)
            for d, x in xs.items():
                if p.dur[v, d]:
                    load[d].append(int(p.dur[v, d]) * x)
            if not feeds[v]:
                solver.Add(t >= starts[v] + dur[v])
        return cls(solver, t, starts, mix, dur, load)


def lp_bound(problem: Problem, *, max_ops: int = 3000) -> int:
    """LP relaxation coupling fractional assignment, precedence and device load.

    Variables ``x[v,d]`` (fraction of ``v`` on ``d``) and ``S[v]``; ``S[v] >= S[u] + sum_d
    dur[u,d] x[u,d]``; ``T >= S[v] + sum_d dur[v,d] x[v,d]``; ``T >= load_d``. Transfers
    count only as far as :func:`forced_delays` forces them. Skipped (returns 0) above
    ``max_ops`` ops.
    """
    problem = problem.relaxation()  # bounds of the question asked
    p = problem
    if p.n > max_ops:
        return 0
    lp = AssignmentLP.build(p)
    placed: list[list[tuple[tuple[int, ...], Any]]] = [
        [((d,), x) for d, x in xs.items()] for xs in lp.mix
    ]
    found = _minimise_makespan(lp.solver, p, lp.t, lp.starts, lp.dur, lp.load, placed)
    return 0 if found is None else found[0]


def forced_delays(
    p: Problem,
    edge: int,
    src: list[tuple[tuple[int, ...], Any]],
    dst: list[tuple[tuple[int, ...], Any]],
    tables: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[list[Any]]:
    """The transfer edge ``edge`` must pay, as ``(time, variable)`` terms in either end's
    fractional choices (``src``/``dst``: each choice's devices and variable); a side
    whose choices force nothing is left out. ``tables``: :func:`forced_delay_tables`.

    Wherever the producer runs, the consumer runs on one of *its* devices: a producer on
    devices ``A`` waits at least the cheapest transfer from ``A`` to any device the
    consumer can use (0 if they share one), and likewise from the consumer's side. Each
    side's sum bounds an integral plan's transfer from below and is linear in the
    fractions, so an LP that adds it to the edge's precedence stays a relaxation. It is
    what makes a model whose accelerators cannot run some ops pay for leaving them
    (attention on the GPU between two NPU matmuls); where every op can run anywhere it adds
    nothing.

    >>> import numpy as np
    >>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
    ...     exec_time=np.array([[1.0, 1.0], [np.inf, 1.0]]), edges=[(0, 1, 1.0)],
    ...     comm_latency=np.full((2, 2), 3.0), quantum=1.0)
    >>> forced_delays(p, 0, [((0,), "a@x"), ((1,), "a@y")], [((1,), "b@y")])
    [[(3, 'a@x')]]
    """
    out_of, into = forced_delay_tables(p) if tables is None else tables
    sides = []
    for mine, table in ((src, out_of[edge]), (dst, into[edge])):
        terms = [(int(table[list(devs)].min()), var) for devs, var in mine]
        terms = [(c, var) for c, var in terms if c > 0]
        if terms:
            sides.append(terms)
    return sides


def forced_delay_tables(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """``(out_of[E, D], into[E, D])``: the least transfer of each edge's tensor from device
    ``a`` to any device its consumer can use, and into device ``b`` from any device its
    producer can use (0 where they share a device)."""
    uses = np.zeros((p.n, p.num_devices), dtype=bool)
    uses[np.repeat(p.modes.op, p.modes.width), p.modes.devs] = True
    big = np.iinfo(np.int64).max
    comm = p.comm
    out_of = np.where(uses[p.edge_dst][:, None, :], comm, big).min(axis=2)
    into = np.where(uses[p.edge_src][:, :, None], comm, big).min(axis=1)
    return np.where(out_of == big, 0, out_of), np.where(into == big, 0, into)


def _minimise_makespan(
    solver: Any,
    p: Problem,
    t: Any,
    starts: list[Any],
    dur_expr: list[Any],
    load: list[list],
    placed: list[list[tuple[tuple[int, ...], Any]]],
) -> tuple[int, LPMinimum] | None:
    """The part :func:`lp_bound` and :func:`budget_lp_bound` share: each edge's start
    after its producer's duration and the transfer its ends force (:func:`forced_delays`;
    ``placed[v]``: the devices of each of ``v``'s choices and its fractional variable),
    each device's load within ``T``; ``T`` minimised: its bound rounded up and the LP's
    solution (``None`` if the LP solver does not reach an optimum)."""
    tables = forced_delay_tables(p)
    forced = (tables[0].max(axis=1, initial=0) > 0) | (tables[1].max(axis=1, initial=0) > 0)
    for k in range(p.num_edges):
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        solver.Add(starts[v] >= starts[u] + dur_expr[u])
        if not forced[k]:
            continue
        for side in forced_delays(p, k, placed[u], placed[v], tables):
            delay = solver.Sum([c * x for c, x in side])
            solver.Add(starts[v] >= starts[u] + dur_expr[u] + delay)
    return _least_horizon_lp(solver, t, load, time_limit=None)[0]


def least_horizon(solver: Any, t: Any, load: list[list[Any]]) -> int:
    """Each device's load (``load[d]``: its terms) within ``T``, then ``T`` minimised and
    its verified bound rounded up: the end :func:`lp_bound`, :func:`budget_lp_bound`, the
    load LP and the transfer LP share (0 if the LP solver does not reach an optimum)."""
    return least_horizon_within(solver, t, load, time_limit=None)[0]


def least_horizon_within(
    solver: Any, t: Any, load: list[list[Any]], *, time_limit: float | None
) -> tuple[int, bool]:
    """:func:`least_horizon` within ``time_limit`` seconds, and whether it is final
    (:func:`~hetsched.schedule.bounds.verified.lp_minimum`; 0 when not). The bound is the
    LP's verified minimum (its duals' value, not the reported optimum) rounded up."""
    found, final = _least_horizon_lp(solver, t, load, time_limit=time_limit)
    return (0 if found is None else found[0]), final


def _least_horizon_lp(
    solver: Any, t: Any, load: list[list[Any]], *, time_limit: float | None
) -> tuple[tuple[int, LPMinimum] | None, bool]:
    """:func:`least_horizon_within`'s bound with the LP's solution (``None`` without an
    optimum), and whether that answer is final."""
    for terms in load:
        if terms:
            solver.Add(solver.Sum(terms) <= t)
    solver.Minimize(t)
    found, final = lp_minimum(solver, time_limit)
    if found is None or not math.isfinite(found.bound):
        return None, final
    return (max(0, math.ceil(found.bound)), found), True


def new_lp_model() -> Any:
    """An empty OR-Tools model (pywraplp) to build an LP bound in; it is solved by
    :func:`~hetsched.schedule.bounds.verified.lp_minimum`, every variable boxed.

    >>> model = new_lp_model()
    >>> x = model.NumVar(0, 4, "x")
    >>> _ = model.Add(x >= 1.5)
    >>> model.Minimize(x)
    >>> found, final = lp_minimum(model, None)
    >>> round(found.value, 9), found.bound <= 1.5, final
    (1.5, True, True)
    """
    from ortools.linear_solver import pywraplp

    return pywraplp.Solver.CreateSolver("GLOP")  # (a model: lp_minimum solves it)


def load_bound_dual(p: Problem, *, iterations: int = 400) -> int:
    """See :func:`load_dual`; the bound alone."""
    return load_dual(p, iterations=iterations)[0]


def priced_cheapest(work: np.ndarray, prices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``work`` (an op's or a group's work on each device, ``inf`` where it may
    not run) the device where its work priced by the device multipliers ``prices`` is
    least, and that priced work. Their sum is the load LP's Lagrangian value at
    ``prices``: for any prices on the simplex, a lower bound of the least most-loaded
    device (weak duality).

    >>> arg, priced = priced_cheapest(np.array([[2.0, 4.0], [np.inf, 1.0]]), np.array([0.5, 0.5]))
    >>> arg.tolist(), priced.tolist()
    ([0, 1], [1.0, 0.5])
    """
    with np.errstate(invalid="ignore"):
        priced = prices[None, :] * work
    if not prices.all():  # a zero price times inf: the device stays closed
        priced = np.where(np.isfinite(work), priced, np.inf)
    arg = priced.argmin(axis=1)
    return arg, priced[np.arange(len(work)), arg]


def load_dual(p: Problem, *, iterations: int = 400) -> tuple[int, np.ndarray]:
    """Load LP bound via its dual: ``max_{lambda in simplex} sum_v min_d lambda_d dur[v, d]``.

    Every ``lambda`` in the simplex gives a valid bound (weak duality), so the multipliers
    are improved by a projected subgradient ascent and the best value is returned, rounded
    up. Equal to :func:`~hetsched.schedule.bounds.load_bound` up to the ascent's accuracy.
    """
    p = p.relaxation()  # bounds of the question asked
    d = p.num_devices
    if d == 1:
        return int(p.dur[:, 0].sum()), np.ones(1)
    w = np.where(p.allowed, p.dur, np.inf).astype(np.float64)
    lam = 1.0 / np.where(np.isfinite(w), w, 0.0).sum(axis=0).clip(min=1e-9)
    lam /= lam.sum()
    best = 0.0
    best_lam = lam
    step = 0.5
    for _ in range(iterations):
        arg, priced = priced_cheapest(w, lam)
        g_val = float(priced.sum())
        if g_val > best:
            best, best_lam = g_val, lam
        load = np.bincount(arg, weights=w[np.arange(p.n), arg], minlength=d)
        grad = load / max(float(np.abs(load).max()), 1e-12)
        lam = lam * np.exp(step * (grad - grad @ lam))  # exponentiated gradient on the simplex
        lam /= lam.sum()
        step *= 0.99
    return math.ceil(best - 1e-6 * max(1.0, best)), best_lam * d


def budget_lp_bound(problem: Problem, *, max_ops: int = 3000) -> int:
    """LP over fractional modes ``y[v,k]``: ``sum_k y = 1``; ``S[v] >= S[u] + dur(u)``;
    ``T >= S[v] + dur(v)``; each device's load ``<= T``; ``sum err[k] y[k] <= budget``
    (integer error units, as the validator counts); with memory constraints, each device's
    resident weights ``sum w[k] y[k] <= capacity``. Transfers as in :func:`lp_bound`. 0 when
    neither a budget nor memory can bind, or above ``max_ops`` ops.

    >>> from hetsched.problem import Modes, Problem, Tensors
    >>> modes = Modes.build(2, [(0, (0,), 8.0), (0, (0,), 2.0, 0.0, "int8", "", 0.0, 0.5),
    ...                         (1, (0,), 8.0), (1, (0,), 2.0, 0.0, "int8", "", 0.0, 0.5)])
    >>> p = Problem.from_modes(names=["a", "b"], devices=["npu"], modes=modes,
    ...     tensors=Tensors.build(2, []), quantum=1.0, error_budget=0.5)
    >>> load_bound(p), budget_lp_bound(p)   # one op may be int8: 2 + 8
    (4, 10)
    """
    found = modes_lp(problem, max_ops=max_ops)
    return 0 if found is None else found[0]


def modes_lp(problem: Problem, *, max_ops: int = 3000) -> tuple[int, np.ndarray] | None:
    """The LP of :func:`budget_lp_bound`: its bound and each mode's fractional share ``y``
    (the device mix an assignment can be rounded from); ``None`` when neither a budget nor
    memory can bind, above ``max_ops`` ops, or when the LP ends without an optimum."""
    from hetsched.plan.memory import envelope_binds

    p = problem
    budget = p.error_budget_units if p.has_error_modes else None
    memory = envelope_binds(p) is not None
    if (budget is None and not memory) or p.n > max_ops:
        return None
    solver = new_lp_model()
    horizon = float(serial_horizon(p))  # every variable boxed (verified bound)
    t = solver.NumVar(0, horizon, "T")
    starts = [solver.NumVar(0, horizon, f"S_{v}") for v in range(p.n)]
    load: list[list] = [[] for _ in range(p.num_devices)]
    dur_expr = []
    spend = []
    units = p.mode_error_units
    held: list[list] = [[] for _ in range(p.num_devices)]
    every: dict[int, Any] = {}
    for v in range(p.n):
        ys = {k: solver.NumVar(0, 1, f"y_{k}") for k in p.modes.ops_modes(v).tolist()}
        every.update(ys)
        solver.Add(solver.Sum(list(ys.values())) == 1)
        dur_expr.append(solver.Sum([int(p.mode_dur[k]) * y for k, y in ys.items()]))
        for k, y in ys.items():
            for d in p.modes.devices_of(k):
                load[d].append(int(p.mode_dur[k]) * y)
                if memory and p.modes.w[k] > 0:
                    held[d].append(float(p.modes.w[k]) / 2**20 * y)  # MiB: a sane scale
            if budget is not None and units[k]:
                spend.append(int(units[k]) * y)
        solver.Add(t >= starts[v] + dur_expr[v])
    if spend and budget is not None:
        solver.Add(solver.Sum(spend) <= budget)
    for d in range(p.num_devices):
        if held[d] and np.isfinite(p.capacity[d]):
            solver.Add(solver.Sum(held[d]) <= float(p.capacity[d]) / 2**20)
    placed = [[(p.modes.devices_of(k), every[k]) for k in p.modes.ops_modes(v).tolist()]
              for v in range(p.n)]  # fmt: skip
    found = _minimise_makespan(solver, p, t, starts, dur_expr, load, placed)
    if found is None or found[0] == 0:
        return None
    bound, solved = found
    mix = np.zeros(p.num_modes)
    for k, y in every.items():
        mix[k] = solved.x[y.index()]
    return bound, mix
