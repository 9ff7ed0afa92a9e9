"""The one status rule (``plan_status``) and every solver and reader that applies it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hetsched.errors import PlanError
from hetsched.plan import (
    STATUSES,
    Plan,
    plan_from_dict,
    plan_from_schedule,
    plan_status,
    plan_to_dict,
    validate,
)
from hetsched.problem import Problem
from hetsched.schedule.bounds import quick_lower_bound
from hetsched.schedule.latency import cpsat
from hetsched.schedule.latency.cpsat_model import build_model
from hetsched.schedule.latency.heuristics import solve_cpop, solve_heft, solve_peft
from hetsched.schedule.latency.portfolio import solve_portfolio
from tests.families import FAMILIES, random_problem, series_problem
from tests.problem.test_relaxation import random_mode_problem


@pytest.mark.parametrize(
    ("value", "bound", "searched", "status"),
    [
        (5.0, 5.0, False, "optimal"),
        (5.0, 5.0, True, "optimal"),
        (5.0, 6.0, False, "optimal"),  # a bound above the value still proves it
        (5.0, 4.0, True, "feasible"),
        (5.0, 4.0, False, "heuristic"),
        (5.0, 0.0, True, "feasible"),
        (5.0, 0.0, False, "heuristic"),
        (0.0, 0.0, False, "optimal"),
        (1.0 + 1e-12, 1.0, False, "optimal"),  # equal up to float round-trip
        (1.0 + 1e-6, 1.0, True, "feasible"),
        (582e-6, 582e-6 * (1 - 1e-12), False, "optimal"),  # seconds, not units
        (582e-6, 581e-6, False, "heuristic"),
    ],
)
def test_the_status_rule(value: float, bound: float, searched: bool, status: str) -> None:
    assert plan_status(value, bound, searched=searched) == status
    assert status in STATUSES


def small() -> Problem:
    return Problem.from_arrays(
        names=["a", "b"],
        devices=["cpu", "gpu"],
        exec_time=np.array([[4.0, 1.0], [3.0, 2.0]]),
        edges=[(0, 1, 10.0)],
        comm_inv_bandwidth=np.array([[0.0, 0.1], [0.1, 0.0]]),
        quantum=1.0,
    )


def test_a_plans_status_follows_its_value_bound_and_search() -> None:
    plan = plan_from_schedule(small(), assign=[1, 1], start=[0, 1], solver="manual")
    assert (plan.makespan, plan.lower_bound, plan.searched) == (3.0, 0.0, False)
    assert plan.status == "heuristic"
    assert plan.with_(searched=True).status == "feasible"
    assert plan.with_(lower_bound=3.0).status == "optimal"
    assert plan.with_(lower_bound=3.0, searched=True).status == "optimal"
    assert plan.with_(lower_bound=2.0, searched=True).gap == pytest.approx(1 / 3)


# ---------------------------------------------------------------------- heuristics
@pytest.mark.parametrize("family", FAMILIES)
def test_heuristics_are_heuristic_unless_their_bound_proves_them(family: str) -> None:
    for seed in range(3):
        p = random_problem(seed, n=8, devices=3, family=family)
        for solver in (solve_heft, solve_peft, solve_cpop):
            plan = solver(p, time_limit=5, seed=0)
            assert not plan.searched
            assert plan.lower_bound == quick_lower_bound(p) * p.quantum
            proven = plan.makespan <= plan.lower_bound
            assert plan.status == ("optimal" if proven else "heuristic"), solver.name


def test_a_heuristic_proven_by_its_bound_is_optimal() -> None:
    # a chain that one device runs fastest, no choice to make: HEFT meets the critical path
    p = Problem.from_arrays(
        names=["a", "b", "c"],
        devices=["x", "y"],
        exec_time=np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]]),
        edges=[(0, 1, 1.0), (1, 2, 1.0)],
        comm_latency=np.array([[0.0, 9.0], [9.0, 0.0]]),
        quantum=1.0,
    )
    plan = solve_heft(p, time_limit=5, seed=0)
    assert plan.makespan == plan.lower_bound == 6.0
    assert not plan.searched
    assert plan.status == "optimal"


# ---------------------------------------------------------------------- exact search, nothing found
def _always_infeasible(problem: Any, **kw: Any) -> Any:
    built = build_model(problem, **kw)
    built.model.add(built.makespan <= -1)  # CP-SAT finds nothing, whatever the instance
    return built


@pytest.mark.parametrize(
    "make",
    [
        lambda: series_problem(3, segments=2, width=2, devices=2),
        lambda: random_mode_problem(8),
    ],
    ids=["devices", "modes"],
)
def test_cpsat_and_portfolio_that_find_nothing_are_feasible(
    make, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = make()
    heuristics = min(f(p, time_limit=5, seed=0).makespan for f in (solve_heft, solve_peft))
    monkeypatch.setattr(cpsat, "build_model", _always_infeasible)

    exact = cpsat.solve_cpsat(p, time_limit=10, seed=0, workers=1)
    validate(exact, p)
    assert exact.stats["fallback"] == "hint"
    assert exact.searched and exact.makespan > exact.lower_bound
    assert exact.makespan <= heuristics

    port = solve_portfolio(p, time_limit=10, seed=0, workers=1)
    validate(port, p)
    assert "cpsat" in port.stats["path"]  # the exact search ran (and found nothing)
    assert port.searched and port.makespan > port.lower_bound

    # an exact search ran over the whole problem: not proven, but not a heuristic either
    assert exact.status == port.status == "feasible"


def test_cpsat_proven_by_bounds_alone_is_optimal_and_searched() -> None:
    p = small()
    plan = cpsat.solve_cpsat(p, time_limit=10, seed=0, workers=1)
    assert plan.stats.get("proved_by") == "bounds"
    assert plan.searched and plan.status == "optimal"


# ---------------------------------------------------------------------- JSON
def _doc(plan: Plan, **changes: Any) -> dict[str, Any]:
    doc = plan_to_dict(plan)
    doc.update(changes)
    return doc


def test_a_plan_round_trips_with_its_status() -> None:
    p = small()
    for plan in (
        solve_heft(p, time_limit=5, seed=0),
        plan_from_schedule(p, assign=[1, 1], start=[0, 1], solver="m"),
        plan_from_schedule(p, assign=[1, 1], start=[0, 1], solver="m", searched=True),
    ):
        doc = plan_to_dict(plan)
        assert doc["status"] == plan.status
        back = plan_from_dict(doc)
        assert back == plan and back.status == plan.status


@pytest.mark.parametrize(
    ("searched", "lower_bound", "recorded"),
    [
        (False, 0.0, "optimal"),  # heuristic, says optimal
        (False, 0.0, "feasible"),  # heuristic, says an exact search ran
        (True, 0.0, "optimal"),  # feasible, says optimal
        (True, 0.0, "heuristic"),
        (False, 3.0, "heuristic"),  # proven, says heuristic
        (True, 3.0, "feasible"),
    ],
)
def test_a_recorded_status_that_contradicts_value_and_bound_is_rejected(
    searched: bool, lower_bound: float, recorded: str
) -> None:
    plan = plan_from_schedule(
        small(), assign=[1, 1], start=[0, 1], solver="m", searched=searched
    ).with_(lower_bound=lower_bound)
    assert plan.status != recorded
    with pytest.raises(
        PlanError, match=f"plan says status '{recorded}' but its value and bound"
    ) as err:
        plan_from_dict(_doc(plan, status=recorded))
    assert "\n" not in str(err.value)


def test_a_doc_that_tampers_with_the_bound_is_rejected() -> None:
    plan = plan_from_schedule(small(), assign=[1, 1], start=[0, 1], solver="m").with_(
        lower_bound=3.0
    )
    assert plan.status == "optimal"
    with pytest.raises(PlanError, match="make it 'heuristic'"):
        plan_from_dict(_doc(plan, lower_bound=1.0))
