"""Rounding-safe claims: bounds of the real-valued problem, ``optimal`` within a stated
tolerance (issue 20). The real optimum comes from a brute force over real-valued durations,
written here independently of every solver and of the integer model."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from hetsched.plan import plan_from_dict, plan_to_dict, validate
from hetsched.problem import ROUNDING_TOLERANCE, Problem
from hetsched.schedule.bounds import bound_report, lower_bound
from hetsched.schedule.latency.cpsat import solve_cpsat
from hetsched.schedule.latency.heuristics import solve_heft
from hetsched.schedule.latency.milp import solve_milp
from hetsched.schedule.latency.portfolio import solve_portfolio
from hetsched.schedule.latency.sat import solve_sat
from tests.bruteforce import semi_active_optimum


def real_instance(seed: int, n: int = 5, d: int = 2) -> tuple[Problem, float]:
    """A tiny instance with fractional durations and transfers on a coarse quantum (1.0), and
    its real-valued optimum by brute force."""
    rng = np.random.default_rng(seed)
    ex = np.round(rng.uniform(1.0, 4.0, size=(n, d)), 2)
    edges = [(u, v, float(np.round(rng.uniform(0.2, 2.0), 2))) for u in range(n) for v in
             range(u + 1, n) if rng.random() < 0.4]  # fmt: skip
    lat = np.array([[0.0 if a == b else 0.3 for b in range(d)] for a in range(d)])
    p = Problem.from_arrays(
        names=[f"o{i}" for i in range(n)],
        devices=[f"d{j}" for j in range(d)],
        exec_time=ex,
        edges=edges,
        comm_latency=lat,
        comm_inv_bandwidth=np.ones((d, d)) - np.eye(d),
        quantum=1.0,
    )
    preds: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for u, v, data in edges:
        preds[v].append((u, data))
    best = semi_active_optimum(
        d,
        preds,
        itertools.product(range(d), repeat=n),
        lambda v, j: float(ex[v, j]),  # real durations and transfers: nothing rounded
        lambda data, a, b: 0.0 if a == b else float(lat[a, b] + data),
    )
    assert best is not None
    return p, float(best)


def test_the_floored_twin_rounds_everything_down_and_exact_problems_are_their_own() -> None:
    p, _ = real_instance(0)
    twin = p.floored
    assert not p.exact and twin.exact and twin.floored is twin
    assert np.all(twin.mode_dur <= p.modes.time / p.quantum + 1e-12)
    assert np.all(twin.mode_dur >= p.mode_dur - 1)
    assert np.all(twin.tensor_comm <= p.tensor_comm)
    whole = Problem.from_arrays(names=["a", "b"], devices=["x"], exec_time=np.array([[2.0],
                                [3.0]]), edges=[(0, 1, 1.0)], quantum=1.0)  # fmt: skip
    assert whole.exact and whole.floored is whole and whole.tolerance == 0.0
    assert p.tolerance == ROUNDING_TOLERANCE


def test_a_stale_floor_is_dropped_not_trusted() -> None:
    p, _ = real_instance(1)
    off = 1 - np.eye(p.num_devices, dtype=np.int64)
    raised = dataclasses.replace(p, tensor_comm=p.tensor_comm + off[None])
    assert np.array_equal(raised.tensor_comm_floor, p.tensor_comm_floor)  # still below
    lowered = dataclasses.replace(p, tensor_comm=np.zeros_like(p.tensor_comm))
    assert lowered.tensor_comm_floor is None
    # unknown floors are taken one unit below the rounded-up transfer
    assert np.all(lowered.floored.tensor_comm == 0)


def test_the_rounded_up_model_would_claim_a_bound_above_the_real_optimum() -> None:
    # both ops 2.5 on x: the real optimum is 5.0, the rounded-up model's optimum 6
    p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
        exec_time=np.array([[2.5, 3.0], [2.5, 2.5]]), edges=[(0, 1, 0.5)], quantum=1.0)  # fmt: skip
    ceil_only = dataclasses.replace(p, tensor_comm_floor=p.tensor_comm.copy(),
        modes=dataclasses.replace(p.modes, time=p.mode_dur.astype(float)))  # fmt: skip
    assert solve_cpsat(ceil_only, time_limit=5, workers=1).lower_bound == 6.0
    plan = solve_cpsat(p, time_limit=5, workers=1)
    assert plan.lower_bound <= 5.0 and plan.status == "feasible"
    assert plan.stats["rounded_down_makespan"] == 4.0


@pytest.mark.parametrize("seed", range(10))
def test_every_bound_and_every_solver_bound_is_below_the_real_optimum(seed: int) -> None:
    p, real = real_instance(seed)
    assert not p.exact
    for name, value in bound_report(p).items():
        assert value * p.quantum <= real + 1e-9, name
    assert lower_bound(p) * p.quantum <= real + 1e-9
    for solver in (solve_cpsat, solve_milp, solve_sat, solve_portfolio, solve_heft):
        plan = solver(p, time_limit=10, seed=0)
        validate(plan, p)
        assert plan.lower_bound <= real + 1e-9, solver.name
        assert plan.tolerance == ROUNDING_TOLERANCE
        if plan.status == "optimal":  # within the stated tolerance of the real optimum
            assert plan.makespan <= real * (1 + plan.tolerance) + 1e-9, solver.name


def test_cpsat_is_never_worse_than_heft_on_the_rounded_up_model() -> None:
    for seed in range(6):
        p, _ = real_instance(seed, n=6, d=3)
        heft = solve_heft(p, time_limit=5)
        plan = solve_cpsat(p, time_limit=10, workers=1, seed=0)
        validate(plan, p)
        assert plan.makespan <= heft.makespan


def test_the_plan_file_records_the_tolerance_and_the_status_it_allows() -> None:
    p, _ = real_instance(2)
    plan = solve_cpsat(p, time_limit=5, workers=1)
    doc = plan_to_dict(plan)
    assert doc["optimal_tolerance"] == ROUNDING_TOLERANCE
    back = plan_from_dict(doc)
    assert back.tolerance == plan.tolerance and back.status == plan.status
    near = plan.with_(lower_bound=plan.makespan / (1 + ROUNDING_TOLERANCE / 2))
    assert near.status == "optimal"
    assert near.with_(tolerance=0.0).status == "feasible"
