"""The memory-bound suite (issue 22): the fast devices hold only part of the weights, the
capacity binds, plans fit and bounds stay below what an exact search finds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hetsched.bench import BenchConfig, build_suite
from hetsched.bench.instances import build_problem, random_spec
from hetsched.errors import UsageError
from hetsched.plan import validate
from hetsched.plan.memory import envelope_binds
from hetsched.schedule.latency.cpsat import solve_cpsat
from hetsched.schedule.latency.heuristics import solve_heft


def test_the_suite_lists_both_holds_and_rejects_a_bad_one() -> None:
    names = [s.name for s in build_suite(BenchConfig(suite="memory-bound", quick=True))]
    assert any(x.endswith("hold0.2") for x in names) and any(x.endswith("hold0.5") for x in names)
    with pytest.raises(UsageError, match="hold must be in"):
        random_spec(30, 3, 1.0, seed=0, hold=1.5)


@pytest.mark.parametrize("hold", [0.2, 0.5])
def test_capacity_binds_and_every_plan_fits(hold: float) -> None:
    p = build_problem(random_spec(30, 3, 1.0, seed=0, beta=1.0, hold=hold))
    assert p.use_memory and envelope_binds(p) is not None
    fast = [d for d in range(p.num_devices) if np.isfinite(p.capacity[d])]
    host = next(d for d in range(p.num_devices) if not np.isfinite(p.capacity[d]))
    weights = p.modes.memory[p.device_mode[np.arange(p.n), host]].sum()
    assert len(fast) == p.num_devices - 1
    assert p.capacity[fast].sum() == pytest.approx(hold * weights)
    free = dataclasses.replace(p, use_memory=False)
    for plan in (solve_heft(p, time_limit=5), solve_cpsat(p, time_limit=5, seed=0, workers=1)):
        validate(plan, p)  # fits every device
        assert plan.lower_bound <= plan.makespan
        # the free problem's bound is a bound of the capped one
        assert plan.makespan >= solve_heft(free, time_limit=5).lower_bound


def test_lp_rounded_heft_rounds_the_capacity_aware_mix() -> None:
    from hetsched.schedule.latency.lpround import capacity_rounded_assignment, solve_lp_heft

    p = build_problem(random_spec(60, 3, 1.0, seed=1, beta=1.0, hold=0.3))
    assign = capacity_rounded_assignment(p)
    assert assign is not None
    held = np.zeros(p.num_devices)
    np.add.at(held, assign, p.modes.w[p.device_mode[np.arange(p.n), assign]])
    assert np.all(held <= p.capacity + 1e-6)  # every device holds its ops' weights
    plan = solve_lp_heft(p)
    assert plan is not None
    validate(plan, p)
    assert [plan.assignment[x] for x in p.names] == [p.devices[d] for d in assign]
