"""Periodic (throughput) plans run for N overlapping iterations: the measured period equals
the planned one on the virtual clock, and every iteration's outputs equal eager."""

from __future__ import annotations

import pytest
import torch

from hetsched.errors import UsageError
from hetsched.exec import execute_periodic
from hetsched.problem import Problem
from hetsched.schedule.throughput import solve_objective
from hetsched.schedule.throughput.modulo import solve_modulo
from tests.exec.helpers import exported, spread_problem, worker_threads
from tests.schedule.throughput.test_steady import real_problem


def _inputs(args: tuple[torch.Tensor, ...], n: int) -> list[tuple[torch.Tensor, ...]]:
    gen = torch.Generator().manual_seed(1)
    noise = [[0.1 * i * torch.randn(a.shape, generator=gen) for a in args] for i in range(n)]
    return [tuple(a + e for a, e in zip(args, row, strict=True)) for row in noise]


@pytest.mark.parametrize("model", ["mlp", "attention"])
def test_iterations_overlap_equal_eager_and_keep_the_period(model: str) -> None:
    ep, g, args = exported(model)
    p = spread_problem(g, seed=1)
    plan = solve_objective(p, g, objective="throughput", time_limit=3, workers=1)
    inputs = _inputs(args, 4)
    r = execute_periodic(plan, p, iterations=4, graph=g, program=ep, inputs=inputs)
    assert r.outputs_match == (True, True, True, True)
    assert r.measured_period == pytest.approx(plan.modulo.ii, rel=1e-9)
    assert all(x == pytest.approx(plan.modulo.ii, rel=1e-9) for x in r.periods)
    # iterations really overlap: the period is shorter than one iteration's latency
    assert plan.modulo.ii < min(r.latencies)
    assert not worker_threads()


@pytest.mark.parametrize("seed", range(8))
def test_measured_period_equals_the_plan_on_random_graphs(seed: int) -> None:
    p, carried = real_problem(seed)
    if p.use_memory:
        return  # covered by the property test; the copy's memory is not a constraint
    plan = solve_modulo(p, carried=carried, time_limit=1, workers=1, seed=seed)
    r = execute_periodic(plan, p, iterations=6)
    assert r.measured_period == pytest.approx(plan.modulo.ii, rel=1e-9, abs=1e-12)
    assert r.outputs_match == (None,) * 6


def test_periodic_runs_refuse_what_they_cannot_do() -> None:
    ep, g, args = exported("mlp")
    p = spread_problem(g, seed=1)
    plan = solve_modulo(p, time_limit=2, workers=1)
    with pytest.raises(UsageError, match="one input tuple per iteration"):
        execute_periodic(plan, p, iterations=3, graph=g, program=ep, inputs=[args])
    with pytest.raises(UsageError, match="iterations must be a positive integer"):
        execute_periodic(plan, p, iterations=0)
    latency = Problem.build(g, "edge-soc")
    from hetsched.schedule.latency.heuristics import solve_heft

    with pytest.raises(UsageError, match="not periodic"):
        execute_periodic(solve_heft(latency, time_limit=1), latency)


def test_cli_runs_a_throughput_plan_for_n_iterations(tmp_path, capsys) -> None:
    from hetsched.cli import main

    plan = tmp_path / "plan.json"
    assert main(["solve", "mlp", "--objective", "throughput", "--time-limit", "3",
                 "--workers", "1", "--quiet", "-o", str(plan)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["run", str(plan), "--model", "mlp", "--iterations", "3"]) == 0
    out = capsys.readouterr().out
    assert "over 3 overlapping iterations" in out
    assert out.count("match eager") == 3
    planned, measured = (
        line.split("planned ")[1].split(", measured ")
        for line in out.splitlines()
        if line.startswith("period")
    ).__next__()
    assert measured.split(" over")[0] == planned
    latency = tmp_path / "latency.json"
    assert main(["solve", "mlp", "--time-limit", "1", "--quiet", "-o", str(latency)]) == 0
    assert main(["run", str(latency), "--graph", "mlp", "--iterations", "3"]) == 2
    assert "--iterations applies to a throughput" in capsys.readouterr().err
