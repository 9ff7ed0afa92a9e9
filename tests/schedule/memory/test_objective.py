"""``--objective memory``: the order as a plan the validator accepts, its JSON, its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hetsched
from hetsched.cli import main
from hetsched.errors import InfeasibleError, UsageError
from hetsched.graph import Edge, OpGraph, OpNode
from hetsched.plan import load_plan, validate
from hetsched.problem import Problem
from hetsched.schedule.memory import solve_peak_memory


def fork() -> OpGraph:
    """a feeds a big branch b and a small one c, both read by d: b then c holds a, b and c
    at once (4 + 8 + 1), c then b too (4 + 1 + 8); the peak is 13 either way."""
    nodes = [
        OpNode("a", out_bytes=4.0, param_bytes=2.0, flops=1e3),
        OpNode("b", out_bytes=8.0, flops=1e3),
        OpNode("c", out_bytes=1.0, flops=1e3),
        OpNode("d", out_bytes=1.0, flops=1e3),
    ]
    edges = [Edge("a", "b", 4.0), Edge("a", "c", 4.0), Edge("b", "d", 8.0), Edge("c", "d", 1.0)]
    return OpGraph("fork", nodes, edges)


def test_the_plan_runs_the_order_on_one_device_and_peaks_where_the_result_says() -> None:
    problem = Problem.build(fork(), "edge-soc")
    plan = solve_peak_memory(problem, time_limit=5, device="cpu")
    validate(plan, problem)
    peak = plan.peak_memory
    assert peak is not None and peak.device == "cpu"
    assert set(plan.assignment.values()) == {"cpu"}
    assert plan.memory["cpu"] == peak.peak == 13.0 + 2.0  # activations + resident weights
    assert plan.status == "optimal" and plan.objective_bound == peak.peak_bound
    starts = sorted(plan.start.values())
    assert starts == sorted(plan.start[x] for x in peak.order)
    assert [plan.start[x] for x in peak.order] == starts  # back to back, in the order


def test_the_api_and_the_json_carry_the_result(tmp_path: Path) -> None:
    plan = hetsched.solve(fork(), "edge-soc", objective="memory", time_limit=5, device="cpu")
    out = tmp_path / "plan.json"
    hetsched.plan.save_plan(plan, out)
    back = load_plan(out)
    assert back.peak_memory == plan.peak_memory and back.status == "optimal"
    with pytest.raises(UsageError, match="unknown device 'tpu'"):
        hetsched.solve(fork(), "edge-soc", objective="memory", device="tpu")
    with pytest.raises(UsageError, match="one solver"):
        hetsched.solve(fork(), "edge-soc", objective="memory", solver="heft")


def test_an_order_that_cannot_fit_is_proven_so() -> None:
    problem = Problem.build(fork(), "edge-soc")
    tight = problem.with_memory(np.array([12.0, *problem.capacity[1:]]))
    with pytest.raises(InfeasibleError, match=r"'cpu' cannot hold 'fork'.*\(proven\)"):
        solve_peak_memory(tight, time_limit=5, device="cpu")


def test_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    assert main(["solve", "mlp", "--objective", "memory", "--quiet", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "peak      " in text and "orders    topological" in text
    assert load_plan(out).objective == "memory"
    assert main(["solve", "mlp", "--device", "cpu", "--quiet"]) == 2
    assert "--device applies to --objective memory" in capsys.readouterr().err
