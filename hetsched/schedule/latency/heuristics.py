"""Classic heterogeneous list schedulers with insertion: HEFT, CPOP and PEFT.

Written from the papers: Topcuoglu, Hariri & Wu, "Performance-effective and low-complexity
task scheduling for heterogeneous computing", IEEE TPDS 2002 (HEFT, CPOP); Arabnejad &
Barbosa, "List scheduling algorithm for heterogeneous systems by an optimistic cost
table", IEEE TPDS 2014 (PEFT). Average costs are taken over the devices that support an op;
average transfer costs over ordered pairs of distinct devices.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0)], comm_latency=np.array([[0, 1], [1, 0]]), quantum=1.0)
>>> solve_heft(p, time_limit=1, seed=0).makespan
7.0
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from hetsched.errors import SolverError
from hetsched.plan import Plan, plan_from_schedule
from hetsched.problem import Problem
from hetsched.schedule.latency.listsched import ListScheduler
from hetsched.schedule.latency.precision import within_budget
from hetsched.solver import Capabilities, SolveContext, Solver

__all__ = [
    "EFFICIENCY_WEIGHTS",
    "PRICE_WEIGHTS",
    "comm_ratio",
    "mean_comm",
    "mean_dur",
    "solve_cpop",
    "solve_heft",
    "solve_heft_efficient",
    "solve_heft_fewer",
    "solve_heft_ranks",
    "solve_peft",
    "upward_rank",
]


def mean_dur(problem: Problem) -> np.ndarray:
    """Average duration of each op over the devices that support it."""
    allowed = problem.allowed
    return (problem.dur * allowed).sum(axis=1) / np.maximum(allowed.sum(axis=1), 1)


def mean_comm(problem: Problem) -> np.ndarray:
    """Average transfer time of each edge over ordered pairs of distinct devices."""
    d = problem.num_devices
    if d == 1 or problem.num_edges == 0:
        return np.zeros(problem.num_edges)
    return problem.comm.sum(axis=(1, 2)) / (d * (d - 1))


def comm_ratio(problem: Problem) -> float:
    """The mean transfer over the mean op (the CCR; 0 without edges)."""
    if problem.num_edges == 0:
        return 0.0
    return float(mean_comm(problem).mean()) / max(float(mean_dur(problem).mean()), 1e-12)


def upward_rank(
    problem: Problem, *, comm_weight: float = 1.0, durations: np.ndarray | None = None
) -> np.ndarray:
    """HEFT's rank_u: average cost of the longest path from each op to an exit (each
    transfer's mean times ``comm_weight``; each op's ``durations``, by default its mean over
    its devices)."""
    w = mean_dur(problem) if durations is None else np.asarray(durations, dtype=np.float64)
    c = comm_weight * mean_comm(problem)
    rank = w.copy()
    for v in range(problem.n - 1, -1, -1):
        best = 0.0
        for s, k in problem.succs[v]:
            best = max(best, c[k] + rank[s])
        rank[v] = w[v] + best
    return rank


def downward_rank(problem: Problem) -> np.ndarray:
    """CPOP's rank_d: average cost of the longest path from an entry to each op (exclusive)."""
    w, c = mean_dur(problem), mean_comm(problem)
    rank = np.zeros(problem.n)
    for v in range(problem.n):
        for u, k in problem.preds[v]:
            rank[v] = max(rank[v], rank[u] + w[u] + c[k])
    return rank


def _plan(problem: Problem, ls: ListScheduler, **stats: Any) -> Plan:
    from hetsched.schedule.bounds import quick_lower_bound

    return plan_from_schedule(
        problem,
        modes=ls.mode,
        start=ls.start,
        solver="list",
        lower_bound=quick_lower_bound(problem),
        stats=stats,
        transfer_start=ls.transfer_start,
    )


def _ready_list_schedule(
    problem: Problem, priority: np.ndarray, place: Any, *, insertion: bool = True
) -> ListScheduler:
    """Schedule ready ops in decreasing ``priority`` (ties: topological index)."""
    ls = ListScheduler(problem, insertion=insertion)
    indeg = np.array([len(x) for x in problem.preds])
    heap = [(-float(priority[v]), v) for v in range(problem.n) if indeg[v] == 0]
    heapq.heapify(heap)
    while heap:
        _, v = heapq.heappop(heap)
        place(ls, v)
        for s, _k in problem.succs[v]:
            indeg[s] -= 1
            if indeg[s] == 0:
                heapq.heappush(heap, (-float(priority[s]), s))
    return ls


def _heft(
    problem: Problem, _ctx: SolveContext, *, insertion: bool = True, comm_weight: float = 1.0
) -> Plan:
    """HEFT: ops by decreasing upward rank (transfers weighted ``comm_weight``), each in the
    mode giving the earliest finish.

    Deterministic and fast: no time limit, seed or stop applies (``_ctx`` unused).
    """
    rank = upward_rank(problem, comm_weight=comm_weight)
    ls = _ready_list_schedule(problem, rank, ListScheduler.place_best, insertion=insertion)
    return _plan(problem, ls)


def _cpop(problem: Problem, _ctx: SolveContext) -> Plan:
    """CPOP: critical-path ops pinned to the one device that runs the whole path fastest."""
    prio = upward_rank(problem) + downward_rank(problem)
    cp_len = prio.max()
    on_cp = np.isclose(prio, cp_len, rtol=1e-9, atol=1e-9)
    # Walk one critical path from an entry op, following successors with priority == |CP|.
    path: list[int] = []
    entries = [v for v in range(problem.n) if not problem.preds[v] and on_cp[v]]
    v = entries[0] if entries else int(np.argmax(prio))
    while True:
        path.append(v)
        nxt = [s for s, _ in problem.succs[v] if on_cp[s]]
        if not nxt:
            break
        v = min(nxt)
    cp_set = set(path)
    costs = []
    for d in range(problem.num_devices):
        ok = all(problem.allowed[x, d] for x in path)
        costs.append(problem.dur[path, d].sum() if ok else np.inf)
    cp_dev = int(np.argmin(costs)) if np.isfinite(min(costs)) else -1

    def place(ls: ListScheduler, v: int) -> None:
        m = int(problem.device_mode[v, cp_dev]) if cp_dev >= 0 else -1
        if v in cp_set and m >= 0 and ls.follows(v, m) and ls.fits_memory(v, m):
            s, f, tr = ls.evaluate(v, m)
            ls.commit(v, m, s, f, tr)
        else:
            ls.place_best(v)

    ls = _ready_list_schedule(problem, prio, place)
    return _plan(problem, ls, critical_path_device=problem.devices[cp_dev] if cp_dev >= 0 else None)


def optimistic_cost_table(problem: Problem) -> np.ndarray:
    """PEFT's OCT[v, d]: optimistic remaining time after ``v`` finishes on ``d``."""
    n, dn = problem.n, problem.num_devices
    big = np.iinfo(np.int64).max // 4
    dur = np.where(problem.allowed, problem.dur, big).astype(np.float64)
    oct_ = np.zeros((n, dn))
    for v in range(n - 1, -1, -1):
        best = np.zeros(dn)
        for s, k in problem.succs[v]:
            # For each device d of v: min over devices w of s of OCT[s,w] + dur[s,w] + comm[k,d,w].
            cand = (oct_[s] + dur[s])[None, :] + problem.comm[k]
            best = np.maximum(best, cand.min(axis=1))
        oct_[v] = best
    return oct_


def _peft(problem: Problem, _ctx: SolveContext) -> Plan:
    """PEFT: rank by mean OCT; place each op minimising EFT + OCT (look-ahead)."""
    oct_ = optimistic_cost_table(problem)
    allowed = problem.allowed
    rank = (oct_ * allowed).sum(axis=1) / np.maximum(allowed.sum(axis=1), 1)
    modes = problem.modes

    def place(ls: ListScheduler, v: int) -> None:
        # a mode's output lands on all its devices: the look-ahead from the best of them
        extra = np.array([oct_[v, list(modes.devices_of(m))].min() for m in modes.ops_modes(v)])
        ls.place_best(v, key_extra=extra)

    ls = _ready_list_schedule(problem, rank, place)
    return _plan(problem, ls)


def _heft_fewer(problem: Problem, ctx: SolveContext) -> Plan:
    """HEFT on the fastest ``k`` devices, for every ``k`` (all of them included), the best
    plan kept. On a graph whose transfers cost more than its ops HEFT spreads ops over
    every device and pays for it; fewer devices move less data (0.90x HEFT's makespan at
    CCR 10 on the random suite, never worse). Devices are ranked by the time they need for
    the ops they support, fastest first. The plan carries the whole problem's lower bound,
    never a restriction's (with one device kept, that is the plan's own makespan)."""
    whole = _heft(problem, ctx)
    best = whole
    speed = np.where(problem.allowed, problem.dur, 0).sum(axis=0)
    order = np.argsort(speed, kind="stable")
    m = problem.modes
    devices_of = [set(m.devices_of(k)) for k in range(m.num_modes)]
    for k in range(1, problem.num_devices):
        if ctx.expired():
            break
        keep = set(order[:k].tolist())
        kept = np.array([i for i, ds in enumerate(devices_of) if ds <= keep], dtype=np.int64)
        if kept.size == 0 or np.unique(m.op[kept]).size < problem.n:
            continue  # an op no kept device runs
        plan = _heft(problem.select_modes(kept), ctx)
        if plan.makespan < best.makespan:
            best = plan
    return best.with_(solver="heft-fewer", lower_bound=whole.lower_bound)


def _heft_ranks(problem: Problem, ctx: SolveContext) -> Plan:
    """HEFT with the transfers in its rank weighted ``(D-1)/D`` (the mean over every
    ordered device pair, a device with itself included, as other HEFT implementations
    average) and 0 (the ops' path alone), the better plan kept. Where transfers cost more
    than ops the order matters as much as the placement: on the random suite at CCR 10
    (100-1,000 ops, 3-8 devices) the better of the two beat HEFT on 8 of 18 graphs, by up
    to 16% (300 ops on 8 devices: 3,415 -> 2,856), and was up to 5% behind it on the
    others (the portfolio keeps every plan)."""
    d = problem.num_devices
    best: Plan | None = None
    for weight in ((d - 1) / d, 0.0):
        if best is not None and ctx.expired():
            break
        plan = _heft(problem, ctx, comm_weight=weight)
        if best is None or plan.makespan < best.makespan:
            best = plan
    assert best is not None
    return best.with_(solver="heft-ranks")


# Weights of an op's time above its fastest mode in HEFT's choice of mode (heft-efficient).
EFFICIENCY_WEIGHTS = (1.0, 4.0)
# Weights of an op's priced time above its cheapest mode, priced by the load LP's dual
# (heft-efficient), doubling until two in a row do worse than the best; then the two
# geometric midpoints around the best.
PRICE_WEIGHTS = (2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


def _heft_efficient(problem: Problem, ctx: SolveContext) -> Plan:
    """HEFT choosing each op's mode by its finish plus ``w`` times what that mode costs
    above the op's cheapest one, the best plan kept, for two costs:

    * time: ``w`` in :data:`EFFICIENCY_WEIGHTS` times the op's time there above its
      fastest mode. HEFT takes a slow device whenever it ends an op first, and on a graph
      whose devices are all busy (many ops, transfers hidden behind other work) that
      spends device time every later op waits for. On the random suite at CCR 10, from
      HEFT: 1,000 ops on 8 related devices 5,223 -> 4,758, on 8 unrelated ones 4,351 ->
      4,252; 300 ops on 8 devices 3,047 -> 2,814 and 3,415 -> 2,775.
    * price: ``w`` in :data:`PRICE_WEIGHTS` times the op's device time priced by the load
      LP's dual (:func:`~hetsched.schedule.bounds.load.load_dual`: a device's price is
      what an extra unit of work there adds to the LP's makespan) above its cheapest
      mode. On unrelated devices an op's fastest device is not where the balanced load
      wants it; the prices say where, and the weight trades that against transfers (a
      large weight is the LP's own assignment, whose transfers line up on the critical
      path). On related devices the prices follow the speeds and charge nothing: not run.
      Random suite, CCR 10, 1,000 ops on 3 unrelated devices: 12,370 -> 11,323 (seed 0,
      LP 10,638) and 11,715 -> 10,715 (seed 1, LP 10,200); better on 12 of 18 unrelated
      graphs of 100-1,000 ops on 3-8 devices, never worse (the best plan is kept).
    """
    rank = upward_rank(problem)
    best: Plan | None = None

    def charged(extra: list[np.ndarray], order: np.ndarray = rank) -> float:
        nonlocal best
        ls = _ready_list_schedule(problem, order, partial(_place_charged, extra=extra))
        plan = _plan(problem, ls)
        if best is None or plan.makespan < best.makespan:
            best = plan
        return plan.makespan

    durations = _mode_durations(problem)
    slower = [d - d.min() for d in durations]
    for weight in EFFICIENCY_WEIGHTS:
        if best is not None and ctx.expired():
            break
        charged([weight * x for x in slower])
    priced = _priced_above_cheapest(problem, durations)
    if priced is not None:
        # ranked as HEFT does, and by the durations the prices steer each op to
        steered = np.array([d[np.argmin(x)] for d, x in zip(durations, priced, strict=True)])
        for order in (rank, upward_rank(problem, durations=steered)):

            def at(weight: float, order: np.ndarray = order) -> float:
                return charged([weight * x for x in priced], order)

            _sweep_weights(at, ctx)
    assert best is not None
    return best.with_(solver="heft-efficient")


def _sweep_weights(run: Callable[[float], float], ctx: SolveContext) -> None:
    """``run`` (a makespan) at :data:`PRICE_WEIGHTS` until two in a row end above the best,
    then at the two geometric midpoints around the best weight; stops when time is up."""
    tried: dict[float, float] = {}
    worse = 0  # weights in a row that ended above the best so far
    for weight in PRICE_WEIGHTS:
        if ctx.expired() or worse == 2:
            break
        tried[weight] = run(weight)
        worse = 0 if tried[weight] <= min(tried.values()) else worse + 1
    if tried:
        top = min(tried, key=lambda w: (tried[w], w))
        for weight in (top / math.sqrt(2.0), top * math.sqrt(2.0)):
            if not ctx.expired():
                run(weight)


def _priced_above_cheapest(
    problem: Problem, durations: list[np.ndarray]
) -> list[np.ndarray] | None:
    """Each op's modes' device time priced by the load LP's dual, above its cheapest mode
    (mean price 1); ``None`` where that charges no op anything (prices follow the speeds)."""
    from hetsched.schedule.bounds.load import load_dual

    if problem.num_devices < 2:
        return None
    _, price = load_dual(problem)
    m = problem.modes
    mode_price = np.add.reduceat(price[m.devs], m.dev_start[:-1])
    priced = [
        durations[v] * mode_price[m.op_start[v] : m.op_start[v + 1]] for v in range(problem.n)
    ]
    above = [x - x.min() for x in priced]
    # below a hundredth of an op's time the charge decides nothing HEFT's ties would not
    relative = (
        float(a.max()) / max(float(d.min()), 1.0) for a, d in zip(above, durations, strict=True)
    )
    return None if max(relative) < 1e-2 else above


def _place_charged(ls: ListScheduler, v: int, *, extra: list[np.ndarray]) -> None:
    """Place ``v`` in the mode of least finish plus ``extra[v]`` (per mode)."""
    ls.place_best(v, extra[v])


def _mode_durations(problem: Problem) -> list[np.ndarray]:
    """Each op's modes' durations (units), in the order of its modes."""
    m = problem.modes
    return [problem.mode_dur[m.ops_modes(v)].astype(np.float64) for v in range(problem.n)]


def _and_unchained(run: Any) -> Any:
    """``run``, and on a problem with sharded chains also ``run`` without their modes,
    the better plan kept (with the problem's bound): cheap chain modes shift the ranks
    and the precision choice of a greedy pass, which may then do worse than without."""

    def both(problem: Problem, ctx: SolveContext, **options: Any) -> Plan:
        plan = run(problem, ctx, **options)
        if not problem.has_chains:
            return plan
        try:
            unchained = problem.without_chains()
        except SolverError:  # some op runs only in a chain (Megatron-style sharding)
            return plan
        other = run(unchained, ctx, **options)
        return other.with_(lower_bound=plan.lower_bound) if other.makespan < plan.makespan else plan

    return both


_LIST = Capabilities(modes=True)
# with an error budget, each op's precision is chosen first (greedy by gain per error)
solve_heft = Solver("heft", _and_unchained(within_budget(_heft)), _LIST, options=("insertion",))
solve_cpop = Solver("cpop", _and_unchained(within_budget(_cpop)), _LIST)
solve_peft = Solver("peft", _and_unchained(within_budget(_peft)), _LIST)
solve_heft_fewer = Solver("heft-fewer", _and_unchained(within_budget(_heft_fewer)), _LIST)
"""HEFT on the fastest k devices for every k, the best kept (communication-heavy graphs)."""
solve_heft_ranks = Solver("heft-ranks", _and_unchained(within_budget(_heft_ranks)), _LIST)
"""HEFT with two other weights of the transfers in its rank (communication-heavy graphs)."""
solve_heft_efficient = Solver(
    "heft-efficient", _and_unchained(within_budget(_heft_efficient)), _LIST
)
"""HEFT charging each op its time, or its load-LP-priced time, above its cheapest mode."""
