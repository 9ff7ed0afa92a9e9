"""The integer time quantum: how real durations become the integers every solver uses.

Examples
--------
>>> import numpy as np
>>> choose_quantum(np.array([[1.0], [2.0]]), np.zeros((1, 1, 1)), np.array([0]), np.array([1]))
1.0
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from hetsched.errors import SolverError

__all__ = [
    "ROUNDING_TOLERANCE",
    "choose_quantum",
    "choose_quantum_fast",
    "critical_path_stats",
    "quantum_inputs_fast",
]

# The relative tolerance the quantum is chosen for (rounding error at most L/1000 along the
# critical path), and the tolerance of ``optimal`` for a plan whose durations were rounded.
ROUNDING_TOLERANCE = 1e-3


def choose_quantum(
    exec_time: np.ndarray,
    comm_real: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    *,
    path_stats: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[float, float]] | None = None,
) -> float:
    """Pick a time quantum that keeps rounding error below 0.1% of any makespan.

    Integer-valued inputs (STG and other unit-cost graphs) keep quantum 1. Otherwise, with
    ``L`` the critical path (each op on its fastest device, free transfers, a lower bound of
    every makespan) and ``k`` the most ops on any path, the quantum is ``L / (1000 k)``:
    rounding up adds at most ``k`` quanta along the path that determines the makespan, i.e.
    at most ``L/1000``. Durations are then rounded to 3 significant digits of the quantum.
    ``path_stats`` computes ``(L, k)`` (default :func:`critical_path_stats`).
    """
    finite = exec_time[np.isfinite(exec_time)]
    comm_vals = comm_real.ravel()
    if np.all(finite == np.round(finite)) and np.all(comm_vals == np.round(comm_vals)):
        return 1.0
    cp, k_max = (path_stats or critical_path_stats)(exec_time, src, dst)
    if not math.isfinite(cp):
        msg = "durations overflow: the critical path is not a finite number (a cost is too large)"
        raise SolverError(msg)
    if cp <= 0:
        positive = finite[finite > 0]
        cp = float(positive.min()) if positive.size else 1.0
    q = cp / (1000.0 * k_max)  # 1000 = 1 / ROUNDING_TOLERANCE
    # Round the quantum down to a "nice" value (1, 2 or 5 x 10^k) for readable plans.
    exp = math.floor(math.log10(q))
    mant = q / 10**exp
    nice = 5.0 if mant >= 5 else 2.0 if mant >= 2 else 1.0
    return nice * 10**exp


def critical_path_stats(
    exec_time: np.ndarray, src: np.ndarray, dst: np.ndarray
) -> tuple[float, float]:
    """``(L, k)``: longest path with each op at its fastest, and the most ops on any path."""
    n = exec_time.shape[0]
    best = np.where(np.isfinite(exec_time), exec_time, np.inf).min(axis=1)
    length = best.copy()
    hops = np.ones(n)
    order = np.argsort(dst, kind="stable")
    for k in order:  # edges sorted by dst: all preds of v are final before v's edges are seen
        u, v = int(src[k]), int(dst[k])
        if length[u] + best[v] > length[v]:
            length[v] = length[u] + best[v]
        hops[v] = max(hops[v], hops[u] + 1)
    return float(length.max()), float(hops.max())


def quantum_inputs_fast(
    exec_time: np.ndarray, src: np.ndarray, dst: np.ndarray
) -> tuple[float, float]:
    """``(critical path length, most ops on a path)`` as in ``choose_quantum``, vectorised.

    >>> import numpy as np
    >>> quantum_inputs_fast(np.array([[1.0], [2.0], [4.0]]), np.array([0, 1]), np.array([1, 2]))
    (7.0, 3.0)
    """
    n = exec_time.shape[0]
    best = np.where(np.isfinite(exec_time), exec_time, np.inf).min(axis=1)
    length = best.copy()
    hops = np.ones(n)
    lev = np.zeros(n, dtype=np.int64)
    for k in np.argsort(dst, kind="stable").tolist():
        if lev[src[k]] + 1 > lev[dst[k]]:
            lev[dst[k]] = lev[src[k]] + 1
    if src.size:
        order = np.argsort(lev[dst], kind="stable")
        for ks in np.split(order, np.flatnonzero(np.diff(lev[dst][order])) + 1):
            u, v = src[ks], dst[ks]
            np.maximum.at(length, v, length[u] + best[v])
            np.maximum.at(hops, v, hops[u] + 1)
    return float(length.max()), float(hops.max())


def choose_quantum_fast(
    exec_time: np.ndarray, comm_real: np.ndarray, src: np.ndarray, dst: np.ndarray
) -> float:
    """Drop-in for :func:`~hetsched.problem.choose_quantum` using :func:`quantum_inputs_fast`.

    >>> import numpy as np
    >>> choose_quantum_fast(np.array([[1.5], [2.0]]), np.zeros((1, 1, 1)), np.array([0]),
    ...                     np.array([1]))
    0.001
    """
    return choose_quantum(exec_time, comm_real, src, dst, path_stats=quantum_inputs_fast)
