"""The throughput objective (one question, one answer) as a property: on random graphs with
real-valued times, shared tensors, memory limits and carried edges, every periodic plan the
solvers return validates unrolled, and its period is never worse than the latency plan run
back to back or the pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from hetsched.errors import SolverError
from hetsched.plan import validate
from hetsched.problem import Problem
from hetsched.schedule.throughput import solve_objective
from hetsched.schedule.throughput.modulo import folded_ii, validate_modulo
from hetsched.schedule.throughput.modulo_plan import carried_index
from tests.schedule.throughput.conftest import random_problem


def real_problem(seed: int) -> tuple[Problem, list[tuple[str, str, int]]]:
    """A random DAG with real-valued times (a quantum that does not divide them), some
    zero-time ops, a memory limit on one seed in three and a carried edge on one in four."""
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(3, 14)), int(rng.integers(1, 5))
    ex = rng.random((n, d)) * 10 + 0.1
    ex[rng.random((n, d)) < 0.2] = np.inf
    ex[np.arange(n), rng.integers(0, d, size=n)] = rng.random(n) * 10 + 0.1
    ex[rng.random((n, d)) < 0.05] = 0.0
    edges = [(u, v, float(rng.random() * 5)) for v in range(1, n) for u in range(v)
             if rng.random() < (0.6 if u == v - 1 else 0.15)]  # fmt: skip
    lat = rng.random((d, d))
    np.fill_diagonal(lat, 0)
    inv = np.full((d, d), 0.3)
    np.fill_diagonal(inv, 0)
    mem = rng.integers(1, 5, size=n).astype(float)
    memory = seed % 3 == 0
    p = Problem.from_arrays(
        names=[f"op{i}" for i in range(n)], devices=[f"dev{j}" for j in range(d)],
        exec_time=ex, comm_latency=lat, comm_inv_bandwidth=inv, memory_bytes=mem,
        capacity=np.full(d, float(mem.sum())) if memory else None, use_memory=memory,
        edges=edges, name=f"real{seed}",
    )  # fmt: skip
    carried = [(f"op{n - 1}", "op0", int(rng.integers(1, 3)))] if seed % 4 == 1 else []
    return p, carried


@pytest.mark.parametrize("seed", range(16))
def test_every_periodic_plan_validates_and_beats_its_baselines(seed: int) -> None:
    p, carried = real_problem(seed)
    for objective in ("throughput", "modulo"):
        try:
            plan = solve_objective(
                p, objective=objective, carried=carried, time_limit=1.5, workers=1, seed=seed
            )
        except SolverError:  # memory: no static assignment within the time (never a bad plan)
            assert p.use_memory
            continue
        assert plan.objective == objective and plan.modulo is not None
        validate_modulo(plan, p, iterations=8)
        ii = plan.modulo.ii
        assert ii >= plan.modulo.ii_bound - 1e-9 >= plan.stats["bound_any_assignment"] - 1e-6
        if not carried:
            assert ii <= plan.baselines["latency back to back"] * (1 + 1e-9)
        if "pipeline" in plan.baselines:
            assert ii <= plan.baselines["pipeline"] * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_a_latency_plan_folds_into_a_valid_period(seed: int) -> None:
    from hetsched.plan import schedule_arrays
    from hetsched.schedule.latency.heuristics import solve_heft

    p = random_problem(seed, n=8, d=3)
    plan = solve_heft(p, time_limit=1, seed=0)
    validate(plan, p)
    assign, start = schedule_arrays(plan, p)
    ii = folded_ii(p, assign, start, carried_index(p, []))
    assert ii is not None and ii <= round(plan.makespan / p.quantum)
    dur = p.dur[np.arange(p.n), assign]
    assert ii >= np.bincount(assign, weights=dur, minlength=p.num_devices).max()


def test_a_zoo_model_gets_a_valid_period_that_beats_the_pipeline() -> None:
    # real-valued quanta: the recorded II is an integer number of quanta only up to
    # rounding (benchmarks/steady.py on gpt tiny, 10 s, once recorded offset 0 for an op
    # the validator then placed at ~II: it now compares offsets on the circle)
    from hetsched.graph import fuse, zoo

    graph = fuse(zoo.graph("gpt", "tiny"))
    p = Problem.build(graph, "edge-soc")
    plan = solve_objective(p, graph, objective="throughput", time_limit=3, workers=1)
    validate_modulo(plan, p, iterations=6)
    assert plan.modulo is not None
    assert plan.modulo.ii <= min(plan.baselines.values()) * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_problems_with_more_modes_than_devices_get_a_valid_period(seed: int) -> None:
    # two-device (split) modes, a second precision, resident and streamed weights: the
    # periodic plan holds one mode per (op, device), and claims the whole question's bound
    from hetsched.exec import execute_periodic
    from tests.exec.test_memory import random_weights_problem

    p = random_weights_problem(seed)
    assert not p.is_device_table
    plan = solve_objective(p, objective="throughput", time_limit=1.5, workers=1, seed=seed)
    validate_modulo(plan, p, iterations=6)
    assert plan.modulo is not None
    assert plan.modulo.ii_bound == pytest.approx(plan.stats["bound_any_assignment"])
    run = execute_periodic(plan, p, iterations=4)
    assert run.measured_period == pytest.approx(plan.modulo.ii, rel=1e-9, abs=1e-12)
