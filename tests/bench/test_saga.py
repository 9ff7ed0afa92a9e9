"""saga peers: conversion is exact on related machines, broken schedules are reported."""

from __future__ import annotations

import pytest

from hetsched.bench.instances import build_problem, random_spec
from hetsched.bench.runner import Task, run_task
from hetsched.bench.saga_peer import run_saga, saga_input, saga_plans

pytest.importorskip("saga")


@pytest.fixture(scope="module")
def problem():
    return build_problem(random_spec(30, 4, 1.0, seed=2))


@pytest.fixture(scope="module")
def heft_result(problem):
    return run_saga(saga_input(problem), ["saga-heft", "saga-hbmct"])


def test_related_instance_maps_exactly(problem):
    assert saga_input(problem)["exact"]
    unrelated = build_problem(random_spec(30, 4, 1.0, seed=2, beta=1.0))
    assert not saga_input(unrelated)["exact"]


def test_saga_heft_validates_and_matches_its_makespan(problem, heft_result):
    judged = saga_plans(problem, "saga-heft", heft_result["saga-heft"])
    assert judged["own"] is not None, judged["own_error"]
    assert judged["own"].makespan == pytest.approx(heft_result["saga-heft"]["makespan"])
    # re-timing saga's mapping and order never makes it worse when the mapping is exact
    assert judged["retimed"].makespan <= judged["own"].makespan + 1e-9


def test_missing_tasks_reported_not_raised(problem, heft_result):
    broken = dict(heft_result["saga-heft"])
    broken["mapping"] = dict(list(broken["mapping"].items())[:-3])
    judged = saga_plans(problem, "saga-x", broken)
    assert judged["retimed"] is None
    assert "misses" in judged["error"]


def test_overlapping_schedule_rejected_but_retimed(problem, heft_result):
    res = dict(heft_result["saga-heft"])
    mapping = {k: list(v) for k, v in res["mapping"].items()}
    for v in mapping.values():  # everything on one device at time 0: overlaps everywhere
        v[0], v[2], v[1] = problem.devices[0], v[2] - v[1], 0.0
    judged = saga_plans(problem, "saga-x", {**res, "mapping": mapping})
    assert judged["own"] is None and judged["own_error"]
    assert judged["retimed"] is not None


def test_crashing_peer_is_a_record(problem):
    judged = saga_plans(problem, "saga-x", {"error": "ZeroDivisionError: boom"})
    assert judged["retimed"] is None and "boom" in judged["error"]


def test_peer_task_records():
    recs = run_task(
        Task(
            random_spec(30, 4, 1.0, seed=2),
            "peers",
            peers=("saga-heft", "saga-hbmct", "saga-bruteforce"),
        )
    )
    by = {r["solver"]: r for r in recs}
    assert by["saga-heft"]["valid"] and by["saga-heft"]["saga_valid"]
    assert by["saga-bruteforce"]["status"] == "skipped"
    assert set(by) == {"saga-heft", "saga-hbmct", "saga-bruteforce"}
    if not by["saga-hbmct"]["valid"]:  # HBMCT drops tasks on many instances
        assert by["saga-hbmct"]["error"]


def test_exact_peers_match_cpsat_on_tiny():
    from hetsched.solver import get_solver

    p = build_problem(random_spec(5, 2, 1.0, seed=1))
    res = run_saga(saga_input(p), ["saga-bruteforce", "saga-smt"])
    opt = get_solver("cpsat")(p, time_limit=10, seed=0, workers=1)
    assert opt.status == "optimal"
    for peer in ("saga-bruteforce", "saga-smt"):
        judged = saga_plans(p, peer, res[peer])
        assert judged["retimed"].makespan == pytest.approx(opt.makespan)
