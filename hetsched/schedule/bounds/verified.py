"""Verified LP minima: a lower bound of an LP's minimum that holds whatever the solver's
accuracy.

The LP bounds round an LP's optimum up to the next unit. An optimum reported a little too
high (solvers' tolerances are relative, the values thousands of units) would round a bound
one unit above the truth; an LP whose optimum is exactly an integer, common with integer
data, is the case where it happens. So the bound is not the reported optimum but the value
of the solver's duals in the Lagrangian (Neumaier and Shcherbina, *Safe bounds in linear and
mixed-integer linear programming*, Math. Programming 99, 2004): for any multipliers ``y`` of
the rows ``lo <= A x <= hi`` and every variable boxed in ``[l, u]``, every feasible ``x``
has, with ``r = c - A^T y``,

    c x = y (A x) + r x >= sum_i (y_i lo_i if y_i > 0 else y_i hi_i) + sum_j min(r_j l_j, r_j u_j)

(a multiplier whose side is infinite is set to 0 first). That is weak duality, true for
any ``y``: the duals need not be exact, and near-optimal ones give a bound near the
optimum. The sums are taken with ``math.fsum`` and lowered by more than their float
rounding (:data:`SUM_SLACK`, :data:`COST_SLACK`).

The models are built with OR-Tools' pywraplp (its expressions), exported to arrays and
solved through OR-Tools' MathOpt (pywraplp's HiGHS interface in OR-Tools 9.15 returns row
activities where the duals should be; scipy's HiGHS ignores a time limit in its interior
point method; highspy's HiGHS clashes with the one OR-Tools loads). A variable unbounded
on the side its reduced cost pushes to gives no bound (``-inf``): the LP bounds box every
variable.

Examples
--------
>>> from ortools.linear_solver import pywraplp
>>> model = pywraplp.Solver.CreateSolver("GLOP")   # a model to build, not to solve
>>> x, y = model.NumVar(0, 10, "x"), model.NumVar(0, 10, "y")
>>> _ = model.Add(x + y >= 3.5)
>>> _ = model.Add(x - y == 0.5)
>>> model.Minimize(x + 2 * y)
>>> found, final = lp_minimum(model, None)
>>> round(found.value, 9), found.bound <= found.value, found.value - found.bound < 1e-9
(5.0, True, True)
>>> found.x.round(9).tolist(), final
([2.0, 1.5], True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["LP_METHOD", "LPMinimum", "lp_minimum", "safe_minimum_bound"]

# The LP bounds' solver, through OR-Tools' MathOpt: HiGHS's interior point method (IPX,
# then crossover to a vertex). The transfer LP of the random suite's CCR-10 graphs on 8
# unrelated devices: 1.9-2.4 s at 300 ops and 7.8 s at 1,000 (GLOP's dual simplex 5.7 s and
# 22.7 s, HiGHS's own simplex 4.5 s and 9.1 s, CLP 24 s at 300), the same optima.
LP_METHOD = ("HIGHS", "BARRIER")
# Below this many seconds an LP is not started: HiGHS ran the interior point method to its
# end when given 1-10 ms (the 300-op transfer LP: 2.5-2.9 s; 0.05 s stopped it in time).
MIN_LP_SECONDS = 0.05
# Relative allowances for float rounding: of the sums, and of each reduced cost (of a dot
# product of a column's terms, at most about 1e-14 of their size with a hundred of them).
SUM_SLACK = 1e-12
COST_SLACK = 1e-13


@dataclass(frozen=True)
class LPMinimum:
    """An LP solved: the solver's optimum ``value``, a ``bound`` no feasible point goes
    below (:func:`safe_minimum_bound`, at most ``value``), the solution ``x`` by variable
    index."""

    value: float
    bound: float
    x: np.ndarray


def lp_minimum(
    model: Any, time_limit: float | None, *, method: tuple[str, str] | None = None
) -> tuple[LPMinimum | None, bool]:
    """Minimise the objective of the pywraplp ``model`` within ``time_limit`` seconds
    (``None``: no limit) with MathOpt's ``method`` (solver, LP algorithm; default
    :data:`LP_METHOD`): the solution
    (``None`` without an optimum), and whether that answer is final rather than the time
    limit's (an LP found infeasible or unbounded is final; none is started with less than
    :data:`MIN_LP_SECONDS`; a model that maximises: ``ValueError``). The solve releases
    the GIL."""
    if time_limit is not None and time_limit < MIN_LP_SECONDS:
        return None, False
    import scipy.sparse as sp
    from ortools.linear_solver import linear_solver_pb2
    from ortools.math_opt import callback_pb2, model_parameters_pb2, parameters_pb2, result_pb2
    from ortools.math_opt.core.python import solver as mathopt

    proto = linear_solver_pb2.MPModelProto()
    model.ExportModelToProto(proto)
    if proto.maximize:
        raise ValueError("lp_minimum minimises: the model maximises its objective")
    c = np.array([v.objective_coefficient for v in proto.variable], dtype=float)
    box = np.array([(v.lower_bound, v.upper_bound) for v in proto.variable], dtype=float)
    box = box.reshape(len(proto.variable), 2)
    a, lo, hi = _rows(proto, len(c), sp)
    method = LP_METHOD if method is None else method
    params = parameters_pb2.SolveParametersProto(enable_output=False)
    params.lp_algorithm = parameters_pb2.LPAlgorithmProto.Value(f"LP_ALGORITHM_{method[1]}")
    if time_limit is not None:
        params.time_limit.FromNanoseconds(max(1_000_000, int(time_limit * 1e9)))
    res = mathopt.solve(
        _math_opt_model(c, box, a, lo, hi),
        parameters_pb2.SolverTypeProto.Value(f"SOLVER_TYPE_{method[0]}"),
        parameters_pb2.SolverInitializerProto(),
        params,
        model_parameters_pb2.ModelSolveParametersProto(),
        None,
        callback_pb2.CallbackRegistrationProto(),
        None,
        None,
    )
    reason = res.termination.reason
    if reason != result_pb2.TERMINATION_REASON_OPTIMAL or not res.solutions:
        settled = (
            result_pb2.TERMINATION_REASON_INFEASIBLE,
            result_pb2.TERMINATION_REASON_UNBOUNDED,
            result_pb2.TERMINATION_REASON_INFEASIBLE_OR_UNBOUNDED,
        )
        return None, time_limit is None or reason in settled
    solution = res.solutions[0]
    x = np.zeros(len(c))
    primal = solution.primal_solution.variable_values
    x[np.asarray(primal.ids, dtype=np.int64)] = primal.values
    y = np.zeros(len(lo))
    duals = solution.dual_solution.dual_values
    y[np.asarray(duals.ids, dtype=np.int64)] = duals.values
    value = float(solution.primal_solution.objective_value)
    bound = safe_minimum_bound(c, a, lo, hi, box[:, 0], box[:, 1], y)
    return LPMinimum(value=value, bound=min(bound, value), x=x), True


def _math_opt_model(c: np.ndarray, box: np.ndarray, a: Any, lo: np.ndarray, hi: np.ndarray) -> Any:
    """``min c x`` over ``lo <= a x <= hi`` and the box as a MathOpt model."""
    from ortools.math_opt import model_pb2

    m = model_pb2.ModelProto()
    num_vars, num_rows = len(c), len(lo)
    m.variables.ids.extend(range(num_vars))
    m.variables.lower_bounds.extend(box[:, 0].tolist())
    m.variables.upper_bounds.extend(box[:, 1].tolist())
    m.variables.integers.extend([False] * num_vars)
    used = np.flatnonzero(c)
    m.objective.linear_coefficients.ids.extend(used.tolist())
    m.objective.linear_coefficients.values.extend(c[used].tolist())
    m.linear_constraints.ids.extend(range(num_rows))
    m.linear_constraints.lower_bounds.extend(lo.tolist())
    m.linear_constraints.upper_bounds.extend(hi.tolist())
    csr = a.tocsr()
    csr.sum_duplicates()  # sorted, one entry per (row, column), as MathOpt asks
    matrix = m.linear_constraint_matrix
    matrix.row_ids.extend(np.repeat(np.arange(num_rows), np.diff(csr.indptr)).tolist())
    matrix.column_ids.extend(csr.indices.tolist())
    matrix.coefficients.extend(csr.data.tolist())
    return m


def _rows(proto: Any, num_vars: int, sp: Any) -> tuple[Any, np.ndarray, np.ndarray]:
    """The rows of ``proto`` as a sparse matrix and their sides."""
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    sizes = np.zeros(len(proto.constraint), dtype=np.int64)
    lo = np.empty(len(proto.constraint))
    hi = np.empty(len(proto.constraint))
    for i, row in enumerate(proto.constraint):
        cols.append(np.asarray(row.var_index, dtype=np.int64))
        vals.append(np.asarray(row.coefficient, dtype=float))
        sizes[i] = len(row.var_index)
        lo[i], hi[i] = row.lower_bound, row.upper_bound
    rows = np.repeat(np.arange(len(sizes)), sizes)
    flat_cols = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    flat_vals = np.concatenate(vals) if vals else np.zeros(0)
    a = sp.csr_matrix((flat_vals, (rows, flat_cols)), shape=(len(sizes), num_vars))
    return a, lo, hi


def safe_minimum_bound(
    c: np.ndarray,
    a: Any,
    lo: np.ndarray,
    hi: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    y: np.ndarray,
) -> float:
    """A lower bound of ``min c x`` over ``lo <= a x <= hi``, ``lower <= x <= upper``
    from the multipliers ``y`` of the rows, any ``y`` (weak duality; module docstring):
    ``-inf`` where a variable is unbounded on the side its reduced cost needs.

    >>> import scipy.sparse as sp
    >>> a = sp.csr_matrix(np.array([[1.0, 1.0]]))   # min x0 + x1, x0 + x1 >= 2, in [0, 5]
    >>> c, lo, hi = np.ones(2), np.array([2.0]), np.array([np.inf])
    >>> box = (np.zeros(2), np.full(2, 5.0))
    >>> bool(abs(safe_minimum_bound(c, a, lo, hi, *box, np.array([1.0])) - 2) < 1e-8)
    True
    >>> round(safe_minimum_bound(c, a, lo, hi, *box, np.array([0.4])), 9)   # weaker ones
    0.8
    >>> round(safe_minimum_bound(c, a, lo, hi, *box, np.array([-1.0])), 9) == 0   # y := 0
    True
    """
    y = np.where((y > 0) & ~np.isfinite(lo), 0.0, y)
    y = np.where((y < 0) & ~np.isfinite(hi), 0.0, y)
    side = np.where(y > 0, lo, np.where(y < 0, hi, 0.0))
    row_terms = np.where(y != 0, y * np.where(np.isfinite(side), side, 0.0), 0.0)
    r = c - a.T @ y
    end = np.where(r > 0, lower, np.where(r < 0, upper, 0.0))
    if not np.all(np.isfinite(end[r != 0])):
        return -math.inf
    var_terms = np.where(r != 0, r * np.where(np.isfinite(end), end, 0.0), 0.0)
    # the float error of r = c - a^T y, times the largest |x_j|, and of the sums
    reach = np.maximum(np.abs(np.where(np.isfinite(lower), lower, 0.0)),
                       np.abs(np.where(np.isfinite(upper), upper, 0.0)))  # fmt: skip
    size = abs(a).T @ np.abs(y) + np.abs(c)
    slack = SUM_SLACK * (math.fsum(np.abs(row_terms)) + math.fsum(np.abs(var_terms)))
    slack += COST_SLACK * math.fsum(size * reach)
    return math.fsum(row_terms) + math.fsum(var_terms) - slack
