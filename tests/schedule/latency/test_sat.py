"""The time-indexed SAT solver: encoding, scope, interrupts, and STG optima."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import hetsched.schedule.latency.sat as sat_mod
from hetsched.errors import SolverError
from hetsched.plan import validate
from hetsched.problem import Problem
from hetsched.schedule.latency.sat import build_model, device_windows, solve_sat
from hetsched.solver import Progress, StopToken
from tests.bruteforce import naive_plan, random_tiny_problem, stg_optima, stg_problem
from tests.families import two_op_link_contention_problem


def _identical(n: int = 4, devices: int = 2) -> Problem:
    return Problem.from_arrays(
        names=[f"t{i}" for i in range(n)],
        devices=[f"p{j}" for j in range(devices)],
        exec_time=np.full((n, devices), 3.0),
        edges=[(0, i, 0.0) for i in range(1, n)],
        quantum=1.0,
        units="stg",
    )


# ------------------------------------------------------------------ encoding (no solving)
def test_identical_free_devices_are_pooled() -> None:
    m = build_model(_identical(), horizon=9)
    assert m.resources == [(0, 1)]
    # One resource: no placement literals at all.
    assert all(list(on) == [0] for on in m.node_resource_to_on)
    # t0 in [0, 9 - 6] (its tail is itself plus one child), the others in [3, 6]: 4 * 4.
    assert m.positions == 16
    assert m.lo.tolist() == [0, 3, 3, 3] and m.hi.tolist() == [3, 6, 6, 6]


def test_heterogeneous_devices_are_separate_resources() -> None:
    p = random_tiny_problem(1, n=6, devices=3)
    m = build_model(p, horizon=40)
    assert len(m.resources) == 3
    assert m.stats["clauses"] == len(m.clauses) > 0


def test_device_windows_are_valid_bounds() -> None:
    p = random_tiny_problem(3, n=6, devices=3)
    head, tail = device_windows(p)
    plan = solve_sat(p, time_limit=5)
    for i, name in enumerate(p.names):
        d = p.device_index[plan.assignment[name]]
        assert plan.start[name] >= head[i, d]
        assert plan.makespan >= plan.start[name] + tail[i, d]


def test_scope_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sat_mod, "MAX_POSITIONS", 5)
    with pytest.raises(SolverError, match=r"out of scope for sat.*use cpsat"):
        build_model(_identical(), horizon=9)


def test_link_contention_is_refused() -> None:
    p = two_op_link_contention_problem()
    with pytest.raises(SolverError, match="link contention"):
        solve_sat(p, time_limit=1)


def test_binding_memory_is_refused() -> None:
    p = Problem.from_arrays(
        names=["a", "b"],
        devices=["x", "y"],
        exec_time=np.ones((2, 2)),
        memory_bytes=np.array([2.0, 2.0]),
        capacity=np.array([3.0, 3.0]),
        use_memory=True,
        quantum=1.0,
    )
    with pytest.raises(SolverError, match="memory"):
        solve_sat(p, time_limit=1, hint=naive_plan(p, [0, 1]))


def test_solver_without_interrupt_is_refused() -> None:
    p = random_tiny_problem(1)
    with pytest.raises(SolverError, match="cannot be interrupted"):
        solve_sat(p, time_limit=1, hint=naive_plan(p), solver_name="cadical153")


# ------------------------------------------------------------------ solving
def test_progress_and_never_worse_than_hint() -> None:
    p = random_tiny_problem(11, n=6, devices=3)
    hint = naive_plan(p)
    events: list[Progress] = []
    plan = solve_sat(p, time_limit=5, hint=hint, progress=events.append)
    validate(plan, p)
    assert plan.makespan <= hint.makespan
    assert events and events[-1].makespan == plan.makespan
    assert [e.makespan for e in events] == sorted((e.makespan for e in events), reverse=True)
    assert plan.stats["outcome"] == "proved"


def test_other_solver_names() -> None:
    p = random_tiny_problem(5, n=6, devices=3)
    ms = {solve_sat(p, time_limit=5, solver_name=s).makespan for s in ("minisat22", "glucose4")}
    assert len(ms) == 1


def test_stop_token_interrupts() -> None:
    p = stg_problem("rand0002.stg", 2)
    stop = StopToken()
    threading.Timer(0.5, stop.set).start()
    t0 = time.perf_counter()
    plan = solve_sat(p, time_limit=60, hint=naive_plan(p), stop=stop)
    assert time.perf_counter() - t0 < 5
    validate(plan, p)
    assert plan.interrupted and plan.status in ("feasible", "heuristic")


def test_time_limit_is_respected() -> None:
    p = stg_problem("rand0002.stg", 2)
    t0 = time.perf_counter()
    plan = solve_sat(p, time_limit=0.5, hint=naive_plan(p))
    assert time.perf_counter() - t0 < 3
    validate(plan, p)
    assert plan.lower_bound <= plan.makespan


@pytest.mark.parametrize(
    ("name", "processors"),
    [
        ("rand0000.stg", 2),
        ("rand0001.stg", 2),
        ("rand0000.stg", 4),
        ("rand0001.stg", 4),
        ("rand0002.stg", 4),
        pytest.param("rand0002.stg", 2, marks=pytest.mark.slow),
    ],
)
def test_stg_published_optimum_is_reached_and_proved(name: str, processors: int) -> None:
    p = stg_problem(name, processors)
    plan = solve_sat(p, time_limit=60)
    validate(plan, p)
    assert plan.status == "optimal"
    assert plan.makespan == plan.lower_bound == stg_optima()[(name, processors)]
