"""HEFT on the fastest k devices: valid, never worse than HEFT, and better where transfers
dominate."""

from __future__ import annotations

import pytest

from hetsched.plan import validate
from hetsched.schedule.latency.heuristics import solve_heft, solve_heft_fewer
from tests.schedule.bounds.test_delays import heavy_problem


@pytest.mark.parametrize("seed", range(6))
def test_heft_on_fewer_devices_is_valid_and_never_worse_than_heft(seed: int) -> None:
    p = heavy_problem(seed, n=12, devices=4)
    fewer = solve_heft_fewer(p, time_limit=5)
    validate(fewer, p)
    assert fewer.makespan <= solve_heft(p, time_limit=5).makespan


def test_fewer_devices_win_somewhere_when_transfers_dominate() -> None:
    wins = 0
    for seed in range(12):
        p = heavy_problem(seed, n=12, devices=4)
        wins += solve_heft_fewer(p, time_limit=5).makespan < solve_heft(p, time_limit=5).makespan
    assert wins >= 1
