"""The placement relaxation's bound: never above the optimum (brute force, over modes too),
never above a valid plan, and above the other bounds where spreading work moves data."""

from __future__ import annotations

import pytest

from hetsched.bench.instances import build_problem, random_spec
from hetsched.plan import schedule_arrays
from hetsched.schedule.bounds import lower_bound, lower_bound_within, quick_lower_bound
from hetsched.schedule.latency.heuristics import solve_heft, solve_peft
from hetsched.schedule.latency.placement import (
    PLACEMENT_MAX_OPS,
    placement_bound,
    placement_model,
    sequenced_bound,
)
from hetsched.schedule.latency.portfolio import solve_portfolio
from tests.bruteforce import brute_force_makespan, random_tiny_problem
from tests.families import FAMILIES, random_problem
from tests.problem.test_relaxation import brute_force, random_mode_problem
from tests.schedule.bounds.test_delays import heavy_problem


@pytest.mark.parametrize("seed", range(30))
def test_it_never_exceeds_the_brute_force_optimum(seed: int) -> None:
    for p in (
        random_tiny_problem(seed, n=6, devices=2 + seed % 2),
        heavy_problem(seed),
        heavy_problem(seed, devices=2, ccr=10.0),
    ):
        value, proved = placement_bound(p, time_limit=30)
        assert proved  # six ops: the relaxation's optimum, not a stopped search
        assert quick_lower_bound(p) <= value <= brute_force_makespan(p)


@pytest.mark.parametrize("seed", range(12))
def test_over_modes_it_never_exceeds_the_brute_force_optimum(seed: int) -> None:
    # splits over device groups, precisions, kept-sharded chains: bounded on the relaxation
    p = random_mode_problem(seed)
    best = brute_force(p)
    assert best is not None
    assert placement_bound(p, time_limit=30)[0] <= best


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("seed", range(3))
def test_it_stays_below_every_valid_plan(family: str, seed: int) -> None:
    p = random_problem(seed, n=40, family=family)
    value, _ = placement_bound(p, time_limit=2)
    for solver in (solve_heft, solve_peft):
        assert value <= round(solver(p, time_limit=5, seed=0).makespan / p.quantum)


def test_it_sees_that_spreading_work_moves_data() -> None:
    # the random suite's CCR-10 graphs at 30 ops: 476 -> 525 (3 unrelated devices) and
    # 465 -> 520 (8), proven in well under a second; 100 ops on 3 unrelated: 718 -> 929
    for devices, old, new in ((3, 476, 525), (8, 465, 520)):
        p = build_problem(random_spec(30, devices, 10.0, seed=0, beta=1.0))
        assert lower_bound(p) == old
        assert placement_bound(p, time_limit=60, workers=1) == (new, True)


def test_it_pays_the_link_a_transfer_takes_not_the_cheapest_into_the_device() -> None:
    # links of unequal latency: charging each transfer into a device the cheapest link from
    # any other device of the producer proved 18 here; the producer's own link proves the
    # optimum
    p = heavy_problem(12)
    assert quick_lower_bound(p) == 18 and brute_force_makespan(p) == 20
    assert placement_bound(p, time_limit=10, workers=1) == (20, True)
    # the first step alone (the portfolio's below PLACEMENT_LINKS_SECONDS)
    assert placement_bound(p, time_limit=10, workers=1, links=False) == (18, True)


def test_the_first_step_only_refutes_when_the_links_step_follows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # proving the cheapest-link optimum costs what the links model's first refutations
    # from the same floor give more of: only the last step minimises
    from hetsched.schedule.latency import placement

    calls: list[int] = []
    real = placement._minimise_from

    def minimise(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args[2])  # the proven bound it starts from
        return real(*args, **kwargs)

    monkeypatch.setattr(placement, "_minimise_from", minimise)
    p = heavy_problem(12)
    assert placement_bound(p, time_limit=10, workers=1) == (20, True)
    assert len(calls) <= 1  # the links step's (none where its first probe proves 20)
    calls.clear()
    assert placement_bound(p, time_limit=10, workers=1, links=False) == (18, True)
    assert len(calls) == 1


def test_a_hint_changes_nothing_it_proves() -> None:
    p = build_problem(random_spec(30, 3, 10.0, seed=0, beta=1.0))
    hint = schedule_arrays(solve_heft(p, time_limit=5), p)
    assert placement_bound(p, time_limit=60, hint=hint) == placement_bound(p, time_limit=60)


def test_the_portfolio_reports_it_where_transfers_dominate() -> None:
    p = build_problem(random_spec(30, 3, 10.0, seed=0, beta=1.0))
    plan = solve_portfolio(p, time_limit=20, seed=0, workers=1)
    assert plan.stats["placement"]["bound"] == 525.0
    assert plan.lower_bound >= 525.0
    assert lower_bound_within(p)[0] >= 525  # recorded: the searches after it start there
    short = solve_portfolio(p, time_limit=0.5, seed=0, workers=1)  # under 0.01 s per op
    assert "placement" in short.stats["bounds_skipped"]
    assert "placement" not in short.stats["path"]
    cheap = build_problem(random_spec(30, 3, 0.1, seed=0, beta=1.0))
    assert "placement" not in solve_portfolio(cheap, time_limit=5, seed=0).stats["path"]


def test_beside_the_search_it_stops_when_asked_and_keeps_what_it_proved() -> None:
    import time

    from hetsched.schedule.latency.portfolio import _PlacementBeside
    from hetsched.solver import SolveContext, StopToken

    p = build_problem(random_spec(100, 8, 10.0, seed=0, beta=0.0))
    heft = solve_heft(p, time_limit=5)
    ctx = SolveContext(time_limit=300, seed=0, stop=StopToken(), workers=2)
    assert _PlacementBeside.start(p, ctx, anneals=False) is None  # two workers: in turn
    beside = _PlacementBeside.start(p, ctx, anneals=True)  # beside annealing, on one
    assert beside is not None and beside.hands_back  # then both for CP-SAT
    t0 = time.perf_counter()
    stats: dict = {"path": []}
    bound = beside.result(heft, stats, stop_first=True)  # at once, not after 300 s
    assert time.perf_counter() - t0 < 150
    assert bound <= heft.makespan
    if stats["path"]:  # (stopped before it began, it reports nothing)
        assert stats["path"] == ["placement"] and stats["placement"]["bound"] == bound
    three = SolveContext(time_limit=300, seed=0, stop=StopToken(), workers=3)
    beside = _PlacementBeside.start(p, three, anneals=False)
    assert beside is not None and not beside.hands_back  # all the time on a third worker
    beside.stop()
    assert beside.result(heft, stats, stop_first=False) <= heft.makespan
    one = SolveContext(time_limit=300, seed=0, stop=StopToken(), workers=1)
    assert (
        _PlacementBeside.start(p, one, anneals=True) is None
    )  # one worker: the relaxation in turn
    big = build_problem(random_spec(PLACEMENT_MAX_OPS + 1, 8, 10.0, seed=0))
    assert _PlacementBeside.start(big, ctx, anneals=True) is None
    cheap = build_problem(random_spec(100, 8, 0.1, seed=0))
    assert _PlacementBeside.start(cheap, ctx, anneals=True) is None  # transfers cheaper than ops


def test_beside_the_search_a_bound_above_a_plan_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hetsched.schedule.latency import portfolio
    from hetsched.solver import SolveContext, StopToken

    p = build_problem(random_spec(40, 8, 10.0, seed=0))
    heft = solve_heft(p, time_limit=5)
    monkeypatch.setattr(portfolio, "_placement_stage", lambda *_, **__: 2 * heft.makespan)
    ctx = SolveContext(time_limit=60, seed=0, stop=StopToken(), workers=3)
    beside = portfolio._PlacementBeside.start(p, ctx, anneals=False)
    assert beside is not None
    assert beside.result(heft, {"path": []}, stop_first=False) == 0.0  # a CP-SAT fault
    assert lower_bound_within(p)[0] < heft.makespan  # and not kept for the searches after


def test_the_bounds_solver_reports_its_bounds_and_no_hints() -> None:
    from hetsched.schedule.latency.boundsolver import solve_bounds

    p = build_problem(random_spec(30, 3, 10.0, seed=0, beta=1.0))
    heft = solve_heft(p, time_limit=5)
    claimed = heft.with_(lower_bound=heft.makespan)  # e.g. proven on a restriction
    plan = solve_bounds(p, time_limit=60, hint=claimed)
    assert plan.stats["bounds"]["placement"] == 525
    assert plan.stats["bounds"]["sequenced"] == 560  # proved: the optimum
    assert plan.lower_bound == 560.0 < heft.makespan
    assert plan.status != "optimal"


@pytest.mark.parametrize("seed", range(12))
def test_the_search_from_below_ends_at_the_relaxations_optimum(seed: int) -> None:
    # refuted horizons, then a minimisation from the first solution, against one minimisation
    from ortools.sat.python import cp_model

    from hetsched.schedule.cpsolver import new_cp_solver

    p = heavy_problem(seed, n=14, devices=2 + seed % 3, ccr=10.0)
    floor = quick_lower_bound(p)
    solver = new_cp_solver(time_limit=60, workers=1, seed=0)
    assert solver.solve(placement_model(p.floored.relaxation(), floor=floor)) == cp_model.OPTIMAL
    assert placement_bound(p, time_limit=60) == (round(solver.objective_value), True)


def test_a_stopped_search_keeps_the_floor() -> None:
    from hetsched.solver import StopToken

    p = heavy_problem(0, devices=3, ccr=10.0)
    stop = StopToken()
    stop.set()
    assert placement_bound(p, time_limit=60, stop=stop, floor=7) == (
        max(7, quick_lower_bound(p)),
        False,
    )


@pytest.mark.parametrize("seed", range(10))
def test_with_sequencing_it_never_exceeds_the_brute_force_optimum(seed: int) -> None:
    for p in (random_tiny_problem(seed, n=6, devices=2 + seed % 2), heavy_problem(seed)):
        relaxed, _ = placement_bound(p, time_limit=30)
        value, proved = sequenced_bound(p, time_limit=30, floor=relaxed)
        assert proved  # six ops: that relaxation's optimum, not a stopped search
        assert relaxed <= value <= brute_force_makespan(p)


@pytest.mark.parametrize("seed", range(4))
def test_with_sequencing_over_modes_it_never_exceeds_the_brute_force_optimum(seed: int) -> None:
    p = random_mode_problem(seed)
    best = brute_force(p)
    assert best is not None
    assert sequenced_bound(p, time_limit=30)[0] <= best


def test_with_sequencing_it_proves_the_optimum_of_small_transfer_heavy_graphs() -> None:
    # the random suite's CCR-10 graphs at 30 ops: the relaxation 525 and 516, with each
    # device's ops in sequence 560 and 550, CP-SAT's proven optima (well under a second)
    for devices, relaxed, optimum in ((3, 525, 560), (8, 516, 550)):
        p = build_problem(random_spec(30, devices, 10.0, seed=0, beta=1.0))
        assert sequenced_bound(p, time_limit=60, floor=relaxed) == (optimum, True)
        plan = solve_portfolio(p, time_limit=20, seed=0, workers=1)
        assert plan.makespan == optimum * p.quantum and plan.status == "optimal"
