"""The report pipeline end to end, fast: tiny random suite, heuristics only."""

from __future__ import annotations

import json

import pytest

from hetsched.bench import BenchConfig, run_bench
from hetsched.bench.instances import build_problem, random_spec
from hetsched.cli import main


def test_random_instances_are_deterministic_and_related():
    a = build_problem(random_spec(40, 5, 10.0, seed=7))
    b = build_problem(random_spec(40, 5, 10.0, seed=7))
    assert (a.dur == b.dur).all() and (a.comm == b.comm).all()
    ratio = a.dur / a.dur[:, :1]
    assert (ratio == ratio[0]).all()  # related machines: one slowness per device


def test_run_bench_writes_everything(tmp_path):
    cfg = BenchConfig(
        suite="random", out=str(tmp_path), solvers=("heft", "peft", "cpop"), peers=(),
        sizes=(20,), devices=(3,), ccrs=(1.0,), betas=(0.0, 1.0), progress=False,
    )  # fmt: skip
    res = run_bench(cfg)
    for f in ("results.json", "instances.csv", "summary.csv", "report.md", "profile.png"):
        assert (tmp_path / f).stat().st_size > 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["format"] == "hetsched.bench/1" and len(doc["instances"]) == 2
    heft = res["solvers"]["heft"]
    assert heft["valid"] == 2 and heft["geo_ratio_heft"] == pytest.approx(1.0)
    assert all(r["valid"] for r in res["rows"])
    best = min(res["solvers"][s]["geo_ratio_best"] for s in ("heft", "peft", "cpop"))
    assert best >= 1.0


def test_cli_bench_unknown_solver(tmp_path, capsys):
    rc = main(
        ["bench", "--suite", "random", "--solvers", "nope", "--peers", "", "-o", str(tmp_path)]
    )
    assert rc == 2
    assert "unknown solver" in capsys.readouterr().err


def test_cli_bench_needs_a_worker(tmp_path, capsys):
    rc = main(["bench", "--suite", "random", "--workers", "0", "--peers", "", "-o", str(tmp_path)])
    assert rc == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_cli_bench_quick_heuristics(tmp_path, capsys):
    rc = main([
        "bench", "--suite", "random", "--sizes", "20", "--devices", "3", "--ccr", "1",
        "--beta", "0", "--solvers", "heft,cpsat", "--peers", "", "--time-limit", "2",
        "--workers", "2", "--quiet", "--no-plots", "-o", str(tmp_path),
    ])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "| cpsat |" in out and (tmp_path / "report.md").exists()


def test_a_solver_task_does_not_inherit_the_bound_task_s_bounds(monkeypatch):
    # bounds are memoised per problem object: the bound task's LPs, computed without a
    # time limit, must not come free within a timed solve of the same instance
    from hetsched.bench import runner
    from hetsched.schedule.bounds import _BOUND_MEMO

    seen = []
    solve = runner._run_solver
    monkeypatch.setattr(
        runner, "_run_solver", lambda t, p, s=None: seen.append(p) or solve(t, p, s)
    )
    spec = random_spec(20, 3, 10.0, seed=5)
    runner.run_task(runner.Task(spec, "bound", time_limit=1.0))
    (rec,) = runner.run_task(runner.Task(spec, "heft", time_limit=1.0))
    assert rec["valid"] and "load" not in _BOUND_MEMO.get(seen[0], {})


def test_each_row_says_where_its_instance_s_best_bound_came_from():
    from hetsched.bench.report import instance_rows

    recs = [
        {"instance": "a", "solver": "bound", "lower_bound": 8.0, "bound_from": "load",
         "valid": True},
        {"instance": "a", "solver": "heft", "makespan": 10.0, "lower_bound": 8.0,
         "bound_from": None, "valid": True},
        {"instance": "a", "solver": "portfolio", "makespan": 9.0, "lower_bound": 9.0,
         "bound_from": "placement", "valid": True},
        {"instance": "b", "solver": "bound", "lower_bound": 5.0, "bound_from": "window",
         "valid": True},
        {"instance": "b", "solver": "heft", "makespan": 6.0, "lower_bound": 4.0, "valid": True},
    ]  # fmt: skip
    rows = instance_rows(recs, {})
    assert {(r["instance"], r["lb"], r["lb_from"]) for r in rows} == {
        ("a", 9.0, "portfolio:placement"),
        ("b", 5.0, "bound:window"),
    }
    spec = random_spec(20, 3, 1.0, seed=0)  # a published bound above both: named so
    spec = type(spec)(**{**spec.__dict__, "name": "a", "known_lb": 9.5})
    assert {r["lb_from"] for r in instance_rows(recs[:3], {"a": spec})} == {"published"}


def test_the_bench_names_each_instance_s_bound(tmp_path):
    cfg = BenchConfig(
        suite="random", out=str(tmp_path), solvers=("heft", "portfolio"), peers=(),
        sizes=(20,), devices=(3,), ccrs=(10.0,), betas=(0.0,), progress=False, time_limit=5,
    )  # fmt: skip
    res = run_bench(cfg)
    (row,) = [r for r in res["rows"] if r["solver"] == "portfolio"]
    task, _, name = row["lb_from"].partition(":")
    assert task in ("bound", "heft", "portfolio") and name
    assert "lb_from" in (tmp_path / "instances.csv").read_text().splitlines()[0]
