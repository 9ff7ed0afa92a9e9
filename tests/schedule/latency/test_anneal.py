"""Simulated annealing: its evaluator is the re-timing, its plans valid and never worse."""

from __future__ import annotations

import numpy as np
import pytest

from hetsched.bench.instances import build_problem, random_spec
from hetsched.plan import validate
from hetsched.problem import Problem
from hetsched.schedule.latency import anneal as annealing
from hetsched.schedule.latency.anneal import (
    anneal,
    compiles,
    kernel_ready,
    moves_within,
    solve_anneal,
    start_temperature,
)
from hetsched.schedule.latency.clusters import solve_clusters
from hetsched.schedule.latency.heuristics import solve_heft, solve_heft_fewer
from hetsched.schedule.latency.listsched import Retimer, priority_order, retime
from hetsched.schedule.latency.portfolio import solve_portfolio
from hetsched.solver import StopToken
from tests.schedule.bounds.test_delays import heavy_problem


@pytest.fixture(autouse=True, scope="module")
def _compiled_loop() -> None:
    """The compiled loop ready before the solves here (in a fresh clone numba compiles it
    in 3-10 s, which the portfolio would not wait for within their budgets)."""
    if compiles(heavy_problem(0)):
        assert kernel_ready(600.0)


def bus_problem(seed: int, n: int = 12, devices: int = 3) -> Problem:
    """A transfer-heavy DAG whose transfers share one bus (link contention on)."""
    p = heavy_problem(seed, n=n, devices=devices)
    pairs = [(a, b) for a in range(devices) for b in range(devices) if a != b]
    return Problem.from_arrays(
        names=list(p.names), devices=list(p.devices), exec_time=p.dur.astype(float),
        edges=[(int(u), int(v), 1.0) for u, v in zip(p.edge_src, p.edge_dst, strict=True)],
        comm_latency=np.full((devices, devices), 9.0) - 9.0 * np.eye(devices), quantum=1.0,
        route_links={pair: (0,) for pair in pairs}, link_names=["bus"], link_contention=True,
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(8))
def test_the_fast_evaluator_times_exactly_as_the_retiming(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for p in (heavy_problem(seed, n=14, devices=4), bus_problem(seed)):
        r = Retimer(p)
        for _ in range(5):
            assign = np.array([rng.choice(np.flatnonzero(p.allowed[v])) for v in range(p.n)])
            order = priority_order(p, rng.random(p.n))
            start, _ = retime(p, assign, order)
            finish = start + p.dur[np.arange(p.n), assign]
            assert r.finish(assign.tolist(), order) == finish.tolist()


@pytest.mark.parametrize("seed", range(4))
def test_re_timing_from_a_place_in_the_order_equals_re_timing_all(seed: int) -> None:
    # 60 ops: several snapshots of the devices' state (every SNAPSHOT_EVERY places)
    rng = np.random.default_rng(seed)
    stopped = 0
    for p in (heavy_problem(seed, n=60, devices=4), bus_problem(seed, n=40)):
        r = Retimer(p)
        assign = [int(rng.choice(np.flatnonzero(p.allowed[v]))) for v in range(p.n)]
        order = priority_order(p, rng.random(p.n))
        base = r.resume(assign, order)
        for _ in range(20):  # change the device of one op, or its place, then resume there
            trial_assign, trial_order = list(assign), list(order)
            i = int(rng.integers(p.n))
            v = trial_order[i]
            if rng.random() < 0.5:
                trial_assign[v] = int(rng.choice(np.flatnonzero(p.allowed[v])))
                first = i
            else:
                pos = {x: k for k, x in enumerate(order)}
                lo = max((pos[u] for u, _ in p.preds[v]), default=-1) + 1
                hi = min((pos[w] for w, _ in p.succs[v]), default=p.n) - 1
                j = int(rng.integers(lo, hi + 1))
                trial_order.insert(j, trial_order.pop(i))
                first = min(i, j)
            resumed = r.resume(trial_assign, trial_order, base=base, first=first)
            assert resumed is not None
            assert resumed[0] == r.finish(trial_assign, trial_order)
            assert resumed == r.resume(trial_assign, trial_order)  # the snapshots too
            # with a cap: stopped only where the makespan is above it, else the same
            cap = max(resumed[0]) + int(rng.integers(-40, 40))
            capped = r.resume(trial_assign, trial_order, base=base, first=first, cap=cap)
            assert max(resumed[0]) > cap if capped is None else capped == resumed
            stopped += capped is None
            if rng.random() < 0.5:  # the next change starts from this one
                assign, order, base = trial_assign, trial_order, resumed
    assert stopped > 0


@pytest.mark.parametrize("seed", range(6))
def test_annealed_plans_are_valid_and_never_worse_than_their_start(seed: int) -> None:
    for p in (heavy_problem(seed, n=14, devices=4), bus_problem(seed)):
        start = solve_heft(p, time_limit=5)
        plan = anneal(p, start, seed=seed, moves=3_000)
        validate(plan, p)
        assert plan.makespan <= start.makespan


@pytest.mark.parametrize("seed", range(4))
def test_the_compiled_loop_moves_as_the_python_one(seed: int) -> None:
    # the same draws, the same moves, the same re-timing and acceptance: the same plan and
    # the same count of trials, on graphs with one and several snapshots of the devices
    for p in (heavy_problem(seed, n=14, devices=4), heavy_problem(seed, n=60, devices=5)):
        assert compiles(p)
        start = solve_heft(p, time_limit=5)
        fast, slow = (anneal(p, start, seed=seed, moves=4_000, compiled=c) for c in (True, False))
        validate(fast, p)
        assert (fast.makespan, fast.start, fast.modes) == (slow.makespan, slow.start, slow.modes)
        ran = [plan.stats.get("anneal", plan.stats) for plan in (fast, slow)]
        assert [r["compiled"] for r in ran] == [True, False]
        assert ran[0]["evaluations"] == ran[1]["evaluations"] > 1_000
    assert not compiles(bus_problem(0))  # link contention: annealed in Python


def test_a_move_onto_a_device_busy_past_the_draw_is_rejected_without_re_timing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the device's busy time bounds the trial's makespan: rejecting there is the answer a
    # re-timing would give (the same plan), with fewer trials re-timed
    p = heavy_problem(1, n=14, devices=4)
    start = solve_heft(p, time_limit=5)
    plans = [anneal(p, start, seed=1, moves=4_000, compiled=False)]
    accept = annealing._accept

    def without_floor(*args: object) -> bool:
        return accept(*args[:6])  # type: ignore[arg-type]

    monkeypatch.setattr(annealing, "_accept", without_floor)
    plans.append(anneal(p, start, seed=1, moves=4_000, compiled=False))
    first, second = ((plan.makespan, plan.start, plan.modes) for plan in plans)
    assert first == second
    trials = [plan.stats.get("anneal", plan.stats)["evaluations"] for plan in plans]
    assert trials[0] < trials[1]


def test_without_numba_annealing_runs_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    p = heavy_problem(1, n=14, devices=4)
    compiled_moves = moves_within(p, 1.0)
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` raises ImportError
    assert not compiles(p)
    assert moves_within(p, 1.0) < compiled_moves / 10  # budgets in Python moves
    plan = anneal(p, solve_heft(p, time_limit=5), seed=0, moves=1_000)
    assert plan.stats.get("anneal", plan.stats)["compiled"] is False


def test_a_given_number_of_moves_is_deterministic() -> None:
    p = heavy_problem(2, n=14, devices=4)
    start = solve_heft(p, time_limit=5)
    a, b = (anneal(p, start, seed=7, moves=2_000) for _ in range(2))
    assert (a.makespan, a.start, a.modes) == (b.makespan, b.start, b.modes)
    none = anneal(p, start, seed=7, moves=0)
    assert (none.makespan, none.start, none.stats["anneal"]["skipped"]) == (
        start.makespan,
        start.start,
        0,
    )


def test_a_budget_is_moves_by_the_size_of_the_graph() -> None:
    p = heavy_problem(0, n=14)
    assert abs(moves_within(p, 2.0) - 2 * moves_within(p, 1.0)) <= 1
    assert moves_within(heavy_problem(0, n=28), 1.0) < moves_within(p, 1.0)


def test_the_start_temperature_follows_the_moves_per_op() -> None:
    hot, cold = start_temperature(1000, 100, 1e6), start_temperature(1000, 100, 1.0)
    assert hot == 20.0 and cold == 5.0
    assert cold < start_temperature(1000, 100, 250.0) < hot


def test_it_beats_the_greedy_moves_on_a_communication_heavy_graph() -> None:
    # the random suite's 100-op CCR-10 graph on 8 unrelated devices: the cluster moves stop
    # in a local optimum; annealing from there walks on (a fixed number of moves, ~2 s)
    p = build_problem(random_spec(100, 8, 10.0, seed=0, beta=1.0))
    moved = solve_clusters(p, time_limit=60, seed=0, hint=solve_heft_fewer(p, time_limit=30))
    plan = anneal(p, moved, seed=0, moves=25_000)
    validate(plan, p)
    assert plan.makespan < 0.95 * moved.makespan
    assert plan.stats["start_makespan"] * p.quantum == moved.makespan


def test_the_solver_starts_from_heft_without_a_hint() -> None:
    p = heavy_problem(4, n=14, devices=4)
    plan = solve_anneal(p, time_limit=0.2, seed=0)
    validate(plan, p)
    assert plan.makespan <= solve_heft(p, time_limit=5).makespan


def test_the_portfolio_anneals_when_transfers_dominate() -> None:
    p = build_problem(random_spec(40, 5, 10.0, seed=1, beta=1.0))
    plan = solve_portfolio(p, time_limit=3, seed=0, workers=1)
    validate(plan, p)
    assert "anneal" in plan.stats["path"] or plan.status == "optimal"


def test_with_two_workers_the_placement_relaxation_runs_beside_the_plan_search() -> None:
    p = build_problem(random_spec(40, 5, 10.0, seed=1, beta=1.0))
    plan = solve_portfolio(p, time_limit=4, seed=0, workers=2)
    validate(plan, p)
    path = plan.stats["path"]
    assert plan.status == "optimal" or ("anneal" in path and "placement" in path)
    if "placement" in path:
        assert plan.stats["placement"]["bound"] <= plan.lower_bound <= plan.makespan


def test_above_the_relaxation_s_size_a_cool_search_runs_beside_annealing() -> None:
    from hetsched.schedule.latency.placement import PLACEMENT_MAX_OPS

    p = build_problem(random_spec(PLACEMENT_MAX_OPS + 50, 8, 10.0, seed=1, beta=1.0))
    # the annealing stage starts at ~1.6 s here: 6 s leaves a slower machine room
    plan = solve_portfolio(p, time_limit=6, seed=0, workers=2)
    validate(plan, p)
    assert "anneal" in plan.stats["path"] and "placement" not in plan.stats["path"]
    searches = plan.stats["anneal"]
    assert plan.makespan <= min(searches["makespan"], searches["cool"])


def test_graphs_whose_transfers_cost_about_their_ops_are_not_annealed() -> None:
    from hetsched.schedule.latency.heuristics import comm_ratio
    from hetsched.schedule.latency.portfolio import ANNEAL_MIN_CCR

    p = build_problem(random_spec(100, 5, 1.0, seed=0, beta=0.0))  # transfers 1.04x the ops
    assert 1.0 < comm_ratio(p) < ANNEAL_MIN_CCR
    path = solve_portfolio(p, time_limit=2, seed=0, workers=1).stats["path"]
    assert "clusters" in path and "anneal" not in path


def test_a_loop_still_compiling_is_not_waited_for_past_the_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from concurrent.futures import Future

    compiling: Future[None] = Future()  # as in a fresh environment: compiling for seconds
    monkeypatch.setattr(annealing, "_WARMING", compiling)
    assert not kernel_ready(0.05)
    stop = StopToken()
    stop.set()
    assert not kernel_ready(600.0, stop)  # a stop ends the wait
    p = build_problem(random_spec(40, 5, 10.0, seed=1, beta=1.0))
    if compiles(p):
        hint = solve_heft(p, time_limit=5)
        alone = solve_anneal(p, time_limit=0.5, seed=0, hint=hint)
        assert alone.makespan == hint.makespan
        assert alone.stats["anneal"] == "no time left after compiling"
        # the portfolio gives up on it too, and returns with the compile going on (a
        # portfolio that waited for it would wait here for ever)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            solving = pool.submit(solve_portfolio, p, time_limit=2, seed=0, workers=1)
            try:
                plan = solving.result(timeout=120)
            finally:
                compiling.set_result(None)
        validate(plan, p)
        assert plan.stats.get("anneal") == "no time left after compiling"
        assert "anneal" not in plan.stats["path"]
    else:
        compiling.set_result(None)
    assert kernel_ready(0.0)


def _run_beside_torch_export(body: str, *args: str, timeout: float = 240, **env: str) -> str:
    """What ``body`` prints, run in a fresh Python process that has imported torch's
    builtins patch (``_override_builtin_ops``, what a non-strict ``torch.export`` applies
    while it traces) and ``anneal``, with ``args`` in its ``sys.argv[1:]`` and ``env``
    added to its environment; skipped without numba or torch."""
    import os
    import subprocess
    import sys

    pytest.importorskip("numba")
    pytest.importorskip("torch")
    code = (
        "from torch._export.non_strict_utils import _override_builtin_ops\n"
        "from hetsched.schedule.latency import anneal\n" + body
    )
    ran = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **env}, check=True,
    )  # fmt: skip
    return ran.stdout.strip()


_RACE = """
import sys
real = (min, max)
if sys.argv[1] == "loaded":
    anneal._load_numba()  # as warm_up does, on the thread that starts a solve
with _override_builtin_ops():  # a non-strict torch.export tracing on another thread
    from numba.core.registry import cpu_target
    from hetsched.schedule.latency import annealkernel
    bound = (annealkernel.min, annealkernel.max) == real
    try:
        cpu_target.target_context.refresh()  # what numba's first compile does
    except Exception as err:
        print("failed:", type(err).__name__, bound)
    else:
        print("ok", bound)
"""


@pytest.mark.parametrize("loaded", [True, False])
def test_numba_is_loaded_before_a_torch_export_can_patch_what_it_reads(loaded: bool) -> None:
    # numba reads math.pow and the builtins when its first compile loads its registries; a
    # non-strict torch.export replaces them while it traces (seen: the compile beside one
    # failed). warm_up loads them first; the loop binds its own min and max.
    said = _run_beside_torch_export(_RACE, "loaded" if loaded else "cold")
    if loaded:
        assert said == "ok True"
    else:  # the hazard itself (how numba fails may change with its version)
        assert said.startswith("failed:") and said.endswith("False")


def test_a_solve_started_inside_a_torch_export_trace_anneals_in_python() -> None:
    # numba's registries cannot load there: warm_up says so, and nothing waits or raises
    body = (
        "with _override_builtin_ops():\n"
        "    warming = anneal.warm_up()\n"
        "print(warming.done(), anneal._BROKEN)\n"
    )
    assert _run_beside_torch_export(body) == "True True"


@pytest.mark.slow
def test_a_cold_compile_inside_torch_exports_patch_succeeds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # the whole hazard, reproduced: a fresh numba cache, the compile within the patch
    body = (
        "anneal._load_numba()\n"
        "with _override_builtin_ops():\n"
        "    anneal._compile()\n"
        "print('broken' if anneal._BROKEN else 'compiled')\n"
    )
    said = _run_beside_torch_export(body, timeout=600, NUMBA_CACHE_DIR=str(tmp_path))
    assert said == "compiled"


def test_if_numba_fails_annealing_runs_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import Future

    failed: Future[None] = Future()
    failed.set_result(None)  # the compile ended ...
    monkeypatch.setattr(annealing, "_WARMING", failed)
    monkeypatch.setattr(annealing, "_BROKEN", True)  # ... in a failure (anneal._compile)
    p = heavy_problem(3, n=14, devices=4)
    assert not compiles(p)
    h = solve_heft(p, time_limit=5)
    plan = anneal(p, h, moves=2000, seed=0)
    validate(plan, p)
    assert plan.stats.get("anneal", plan.stats)["compiled"] is False
    assert plan.makespan == anneal(p, h, moves=2000, seed=0, compiled=False).makespan


def test_a_benchmark_warms_the_loop_up_before_its_timed_solves() -> None:
    from hetsched.schedule.latency.anneal import warm_up_now

    warm_up_now()  # returns once compiled (or loaded), or at once without numba
    assert kernel_ready(0.0) or not compiles(heavy_problem(0))


def test_the_cli_says_when_its_process_waits_for_the_compile(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from concurrent.futures import Future

    from hetsched.cli import main

    compiling: Future[None] = Future()  # a fresh environment: the solve returned before it
    monkeypatch.setattr(annealing, "_WARMING", compiling)
    assert main(["platforms"]) == 0
    assert "one-off compile of the annealing loop" in capsys.readouterr().err
    compiling.set_result(None)
    assert main(["platforms"]) == 0
    assert "compile" not in capsys.readouterr().err
