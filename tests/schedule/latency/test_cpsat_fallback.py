"""CP-SAT's wrong INFEASIBLE (OR-Tools 9.15, found by a random sweep) never reaches the user."""

from __future__ import annotations

from typing import Any

import pytest

from hetsched.plan import validate
from hetsched.schedule.latency import cpsat
from hetsched.schedule.latency.cpsat_model import build_model
from tests.bruteforce import brute_force_makespan, naive_plan
from tests.families import series_problem


def test_the_instance_that_exposed_the_fault_is_solved_exactly() -> None:
    # With head/tail windows, OR-Tools 9.15 called this model infeasible at horizon 11 while
    # a schedule of makespan 11 satisfies every constraint of it.
    p = series_problem(289855, segments=2, width=2, devices=3)
    best = brute_force_makespan(p)
    for hint in (None, naive_plan(p)):
        plan = cpsat.solve_cpsat(p, time_limit=10, seed=0, workers=1, hint=hint)
        validate(plan, p)
        assert plan.status == "optimal"
        assert round(plan.makespan) == best == 11


def test_a_wrong_infeasible_falls_back_to_the_plain_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def faulty_build(problem: Any, **kw: Any) -> Any:
        built = build_model(problem, **kw)
        if kw.get("tighten", True):
            built.model.add(built.makespan <= -1)  # what the faulty solve amounts to
        return built

    monkeypatch.setattr(cpsat, "build_model", faulty_build)
    p = series_problem(3, segments=2, width=2, devices=2)
    plan = cpsat.solve_cpsat(p, time_limit=10, seed=0, workers=1, hint=naive_plan(p))
    validate(plan, p)
    assert plan.stats["solver_fault"].startswith("INFEASIBLE")
    assert round(plan.makespan) == brute_force_makespan(p)


def test_infeasible_twice_returns_the_hint_without_a_proof(monkeypatch: pytest.MonkeyPatch) -> None:
    def always_infeasible(problem: Any, **kw: Any) -> Any:
        built = build_model(problem, **kw)
        built.model.add(built.makespan <= -1)
        return built

    monkeypatch.setattr(cpsat, "build_model", always_infeasible)
    p = series_problem(3, segments=2, width=2, devices=2)
    hint = naive_plan(p)
    plan = cpsat.solve_cpsat(p, time_limit=10, seed=0, workers=1, hint=hint)
    validate(plan, p)
    assert plan.status != "optimal"
    assert plan.makespan <= hint.makespan
