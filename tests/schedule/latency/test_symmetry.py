"""Interchangeable branches: detection, hint canonicalisation, and CP-SAT stays exact."""

from __future__ import annotations

import numpy as np
import pytest

from hetsched.plan import plan_from_schedule, schedule_arrays, validate
from hetsched.problem import Problem
from hetsched.schedule.latency.cpsat import solve_cpsat
from hetsched.schedule.latency.heuristics import solve_heft
from hetsched.schedule.latency.symmetry import branch_classes, canonical_hint
from tests.bruteforce import brute_force_makespan, naive_plan


def heads_problem(seed: int, *, heads: int = 3, depth: int = 2, devices: int = 2) -> Problem:
    """``a -> heads x (chain of depth ops) -> z``; every head a copy of one template."""
    rng = np.random.default_rng(seed)
    template = rng.integers(1, 6, size=(depth, devices)).astype(float)
    template[rng.random((depth, devices)) < 0.2] = np.inf
    template[np.arange(depth), rng.integers(0, devices, size=depth)] = 2.0
    ex = [rng.integers(1, 3, size=devices).astype(float)]
    edges = []
    for h in range(heads):
        first = 1 + h * depth
        ex += list(template)
        edges.append((0, first))
        edges += [(first + i, first + i + 1) for i in range(depth - 1)]
    z = 1 + heads * depth
    ex.append(rng.integers(1, 3, size=devices).astype(float))
    edges += [(1 + h * depth + depth - 1, z) for h in range(heads)]
    lat = np.where(np.eye(devices, dtype=bool), 0.0, float(rng.integers(1, 3)))
    return Problem.from_arrays(
        names=[f"o{i}" for i in range(z + 1)],
        devices=[f"d{j}" for j in range(devices)],
        exec_time=np.array(ex),
        edges=[(u, v, 1.0) for u, v in sorted(edges)],
        comm_latency=lat,
        quantum=1.0,
    )


def test_heads_are_one_class_and_unequal_heads_are_not() -> None:
    p = heads_problem(0, heads=4, depth=2)
    assert [[c.tolist() for c in cls] for cls in branch_classes(p)] == [
        [[1, 2], [3, 4], [5, 6], [7, 8]]
    ]
    # make one head slower: it leaves the class
    ex = p.exec_time.copy()
    ex[3] = ex[3] * 2
    q = Problem.from_arrays(
        names=list(p.names),
        devices=list(p.devices),
        exec_time=ex,
        edges=[(int(u), int(v), 1.0) for u, v in zip(p.edge_src, p.edge_dst, strict=True)],
        comm_latency=np.where(np.eye(2, dtype=bool), 0.0, 1.0),
        quantum=1.0,
    )
    classes = branch_classes(q)
    assert classes and all(not np.isin(3, c) for cls in classes for c in cls)


def test_canonical_hint_is_the_same_schedule_in_class_order() -> None:
    p = heads_problem(1, heads=4, depth=2)
    assign, start = schedule_arrays(solve_heft(p), p)
    classes = branch_classes(p)
    ca, cs = canonical_hint(classes, assign, start)
    firsts = [int(cs[c[0]]) for c in classes[0]]
    assert firsts == sorted(firsts)
    plan = plan_from_schedule(p, assign=ca, start=cs, solver="x")
    validate(plan, p)
    assert plan.makespan == solve_heft(p).makespan


@pytest.mark.parametrize("seed", range(10))
def test_cpsat_with_branch_symmetry_matches_brute_force(seed: int) -> None:
    p = heads_problem(seed, heads=3, depth=2, devices=2)
    assert branch_classes(p)
    plan = solve_cpsat(p, time_limit=10, seed=0, workers=1, hint=naive_plan(p))
    validate(plan, p)
    assert plan.status == "optimal"
    assert round(plan.makespan) == brute_force_makespan(p)
