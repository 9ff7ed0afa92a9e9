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
