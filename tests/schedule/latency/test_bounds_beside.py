"""The dearest LP bounds beside the plan search: the same bounds as in turn, on the worker
the heuristics leave idle, only with two workers or more, and the portfolio reports them."""

from __future__ import annotations

import threading

import pytest

from hetsched.bench.instances import build_problem, random_spec
from hetsched.problem import Problem
from hetsched.schedule.bounds import lower_bound_within
from hetsched.schedule.latency.heuristics import solve_heft
from hetsched.schedule.latency.portfolio import (
    BOUNDS_BESIDE,
    WHOLE_BOUNDS_MAX_OPS,
    _BoundsBeside,
    solve_portfolio,
)
from hetsched.solver import SolveContext, StopToken


def _context(workers: int, time_limit: float = 60) -> SolveContext:
    return SolveContext(time_limit=time_limit, seed=0, stop=StopToken(), workers=workers)


def test_beside_the_search_they_are_the_bounds_in_turn() -> None:
    p = build_problem(random_spec(100, 3, 10.0, seed=0, beta=1.0))
    alone = build_problem(random_spec(100, 3, 10.0, seed=0, beta=1.0))  # nothing memoised
    heft = solve_heft(p, time_limit=5)
    bounds = _BoundsBeside.start(p, _context(2))
    assert bounds is not None
    stats: dict = {"path": []}
    value = bounds.result(heft, stats, stop_first=False)  # both LPs, to their end
    assert value == lower_bound_within(alone, only=BOUNDS_BESIDE)[0] * alone.quantum == 735
    assert stats["path"] == [] and "bounds_skipped" not in stats
    # kept: the search's own bounds count it and do not solve it again
    assert lower_bound_within(p, deadline=0.0, leave=BOUNDS_BESIDE)[0] == 735


def test_they_run_beside_only_with_a_worker_to_spare() -> None:
    p = build_problem(random_spec(30, 3, 10.0, seed=0, beta=1.0))
    assert _BoundsBeside.start(p, _context(1)) is None  # one worker: in turn
    chain = Problem.from_arrays(
        names=[f"t{i}" for i in range(WHOLE_BOUNDS_MAX_OPS + 1)],
        devices=["x", "y"],
        exec_time=[[1.0, 2.0]] * (WHOLE_BOUNDS_MAX_OPS + 1),
        edges=[(i, i + 1, 1.0) for i in range(WHOLE_BOUNDS_MAX_OPS)],
        quantum=1.0,
    )
    assert _BoundsBeside.start(chain, _context(2)) is None  # above it: no whole-graph LP


def test_a_bound_they_had_no_time_for_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    from hetsched.schedule.latency import portfolio

    monkeypatch.setattr(portfolio, "BOUNDS_BESIDE_SHARE", 0.0)  # a deadline at the start
    p = build_problem(random_spec(100, 3, 10.0, seed=0, beta=1.0))
    bounds = _BoundsBeside.start(p, _context(2))
    assert bounds is not None
    stats: dict = {"path": []}
    assert bounds.result(solve_heft(p, time_limit=5), stats, stop_first=True) > 0
    assert "transfer_lp" in stats["bounds_skipped"]


def test_a_stop_skips_the_lps_not_yet_started(monkeypatch: pytest.MonkeyPatch) -> None:
    from hetsched.schedule.latency import portfolio

    entered, released = threading.Event(), threading.Event()
    asked: list[tuple[str, ...]] = []

    def first_lp_until_released(_p, _deadline, *, only):  # type: ignore[no-untyped-def]
        asked.append(tuple(only))
        entered.set()
        released.wait(10)
        return 700, ()

    monkeypatch.setattr(portfolio, "lower_bound_within", first_lp_until_released)
    p = build_problem(random_spec(100, 3, 10.0, seed=0, beta=1.0))
    ctx = _context(2)
    ctx.stop.set()  # the portfolio's stop before the start: nothing starts
    assert _BoundsBeside.start(p, ctx) is None
    bounds = _BoundsBeside.start(p, _context(2))
    assert bounds is not None
    assert entered.wait(10)
    bounds.stop()  # while the first LP runs
    released.set()
    stats: dict = {"path": []}
    assert bounds.result(solve_heft(p, time_limit=5), stats, stop_first=False) == 700
    # the LP under way ends and counts; those after it do not start
    assert asked == [BOUNDS_BESIDE[:1]]
    assert stats["bounds_skipped"] == list(BOUNDS_BESIDE[1:])


def test_the_portfolio_reports_them_with_two_workers() -> None:
    # transfers as dear as ops (no placement relaxation beside): its LPs take about 0.5 s
    # here, 0.7 of the 5 s budget is theirs
    p = build_problem(random_spec(100, 8, 1.0, seed=0, beta=1.0))
    fresh = build_problem(random_spec(100, 8, 1.0, seed=0, beta=1.0))
    plan = solve_portfolio(p, time_limit=5, seed=0, workers=2)
    assert plan.lower_bound >= min(lower_bound_within(fresh)[0] * p.quantum, plan.makespan)
    assert "bounds_skipped" not in plan.stats
