"""Throughput and modulo plans survive the JSON round trip with their typed results."""

from dataclasses import replace

import pytest

import hetsched
from hetsched.errors import PlanError
from hetsched.graph import zoo
from hetsched.plan import load_plan, save_plan
from hetsched.problem import Problem
from hetsched.schedule.throughput import validate_pipeline
from hetsched.schedule.throughput.modulo import solve_modulo, validate_modulo
from tests.schedule.throughput.conftest import random_problem


def test_throughput_plan_json_round_trip(tmp_path):
    graph = zoo.graph("mlp", "tiny")
    plan = hetsched.solve(
        graph, "multi-gpu", objective="throughput", solver="pipeline", time_limit=5, workers=1
    )
    path = tmp_path / "pipe.json"
    save_plan(plan, path)
    problem = Problem.build(graph, "multi-gpu")
    back = load_plan(path)
    assert back.objective == "throughput" and back.status == plan.status
    assert back.pipeline == plan.pipeline
    assert dict(back.baselines) == dict(plan.baselines)
    validate_pipeline(back, problem)
    # A recorded period its assignment does not give is caught.
    r = back.pipeline
    with pytest.raises(PlanError, match="busiest load"):
        validate_pipeline(back.with_(pipeline=replace(r, period=r.period * 2)), problem)


def test_modulo_plan_json_round_trip(tmp_path):
    p = random_problem(3, n=7, d=3)
    carried = [(p.names[-1], p.names[0], 2)]
    plan = solve_modulo(p, carried=carried, time_limit=5, workers=1)
    path = tmp_path / "modulo.json"
    save_plan(plan, path)
    back = load_plan(path)
    assert back.objective == "modulo" and back.status == plan.status
    assert back.modulo == plan.modulo
    validate_modulo(back, p, iterations=6)
