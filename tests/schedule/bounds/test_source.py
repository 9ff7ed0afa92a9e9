"""Which bound gave a plan's bound: named in the plan and printed beside the gap."""

from __future__ import annotations

import numpy as np
import pytest

from hetsched.bench.instances import build_problem, random_spec
from hetsched.cli.solve_cmds import format_plan_summary
from hetsched.problem import Problem
from hetsched.schedule.bounds import (
    BOUND_TITLES,
    bound_report,
    bound_source,
    lower_bound,
    quick_lower_bound,
    record_bound,
)
from hetsched.solver import run_solver


def _pairs() -> Problem:
    """Three pairs joined by transfers dearer than a pair on one device: 18 units of work
    over two devices (the load bound 9), but no pair splits, so two share a device: 12."""
    return Problem.from_arrays(
        names=list("abcdef"), devices=["x", "y"], exec_time=np.full((6, 2), 3.0),
        edges=[(0, 1, 11.0), (2, 3, 11.0), (4, 5, 11.0)],
        comm_latency=np.array([[0, 11], [11, 0]]), quantum=1.0,
    )  # fmt: skip


def test_each_bound_computed_is_found_by_its_value_and_a_search_by_its_own() -> None:
    p = _pairs()
    assert lower_bound(p) == 9 and bound_source(p, 9) == "load"
    assert bound_source(p, 10) is None  # no bound has that value
    record_bound(p, 12)  # as the placement relaxation does
    assert bound_source(p, 12) == "search"
    assert bound_source(p, 0) is None


def test_the_quick_parts_keep_their_values_and_the_quick_bound_is_their_best() -> None:
    p = build_problem(random_spec(50, 5, 10.0, seed=1, beta=1.0))
    quick = quick_lower_bound(p)
    name = bound_source(p, quick)
    assert name in BOUND_TITLES
    report = bound_report(p)  # the parts by their plain names (the LP ones can be higher)
    assert report["critical_path"] <= quick and report["delays"] <= quick
    assert max(report.values()) >= quick


@pytest.mark.parametrize("workers", [1, 2])
def test_the_portfolio_names_the_bound_it_reports(workers: int) -> None:
    p = _pairs()  # proved 12 by the placement relaxation or CP-SAT, not by a named bound
    plan = run_solver("portfolio", p, time_limit=30, workers=workers, seed=0)
    assert plan.makespan == plan.lower_bound == 12
    assert plan.stats["bound_from"] in ("placement", "search")
    free = Problem.from_arrays(  # four independent ops on two devices: the load binds
        names=list("abcd"), devices=["x", "y"], exec_time=np.full((4, 2), 2.0), edges=[],
        quantum=1.0,
    )  # fmt: skip
    plan = run_solver("portfolio", free, time_limit=30, workers=workers, seed=0)
    assert plan.lower_bound == 4 and plan.stats["bound_from"] == "load"


def test_the_summary_prints_what_the_bound_counts() -> None:
    p = build_problem(random_spec(30, 3, 10.0, seed=0, beta=0.0))
    plan = run_solver("portfolio", p, time_limit=30, workers=1, seed=0)
    name = plan.stats["bound_from"]
    assert name in BOUND_TITLES
    text = format_plan_summary(plan, graph_name="g", wall=0.0)
    assert f"from {BOUND_TITLES[name]}" in text.splitlines()[4]
    if name == "placement":
        assert plan.stats["placement"]["bound"] == plan.lower_bound
    elif name != "search":  # a bound computed for the problem, with this value
        assert bound_source(p, round(plan.lower_bound / p.quantum)) == name


def test_no_bound_is_named_that_did_not_give_the_value() -> None:
    from hetsched.schedule.latency.portfolio import _bound_from

    p = Problem.from_arrays(
        names=list("abcd"), devices=["x", "y"], exec_time=np.full((4, 2), 0.2), edges=[],
        quantum=0.1,
    )  # fmt: skip
    assert lower_bound(p) == 4  # 0.4: the load
    assert _bound_from(p, 0.4, {"path": ["heft"]}, searched_to=0.0) == "load"
    # LNS passes its bound on, proving nothing: a value no named bound has is not a search's
    assert _bound_from(p, 0.5, {"path": ["heft", "lns"]}, searched_to=0.0) is None
    assert _bound_from(p, 0.5, {"path": ["heft", "cpsat"]}, searched_to=0.5) == "search"
    stats = {"path": ["placement"], "placement": {"bound": 0.5}}
    assert _bound_from(p, 0.5, stats, searched_to=0.0) == "placement"


def test_a_plan_given_another_bound_loses_the_old_bound_s_name() -> None:
    p = _pairs()
    plan = run_solver("portfolio", p, time_limit=30, workers=1, seed=0)
    assert plan.stats["bound_from"]
    other = plan.with_bound(9.0, searched=False)
    assert other.lower_bound == 9.0 and "bound_from" not in other.stats
    assert other.stats["winner"] == plan.stats["winner"]
    assert plan.with_bound(99.0).lower_bound == plan.makespan  # never above the plan
