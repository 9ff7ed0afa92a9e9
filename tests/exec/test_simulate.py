"""The noisy replay reproduces plans at zero noise and is seeded."""

from __future__ import annotations

import numpy as np
import pytest

from hetsched.errors import UsageError
from hetsched.exec.simulate import robustness, simulate
from hetsched.schedule.latency.cpsat import solve_cpsat
from hetsched.schedule.latency.heuristics import solve_heft
from tests.families import FAMILIES, random_problem


@pytest.mark.parametrize("family", FAMILIES)
def test_zero_noise_reproduces_plan(family: str) -> None:
    p = random_problem(1, n=14, family=family)
    plan = solve_heft(p, time_limit=5, seed=0)
    for policy in ("asap", "plan"):
        sim = simulate(plan, p, policy=policy, samples=3)
        assert np.all(sim.makespan == plan.makespan)
        assert np.array_equal(sim.start[0], [plan.start[x] for x in p.names])


def test_cpsat_plan_policy_exact_asap_no_worse() -> None:
    p = random_problem(2, n=10)
    plan = solve_cpsat(p, time_limit=3, seed=0, workers=1)
    assert simulate(plan, p, policy="plan").makespan[0] == plan.makespan
    assert simulate(plan, p).makespan[0] <= plan.makespan


def test_noise_is_seeded_and_plausible() -> None:
    p = random_problem(3, n=20)
    plan = solve_heft(p, time_limit=5, seed=0)
    a = robustness(plan, p, noise=0.1, samples=200, seed=7)
    b = robustness(plan, p, noise=0.1, samples=200, seed=7)
    assert a == b and a["planned"] == plan.makespan
    assert 0.7 * plan.makespan < a["median"] < 1.3 * plan.makespan <= 1.5 * a["p95"]
    late = robustness(plan, p, noise=0.1, samples=100, seed=7, policy="plan")
    assert late["median"] >= plan.makespan
    u = simulate(plan, p, noise=0.2, samples=50, dist="uniform")
    assert u.makespan.min() >= 0.8 * plan.makespan - 1e-9
    assert u.makespan.max() <= 1.2 * plan.makespan + 1e-9


def test_other_durations() -> None:
    p = random_problem(4, n=10)
    plan = solve_heft(p, time_limit=5, seed=0)
    q = p.quantum
    twice = simulate(plan, p, exec_time=2 * p.dur * q, comm_time=2 * p.tensor_comm * q)
    assert twice.makespan[0] == pytest.approx(2 * plan.makespan)
    per_mode = simulate(plan, p, exec_time=2 * p.mode_dur * q, comm_time=2 * p.tensor_comm * q)
    assert per_mode.makespan[0] == pytest.approx(2 * plan.makespan)
    with pytest.raises(UsageError):
        simulate(plan, p, exec_time=np.ones((2, 2)))
    with pytest.raises(UsageError):
        simulate(plan, p, noise=-1)
    with pytest.raises(UsageError):
        simulate(plan, p, comm_time=np.ones((1, 2, 2)))
