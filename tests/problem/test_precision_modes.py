"""Precision as a decision: lowered modes, the error budget, and exact solvers against a
brute force over every (device, precision) choice."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hetsched.errors import PlanError, UsageError
from hetsched.graph import Edge, OpGraph, OpNode
from hetsched.plan import plan_from_schedule, validate
from hetsched.problem import Modes, Problem, Tensors
from hetsched.schedule.bounds import budget_lp_bound, lower_bound
from hetsched.schedule.latency.cpsat import solve_cpsat
from hetsched.schedule.latency.heuristics import solve_cpop, solve_heft, solve_peft
from hetsched.schedule.latency.portfolio import solve_portfolio
from hetsched.schedule.latency.precision import greedy_precisions
from tests.problem.test_relaxation import search


def chain(n: int = 4) -> OpGraph:
    """n matmuls in a chain: compute-heavy enough that int8 pays on the NPUs."""
    nodes = [
        OpNode(f"mm{i}", category="matmul", flops=4e9, bytes_read=2e6, bytes_written=1e6,
               param_bytes=1e6, out_bytes=1e6)
        for i in range(n)
    ]  # fmt: skip
    edges = [Edge(f"mm{i}", f"mm{i + 1}", 1e6) for i in range(n - 1)]
    return OpGraph("chain", nodes, edges)


ERRORS = {f"mm{i}": {"int8": 0.01 * (i + 1), "float16": 0.001} for i in range(4)}


def test_no_budget_or_zero_reproduces_the_exported_precisions() -> None:
    g = chain()
    plain = Problem.build(g, "edge-soc")
    for budget in (None, 0.0):
        p = Problem.build(g, "edge-soc", errors=ERRORS, error_budget=budget)
        assert p.num_modes == plain.num_modes and not p.has_error_modes
        assert p.error_budget is None
        a = solve_portfolio(p, time_limit=5, seed=0)
        b = solve_portfolio(plain, time_limit=5, seed=0)
        assert (a.makespan, dict(a.modes)) == (b.makespan, dict(b.modes))


def test_lowered_modes_cost_less_and_count_against_the_budget() -> None:
    p = Problem.build(chain(), "edge-soc", errors=ERRORS, error_budget=0.035)
    assert p.has_error_modes and p.error_budget_units == 35_000_000
    int8 = [k for k in range(p.num_modes) if p.modes.precision[k] == "int8"]
    assert int8 and all(p.modes.err[k] > 0 for k in int8)
    npu = p.device_index["npu0"]
    fp32 = p.device_mode[0, npu]
    low = next(k for k in int8 if p.modes.op[k] == 0 and p.modes.devices_of(k) == (npu,))
    assert p.modes.time[low] < p.modes.time[fp32] / 3  # int8 MACs at 8x the fp32 rate
    assert p.modes.w[low] == pytest.approx(p.modes.w[fp32] / 4)
    plan = solve_portfolio(p, time_limit=10, seed=0)
    validate(plan, p)
    assert plan.error <= 0.035 + 1e-12
    assert sum(1 for m in plan.modes.values() if m.precision == "int8") >= 1


def test_the_validator_rejects_a_plan_over_the_budget() -> None:
    p = Problem.build(chain(), "edge-soc", errors=ERRORS, error_budget=0.015)
    npu = p.device_index["npu0"]
    modes = []
    for v in range(p.n):  # everything in int8 on npu0: 0.01 + 0.02 + 0.03 + 0.04
        ids = p.modes.ops_modes(v)
        modes.append(next(k for k in ids.tolist() if p.modes.precision[k] == "int8"
                          and p.modes.devices_of(k) == (npu,)))  # fmt: skip
    start = np.concatenate([[0], np.cumsum(p.mode_dur[modes])[:-1]])
    plan = plan_from_schedule(p, modes=modes, start=start, solver="manual")
    assert plan.error == pytest.approx(0.1)
    with pytest.raises(PlanError, match=r"predicted error 0.1 exceeds the error budget 0.015"):
        validate(plan, p)


@pytest.mark.parametrize(
    ("budget", "errors", "match"),
    [
        (-0.1, ERRORS, "error budget must be a number >= 0"),
        (float("nan"), ERRORS, "error budget must be a number >= 0"),
        (0.1, {"mm0": {"fp12": 0.1}}, "unknown precision 'fp12'"),
        (0.1, {"nope": {"int8": 0.1}}, "errors name op 'nope'"),
        (0.1, {"mm0": {"int8": float("nan")}}, "error of op 'mm0' in int8"),
    ],
)
def test_bad_budgets_and_errors_get_one_line(budget: float, errors: dict, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        Problem.build(chain(), "edge-soc", errors=errors, error_budget=budget)


def test_a_precision_no_device_supports() -> None:
    with pytest.raises(UsageError, match="no device of 'homogeneous-2' computes in int8"):
        Problem.build(chain(), "homogeneous-2", errors={"mm0": {"int8": 0.1}}, error_budget=1.0)


def test_the_greedy_spends_the_budget_on_the_best_gain_per_error() -> None:
    int8 = {op: {"int8": row["int8"]} for op, row in ERRORS.items()}
    p = Problem.build(chain(), "edge-soc", errors=int8, error_budget=0.03)
    sub = greedy_precisions(p)
    chosen = {
        p.names[v]: {sub.modes.precision[k] for k in sub.modes.ops_modes(v).tolist()}
        for v in range(p.n)
    }
    # equal gains: the cheapest errors first (mm0 0.01, mm1 0.02), then nothing fits
    assert chosen == {"mm0": {"int8"}, "mm1": {"int8"}, "mm2": {"float32"}, "mm3": {"float32"}}
    for solver in (solve_heft, solve_peft, solve_cpop):
        plan = solver(p, time_limit=5, seed=0)
        validate(plan, p)
        assert plan.error <= 0.03 + 1e-12
        # optimal only within the rounding tolerance of a bound of the real problem
        assert plan.status != "optimal" or plan.gap <= plan.tolerance


# ---------------------------------------------------------------------- brute force
def tiny(seed: int) -> Problem:
    """3-4 ops on 2 devices, each with a native mode per device and an int8 mode (faster,
    with an error) on some; a budget that admits some of them."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 5))
    rows: list[tuple] = []
    errs = []
    for v in range(n):
        for d in range(2):
            t = float(rng.integers(3, 9))
            rows.append((v, (d,), t, 1.0, "float32", "", 0.0, 0.0))
            if rng.random() < 0.7:
                e = float(rng.integers(1, 5)) / 100
                errs.append(e)
                # whole units: the integer model is the question (brute force counts units)
                rows.append((v, (d,), float(np.ceil(t / 3)), 1.0, "int8", "", 0.0, e))
    tensors = [(u, (u + 1,), float(rng.integers(1, 4))) for u in range(n - 1)]
    budget = float(np.median(errs)) * 1.5 if errs else 0.0
    return Problem.from_modes(
        names=[f"v{i}" for i in range(n)],
        devices=["x", "y"],
        modes=Modes.build(n, rows),
        tensors=Tensors.build(n, tensors),
        comm_latency=np.array([[0.0, 2.0], [2.0, 0.0]]),
        quantum=1.0,
        error_budget=budget,
    )


def brute_force_budget(p: Problem) -> int:
    """The best makespan over every mode choice within the budget (the mode-semantics
    enumeration of tests/problem/test_relaxation.py on the restricted problem)."""
    best = None
    budget = p.error_budget_units
    for choice in itertools.product(*(p.modes.ops_modes(v).tolist() for v in range(p.n))):
        if budget is not None and int(p.mode_error_units[list(choice)].sum()) > budget:
            continue
        found = search(p.select_modes(np.array(sorted(choice), dtype=np.int64)))
        if found is not None and (best is None or found.makespan < best):
            best = found.makespan
    assert best is not None
    return best


@pytest.mark.parametrize("seed", range(12))
def test_cpsat_reaches_the_brute_force_within_the_budget(seed: int) -> None:
    p = tiny(seed)
    best = brute_force_budget(p)
    assert budget_lp_bound(p) <= best and lower_bound(p) <= best  # bounds of the question
    plan = solve_cpsat(p, time_limit=20, seed=0, workers=1)
    validate(plan, p)
    assert plan.status == "optimal" and round(plan.makespan) == best
    for solver in (solve_heft, solve_peft, solve_cpop):
        heur = solver(p, time_limit=5, seed=0)
        validate(heur, p)
        assert heur.makespan >= best and heur.lower_bound <= best


# ---------------------------------------------------------------------- the API and CLI
def _table(graph: OpGraph, errors: dict) -> object:
    from hetsched.graph import graph_sha256
    from hetsched.precision.table import SensitivityTable

    return SensitivityTable(graph.name, graph_sha256(graph), errors=errors, samples=0)


def test_solve_with_a_budget_and_a_table(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import hetsched
    from hetsched.cli import main
    from hetsched.graph import save

    g = chain()
    table = _table(g, ERRORS)
    plan = hetsched.solve(g, "edge-soc", error_budget=0.035, sensitivity=table, time_limit=5)
    assert 0 < plan.error <= 0.035 + 1e-12
    plain = hetsched.solve(g, "edge-soc", time_limit=5)
    assert plan.makespan < plain.makespan
    with pytest.raises(UsageError, match="an error budget needs per-op errors"):
        hetsched.solve(g, "edge-soc", error_budget=0.01)
    other = _table(chain(3), {"mm0": {"int8": 0.1}})
    with pytest.raises(UsageError, match="sensitivity table is for graph 'chain'"):
        hetsched.solve(g, "edge-soc", error_budget=0.01, sensitivity=other)
    with pytest.raises(UsageError, match="applies to objective latency"):
        hetsched.solve(g, "edge-soc", error_budget=0.01, sensitivity=table, objective="memory")
    gpath, tpath = tmp_path / "g.json", tmp_path / "t.json"
    save(g, gpath)
    table.save(tpath)  # type: ignore[attr-defined]
    argv = ["solve", str(gpath), "--quiet", "--time-limit", "5"]
    assert main([*argv, "--error-budget", "0.035", "--sensitivity", str(tpath)]) == 0
    assert main([*argv, "--error-budget", "-1", "--sensitivity", str(tpath)]) == 2
    assert main([*argv, "--sensitivity", str(tpath)]) == 2
