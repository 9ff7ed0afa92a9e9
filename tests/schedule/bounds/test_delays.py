"""The transfer-counting heads and tails: never above the optimum, above the old bounds
where transfers dominate."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from hetsched.problem import Problem
from hetsched.schedule.bounds import critical_path_bound, load_bound, lower_bound
from hetsched.schedule.bounds.colocation import colocation_bound
from hetsched.schedule.bounds.delays import delay_bound, device_delay_heads_tails
from hetsched.schedule.bounds.groupload import group_load_bound
from hetsched.schedule.bounds.transfers import transfer_lp_bound
from tests.bruteforce import brute_force_makespan, random_tiny_problem
from tests.families import FAMILIES, random_problem


def heavy_problem(seed: int, n: int = 6, devices: int = 3, ccr: float = 5.0) -> Problem:
    """A random DAG whose transfers cost several times its ops (integer units)."""
    rng = np.random.default_rng(seed)
    ex = rng.integers(1, 6, size=(n, devices)).astype(float)
    ex[rng.random((n, devices)) < 0.15] = np.inf
    for v in range(n):
        if not np.isfinite(ex[v]).any():
            ex[v, rng.integers(devices)] = 3.0
    edges = [(u, v, 1.0) for u in range(n) for v in range(u + 1, n) if rng.random() < 0.4]
    lat = np.full((devices, devices), float(round(ccr * 3)))
    lat += rng.integers(0, 3, size=(devices, devices))
    np.fill_diagonal(lat, 0.0)
    return Problem.from_arrays(
        names=[f"op{i}" for i in range(n)], devices=[f"d{j}" for j in range(devices)],
        exec_time=ex, edges=edges, comm_latency=lat, quantum=1.0, name=f"heavy{seed}",
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(30))
def test_the_delay_bound_never_exceeds_the_brute_force_optimum(seed: int) -> None:
    for p in (random_tiny_problem(seed, n=6, devices=2 + seed % 2), heavy_problem(seed)):
        best = brute_force_makespan(p)
        assert delay_bound(p) <= best
        assert lower_bound(p) <= best


def test_it_sees_what_transfers_cost_where_the_old_bounds_do_not() -> None:
    wins = 0
    for seed in range(30):
        p = heavy_problem(seed, n=7)
        wins += delay_bound(p) > max(critical_path_bound(p), load_bound(p))
    assert wins >= 10


@pytest.mark.parametrize(
    "bound", [delay_bound, colocation_bound, group_load_bound, transfer_lp_bound]
)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("seed", range(8))
def test_the_transfer_bounds_stay_below_every_valid_plan(
    bound: Callable[[Problem], int], family: str, seed: int
) -> None:
    # any valid plan's makespan is at least the optimum: a bound above one is wrong
    from hetsched.schedule.latency.heuristics import solve_heft, solve_peft

    p = random_problem(seed, n=40, family=family)
    for solver in (solve_heft, solve_peft):
        plan = solver(p, time_limit=5, seed=0)
        assert bound(p) <= round(plan.makespan / p.quantum)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("seed", range(4))
def test_no_plan_starts_an_op_before_its_head_on_its_device(family: str, seed: int) -> None:
    # the per-device heads and tails bound each op of every schedule where it runs
    from hetsched.plan import schedule_arrays
    from hetsched.schedule.latency.heuristics import solve_heft, solve_peft

    for p in (random_problem(seed, n=40, family=family), heavy_problem(seed, n=12)):
        head, tail = device_delay_heads_tails(p)
        for solver in (solve_heft, solve_peft):
            plan = solver(p, time_limit=5, seed=0)
            assign, start = schedule_arrays(plan, p)
            ops = np.arange(p.n)
            finish = start + p.dur[ops, assign]
            assert (start >= head[ops, assign]).all()
            assert (finish.max() - finish >= tail[ops, assign]).all()


@pytest.mark.parametrize("name", ["rand0000.stg", "rand0001.stg", "rand0002.stg"])
@pytest.mark.parametrize("processors", [2, 3, 4])
def test_the_delay_bound_stays_below_cpsat_on_stg_graphs(name: str, processors: int) -> None:
    from hetsched.schedule.latency.cpsat import solve_cpsat
    from tests.bruteforce import stg_problem

    p = stg_problem(name, processors)
    plan = solve_cpsat(p, time_limit=3, seed=0, workers=1)
    assert delay_bound(p) <= round(plan.makespan / p.quantum)
