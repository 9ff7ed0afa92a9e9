"""The co-location bound: never above the optimum, above the other bounds where
transfers dwarf the ops (below every HEFT/PEFT plan: ``test_delays``)."""

from __future__ import annotations

import numpy as np
import pytest

from hetsched.bench.instances import build_problem, random_spec
from hetsched.schedule.bounds import lower_bound, quick_lower_bound
from hetsched.schedule.bounds.colocation import colocation_bound, colocation_groups
from hetsched.schedule.bounds.delays import delay_bound
from hetsched.schedule.bounds.groupload import group_load_bound, group_load_fits
from tests.bruteforce import brute_force_makespan, random_tiny_problem
from tests.schedule.bounds.test_delays import heavy_problem


@pytest.mark.parametrize("seed", range(30))
def test_the_colocation_bound_never_exceeds_the_brute_force_optimum(seed: int) -> None:
    for p in (
        random_tiny_problem(seed, n=6, devices=2 + seed % 2),
        heavy_problem(seed),
        heavy_problem(seed, devices=2, ccr=10.0),
    ):
        best = brute_force_makespan(p)
        assert colocation_bound(p) <= best
        assert group_load_bound(p) <= best
        assert lower_bound(p) <= best


def test_it_sees_edges_too_dear_to_cut_where_the_delay_bound_does_not() -> None:
    wins = 0
    for seed in range(30):
        p = heavy_problem(seed, n=7, ccr=10.0)
        wins += colocation_bound(p) > delay_bound(p)
    assert wins >= 5


def test_a_communication_heavy_graph_on_eight_devices() -> None:
    # the random suite's 100-op CCR-10 graph on 8 devices: the load bound was the best
    p = build_problem(random_spec(100, 8, 10.0, seed=0))
    bound = colocation_bound(p)
    assert bound > 1.4 * max(delay_bound(p), 461)
    assert quick_lower_bound(p) >= bound
    # just below the bound, some group cannot fit: it has more work than the time allows
    groups = colocation_groups(p, bound - 1)
    assert np.bincount(groups).max() > 1


def test_cheap_transfers_force_nothing() -> None:
    p = build_problem(random_spec(30, 3, 0.1, seed=1))
    assert colocation_bound(p) == delay_bound(p)


def test_the_group_load_bound_sees_slow_devices_the_co_location_bound_does_not() -> None:
    # the random suite's 100-op CCR-10 graph on 3 unrelated devices: 677 -> 718
    p = build_problem(random_spec(100, 3, 10.0, seed=0, beta=1.0))
    bound = group_load_bound(p)
    assert bound > 1.05 * max(colocation_bound(p), delay_bound(p), 677)
    assert lower_bound(p) >= bound
    assert not group_load_fits(p, bound - 1)
    assert group_load_fits(p, bound)


def test_where_transfers_are_cheap_the_group_load_bound_is_the_load_bound() -> None:
    from hetsched.schedule.bounds import load_bound

    p = build_problem(random_spec(30, 3, 0.1, seed=1))
    assert group_load_bound(p) <= max(load_bound(p), colocation_bound(p)) + 1
