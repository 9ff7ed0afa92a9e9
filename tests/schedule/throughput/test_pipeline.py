"""Pipeline partitioning: exact vs brute force and baselines, variants, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hetsched.errors import InfeasibleError, PlanError, UsageError
from hetsched.schedule.throughput import (
    build_pipeline_model,
    pipeline_cost,
    run_baselines,
    solve_objective,
    solve_pipeline,
    validate_pipeline,
)
from tests.schedule.throughput.conftest import random_problem


def brute_force(p, *, contiguous=False, stages=None):
    best = None
    for a in itertools.product(*p.allowed_devices):
        c = pipeline_cost(p, np.array(a))
        if not c.feasible or (stages is not None and c.stages != stages):
            continue
        if contiguous:
            runs = np.array(a)[np.concatenate([[0], np.flatnonzero(np.diff(a)) + 1])]
            if len(set(runs.tolist())) != len(runs):
                continue
        best = c.period if best is None else min(best, c.period)
    return best


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("contiguous", [False, True])
def test_exact_equals_brute_force(seed, contiguous):
    p = random_problem(seed, memory=seed % 2 == 1)
    want = brute_force(p, contiguous=contiguous)
    if want is None:
        with pytest.raises(InfeasibleError):
            solve_pipeline(p, contiguous=contiguous, time_limit=5, workers=1)
        return
    plan = solve_pipeline(p, contiguous=contiguous, time_limit=5, workers=1)
    validate_pipeline(plan, p)
    assert plan.status == "optimal"
    assert round(plan.period) == want
    assert plan.period_bound <= plan.period


@pytest.mark.parametrize("seed", range(4))
def test_exact_not_worse_than_baselines(seed):
    p = random_problem(100 + seed, n=12, d=4)
    plan = solve_pipeline(p, time_limit=5, workers=1)
    validate_pipeline(plan, p)
    for b in run_baselines(p):
        if b.cost.feasible:
            assert plan.period <= b.cost.period * p.quantum


def test_contiguous_is_contiguous_and_stages_acyclic():
    p = random_problem(7, n=10, d=3, unsupported=0.0)
    plan = solve_pipeline(p, contiguous=True, time_limit=5, workers=1)
    dev = [plan.assignment[x] for x in p.names]
    runs = [d for i, d in enumerate(dev) if i == 0 or d != dev[i - 1]]
    assert len(runs) == len(set(runs))
    for k in range(p.num_edges):
        u, v = p.names[p.edge_src[k]], p.names[p.edge_dst[k]]
        assert plan.stage[u] <= plan.stage[v]


def test_model_encoding_sizes():
    p = random_problem(3, n=5, d=2, unsupported=0.0)
    built = build_pipeline_model(p, lower=0, upper=100)
    assert len(built.node_device_to_on) == 5
    assert all(len(x) == 2 for x in built.node_device_to_on)


def test_zoo_exact_not_worse_than_baselines(mlp_tiny):
    from hetsched.problem import Problem

    for platform in ("edge-soc", "multi-gpu"):
        p = Problem.build(mlp_tiny, platform)
        plan = solve_objective(p, mlp_tiny, objective="throughput", time_limit=5, workers=1)
        for period in plan.stats["heuristics"].values():
            assert plan.period <= period * (1 + 1e-9)
        assert plan.stats["period"] == plan.period


def test_validate_pipeline_rejects_cycle():
    p = random_problem(1, n=3, d=2, unsupported=0.0)
    plan = solve_pipeline(p, time_limit=5, workers=1)
    bad = plan.with_(period=plan.period + 1)
    with pytest.raises(PlanError, match="busiest load"):
        validate_pipeline(bad, p)


def test_bad_inputs():
    p = random_problem(2, n=4, d=3, unsupported=0.0)
    with pytest.raises(InfeasibleError, match="stage count 5 is larger than the op count 4"):
        solve_pipeline(p, stages=5, time_limit=5)
    with pytest.raises(InfeasibleError, match="below the critical path"):
        solve_pipeline(p, max_latency=0.5, time_limit=5)
    with pytest.raises(UsageError, match="unknown throughput option"):
        solve_objective(p, objective="throughput", bogus=1)
    mem = random_problem(2, n=4, d=2, unsupported=0.0, memory=True)
    tight = type(mem).from_arrays(
        names=list(mem.names), devices=list(mem.devices), exec_time=mem.exec_time,
        memory_bytes=np.array([3.0, 3.0, 3.0, 3.0]), capacity=np.array([4.0, 4.0]),
        use_memory=True, quantum=1.0,
    )  # fmt: skip
    with pytest.raises(InfeasibleError, match="memory"):
        solve_pipeline(tight, time_limit=5, workers=1)


def test_stage_count_and_latency_respected():
    p = random_problem(4, n=8, d=3, unsupported=0.0)
    plan = solve_pipeline(p, stages=2, time_limit=5, workers=1)
    assert plan.stages == 2
    limit = 2 * plan.period
    plan2 = solve_pipeline(p, max_latency=limit, time_limit=5, workers=1)
    validate_pipeline(plan2, p, max_latency=limit)
