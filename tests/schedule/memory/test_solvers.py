"""Exact solvers against brute force over all orders; validity and never worse than greedy."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from hetsched.errors import SolverError
from hetsched.schedule.memory import (
    MemoryInstance,
    activation_lower_bound,
    check_order,
    lpmf_order,
    min_peak_order,
    peak_of_order,
    topological_order,
)
from hetsched.schedule.memory.cpsat import solve_order_cpsat
from hetsched.schedule.memory.dp import downset_dp
from hetsched.solver import StopToken
from tests.schedule.memory.conftest import random_dag

SEEDS = range(20)


def _brute_force(inst: MemoryInstance) -> float:
    g = nx.DiGraph()
    g.add_nodes_from(range(inst.n))
    g.add_edges_from(inst.edges())
    return min(peak_of_order(inst, list(o)).activation_peak for o in nx.all_topological_sorts(g))


@pytest.fixture(scope="module")
def cases() -> list[tuple[MemoryInstance, float]]:
    out = []
    for seed in SEEDS:
        inst = MemoryInstance.from_graph(random_dag(seed))
        out.append((inst, _brute_force(inst)))
    return out


def test_lower_bound_never_exceeds_the_optimum(cases: list[tuple[MemoryInstance, float]]) -> None:
    for inst, best in cases:
        assert activation_lower_bound(inst) <= best


def test_dp_from_the_bound_finds_the_optimum(cases: list[tuple[MemoryInstance, float]]) -> None:
    for inst, best in cases:
        lb = activation_lower_bound(inst)
        out = downset_dp(inst, lower=lb, upper=best + 1.0, deadline=None)
        assert out.proven and out.order is not None
        assert out.activation_peak == best == out.lower_bound
        assert peak_of_order(inst, out.order).activation_peak == best


def test_dp_proves_an_optimal_upper_bound(cases: list[tuple[MemoryInstance, float]]) -> None:
    for inst, best in cases:
        out = downset_dp(inst, lower=0.0, upper=best, deadline=None)
        assert out.proven and out.order is None and out.lower_bound == best


def test_cpsat_finds_the_optimum(cases: list[tuple[MemoryInstance, float]]) -> None:
    for inst, best in cases[:8]:
        out = solve_order_cpsat(inst, hint=lpmf_order(inst), lower=0.0, time_limit=10.0,
                                seed=0, workers=1)  # fmt: skip
        assert out.proven and out.order is not None
        assert peak_of_order(inst, out.order).activation_peak == best == out.lower_bound


@pytest.mark.parametrize("dp_share", [0.0, 0.8, 1.0])
def test_min_peak_order_is_optimal_valid_and_never_worse(
    cases: list[tuple[MemoryInstance, float]], dp_share: float
) -> None:
    for inst, best in cases:
        r = min_peak_order(inst, time_limit=10.0, dp_share=dp_share)
        pos = check_order(inst, list(r.order))
        assert sorted(pos.tolist()) == list(range(inst.n))
        assert r.status == "optimal" and r.gap == 0.0
        assert r.activation_peak == best
        assert r.peak == best + inst.weights == r.lower_bound
        assert r.peak <= min(r.baselines.values())
        assert (
            r.baselines["greedy"]
            == inst.weights + peak_of_order(inst, lpmf_order(inst)).activation_peak
        )


def test_baselines_are_valid_orders(cases: list[tuple[MemoryInstance, float]]) -> None:
    for inst, _best in cases:
        for order in (topological_order(inst), lpmf_order(inst)):
            check_order(inst, order)


def test_without_exact_search_the_result_is_the_best_baseline() -> None:
    inst = MemoryInstance.from_graph(random_dag(3))
    r = min_peak_order(inst, time_limit=5.0, max_exact_ops=1)
    assert r.status in {"optimal", "heuristic"}
    assert r.method in {"topological", "greedy"}
    assert r.peak == min(r.baselines.values())
    assert r.lower_bound <= r.peak


def test_a_stop_token_set_before_returns_the_best_baseline() -> None:
    stop = StopToken()
    stop.set()
    for seed in SEEDS:
        inst = MemoryInstance.from_graph(random_dag(seed))
        r = min_peak_order(inst, time_limit=5.0, stop=stop)
        check_order(inst, list(r.order))
        assert r.peak <= min(r.baselines.values())
        assert r.status in {"optimal", "feasible"}
        assert r.lower_bound <= r.peak


def test_dp_gives_up_past_its_state_budget() -> None:
    inst = MemoryInstance.from_graph(random_dag(5, max_ops=8))
    out = downset_dp(inst, lower=0.0, upper=np.inf, deadline=None, max_states=0)
    assert out.lower_bound <= _brute_force(inst)


@pytest.mark.parametrize("kw", [{"time_limit": -1.0}, {"workers": 0}, {"dp_share": 2.0}])
def test_bad_options_raise(kw: dict[str, float]) -> None:
    with pytest.raises(SolverError):
        min_peak_order(MemoryInstance.from_graph(random_dag(0)), **kw)  # type: ignore[arg-type]
