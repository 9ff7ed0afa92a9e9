"""Probing horizons from the bound up (destructive lower bounding): a refuted horizon is
below the optimum, a plan found at the raised bound is optimal."""

from __future__ import annotations

import pytest

from hetsched.plan import plan_from_schedule, validate
from hetsched.schedule.bounds import lower_bound
from hetsched.schedule.latency.cpsat import _probe, _value
from hetsched.schedule.latency.heuristics import solve_heft
from hetsched.solver import SolveContext, StopToken
from tests.bruteforce import brute_force_makespan, random_tiny_problem
from tests.schedule.bounds.test_delays import heavy_problem


def _ctx(seconds: float = 60.0) -> SolveContext:
    return SolveContext(time_limit=seconds, seed=0, stop=StopToken(), workers=1)


@pytest.mark.parametrize("seed", range(16))
def test_probes_raise_the_bound_to_the_brute_force_optimum_and_find_it(seed: int) -> None:
    p = random_tiny_problem(seed, n=6, devices=2 + seed % 2) if seed % 2 else heavy_problem(seed)
    best = brute_force_makespan(p)
    lb = lower_bound(p)
    heft = round(solve_heft(p).makespan / p.quantum)
    stats: dict = {}
    raised, found = _probe(p, _ctx(), lb, heft, [], stats)
    assert lb <= raised <= best  # every refuted horizon is below the optimum
    if heft > best:  # a plan at the optimum exists below HEFT's: the probes find it
        assert found is not None and _value(p, found) == best == raised
        plan = plan_from_schedule(p, modes=found[0], start=found[1], solver="cpsat",
                                  transfer_start=found[2])  # fmt: skip
        validate(plan, p)
    else:
        assert found is None and raised == best  # refuted up to HEFT's plan: it is optimal
