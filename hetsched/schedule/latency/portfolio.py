"""Portfolio: heuristics first, bounds, then exact search seeded with the best plan.

Within one time budget: HEFT, PEFT, CPOP and LP-rounded HEFT (milliseconds to ~0.5 s; on
graphs whose transfers cost more than their ops, HEFT on the fastest k devices and with
other rank weights too), the lower bounds (with two workers, the transfer LP beside the
heuristics on the worker they leave idle: :class:`_BoundsBeside`; on small such graphs,
also the placement relaxation's: :mod:`~hetsched.schedule.latency.placement`, in turn
with one worker, else on a worker of its own beside the other stages:
:class:`_PlacementBeside`), cluster moves
and simulated
annealing (:mod:`~hetsched.schedule.latency.anneal`) on such graphs, and if the best
heuristic is not already proven optimal, CP-SAT (small and
medium graphs) or large-neighbourhood search around the best plan (large graphs), hinted
with the best plan so far. Returns the best plan with the best bound any method proved.

The path is picked by size and budget (no tuning). The fast LP-guided EFT variants
(:func:`~hetsched.schedule.latency.eft.first_plan`) are always among the heuristics and give the
first plan on large graphs; above :data:`LARGE_OPS` ops PEFT/CPOP are skipped and HEFT runs
only when the budget is at least :data:`HEFT_BUDGET_PER_OP` seconds per op (it is a Python
insertion scheduler, ~0.7 ms/op); bounds come from the vectorised critical path and the load
LP's dual there, plus the series bound (:mod:`~hetsched.schedule.bounds.series`); when series cuts
split the graph into repeated segments (transformer layers) a share of the time solves each
class of segments once and copies it (:mod:`~hetsched.schedule.latency.segments`); when the graph
repeats a block (:func:`~hetsched.schedule.latency.blocks.find_blocks`) a share of the time solves
one block and replicates it; LNS refines for the rest of the time.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0)], comm_latency=np.array([[0, 1], [1, 0]]), quantum=1.0)
>>> plan = solve_portfolio(p, time_limit=5, seed=0, workers=1)
>>> plan.status, plan.makespan, plan.solver
('optimal', 7.0, 'portfolio')
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Self

import numpy as np

from hetsched.errors import SolverError
from hetsched.plan import Plan
from hetsched.problem import Problem
from hetsched.schedule.bounds import (
    BOUND_SHARE,
    LP_SECONDS_PER_UNIT,
    bound_source,
    critical_path_bound,
    heads_and_tails_fast,
    load_bound_dual,
    lower_bound_within,
    quick_lower_bound,
    record_bound,
    series_bound_within,
)
from hetsched.schedule.latency.eft import first_plan
from hetsched.schedule.latency.heuristics import (
    comm_ratio,
    solve_cpop,
    solve_heft,
    solve_heft_efficient,
    solve_heft_fewer,
    solve_heft_ranks,
    solve_peft,
)
from hetsched.schedule.latency.lpround import solve_lp_heft
from hetsched.schedule.latency.residency import (
    make_resident,
    spread_runs,
    streamed_restriction,
)
from hetsched.schedule.latency.warmstart import carry_plan
from hetsched.solver import Capabilities, SolveContext, Solver, StopToken

__all__ = [
    "ANNEAL_MIN_CCR",
    "ANNEAL_MIN_DEVICES",
    "ANNEAL_SHARE",
    "ANNEAL_SHARE_BEFORE_LNS",
    "BLOCK_SHARE",
    "CLUSTER_SHARE",
    "CPSAT_MAX_OPS",
    "EFFICIENT_SHARE",
    "HEAVY_CPSAT_MAX_OPS",
    "HEFT_BUDGET_PER_OP",
    "LARGE_OPS",
    "LOCAL_SEARCH_SHARE",
    "LP_HEFT_MAX_CCR",
    "PLACEMENT_LINKS_SECONDS",
    "PLACEMENT_SECONDS_PER_OP",
    "PLACEMENT_SHARE",
    "SEGMENT_SHARE",
    "solve_portfolio",
]

log_ = logging.getLogger(__name__)

# Above this many ops a monolithic CP-SAT model stalls on 2 cores; LNS takes over.
CPSAT_MAX_OPS = 400
# The same on graphs whose transfers cost more than their ops: there the whole model of a
# 300-op graph on 8 devices had not loaded its hint after 6 s of a 10 s budget (random
# suite, CCR 10), and LNS ended below it on 4 of 4 such graphs at 10 s (0.4-3.5%) and 3 of
# 4 at 30 s (one proved optimal, 3,366 against 3,471; the fourth 1.3% above); from 60 s
# the whole model is ahead on the 8-device ones (1.6-3.8%) and behind on the 3-device ones.
HEAVY_CPSAT_MAX_OPS = 200
# Seconds building a plan from arrays takes per op (measured: 0.18 s at 3,000 ops on a quiet
# machine, 0.5 s at 10,000 on a busy one), set aside at most PLAN_SHARE of the time left.
PLAN_SECONDS_PER_OP = 1e-4
PLAN_SHARE = 0.15
# Above this many ops the Python heuristics (PEFT, CPOP, local search, LP bound) cost seconds.
LARGE_OPS = 3000
# HEFT on a large graph only if the budget allows this many seconds per op (~5x its cost).
HEFT_BUDGET_PER_OP = 0.003
# Fraction of the remaining budget given to local search before the exact stage.
LOCAL_SEARCH_SHARE = 0.1
# Above this CCR the LP-rounded HEFT is not run: its LP lets transfers cost nothing, and on
# the random suite at CCR 10 its plans were 1.3-3.6x HEFT's on 18 of 18 graphs while its LP
# took up to 23 s (1,000 ops, 8 devices); at CCR 1 it beat HEFT on 3 of 18.
LP_HEFT_MAX_CCR = 3.0
# Fraction of the remaining budget heft-efficient's list schedules may take (up to 20 of
# them; 1,000 ops on 3 and 8 devices: 1.2-4.5 s, within 0.3 of a 30 s budget; at 3,000 ops
# this keeps them from taking all of it).
EFFICIENT_SHARE = 0.3
# Fraction of the remaining budget for cluster moves on graphs whose transfers cost more
# than their ops, before CP-SAT or LNS.
CLUSTER_SHARE = 0.15
# Fraction of the remaining budget for simulated annealing
# (:mod:`~hetsched.schedule.latency.anneal`) after the cluster moves, on graphs whose
# transfers cost more than ANNEAL_MIN_CCR times their ops. On the random suite at CCR 10,
# 10 s, two workers: plans better on 4 of 4 held-out 100-op graphs on 5-8 devices
# (3.8-10.7%) and 4 of 4 300-op ones (0.05-8.6%). At CCR 1 (transfers 0.96-1.05x the
# ops) it cost CP-SAT the proof of a 100-op graph at 60 s, hence the threshold.
# On graphs CP-SAT takes whole on at most ANNEAL_MIN_DEVICES devices, CP-SAT does more with
# the time (100 ops, CCR 10, 3 devices, 10 s, two runs each: 952-957 against 995-1,099,
# 1,027-1,040 against 1,076-1,150; one graph the other way, 1,269-1,287 against 1,225-1,244).
ANNEAL_SHARE = 0.6
# The same where LNS, not CP-SAT, follows (graphs CP-SAT does not take whole): LNS and the
# local search after annealing improved its plan by 0-0.3% at 300 ops and not at 1,000
# (random suite, CCR 10). With 0.85 against 0.6, 10 s, two workers, three seeds each on
# 300-op graphs (8 related, 8, 5 and 3 unrelated devices): better in 9 of 12 runs, in all
# 12 by 1.3%; 1,000 ops in 30 s (8 related, 8 and 3 unrelated): 4,341 / 3,929 / 11,132
# against 4,319 / 4,100 / 11,117.
ANNEAL_SHARE_BEFORE_LNS = 0.85
# The start temperature (makespan per op) of a second annealing search beside the first on
# graphs with no placement relaxation to run beside it (above PLACEMENT_MAX_OPS ops), with
# two workers or more. At 1,000 ops and 1,000 moves per op (about 6 s compiled, from
# heft-efficient's plan) 0.1 was best or within 1% of it on 4 of 5 random-suite CCR-10
# graphs (3 and 8 devices, seeds 0 and 1: 11,141 against 11,323 at 1 and 11,293 at 0.3 on
# 3 unrelated devices) where the moves-per-op rule starts at 2; at 300 ops on 8 devices
# 2 was best.
COOL_HEAT = 0.1
ANNEAL_MIN_CCR = 3.0
ANNEAL_MIN_DEVICES = 3
# With one worker (with more it runs beside the plan search, :class:`_PlacementBeside`),
# the share of the remaining budget for the placement relaxation's bound
# (:mod:`~hetsched.schedule.latency.placement`) on small graphs whose transfers cost more
# than their ops, when that share gives it at least PLACEMENT_SECONDS_PER_OP per op; it
# returns as soon as it proves the relaxation's optimum. Searched from below, its bound
# rises with every refuted horizon, so a short share helps too. With its LP (before it
# searched without) and 0.3 of a 60 s budget it missed the 8-device proofs of the random
# suite's 100-op CCR-10 graphs (868, 771 for 872, 851); with 0.4 it made them, and at 10 s
# the plans were no worse (0.789x HEFT against 0.784x, one run each).
PLACEMENT_SHARE = 0.4
PLACEMENT_SECONDS_PER_OP = 0.01
# With one worker and at least this many seconds for it, the placement relaxation goes on
# from its first optimum with each transfer's own link (placement_bound's ``links``); with
# fewer it stops there. At 10 s on the 100-op CCR-10 graph on 3 related devices that second
# step proved nothing new in 1.4-2.6 s CP-SAT then lacked (plans 950-1,006 against
# 942-949, three runs each; with its LP). Beside the plan search it always goes on.
PLACEMENT_LINKS_SECONDS = 30.0
# Up to this many ops the portfolio's bounds are all of them (lower_bound_within); above,
# the vectorised ones and the series bound.
WHOLE_BOUNDS_MAX_OPS = 2000
# With two workers or more, these bounds run beside the plan search (:class:`_BoundsBeside`),
# in this order, until this share of the time, not in turn with the others. The window LP
# (GLOP) took 0.5-0.7 s alone and 1.4-2.2 s beside another thread at 300 ops on 8 devices
# (random suite, CCR 10; estimated 0.6 s), in turn cut at its deadline in a 10 s solve
# (0.25 of the time left), and moved no bound of the random suite's 100- and 300-op
# graphs at CCR 10. The share is their LPs' deadline: where the portfolio anneals, the
# search collects them after annealing (0.85 of the time); elsewhere it may wait for them
# up to it. With 0.4 the transfer LP of the 1,000-op graph on 8 unrelated devices (10.4 s
# alone, 10.6 s beside annealing) did not fit a 30 s solve, with 0.5 it does.
BOUNDS_BESIDE = ("transfer_lp", "window")
BOUNDS_BESIDE_SHARE = 0.5
# Fraction of the remaining budget for solving one repeated block (when there are blocks).
BLOCK_SHARE = 0.3
# Fraction of the remaining budget for solving the classes of segments between series cuts.
SEGMENT_SHARE = 0.8


def _portfolio(problem: Problem, ctx: SolveContext) -> Plan:
    """Best plan and best bound of heuristics + exact search within the time limit."""
    if problem.constraints is not None and problem.constraints.structural:
        return _structured(problem, ctx)
    n = problem.n
    # the plans built after the last search step (re-timing, records) come out of the limit
    ctx = ctx.child(
        time_limit=ctx.remaining() - min(PLAN_SHARE * ctx.remaining(), PLAN_SECONDS_PER_OP * n)
    )
    anneals = _anneals(problem)
    if anneals:  # numba compiles (or loads) the annealing loop meanwhile
        from hetsched.schedule.latency.anneal import compiles, warm_up

        if compiles(problem):
            warm_up()
    beside = _PlacementBeside.start(problem, ctx, anneals=anneals)
    if beside is not None and not beside.hands_back:
        ctx = dataclasses.replace(ctx, workers=ctx.workers - 1)
    bounds = _BoundsBeside.start(problem, ctx) if beside is None else None
    try:
        return _search(problem, ctx, beside, bounds)
    finally:  # the search is over, or failed: the bounds beside it too
        for side in (beside, bounds):
            if side is not None:
                side.stop()


def _shape(p: Problem) -> tuple[float, bool, bool]:
    """``(ccr, heavy, whole)``: the ratio of ``p``'s transfers to its ops
    (:func:`~hetsched.schedule.latency.heuristics.comm_ratio`), whether transfers cost more
    than ops on average (up to :data:`LARGE_OPS` ops), and whether CP-SAT takes it whole."""
    ccr = comm_ratio(p)
    heavy = p.n <= LARGE_OPS and ccr > 1.0
    return ccr, heavy, p.n <= (HEAVY_CPSAT_MAX_OPS if heavy else CPSAT_MAX_OPS)


def _anneals(p: Problem) -> bool:
    """Whether the portfolio anneals plans of ``p``: its transfers cost more than
    :data:`ANNEAL_MIN_CCR` times its ops, and CP-SAT does not take it whole on at most
    :data:`ANNEAL_MIN_DEVICES` devices."""
    ccr, _, whole = _shape(p)
    return ccr > ANNEAL_MIN_CCR and (not whole or p.num_devices > ANNEAL_MIN_DEVICES)


def _search(
    problem: Problem,
    ctx: SolveContext,
    beside: _PlacementBeside | None,
    bounds: _BoundsBeside | None = None,
) -> Plan:
    """The portfolio's stages (:func:`_portfolio`), the placement relaxation ``beside``,
    or the LP ``bounds`` beside the heuristics."""
    n = problem.n
    device_view = problem.is_device_table  # segments, blocks, LS and LNS need one
    heuristics: dict[str, Plan] = {}
    # the device-view heuristics (EFT, LP-rounded HEFT) need a one-device mode for each op
    one_device = bool(problem.allowed.any(axis=1).all())
    stages: list[tuple[str, Callable[[], Plan | None]]] = []
    stages_skipped: list[str] = []
    heft_ok = n <= LARGE_OPS or ctx.time_limit >= HEFT_BUDGET_PER_OP * n
    if one_device:
        stages.append(("eft", lambda: first_plan(problem)))
    if heft_ok:
        stages.append(("heft", lambda: solve_heft.within(problem, ctx.child())))
    ccr, heavy, whole = _shape(problem)
    if n <= LARGE_OPS and one_device and ccr <= LP_HEFT_MAX_CCR:
        # before PEFT and CPOP: on large graphs it wins most
        stages.append(("lp-heft", lambda: solve_lp_heft(problem)))
    fewer_ok = ctx.time_limit >= HEFT_BUDGET_PER_OP * n * problem.num_devices
    if heavy and fewer_ok and problem.num_devices > 2:
        stages.append(("heft-fewer", lambda: solve_heft_fewer.within(problem, ctx.child())))
    if heavy and ctx.time_limit >= HEFT_BUDGET_PER_OP * n * 2:
        stages.append(("heft-ranks", lambda: solve_heft_ranks.within(problem, ctx.child())))
        stages.append(("heft-efficient", lambda: solve_heft_efficient.within(
            problem, ctx.child(time_limit=EFFICIENT_SHARE * ctx.remaining()))))  # fmt: skip
    if n <= LARGE_OPS:
        stages.append(("peft", lambda: solve_peft.within(problem, ctx.child())))
        stages.append(("cpop", lambda: solve_cpop.within(problem, ctx.child())))
    streamed = streamed_restriction(problem) if problem.use_memory else None
    if streamed is not None:  # weights streamed, then kept resident where memory allows

        def streamed_first(run: Callable[[], Plan | None], label: str) -> Plan | None:
            first = run()
            if first is None:
                return None
            if n > LARGE_OPS:  # re-timing per batch costs seconds here: carry it only
                carried = carry_plan(first, problem)
                return None if carried is None else carried.with_(solver=label)
            tries = [make_resident(x, problem) for x in (first, *spread_runs(first, problem))]
            return min(tries, key=lambda x: x.makespan).with_(solver=label)

        sub = streamed
        if heft_ok:
            stages.append(("heft-streamed", lambda: streamed_first(
                lambda: solve_heft.within(sub, ctx.child()), "heft-streamed")))  # fmt: skip
        if n <= LARGE_OPS:
            stages.append(("peft-streamed", lambda: streamed_first(
                lambda: solve_peft.within(sub, ctx.child()), "peft-streamed")))  # fmt: skip
    last_cost = 0.0
    for name, run in stages:
        # the next one would end too late: list schedulers cost about as much as the last,
        # the LP-rounded HEFT its window LP first
        cost = last_cost + (
            LP_SECONDS_PER_UNIT * n * problem.num_devices if name == "lp-heft" else 0
        )
        if heuristics and ctx.remaining() < cost:
            stages_skipped.append(name)
            continue
        t_stage = time.perf_counter()
        try:
            found = run()
        except SolverError:  # a greedy scheduler out of memory: the others may fit
            continue
        finally:
            last_cost = time.perf_counter() - t_stage
        if found is not None:
            heuristics[name] = found
            if name == "eft" and not whole:
                ctx.report("eft", found.makespan, 0.0)
    baselines = {k: v.makespan for k, v in heuristics.items()}
    hint = carry_plan(ctx.hint, problem) if ctx.hint is not None else None
    candidates = list(heuristics.values()) + ([hint] if hint is not None else [])
    # a plan over a device's memory is no plan (EFT only overflows when nothing else fits)
    candidates = [pl for pl in candidates if _fits(problem, pl)]
    if not candidates:
        if n > CPSAT_MAX_OPS:
            msg = (
                f"no heuristic found a plan of {problem.name!r} that fits the devices' memory"
                f"{_why_memory(problem, ctx)}"
            )
            raise SolverError(msg)
        from hetsched.schedule.latency.cpsat import solve_cpsat

        exact = solve_cpsat.within(problem, ctx.child(hint=None))
        return exact.with_(stats={"path": ["cpsat"], "winner": "cpsat"})
    best = min(candidates, key=lambda pl: (pl.makespan, pl.solver))
    q = problem.quantum
    # only this solve's bounds count: a hint's may belong to another problem, and a
    # heuristic run on a restriction (fewer devices, weights streamed) carries its bound
    own, skipped = _bound(problem, ctx, leave=BOUNDS_BESIDE if bounds is not None else ())
    bound = max(own, quick_lower_bound(problem)) * q  # above 2,000 ops _bound skips some
    ctx.report(best.solver, best.makespan, bound)
    stats: dict[str, Any] = {"path": [best.solver]}
    if skipped:  # said, not hidden: `--solver bounds` computes them without a budget
        stats["bounds_skipped"] = list(skipped)
    if stages_skipped:
        stats["heuristics_skipped"] = stages_skipped
    # Large graphs: repeated segments, then a repeated block, each solved once and copied;
    # these stages, local search and LNS move ops between devices, one mode per (op, device)
    view = problem if device_view else device_view_of(problem, best)
    for name, stage in (("segments", _segments_stage), ("blocks", _blocks_stage)):
        if whole or view is None or best.makespan <= bound * (1 + 1e-12):
            break
        if ctx.stop.is_set():
            break
        improved = stage(view, best, ctx.remaining(), ctx.seed, ctx.workers, ctx.stop, stats)
        if improved is not None:
            best = improved.with_(lower_bound=bound)
            ctx.report(name, best.makespan, bound)
    anneal_ok = _anneals(problem)
    placed = beside is not None
    if heavy and view is not None and best.makespan > bound * (1 + 1e-12) and not ctx.stop.is_set():
        # Transfers dearer than ops: move whole clusters across the dearest transfers
        from hetsched.schedule.latency.clusters import solve_clusters

        moved = solve_clusters.within(
            view, ctx.child(time_limit=CLUSTER_SHARE * ctx.remaining(), hint=best)
        )
        stats["path"].append("clusters")
        if moved.makespan < best.makespan:
            best = moved.with_(lower_bound=bound)
            ctx.report("clusters", best.makespan, bound)
        if anneal_ok and best.makespan > bound * (1 + 1e-12) and not ctx.stop.is_set():
            best = _anneal_stage(view, best, bound, ctx, stats, cool=beside is None)
    if heavy and not placed and best.makespan > bound * (1 + 1e-12):
        bound = _placement_stage(problem, best, bound, ctx, stats)
    large = not whole and n <= LARGE_OPS
    unproven = best.makespan > bound * (1 + 1e-12)
    if large and view is not None and unproven and ctx.remaining() > 0.1 and not ctx.stop.is_set():
        # Large graphs: a share of the budget for cheap critical-path moves before LNS. (On
        # graphs CP-SAT takes whole, measured: the time is better spent in CP-SAT.)
        from hetsched.schedule.latency.localsearch import solve_local_search

        ls = solve_local_search.within(
            view,
            ctx.child(time_limit=max(0.05, LOCAL_SEARCH_SHARE * ctx.remaining()), hint=best),
        )
        stats["path"].append("ls")
        stats["ls"] = dict(ls.stats)
        if ls.makespan < best.makespan:
            best = ls
    if bounds is not None and best.makespan > bound * (1 + 1e-12):  # (proved: not needed)
        bound = max(bound, bounds.result(best, stats, stop_first=True))
        ctx.report(best.solver, best.makespan, bound)
    if beside is not None and beside.hands_back:  # its worker back, for CP-SAT or LNS
        bound = max(bound, beside.result(best, stats, stop_first=True))
        ctx.report(best.solver, best.makespan, bound)
        beside = None
    searched, searched_to = False, 0.0
    exact_ok = whole or view is not None
    if best.makespan > bound * (1 + 1e-12) and ctx.remaining() > 0.05 and exact_ok:
        if not ctx.stop.is_set() and whole:
            from hetsched.schedule.latency.cpsat import solve_cpsat

            exact = solve_cpsat.within(problem, ctx.child(hint=best))
            searched = exact.searched  # not over a restriction (memory rows that can bind)
        elif not ctx.stop.is_set():
            from hetsched.schedule.latency.lns import solve_lns

            assert view is not None
            exact = solve_lns.within(view, ctx.child(hint=best), bound=math.floor(bound / q + 1e-9))
        else:
            exact = best
        if exact is not best:
            stats["path"].append(exact.solver)
            stats[exact.solver] = dict(exact.stats)
            if exact.solver == "cpsat" or device_view:  # a view's bound is not the problem's
                if exact.solver == "cpsat" and exact.lower_bound > bound:
                    searched_to = exact.lower_bound  # (LNS only passes its bound on)
                bound = max(bound, exact.lower_bound)
            if exact.makespan <= best.makespan:
                best = exact
    if beside is not None:
        proven = best.makespan <= bound * (1 + 1e-12)
        bound = max(bound, beside.result(best, stats, stop_first=proven))
    bound = min(bound, best.makespan)
    return best.with_(
        searched=searched or best.searched,
        lower_bound=bound,
        stats={
            **stats,
            "winner": best.solver,
            "bound_from": _bound_from(problem, bound, stats, searched_to=searched_to),
        },
        baselines=baselines,
    )


def _bound_from(
    p: Problem, bound: float, stats: dict[str, Any], *, searched_to: float
) -> str | None:
    """Which bound gave ``bound`` (a key of
    :data:`~hetsched.schedule.bounds.BOUND_TITLES`): the placement relaxation's (its stats),
    CP-SAT's where its search raised the bound to ``searched_to``, or a named one computed
    for ``p``; ``None`` where none is known (a bound cut short by its deadline is not kept
    by name)."""
    placement = stats.get("placement")
    if isinstance(placement, dict) and placement.get("bound") == bound > 0:
        return "placement"
    if bound > 0 and bound == searched_to:
        return "search"
    return bound_source(p, math.floor(bound / p.quantum + 1e-9))


solve_portfolio = Solver(
    "portfolio",
    _portfolio,
    Capabilities(hint=True, workers=True, anytime=True, exact=True, modes=True, structure=True),
)

# Share of the budget the portfolio spends on the restriction (every group and segment
# pinned) before CP-SAT searches the problem with its groups and segment cap as constraints.
STRUCTURE_RESTRICTION_SHARE = 0.4


def _structured(problem: Problem, ctx: SolveContext) -> Plan:
    """Colocated groups or a segment cap: the portfolio on the restriction that pins them
    (:func:`~hetsched.schedule.structure.structure_restriction`), then, up to
    :data:`CPSAT_MAX_OPS` ops, CP-SAT on the problem itself from that plan. The bound is the
    problem's (groups and the cap relaxed) or CP-SAT's."""
    from hetsched.schedule.latency.cpsat import solve_cpsat
    from hetsched.schedule.structure import structure_restriction

    share = STRUCTURE_RESTRICTION_SHARE if problem.n <= CPSAT_MAX_OPS else 1.0
    restricted, _ = structure_restriction(problem)  # no structure left: the plain portfolio
    first = solve_portfolio.within(
        restricted, ctx.child(time_limit=share * ctx.remaining(), hint=None)
    )
    own, skipped = _bound(problem, ctx)
    bound = own * problem.quantum
    best, searched = first, False
    stats: dict[str, Any] = {"path": ["restriction", "portfolio"], "pinned": dict(first.stats)}
    if skipped:
        stats["bounds_skipped"] = list(skipped)
    if problem.n <= CPSAT_MAX_OPS and first.makespan > bound * (1 + 1e-12) and not ctx.expired():
        exact = solve_cpsat.within(problem, ctx.child(hint=first))
        stats["path"].append("cpsat")
        stats["cpsat"] = dict(exact.stats)
        bound = max(bound, exact.lower_bound)
        searched = exact.searched
        if exact.makespan <= best.makespan:
            best = exact
    return best.with_(
        lower_bound=min(bound, best.makespan),
        searched=searched,
        stats={**stats, "winner": best.solver},
        baselines=first.baselines,
    )


def _why_memory(problem: Problem, ctx: SolveContext) -> str:
    """Where HEFT's plan without memory constraints overflows (device, time, largest live
    tensors), to say what does not fit; empty if it fits."""

    from hetsched.plan import mode_ids
    from hetsched.plan.memory import memory_profile
    from hetsched.plan.validate import memory_overflow_message

    try:
        free = solve_heft.within(dataclasses.replace(problem, use_memory=False), ctx.child())
        m = mode_ids(free, problem)
        st = np.array([free.start[x] / problem.quantum for x in problem.names])
        fi = np.array([free.finish[x] / problem.quantum for x in problem.names])
        profile = memory_profile(problem, m, st, fi, {})
    except SolverError:
        return ""
    d = profile.over(problem.capacity)
    if d is None:
        return ""
    return f"; without memory limits HEFT's {memory_overflow_message(problem, profile, d)}"


def device_view_of(problem: Problem, plan: Plan) -> Problem | None:
    """``problem`` with one mode per (op, device), for the stages that move ops between
    devices: ``plan``'s mode where the op runs, elsewhere the fastest mode (resident
    weights, the static memory check decides whether a move fits). ``None`` when some
    ``plan`` mode spans several devices."""
    from hetsched.plan import mode_ids

    m = mode_ids(plan, problem)
    if np.any(problem.modes.width[m] > 1):
        return None
    keep = np.zeros(problem.num_modes, dtype=bool)
    keep[problem.device_mode[problem.device_mode >= 0]] = True
    for v in range(problem.n):
        d = problem.modes.devices_of(int(m[v]))[0]
        keep[int(problem.device_mode[v, d])] = False
        keep[int(m[v])] = True
    view = problem.select_modes(np.flatnonzero(keep))
    return view if view.is_device_table else None


def _fits(p: Problem, plan: Plan) -> bool:
    """Whether ``plan``'s live peak (``plan.memory``) fits every device."""
    from hetsched.plan.memory import within

    if not p.use_memory:
        return True
    peak = np.array([plan.memory.get(d, 0.0) for d in p.devices])
    return bool(np.all(within(peak, p.capacity)))


def _bound(
    p: Problem, ctx: SolveContext, *, leave: tuple[str, ...] = ()
) -> tuple[int, tuple[str, ...]]:
    """Best bound (units) of the real problem that fits :data:`BOUND_SHARE` of the time
    left: all bounds up to :data:`WHOLE_BOUNDS_MAX_OPS` ops but those to ``leave`` (being
    computed beside, counted if done), vectorised ones and the series bound above (on the
    rounded-down twin); and the names of the bounds skipped for time."""
    deadline = time.perf_counter() + BOUND_SHARE * ctx.remaining()
    if p.n <= WHOLE_BOUNDS_MAX_OPS:
        return lower_bound_within(p, deadline, leave=leave)
    p = p.floored
    _, tail = heads_and_tails_fast(p)
    cp = int(tail.max()) if p.n > LARGE_OPS else critical_path_bound(p)
    series, complete = series_bound_within(p, deadline=deadline)
    return max(cp, load_bound_dual(p), series), () if complete else ("series LPs",)


def _anneal_stage(
    view: Problem,
    best: Plan,
    bound: float,
    ctx: SolveContext,
    stats: dict[str, Any],
    *,
    cool: bool,
) -> Plan:
    """Simulated annealing from ``best`` for its share of the time (:data:`ANNEAL_SHARE`,
    :data:`ANNEAL_SHARE_BEFORE_LNS` where CP-SAT does not take the graph whole); with
    ``cool`` and two workers or more, on graphs above
    :data:`~hetsched.schedule.latency.placement.PLACEMENT_MAX_OPS` ops (no placement
    relaxation to run beside it), a second, cool search (:data:`COOL_HEAT`) beside the
    first (the compiled move loop releases the GIL). The best plan."""
    from hetsched.schedule.latency.anneal import (
        NOT_COMPILED,
        anneal,
        compiles,
        moves_for,
        ready_within,
        solve_anneal,
    )
    from hetsched.schedule.latency.placement import PLACEMENT_MAX_OPS

    fraction = ANNEAL_SHARE if _shape(view)[2] else ANNEAL_SHARE_BEFORE_LNS
    if not ready_within(view, fraction * ctx.remaining(), ctx.stop):  # (a fresh environment)
        stats["anneal"] = NOT_COMPILED
        return best
    share = fraction * ctx.remaining()
    with ThreadPoolExecutor(1) as pool:
        second = None
        if cool and ctx.workers >= 2 and view.n > PLACEMENT_MAX_OPS and compiles(view):
            moves = moves_for(view, share)
            second = pool.submit(
                anneal, view, best, moves=moves, seed=ctx.seed + 2, heat=COOL_HEAT,
                time_limit=share, stop=ctx.stop,
            )  # fmt: skip
        found = solve_anneal.within(view, ctx.child(time_limit=share, hint=best))
        stats["anneal"] = {"makespan": found.makespan}
        if second is not None:
            cooled = second.result()
            stats["anneal"]["cool"] = cooled.makespan
            found = min(found, cooled, key=lambda x: x.makespan)
    stats["path"].append("anneal")
    if found.makespan < best.makespan:
        best = found.with_(lower_bound=bound)
        ctx.report("anneal", best.makespan, bound)
    return best


class _Beside:
    """A bound of the problem searched in a thread, on a worker of its own, beside the plan
    search: :meth:`result` is that bound once checked against a plan."""

    name = "bound"

    def __init__(
        self,
        p: Problem,
        future: Future[float],
        stop: StopToken,
        unhook: Callable[[], None],
        stats: dict[str, Any],
        *,
        hands_back: bool,
    ):
        self._problem, self._future, self._stop = p, future, stop
        self._unhook, self._stats = unhook, stats
        self.hands_back = hands_back

    @classmethod
    def _run(
        cls, p: Problem, ctx: SolveContext, job: Callable[..., float], *, hands_back: bool
    ) -> Self:
        """``job(side, stats)`` started in a thread: ``side`` is ``ctx`` on one worker with
        a stop of its own (set by :meth:`stop` and by ``ctx``'s), ``stats`` what it adds to
        the plan's."""
        stop = StopToken()  # the search's end, the worker wanted back, or the portfolio's stop
        unhook = ctx.stop.on_stop(stop.set)
        side = dataclasses.replace(ctx, workers=1, stop=stop, progress=None)
        stats: dict[str, Any] = {"path": []}
        pool = ThreadPoolExecutor(1, thread_name_prefix=f"hetsched-{cls.name}")
        future = pool.submit(job, side, stats)
        pool.shutdown(wait=False)
        return cls(p, future, stop, unhook, stats, hands_back=hands_back)

    def stop(self) -> None:
        """Stop its search (its bound so far stays)."""
        self._stop.set()
        self._unhook()

    def result(self, best: Plan, stats: dict[str, Any], *, stop_first: bool) -> float:
        """Its bound (0 if above ``best``, a plan: every plan is a solution of a
        relaxation), its stats added to ``stats``; with ``stop_first`` (the plan proved
        optimal, or its worker wanted back) stopped first, else when its time is up."""
        if stop_first:
            self.stop()
        bound = self._future.result()
        if bound > best.makespan * (1 + 1e-9):
            log_.warning("%s bound %s above a plan of %s: ignored", self.name, bound, best.makespan)
            return 0.0
        stats["path"].extend(self._stats["path"])
        stats.update({k: v for k, v in self._stats.items() if k != "path"})
        if bound > 0:
            p = self._problem
            record_bound(p, math.floor(bound / p.quantum + 1e-9))  # CP-SAT, next, starts there
        return bound


class _PlacementBeside(_Beside):
    """The placement relaxation's bound (:func:`_placement_stage`, then the sequenced one)
    beside the plan search, from the portfolio's start: with three workers or more for all
    the time (the stages keep the others), with two until CP-SAT or LNS starts
    (:attr:`hands_back`; the stages before them, annealing among them, run on one).
    Without its LP (:mod:`~hetsched.schedule.latency.placement`) one worker proves as fast
    as two. On the random suite's 100-op CCR-10 graphs at 10 s, two workers, three bench
    runs each (BENCHMARKS.md): bounds 860 / 929 / 872 / 771 (3 related, 3 unrelated, 8
    related, 8 unrelated devices) against 860 / 822-851 / 760 / 699 with its LP, in turn
    before CP-SAT or beside annealing for 0.4 of the time; plans 965 / 1,051 / 1,125 /
    1,081 on average against 958 / 1,028 / 1,128 / 1,101. Run for all the time on a third
    thread (two workers for the stages), it proved 851 on the last graph, but the plans
    lost 2-3% (2 cores)."""

    name = "placement"

    @classmethod
    def start(cls, p: Problem, ctx: SolveContext, *, anneals: bool) -> _PlacementBeside | None:
        """Started on graphs whose transfers cost more than their ops, up to
        :data:`~hetsched.schedule.latency.placement.PLACEMENT_MAX_OPS` ops, with three
        workers or more, or two where the portfolio ``anneals`` a device table (on one
        worker; else CP-SAT would start soon, and the relaxation runs before it, on
        both); else ``None``."""
        from hetsched.schedule.latency.placement import PLACEMENT_MAX_OPS

        two = ctx.workers == 2 and anneals and p.is_device_table
        if not (ctx.workers >= 3 or two) or p.n > PLACEMENT_MAX_OPS or p.num_devices < 2:
            return None
        if ctx.stop.is_set():
            return None
        if not _shape(p)[1]:  # transfers cost no more than ops
            return None

        def job(side: SolveContext, stats: dict[str, Any]) -> float:
            return _placement_stage(
                p, None, 0.0, side, stats, share=1.0, links=True, sequenced=True
            )

        return cls._run(p, ctx, job, hands_back=ctx.workers == 2)


class _BoundsBeside(_Beside):
    """The bounds with the dearest LPs (:data:`BOUNDS_BESIDE`) beside the plan search, on
    the worker the heuristics leave idle, from the portfolio's start until
    :data:`BOUNDS_BESIDE_SHARE` of its time; the search computes the others in turn
    (:func:`_bound`), counting these if they have ended by then, else when it hands the
    worker back. The transfer LP takes 2-2.5 s at 300 ops on 8 devices and 7.5-11.4 s at
    1,000 (random suite, CCR 10), the window LP 0.5-2.2 s at 300: more than the share of a
    10 s or 30 s budget the search gives its bounds. An LP is not interrupted: a search
    proved optimal before it ends leaves it to its time limit; a stop before the next one
    skips it."""

    name = "LP bounds"

    @classmethod
    def start(cls, p: Problem, ctx: SolveContext) -> _BoundsBeside | None:
        """Started with two workers or more on graphs up to :data:`WHOLE_BOUNDS_MAX_OPS`
        ops (above, the portfolio's bounds solve no LP over the whole graph); else
        ``None``."""
        if ctx.workers < 2 or p.n > WHOLE_BOUNDS_MAX_OPS or ctx.stop.is_set():
            return None
        deadline = time.perf_counter() + BOUNDS_BESIDE_SHARE * ctx.remaining()

        def job(_side: SolveContext, stats: dict[str, Any]) -> float:
            value, skipped = 0, []
            for name in BOUNDS_BESIDE:  # one at a time, in this order
                if _side.stop.is_set():
                    skipped.append(name)
                    continue
                found, cut = lower_bound_within(p, deadline, only=(name,))
                value, skipped = max(value, found), skipped + list(cut)
            if skipped:
                stats["bounds_skipped"] = skipped
            return value * p.quantum

        return cls._run(p, ctx, job, hands_back=True)


def _placement_stage(
    p: Problem,
    best: Plan | None,
    bound: float,
    ctx: SolveContext,
    stats: dict[str, Any],
    *,
    share: float = PLACEMENT_SHARE,
    links: bool | None = None,
    sequenced: bool = False,
) -> float:
    """The best bound with the placement relaxation's, within ``share`` of the time left
    (graphs up to its :data:`~hetsched.schedule.latency.placement.PLACEMENT_MAX_OPS` ops);
    ``links``: it goes on with each transfer's own link (default: with at least
    :data:`PLACEMENT_LINKS_SECONDS` for it); ``sequenced``: once that optimum is proved,
    with each device's ops in sequence for the time left (as ``--solver bounds`` does)."""
    from hetsched.plan import schedule_arrays
    from hetsched.schedule.latency.placement import (
        PLACEMENT_MAX_OPS,
        placement_bound,
        sequenced_bound,
    )

    budget = share * ctx.remaining()
    if p.n > PLACEMENT_MAX_OPS or p.num_devices < 2 or ctx.stop.is_set():
        return bound
    if budget < PLACEMENT_SECONDS_PER_OP * p.n:
        stats.setdefault("bounds_skipped", []).append("placement")
        return bound
    t0 = time.perf_counter()
    exact = best is not None and p.is_device_table and p.exact
    hint = schedule_arrays(best, p) if exact and best is not None else None
    value, proved = placement_bound(
        p,
        time_limit=budget,
        seed=ctx.seed,
        workers=ctx.workers,
        stop=ctx.stop,
        hint=hint,
        floor=math.ceil(bound / p.quantum - 1e-9),
        links=budget >= PLACEMENT_LINKS_SECONDS if links is None else links,
    )
    left = t0 + budget - time.perf_counter()
    if sequenced and proved and left > PLACEMENT_SECONDS_PER_OP * p.n:
        value, _ = sequenced_bound(
            p, time_limit=left, seed=ctx.seed, workers=ctx.workers, stop=ctx.stop, floor=value
        )
    if best is not None and value * p.quantum > best.makespan * (1 + 1e-9):
        # every plan is a solution of the relaxation: CP-SAT refuted a feasible model
        log_.warning("placement bound %s above a plan of %s: ignored", value, best.makespan)
        return bound
    stats["path"].append("placement")
    stats["placement"] = {
        "bound": value * p.quantum,
        "proved": proved,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if value * p.quantum > bound:
        bound = value * p.quantum
        if best is not None:  # (else checked against a plan, and kept, by its caller)
            record_bound(p, value)  # CP-SAT, next, starts from it
            ctx.report(best.solver, best.makespan, bound)
    return bound


def _segments_stage(
    p: Problem,
    best: Plan,
    remaining: float,
    seed: int,
    workers: int,
    stop: StopToken,
    stats: dict[str, Any],
) -> Plan | None:
    """Solve each class of identical segments between series cuts once, copy the patterns."""
    from hetsched.plan import schedule_arrays
    from hetsched.schedule.latency.segments import segment_classes, solve_segments

    classes = segment_classes(p)
    covered = sum(c.total_ops for c in classes)
    stats["segments"] = {"classes": len(classes), "ops": covered}
    # Worth it only when the classes cover much of the graph and repeat (else LNS does it).
    if not classes or covered < 0.5 * p.n or remaining < 1.0:
        return None
    assign, start = schedule_arrays(best, p)
    out = solve_segments(
        p,
        assign,
        start,
        time_limit=SEGMENT_SHARE * remaining,
        seed=seed,
        workers=workers,
        stop=stop,
    )
    return _stage_plan(p, out, "segments", stats)


def _blocks_stage(
    p: Problem,
    best: Plan,
    remaining: float,
    seed: int,
    workers: int,
    stop: StopToken,
    stats: dict[str, Any],
) -> Plan | None:
    """Solve one repeated block and replicate it, if the graph has repeated blocks."""
    from hetsched.plan import schedule_arrays
    from hetsched.schedule.latency.blocks import find_blocks, solve_by_blocks

    blocks = find_blocks(p)
    stats["blocks"] = {"count": len(blocks), "size": int(blocks[0].size) if blocks else 0}
    if len(blocks) < 3 or blocks[0].size < 20 or remaining < 1.0:
        return None
    assign, start = schedule_arrays(best, p)
    out = solve_by_blocks(
        p,
        blocks,
        assign,
        start,
        time_limit=BLOCK_SHARE * remaining,
        seed=seed,
        workers=workers,
        stop=stop,
    )
    return _stage_plan(p, out, "blocks", stats)


def _stage_plan(
    p: Problem,
    out: tuple[np.ndarray, np.ndarray, dict[tuple[int, int], int]] | None,
    name: str,
    stats: dict[str, Any],
) -> Plan | None:
    """A stage's ``(assign, start, transfer_start)`` as a plan; the stage goes on the path."""
    from hetsched.plan import plan_from_schedule

    stats["path"].append(name)
    if out is None:
        return None
    assign, start, xfer = out
    return plan_from_schedule(p, assign=assign, start=start, solver=name, transfer_start=xfer)
