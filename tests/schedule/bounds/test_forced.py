"""Transfers that device support forces: the LP bounds count them and stay below the
brute-force optimum."""

from __future__ import annotations

import numpy as np
import pytest

from hetsched.problem import Problem
from hetsched.schedule.bounds import lower_bound
from hetsched.schedule.bounds.load import lp_bound
from tests.bruteforce import brute_force_makespan, random_tiny_problem


def _sandwich(latency: float) -> Problem:
    """a -> b -> c: a and c fast on x, b only on y; a transfer costs ``latency``."""
    lat = np.full((2, 2), latency)
    np.fill_diagonal(lat, 0.0)
    return Problem.from_arrays(
        names=["a", "b", "c"], devices=["x", "y"],
        exec_time=np.array([[2.0, 6.0], [np.inf, 2.0], [2.0, 6.0]]),
        edges=[(0, 1, 1.0), (1, 2, 1.0)], comm_latency=lat, quantum=1.0,
    )  # fmt: skip


def test_forced_transfers_raise_the_lp_bound_to_the_optimum() -> None:
    free, dear = _sandwich(0.0), _sandwich(3.0)
    assert lp_bound(free) == brute_force_makespan(free) == 6
    # a on x pays 3 to reach b on y, and c on x waits 3 more: 2+3+2+3+2 = 12, against
    # 6+2+6 = 14 all on y; every mix of x and y for a and c costs as much, so the LP
    # proves 12 (it proved 6 when it relaxed transfers to zero)
    assert brute_force_makespan(dear) == 12
    assert lp_bound(dear) == 12


@pytest.mark.parametrize("seed", range(40))
def test_lp_bounds_stay_below_the_optimum(seed: int) -> None:
    p = random_tiny_problem(seed, n=6, devices=3)
    best = brute_force_makespan(p)
    assert lp_bound(p) <= best
    assert lower_bound(p) <= best
