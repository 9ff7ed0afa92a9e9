"""Chrome traces, Gantt charts and the `run` / `show` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hetsched.cli import main
from hetsched.exec import execute
from hetsched.exec.gantt import save_gantt
from hetsched.exec.trace import chrome_trace, save_trace
from hetsched.graph.formats import load
from hetsched.graph.resolve import load_graph_spec
from hetsched.plan import save_plan
from hetsched.problem import Problem
from hetsched.schedule.latency.heuristics import solve_heft
from tests.families import random_problem
from tests.paths import DATA

STG = DATA / "stg50" / "rand0000.stg"


def test_trace_structure(tmp_path: Path) -> None:
    p = random_problem(1, n=12)
    plan = solve_heft(p, time_limit=5, seed=0)
    doc = chrome_trace(plan)
    xs = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    names = {e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "thread_name"}
    assert len([e for e in xs if e["cat"] != "transfer"]) == p.n
    assert len([e for e in xs if e["cat"] == "transfer"]) == len(plan.transfers)
    assert set(plan.assignment.values()) <= names
    assert all(e["dur"] >= 0 and {"ts", "pid", "tid"} <= e.keys() for e in xs)
    run = execute(plan, p, faults=[f"d0@{plan.makespan / 2}"])
    path = tmp_path / "t.json"
    save_trace(run, path)
    doc = json.loads(path.read_text())
    assert any(e["ph"] == "i" and e["name"].startswith("fault") for e in doc["traceEvents"])
    assert doc["otherData"]["planned_makespan"] == plan.makespan


def test_gantt_png(tmp_path: Path) -> None:
    g = load(STG)
    p = Problem.build(g, "edge-soc")
    plan = solve_heft(p, time_limit=5, seed=0)
    save_gantt(plan, tmp_path / "plan.png", graph=g)
    run = execute(plan, p, faults=[f"cpu@{plan.makespan / 2}"])
    save_gantt(run, tmp_path / "run.png", graph=g)
    for name in ("plan.png", "run.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:4] == b"\x89PNG" and len(data) > 5000


def test_cli_run_and_show_graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = load(STG)
    plan = solve_heft(Problem.build(g, "edge-soc"), time_limit=5, seed=0)
    save_plan(plan, tmp_path / "plan.json")
    rc = main(["run", str(tmp_path / "plan.json"), "--graph", str(STG), "--noise", "0.1",
               "--samples", "20", "--trace", str(tmp_path / "t.json")])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0 and "realized" in out and "noise" in out and (tmp_path / "t.json").exists()
    rc = main(["show", str(tmp_path / "plan.json"), "--gantt", str(tmp_path / "g.png")])
    assert rc == 0 and (tmp_path / "g.png").exists()
    assert main(["run", str(tmp_path / "plan.json")]) == 2  # no graph given
    assert main(["run", str(tmp_path / "nope.json"), "--graph", str(STG)]) == 2
    assert main(["run", str(tmp_path / "plan.json"), "--graph", str(STG), "--fail", "x"]) == 2


def test_cli_run_model_with_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = load_graph_spec("mlp", size="tiny")
    plan = solve_heft(Problem.build(g, "edge-soc"), time_limit=5, seed=0)
    save_plan(plan, tmp_path / "plan.json")
    rc = main(["run", str(tmp_path / "plan.json"), "--model", "mlp", "--fail",
               f"cpu@{plan.makespan / 2}", "--gantt", str(tmp_path / "g.png")])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0 and "match eager" in out and "1 re-plan" in out
