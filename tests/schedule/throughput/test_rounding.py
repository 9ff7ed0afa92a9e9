"""Rounding-safe throughput claims (issue 20): the period and initiation-interval bounds a
plan reports are bounds of the real-valued problem, not only of its rounded-up model. The
real optimum comes from the same instance on a quantum fine enough to hold every duration
exactly (an exact problem: its claims are exact)."""

from __future__ import annotations

import numpy as np

from hetsched.problem import Problem
from hetsched.schedule.throughput.modulo import solve_modulo
from hetsched.schedule.throughput.pipesolve import solve_pipeline


def instance(seed: int, quantum: float) -> Problem:
    """Fractional durations and transfers (two decimals) on ``quantum``."""
    rng = np.random.default_rng(seed)
    n, d = 5, 2
    ex = np.round(rng.uniform(1.0, 4.0, size=(n, d)), 2)
    edges = [(u, v, float(np.round(rng.uniform(0.2, 2.0), 2))) for u in range(n) for v in
             range(u + 1, n) if rng.random() < 0.4]  # fmt: skip
    return Problem.from_arrays(
        names=[f"o{i}" for i in range(n)],
        devices=[f"d{j}" for j in range(d)],
        exec_time=ex,
        edges=edges,
        comm_latency=np.full((d, d), 0.3) - 0.3 * np.eye(d),
        comm_inv_bandwidth=np.ones((d, d)) - np.eye(d),
        quantum=quantum,
    )


def test_throughput_bounds_hold_for_the_real_problem() -> None:
    above = 0
    for seed in range(6):
        coarse, fine = instance(seed, 1.0), instance(seed, 0.01)
        assert not coarse.exact and fine.exact
        pipe = solve_pipeline(fine, time_limit=10, workers=1)
        mod = solve_modulo(fine, time_limit=10, workers=1)
        assert pipe.status == "optimal" and mod.status == "optimal"  # exact claims
        real_period, real_ii = pipe.objective_value, mod.objective_value
        got = solve_pipeline(coarse, time_limit=10, workers=1)
        assert got.objective_value >= got.objective_bound
        assert got.objective_bound <= real_period * (1 + 1e-9)
        got = solve_modulo(coarse, time_limit=10, workers=1)
        assert got.objective_bound <= real_ii * (1 + 1e-9)
        # the rounded-up model's least II, what the bound was before: above the real one
        above += got.objective_value > real_ii * (1 + 1e-9)
    assert above >= 1
