"""A throughput plan survives the JSON round trip and is re-checked as a pipeline."""

import pytest

import hetsched
from hetsched.errors import PlanError
from hetsched.graph import zoo
from hetsched.plan import load_plan, save_plan
from hetsched.problem import Problem
from hetsched.schedule.throughput import as_pipeline_plan, validate_pipeline


def test_throughput_plan_json_round_trip(tmp_path):
    graph = zoo.graph("mlp", "tiny")
    plan = hetsched.solve(graph, "multi-gpu", objective="throughput", time_limit=5, workers=1)
    path = tmp_path / "pipe.json"
    save_plan(plan, path)
    problem = Problem.build(graph, "multi-gpu")
    back = as_pipeline_plan(load_plan(path), problem)
    validate_pipeline(back, problem)
    assert back.period == pytest.approx(plan.period)
    assert back.period_bound == pytest.approx(plan.period_bound)
    assert dict(back.stage) == dict(plan.stage)
    # An edited assignment no longer matches the recorded period.
    loaded = load_plan(path)
    assignment = dict(loaded.assignment)
    busiest = max(plan.utilization, key=lambda d: plan.utilization[d])
    idle = min(plan.utilization, key=lambda d: plan.utilization[d])
    for op, dev in assignment.items():
        if dev == idle:
            assignment[op] = busiest
    if assignment != dict(loaded.assignment):
        with pytest.raises(PlanError):
            as_pipeline_plan(loaded.with_(assignment=assignment), problem)
