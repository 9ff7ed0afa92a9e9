"""Large-graph machinery: vectorised helpers equal the loops, block round trips
are valid, bounds stay below every makespan, the portfolio's large path keeps its contract."""

import numpy as np
import pytest

from hetsched.plan import plan_from_schedule, schedule_arrays, validate
from hetsched.problem import Problem, choose_quantum, choose_quantum_fast
from hetsched.schedule.bounds import (
    heads_and_tails_fast,
    levels,
    load_bound,
    load_bound_dual,
    lower_bound,
)
from hetsched.schedule.bounds import heads_and_tails_reference as heads_and_tails
from hetsched.schedule.latency import portfolio
from hetsched.schedule.latency.blocks import (
    block_subproblem,
    find_blocks,
    replicate,
    solve_by_blocks,
)
from hetsched.schedule.latency.eft import first_plan
from hetsched.schedule.latency.heuristics import solve_heft
from tests.families import FAMILIES, random_problem


def _plan(p, a, s, x=None):
    return plan_from_schedule(p, assign=a, start=s, solver="t", transfer_start=x)


def _repeated(blocks=5, seed=0):
    """A chain of identical 'layers' (fork-join of 4 branches), plus a head and a tail op."""
    rng = np.random.default_rng(seed)
    size = 6
    layer = rng.uniform(1, 9, size=(size, 3))
    layer[2, 2] = np.inf  # one op unsupported on device 2, like softmax on an NPU
    ex = np.vstack([[[1.0, 1.0, 1.0]], np.tile(layer, (blocks, 1)), [[1.0, 2.0, 1.0]]])
    edges = []
    for b in range(blocks):
        o = 1 + b * size
        edges += [(o - 1 if b else 0, o, 1.0)]
        edges += [(o, o + i, 2.0) for i in (1, 2, 3, 4)]
        edges += [(o + i, o + 5, 2.0) for i in (1, 2, 3, 4)]
    edges += [(blocks * size, blocks * size + 1, 1.0)]
    edges = sorted(set(edges))
    n = ex.shape[0]
    return Problem.from_arrays(
        names=[f"o{i}" for i in range(n)],
        devices=["a", "b", "c"],
        exec_time=ex,
        edges=edges,
        comm_latency=np.full((3, 3), 0.5),
        comm_inv_bandwidth=np.full((3, 3), 0.3),
    )


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("seed", [0, 1])
def test_vectorised_helpers_equal_the_loops(family, seed):
    p = random_problem(seed, n=60, devices=4, family=family, ccr=2.0)
    h1, t1 = heads_and_tails(p)
    h2, t2 = heads_and_tails_fast(p)
    assert np.array_equal(h1, h2) and np.array_equal(t1, t2)
    ex = p.exec_time * 0.37  # non-integer times so the quantum is computed
    comm = p.comm * 0.37
    assert choose_quantum_fast(ex, comm, p.edge_src, p.edge_dst) == choose_quantum(
        ex, comm, p.edge_src, p.edge_dst
    )
    lev = levels(p)
    assert (lev[p.edge_dst] > lev[p.edge_src]).all()


@pytest.mark.parametrize("seed", range(4))
def test_dual_load_bound_is_valid_and_tight(seed):
    p = random_problem(seed, n=80, devices=4, ccr=1.0)
    lp = load_bound(p)
    dual = load_bound_dual(p)
    assert dual <= lp <= dual * 1.01 + 1


@pytest.mark.parametrize("ccr", [0.1, 1.0, 5.0])
def test_first_plan_validates_and_bounds_hold(ccr):
    p = random_problem(2, n=200, devices=5, ccr=ccr)
    plan = first_plan(p)
    validate(plan, p)
    assert lower_bound(p) * p.quantum <= plan.makespan


def test_find_blocks_and_replication_are_valid():
    p = _repeated(blocks=6)
    blocks = find_blocks(p)
    assert len(blocks) >= 5 and len({b.size for b in blocks}) == 1
    for b in blocks:  # isomorphic: same durations as the first block
        assert np.array_equal(p.dur[b], p.dur[blocks[0]])
    sub = block_subproblem(p, blocks[1])
    h = solve_heft(sub)
    validate(h, sub)
    a, s = schedule_arrays(solve_heft(p), p)
    na, ns, x = replicate(p, blocks, *schedule_arrays(h, sub), a, s)
    validate(_plan(p, na, ns, x), p)
    for b in blocks:
        assert np.array_equal(na[b], na[blocks[0]])
    out = solve_by_blocks(p, blocks, a, s, time_limit=1.0, seed=0, workers=1)
    if out is not None:
        validate(_plan(p, *out), p)
        assert (out[1] + p.dur[np.arange(p.n), out[0]]).max() < (s + p.dur[np.arange(p.n), a]).max()


def test_no_blocks_in_a_random_dag():
    assert find_blocks(random_problem(0, n=50, devices=3)) == []


def test_portfolio_large_path_keeps_the_contract(monkeypatch):
    monkeypatch.setattr(portfolio, "CPSAT_MAX_OPS", 40)
    monkeypatch.setattr(portfolio, "LARGE_OPS", 60)
    p = random_problem(3, n=100, devices=4, ccr=1.0)
    events: list = []
    plan = portfolio.solve_portfolio(p, time_limit=3.0, seed=0, workers=1, progress=events.append)
    validate(plan, p)
    assert plan.makespan <= min(plan.baselines.values())
    assert plan.lower_bound <= plan.makespan
    assert events and plan.stats["path"][-1] == "lns"


def test_portfolio_uses_segments_then_blocks_when_the_graph_repeats(monkeypatch):
    monkeypatch.setattr(portfolio, "CPSAT_MAX_OPS", 10)
    p = _repeated(blocks=8, seed=2)
    plan = portfolio.solve_portfolio(p, time_limit=3.0, seed=0, workers=1)
    validate(plan, p)
    # the 8 fork-join layers are one class of segments between series cuts
    assert plan.stats["segments"] == {"classes": 1, "ops": 40}
    assert "segments" in plan.stats["path"]
    # here the segment bounds prove the best heuristic optimal; otherwise blocks run next
    assert plan.status == "optimal" or plan.stats["blocks"]["count"] >= 3
    assert plan.lower_bound <= plan.makespan


def test_transfer_heavy_graphs_go_to_lns_from_fewer_ops(monkeypatch):
    monkeypatch.setattr(portfolio, "HEAVY_CPSAT_MAX_OPS", 40)
    heavy = random_problem(3, n=60, devices=4, ccr=10.0)
    plan = portfolio.solve_portfolio(heavy, time_limit=3.0, seed=0, workers=1)
    validate(plan, heavy)
    assert plan.makespan <= min(plan.baselines.values())
    assert plan.stats["path"][-1] == "lns" and "cpsat" not in plan.stats["path"]
    light = random_problem(3, n=60, devices=4, ccr=0.1)  # CP-SAT takes it whole
    assert "lns" not in portfolio.solve_portfolio(light, time_limit=1.5, seed=0).stats["path"]
