"""The solver skeleton: what every solve checks, refuses and stamps, and that solves in one
process do not leak into each other (a stop token belongs to one solve)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hetsched.errors import SolverError, UsageError
from hetsched.plan import plan_to_dict, validate
from hetsched.problem import Modes, Problem, Tensors
from hetsched.schedule.latency.cpsat import solve_cpsat
from hetsched.schedule.latency.heuristics import solve_heft
from hetsched.schedule.latency.portfolio import solve_portfolio
from hetsched.solver import Progress, StopToken, get_solver, run_solver
from tests.families import random_problem, two_op_link_contention_problem
from tests.problem.test_relaxation import random_mode_problem

ROOT = Path(__file__).resolve().parent.parent


def small() -> Problem:
    return random_problem(0, n=6, devices=2, family="layered")


def split_problem() -> Problem:
    """Two ops on x and y; b may also run split over both."""
    modes = Modes.build(2, [(0, (0,), 2.0), (0, (1,), 3.0), (1, (0,), 4.0), (1, (0, 1), 2.0)])
    return Problem.from_modes(
        names=["a", "b"],
        devices=["x", "y"],
        modes=modes,
        tensors=Tensors.build(2, [(0, (1,), 1.0)]),
        comm_latency=np.array([[0.0, 1.0], [1.0, 0.0]]),
        quantum=1.0,
    )


# ---------------------------------------------------------------------- refusals
def test_a_hint_to_a_solver_that_takes_none_is_refused() -> None:
    p = small()
    plan = solve_heft(p)
    with pytest.raises(UsageError, match="solver 'heft' does not start from a hint"):
        solve_heft(p, hint=plan)


def test_workers_to_a_single_threaded_solver_are_refused() -> None:
    with pytest.raises(UsageError, match="solver 'heft' runs on one thread"):
        solve_heft(small(), workers=2)
    with pytest.raises(UsageError, match="workers must be a positive integer"):
        solve_cpsat(small(), workers=0)


def test_an_unknown_option_is_named_with_the_options_there_are() -> None:
    with pytest.raises(
        UsageError, match=r"takes no option 'frobnicate' \(its options: insertion\)"
    ):
        solve_heft(small(), frobnicate=True)
    with pytest.raises(UsageError, match=r"its options: export_model, log\)"):
        run_solver("cpsat", small(), frobnicate=1)
    with pytest.raises(
        UsageError, match=r"'peft' takes no option 'insertion' \(its options: none\)"
    ):
        run_solver("peft", small(), insertion=False)
    with pytest.raises(
        UsageError, match="unknown solver 'nope' \\(choose from anneal, bounds, clusters, cpop"
    ):
        run_solver("nope", small())


@pytest.mark.parametrize("name", ["milp", "sat"])
def test_link_contention_is_refused_by_solvers_that_do_not_model_it(name: str) -> None:
    with pytest.raises(SolverError, match=f"solver '{name}' does not model link contention"):
        run_solver(name, two_op_link_contention_problem(), time_limit=5)


@pytest.mark.parametrize("name", ["milp", "sat", "ls", "lns"])
def test_modes_are_refused_by_solvers_that_choose_devices(name: str) -> None:
    with pytest.raises(SolverError, match=f"solver '{name}' chooses one device per op"):
        run_solver(name, split_problem(), time_limit=5)


@pytest.mark.parametrize("name", ["heft", "peft", "cpop", "cpsat", "portfolio", "bounds"])
def test_solvers_that_choose_modes_take_a_split(name: str) -> None:
    p = split_problem()
    plan = run_solver(name, p, time_limit=10)
    validate(plan, p)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"time_limit": 0}, "time limit must be positive and finite, got 0"),
        ({"time_limit": -1.0}, "time limit must be positive"),
        ({"time_limit": float("nan")}, "time limit must be positive"),
        ({"time_limit": float("inf")}, "time limit must be positive"),
        ({"time_limit": True}, "time limit must be a number of seconds"),
        ({"time_limit": "5"}, "time limit must be a number of seconds"),
        ({"seed": -1}, "seed must be a non-negative integer, got -1"),
        ({"seed": 1.5}, "seed must be a non-negative integer"),
        ({"seed": True}, "seed must be a non-negative integer"),
    ],
)
@pytest.mark.parametrize("solver", [solve_heft, solve_cpsat])
def test_bad_limits_are_rejected(solver: Any, kw: dict[str, Any], needle: str) -> None:
    with pytest.raises(SolverError, match=needle):
        solver(small(), **kw)


# ---------------------------------------------------------------------- progress
def test_a_non_anytime_solver_reports_its_plan_once() -> None:
    events: list[Progress] = []
    assert not solve_heft.capabilities.anytime
    plan = solve_heft(small(), progress=events.append)
    assert len(events) >= 1
    assert events[-1].solver == "heft"
    assert events[-1].makespan == plan.makespan
    assert events[-1].bound == plan.lower_bound


def test_an_anytime_solver_reports_its_start_and_its_end() -> None:
    events: list[Progress] = []
    plan = solve_cpsat(small(), time_limit=20, seed=0, workers=1, progress=events.append)
    assert events
    assert all(e.makespan >= plan.makespan for e in events)
    assert min(e.makespan for e in events) == plan.makespan


def test_the_plan_is_stamped_with_the_solver_and_time() -> None:
    plan = run_solver("heft", small())
    assert plan.solver == "heft" and plan.solve_time > 0 and not plan.interrupted
    assert get_solver("heft") is solve_heft


# ---------------------------------------------------------------------- re-entrancy
def _problems() -> dict[str, Problem]:
    return {
        "layered": random_problem(3, n=8, devices=3, family="layered", ccr=2.0),
        "fork_join": random_problem(5, n=7, devices=2, family="fork_join"),
        "modes": random_mode_problem(8),
    }


def reference_plans() -> dict[str, dict[str, Any]]:
    """Every (solver, problem) of the re-entrancy check, solved once each, as plan
    fingerprints (run in a fresh process by the test)."""
    out = {}
    for name, p in _problems().items():
        for solver in (solve_heft, solve_cpsat, solve_portfolio):
            workers = 1 if solver.capabilities.workers else None
            plan = solver(p, time_limit=20, seed=0, workers=workers)
            out[f"{solver.name}/{name}"] = fingerprint(plan_to_dict(plan))
    return out


def fingerprint(doc: dict[str, Any]) -> dict[str, Any]:
    """What must not change: makespan, status, interruption, each op's mode and start."""
    return {
        "makespan": doc["makespan"],
        "status": doc["status"],
        "interrupted": doc["interrupted"],
        "nodes": [
            [
                n["name"],
                n.get("devices", [n["device"]]),
                n["precision"],
                n.get("tag", ""),
                n["start"],
            ]
            for n in doc["nodes"]
        ],
    }


def test_a_stopped_solve_leaves_the_next_solves_as_a_fresh_process_gets_them() -> None:
    problems = _problems()
    # first, solves whose stop token is set before they start
    stop = StopToken()
    stop.set()
    for p in problems.values():
        for solver in (solve_cpsat, solve_portfolio):
            plan = solver(p, time_limit=20, seed=0, workers=1, stop=stop)
            validate(plan, p)
            assert plan.interrupted
    here = reference_plans()
    again = reference_plans()
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from tests.test_solver import reference_plans; "
            "print(json.dumps(reference_plans()))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    fresh = json.loads(child.stdout.strip().splitlines()[-1])
    assert set(here) == {f"{s}/{n}" for s in ("heft", "cpsat", "portfolio") for n in problems}
    for key, doc in here.items():
        assert not doc["interrupted"], key
        if not key.startswith("heft/"):
            assert doc["status"] == "optimal", key  # proven: the plan cannot depend on time
    assert here == again
    assert here == fresh


def test_a_stop_token_stops_only_the_solve_it_is_given_to() -> None:
    p = small()
    stop = StopToken()
    first = solve_cpsat(p, time_limit=20, seed=0, workers=1, stop=stop)
    stop.set()  # after the solve: stops nothing more
    second = solve_cpsat(p, time_limit=20, seed=0, workers=1)
    assert not first.interrupted and not second.interrupted
    assert first.makespan == second.makespan
    third = solve_cpsat(p, time_limit=20, seed=0, workers=1, stop=stop)
    assert third.interrupted
