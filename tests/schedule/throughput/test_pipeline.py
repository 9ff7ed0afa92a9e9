"""Pipeline partitioning: exact vs brute force and baselines, variants, bad input."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from hetsched.errors import InfeasibleError, PlanError, UsageError
from hetsched.plan import static_usage
from hetsched.problem import Problem
from hetsched.schedule.throughput import (
    build_pipeline_model,
    capability_greedy,
    is_contiguous,
    pipeline_cost,
    run_baselines,
    solve_objective,
    solve_pipeline,
    validate_pipeline,
)
from hetsched.solver import StopToken
from tests.schedule.throughput.conftest import random_problem


def brute_force(p, *, contiguous=False, stages=None):
    best = None
    for a in itertools.product(*p.allowed_devices):
        c = pipeline_cost(p, np.array(a))
        if not c.feasible or (stages is not None and c.stages != stages):
            continue
        if contiguous and not is_contiguous(np.array(a)):
            continue
        best = c.period if best is None else min(best, c.period)
    return best


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("contiguous", [False, True])
def test_exact_equals_brute_force(seed, contiguous):
    p = random_problem(seed, memory=seed % 2 == 1, shared=seed % 4 >= 2)
    want = brute_force(p, contiguous=contiguous)
    if want is None:
        with pytest.raises(InfeasibleError):
            solve_pipeline(p, contiguous=contiguous, time_limit=5, workers=1)
        return
    plan = solve_pipeline(p, contiguous=contiguous, time_limit=5, workers=1)
    validate_pipeline(plan, p)
    r = plan.pipeline
    assert plan.objective == "throughput" and plan.searched
    assert plan.status == "optimal" and r.period_bound == r.period
    assert round(r.period) == want
    assert r.contiguous or not contiguous


@pytest.mark.parametrize("seed", range(4))
def test_memory_figure_is_the_one_memory_model(seed):
    p = random_problem(40 + seed, n=7, memory=True, shared=True)
    try:
        plan = solve_pipeline(p, time_limit=5, workers=1)
    except InfeasibleError:
        assert brute_force(p) is None
        return
    assign = np.array([p.device_index[plan.assignment[x]] for x in p.names])
    used = static_usage(p, p.device_mode[np.arange(p.n), assign])
    assert list(plan.pipeline.memory.values()) == used.tolist()
    assert list(plan.memory.values()) == used.tolist()
    assert pipeline_cost(p, assign).memory.tolist() == used.tolist()


@pytest.mark.parametrize("seed", range(4))
def test_exact_not_worse_than_baselines(seed):
    p = random_problem(100 + seed, n=12, d=4)
    plan = solve_pipeline(p, time_limit=5, workers=1)
    validate_pipeline(plan, p)
    for b in run_baselines(p):
        if b.cost.feasible:
            assert plan.pipeline.period <= b.cost.period * p.quantum


def test_contiguous_is_contiguous_and_stages_acyclic():
    p = random_problem(7, n=10, d=3, unsupported=0.0)
    plan = solve_pipeline(p, contiguous=True, time_limit=5, workers=1)
    dev = [plan.assignment[x] for x in p.names]
    runs = [d for i, d in enumerate(dev) if i == 0 or d != dev[i - 1]]
    assert len(runs) == len(set(runs)) and plan.pipeline.contiguous
    stage = plan.pipeline.stage
    for k in range(p.num_edges):
        u, v = p.names[p.edge_src[k]], p.names[p.edge_dst[k]]
        assert stage[u] <= stage[v]


def test_model_encoding_sizes():
    p = random_problem(3, n=5, d=2, unsupported=0.0, shared=True)
    built = build_pipeline_model(p, lower=0, upper=100)
    assert len(built.node_device_to_on) == 5
    assert all(len(x) == 2 for x in built.node_device_to_on)
    names = [v.name for v in built.model.proto.variables]
    # one send literal per (tensor, source device, destination device), not per edge
    sends = [x for x in names if x.startswith("send_")]
    assert len(sends) <= p.tensors.num_tensors * 2


def test_zoo_exact_not_worse_than_baselines(mlp_tiny):
    for platform in ("edge-soc", "multi-gpu"):
        p = Problem.build(mlp_tiny, platform)
        plan = solve_objective(
            p, mlp_tiny, objective="throughput", solver="pipeline", time_limit=5, workers=1
        )
        assert plan.baselines and plan.stats["restriction"].startswith("pipeline stages")
        for period in plan.baselines.values():
            assert plan.pipeline.period <= period * (1 + 1e-9)
        # results are typed fields, never figures in the solver diagnostics
        assert not {"period", "period_bound", "stages", "utilization"} & set(plan.stats)


def test_validate_pipeline_rejects_tampering():
    p = random_problem(1, n=3, d=2, unsupported=0.0)
    plan = solve_pipeline(p, time_limit=5, workers=1)
    r = plan.pipeline
    with pytest.raises(PlanError, match="busiest load"):
        validate_pipeline(plan.with_(pipeline=replace(r, period=r.period + 1)), p)
    with pytest.raises(PlanError, match="exceeds its period"):
        validate_pipeline(plan.with_(pipeline=replace(r, period_bound=r.period + 1)), p)
    with pytest.raises(PlanError, match="memory model"):
        validate_pipeline(plan.with_(pipeline=replace(r, memory={})), p)


def test_bad_inputs():
    p = random_problem(2, n=4, d=3, unsupported=0.0)
    with pytest.raises(InfeasibleError, match="stage count 5 is larger than the op count 4"):
        solve_pipeline(p, stages=5, time_limit=5)
    with pytest.raises(InfeasibleError, match="below the critical path"):
        solve_pipeline(p, max_latency=0.5, time_limit=5)
    with pytest.raises(UsageError, match="takes no option 'bogus'"):
        solve_objective(p, objective="throughput", bogus=1)
    with pytest.raises(UsageError, match="takes no option 'export_model'"):
        solve_objective(p, objective="throughput", solver="dp", export_model="x.pb")
    with pytest.raises(UsageError, match="takes no workers"):
        solve_objective(p, objective="throughput", solver="dp", workers=2)
    with pytest.raises(UsageError, match="unknown throughput solver"):
        solve_objective(p, objective="throughput", solver="heft")
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
    assert plan.pipeline.stages == 2
    limit = 2 * plan.pipeline.period
    plan2 = solve_objective(p, objective="throughput", max_latency=limit, time_limit=5, workers=1)
    validate_pipeline(plan2, p, max_latency=limit)
    assert plan2.pipeline.latency <= limit


def _fragmented() -> Problem:
    # gpu is fast but cannot run op2: capability greedy leaves gpu runs of 2 and 3 ops.
    ex = np.array([[4, 1], [4, 1], [4, np.inf], [4, 1], [4, 1], [4, 1]], dtype=float)
    return Problem.from_arrays(
        names=[f"op{i}" for i in range(6)], devices=["cpu", "gpu"], exec_time=ex,
        edges=[(i, i + 1, 1.0) for i in range(5)], quantum=1.0,
    )  # fmt: skip


def test_min_block_size_changes_the_capability_baseline():
    p = _fragmented()
    assert capability_greedy(p, min_block_size=1).tolist() == [0, 0, 0, 1, 1, 1]
    assert capability_greedy(p, min_block_size=5).tolist() == [0] * 6
    kept = solve_objective(p, objective="throughput", solver="capability", min_block_size=1)
    merged = solve_objective(p, objective="throughput", solver="capability", min_block_size=5)
    assert kept.solver == "capability" and kept.status == "heuristic"
    assert kept.pipeline.period < merged.pipeline.period
    # the exact solver passes it on to the baseline it is hinted with
    assert solve_pipeline(p, min_block_size=1, time_limit=5, workers=1).baselines[
        "capability"
    ] == pytest.approx(kept.pipeline.period)
    assert solve_pipeline(p, min_block_size=5, time_limit=5, workers=1).baselines[
        "capability"
    ] == pytest.approx(merged.pipeline.period)
    with pytest.raises(UsageError, match="min_block_size"):
        solve_pipeline(p, min_block_size=0, time_limit=5)


def test_solves_after_a_stopped_one_are_not_interrupted():
    p = random_problem(105, n=12, d=4)
    stop = StopToken()
    stop.set()
    pipe = {"objective": "throughput", "solver": "pipeline", "workers": 1}
    first = solve_objective(p, time_limit=5, stop=stop, **pipe)  # type: ignore[arg-type]
    assert first.interrupted and not first.searched and first.status == "heuristic"
    validate_pipeline(first, p)
    for _ in range(2):
        plan = solve_objective(p, time_limit=5, **pipe)  # type: ignore[arg-type]
        assert not plan.interrupted
        assert plan.status == "optimal"
        assert plan.pipeline.period <= first.pipeline.period
    stopped = solve_objective(p, objective="modulo", time_limit=5, workers=1, stop=stop)
    assert stopped.interrupted and stopped.stats["fixed_ii_models"] == 0
    modulo = solve_objective(p, objective="modulo", time_limit=5, workers=1)
    assert not modulo.interrupted and modulo.status == "optimal"
