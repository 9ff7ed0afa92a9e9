"""The disjunctive MILP: encoding, scope, backends, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

import hetsched.schedule.latency.milp as milp_mod
from hetsched.errors import SolverError
from hetsched.plan import validate
from hetsched.problem import Problem
from hetsched.schedule.latency.milp import (
    BACKENDS,
    build_model,
    create_backend,
    reachability,
    solve_milp,
)
from hetsched.schedule.latency.warmstart import canonical_devices
from tests.bruteforce import (
    brute_force_makespan,
    naive_plan,
    random_tiny_problem,
    stg_optima,
    stg_problem,
)
from tests.families import two_op_link_contention_problem


def _chain_and_fork() -> Problem:
    # a -> b -> c, a -> d; every op on either device.
    return Problem.from_arrays(
        names=["a", "b", "c", "d"],
        devices=["x", "y"],
        exec_time=np.array([[2.0, 3.0], [4.0, 1.0], [2.0, 2.0], [3.0, 3.0]]),
        edges=[(0, 1, 1.0), (1, 2, 1.0), (0, 3, 1.0)],
        comm_latency=np.array([[0, 1], [1, 0]]),
        quantum=1.0,
    )


# ------------------------------------------------------------------ encoding (no solving)
def test_transitively_ordered_pairs_get_no_disjunction() -> None:
    p = _chain_and_fork()
    assert reachability(p)[0] == 0b1110
    m = build_model(p, horizon=20)
    # Only b-d and c-d are unordered.
    assert sorted(m.pair_to_before) == [(1, 3), (2, 3)]
    assert m.disjunctions == 2 * 2 * 2
    assert m.solver.NumVariables() == 4 + 8 + 2 + 1


def test_symmetry_breaking_rows_for_identical_devices() -> None:
    p = stg_problem("rand0000.stg", 2)
    m = build_model(p, horizon=200)
    names = [c.name() for c in m.solver.constraints()]
    assert sum(n.startswith("sym_") for n in names) > 0
    assert sum(n.startswith("load_") for n in names) == 2


def test_canonical_devices_relabel_by_first_use() -> None:
    p = stg_problem("rand0000.stg", 2)
    assign = np.array([1] * p.n)
    assert canonical_devices(p, assign).tolist() == [0] * p.n


def test_backend_choice() -> None:
    solver, name = create_backend()
    assert name == next(b for b in BACKENDS if b == name) and solver is not None
    with pytest.raises(SolverError, match="no MIP backend"):
        create_backend("NOPE")


def test_scope_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    p = _chain_and_fork()
    monkeypatch.setattr(milp_mod, "MAX_OPS", 3)
    with pytest.raises(SolverError, match="out of scope for milp"):
        build_model(p, horizon=20)
    monkeypatch.setattr(milp_mod, "MAX_OPS", 100)
    monkeypatch.setattr(milp_mod, "MAX_DISJUNCTIONS", 4)
    with pytest.raises(SolverError, match="disjunctive rows is out of scope"):
        build_model(p, horizon=20)


def test_link_contention_is_refused() -> None:
    p = two_op_link_contention_problem()
    with pytest.raises(SolverError, match="link contention"):
        solve_milp(p, time_limit=1)


# ------------------------------------------------------------------ solving
@pytest.mark.parametrize("backend", ["SCIP", "HIGHS", "CBC"])
def test_each_backend_finds_the_optimum(backend: str) -> None:
    p = random_tiny_problem(7, n=6, devices=3)
    plan = solve_milp(p, time_limit=10, hint=naive_plan(p), backend=backend)
    validate(plan, p)
    assert plan.stats["backend"] == backend
    assert (plan.status, plan.makespan) == ("optimal", brute_force_makespan(p))


def test_export_model(tmp_path: pytest.TempPathFactory) -> None:
    p = random_tiny_problem(3, n=6, devices=3)
    out = tmp_path / "model.lp"  # type: ignore[operator]
    solve_milp(p, time_limit=5, hint=naive_plan(p), export_model=str(out))
    assert "before_" in out.read_text()


def test_bounds_proof_skips_the_mip() -> None:
    p = stg_problem("rand0000.stg", 2)
    plan = solve_milp(p, time_limit=5)
    validate(plan, p)
    assert plan.stats["proved_by"] == "bounds"
    assert plan.makespan == stg_optima()[("rand0000.stg", 2)]


def test_time_limit_never_worse_than_hint() -> None:
    p = stg_problem("rand0002.stg", 2)
    hint = naive_plan(p)
    plan = solve_milp(p, time_limit=1, hint=hint)
    validate(plan, p)
    assert plan.makespan <= hint.makespan
    assert plan.lower_bound <= stg_optima()[("rand0002.stg", 2)] <= plan.makespan
    assert plan.status in ("feasible", "heuristic", "optimal")
