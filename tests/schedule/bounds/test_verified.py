"""Verified LP minima: the duals' bound is a bound for any multipliers, and the LP bounds'
solves come within a hair of the optimum."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from ortools.linear_solver import pywraplp
from scipy.optimize import linprog

from hetsched.schedule.bounds.verified import MIN_LP_SECONDS, lp_minimum, safe_minimum_bound


def _random_lp(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``min c x`` over ``a x >= b``, ``0 <= x <= u``: feasible (``x = u`` is)."""
    rng = np.random.default_rng(seed)
    rows, cols = int(rng.integers(2, 12)), int(rng.integers(2, 12))
    a = rng.integers(-3, 6, size=(rows, cols)).astype(float)
    u = rng.integers(1, 20, size=cols).astype(float)
    b = np.floor(a @ u * rng.uniform(0.2, 0.9))
    return rng.integers(0, 9, size=cols).astype(float), a, b, u


def _model(c: np.ndarray, a: np.ndarray, b: np.ndarray, u: np.ndarray) -> pywraplp.Solver:
    model = pywraplp.Solver.CreateSolver("GLOP")
    x = [model.NumVar(0, float(ub), "") for ub in u]
    for row, rhs in zip(a, b, strict=True):
        model.Add(sum(float(k) * v for k, v in zip(row, x, strict=True)) >= float(rhs))
    model.Minimize(sum(float(k) * v for k, v in zip(c, x, strict=True)))
    return model


def _optimum(c: np.ndarray, a: np.ndarray, b: np.ndarray, u: np.ndarray) -> float:
    box = np.column_stack([np.zeros_like(u), u])
    return float(linprog(c, A_ub=-a, b_ub=-b, bounds=box).fun)


@pytest.mark.parametrize("seed", range(20))
def test_the_bound_is_below_the_optimum_and_within_a_hair_of_it(seed: int) -> None:
    c, a, b, u = _random_lp(seed)
    optimum = _optimum(c, a, b, u)
    found, final = lp_minimum(_model(c, a, b, u), None)
    assert final and found is not None
    assert found.bound <= optimum + 1e-9
    assert optimum - found.bound <= 1e-7 * max(1.0, abs(optimum))
    assert np.all(a @ found.x >= b - 1e-6) and abs(c @ found.x - found.value) < 1e-6


@pytest.mark.parametrize("seed", range(20))
def test_any_multipliers_give_a_bound(seed: int) -> None:
    c, a, b, u = _random_lp(seed)
    optimum = _optimum(c, a, b, u)
    rng = np.random.default_rng(100 + seed)
    lo, hi = b, np.full_like(b, np.inf)
    for _ in range(20):
        y = rng.normal(0, 2, size=len(b))  # either sign: the wrong one is dropped
        value = safe_minimum_bound(c, sp.csr_matrix(a), lo, hi, np.zeros_like(u), u, y)
        assert value <= optimum + 1e-9


def test_an_infeasible_lp_is_final_and_a_short_limit_starts_nothing() -> None:
    model = pywraplp.Solver.CreateSolver("GLOP")
    x = model.NumVar(0, 1, "x")
    model.Add(x >= 2)
    model.Minimize(x)
    assert lp_minimum(model, None) == (None, True)
    c, a, b, u = _random_lp(0)
    assert lp_minimum(_model(c, a, b, u), MIN_LP_SECONDS / 2) == (None, False)


def test_an_unboxed_variable_the_duals_need_gives_no_bound() -> None:
    a = sp.csr_matrix(np.array([[1.0]]))  # min -x over x <= 5, x unbounded above: no y helps
    value = safe_minimum_bound(
        np.array([-1.0]), a, np.array([-np.inf]), np.array([5.0]), np.zeros(1),
        np.array([np.inf]), np.array([0.0]),
    )  # fmt: skip
    assert value == -np.inf


@pytest.mark.parametrize("seed", range(10))
def test_the_group_load_s_multipliers_bound_the_least_most_load(seed: int) -> None:
    from hetsched.schedule.bounds.groupload import _least_most_load

    rng = np.random.default_rng(seed)
    groups, devices = int(rng.integers(2, 15)), int(rng.integers(2, 6))
    load = rng.integers(1, 50, size=(groups, devices)).astype(float)
    open_ = rng.random((groups, devices)) < 0.7
    open_[np.arange(groups), rng.integers(0, devices, size=groups)] = True
    # the least most-load by the LP itself: min L over x[g, d] on open pairs
    cols = [(g, d) for g in range(groups) for d in range(devices) if open_[g, d]]
    a_ub = np.zeros((devices, len(cols) + 1))
    a_eq = np.zeros((groups, len(cols) + 1))
    for j, (g, d) in enumerate(cols):
        a_ub[d, j], a_eq[g, j] = load[g, d], 1.0
    a_ub[:, -1] = -1.0
    cost = np.zeros(len(cols) + 1)
    cost[-1] = 1.0
    best = linprog(cost, A_ub=a_ub, b_ub=np.zeros(devices), A_eq=a_eq, b_eq=np.ones(groups),
                   bounds=[(0, 1)] * len(cols) + [(0, None)]).fun  # fmt: skip
    bound = _least_most_load(open_, load)
    assert bound <= best + 1e-9
    assert best - bound <= 1e-6 * best
