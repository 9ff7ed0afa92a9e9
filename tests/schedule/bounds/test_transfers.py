"""The LP that pays for cut edges: never above the optimum, never above one shared device
mix (so skipping it there loses nothing), above the load LP on unrelated devices."""

from __future__ import annotations

import math

import pytest

from hetsched.bench.instances import build_problem, random_spec
from hetsched.problem import Problem
from hetsched.schedule.bounds import load_bound, lower_bound_within, quick_lower_bound
from hetsched.schedule.bounds.transfers import (
    common_mix_value,
    transfer_lp_bound,
    transfer_lp_within,
)
from tests.bruteforce import brute_force_makespan, random_tiny_problem
from tests.schedule.bounds.test_delays import heavy_problem


@pytest.mark.parametrize("seed", range(12))
def test_it_never_exceeds_the_brute_force_optimum(seed: int) -> None:
    for p in (random_tiny_problem(seed, n=6, devices=2 + seed % 2), heavy_problem(seed)):
        value = transfer_lp_bound(p)
        assert load_bound(p) <= value <= brute_force_makespan(p)
        assert value <= common_mix_value(p) + 1e-9  # the mix is a solution of the LP


def test_it_counts_the_transfers_the_load_lp_lets_go() -> None:
    # 100 ops on 3 unrelated devices, transfers ten times the ops: each op's fastest
    # device is rarely its neighbours'
    p = build_problem(random_spec(100, 3, 10.0, seed=0, beta=1.0))
    assert transfer_lp_bound(p) >= 1.05 * max(load_bound(p), quick_lower_bound(p))
    heavy = [heavy_problem(s, n=8) for s in range(10)]
    assert sum(transfer_lp_bound(p) > load_bound(p) for p in heavy) >= 5


def test_where_one_mix_is_refuted_it_is_not_solved() -> None:
    # related devices: the mix that balances the load cuts nothing and the LP adds nothing
    related = build_problem(random_spec(100, 3, 10.0, seed=0, beta=0.0))
    mix = common_mix_value(related)
    assert transfer_lp_bound(related, floor=math.ceil(mix)) == 0
    assert mix <= quick_lower_bound(related) + 1
    assert "transfer_lp" not in lower_bound_within(related, deadline=0.0)[1]


def test_a_run_cut_short_is_said_and_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    import hetsched.schedule.bounds as bounds

    def unrelated() -> Problem:  # a fresh object each time: nothing memoised
        return build_problem(random_spec(300, 8, 10.0, seed=0, beta=1.0))  # about 2 s

    assert transfer_lp_within(unrelated(), time_limit=0.1) == (0, False)  # cut by HiGHS
    assert transfer_lp_within(unrelated(), time_limit=1e-3) == (0, False)  # not started
    # in the bounds within a deadline: started (its estimate says it fits), cut, skipped
    monkeypatch.setattr(bounds, "TRANSFER_LP_SECONDS", 0.0)
    p = unrelated()
    _, skipped = bounds.lower_bound_within(p, time.perf_counter() + 0.5)
    assert "transfer_lp" in skipped and "transfer_lp" not in bounds._BOUND_MEMO.get(p, {})
    assert "transfer_lp" not in bounds._BOUND_MEMO.get(p.floored, {})


def test_highs_interior_point_agrees_with_glop_s_simplex(monkeypatch: pytest.MonkeyPatch) -> None:
    import hetsched.schedule.bounds.verified as verified

    cases = [random_tiny_problem(s, n=6, devices=3) for s in range(4)]
    cases += [heavy_problem(s) for s in range(4)]
    cases += [
        build_problem(random_spec(100, d, 10.0, seed=0, beta=b)) for d in (3, 8) for b in (0, 1)
    ]
    highs = [transfer_lp_bound(p) for p in cases]
    monkeypatch.setattr(verified, "LP_METHOD", ("GLOP", "DUAL_SIMPLEX"))
    assert [transfer_lp_bound(p) for p in cases] == highs
    assert highs[-4:] == [860, 735, 461, 426]


def test_a_feasible_lp_is_not_declared_infeasible() -> None:
    # with T and the starts unbounded above, HiGHS's interior point method declared this
    # LP infeasible after 10 iterations (GLOP: 13,419, the optimum of the problem)
    p = build_problem(random_spec(1000, 3, 10.0, seed=0, beta=0.0))
    assert transfer_lp_within(p) == (13419, True)
