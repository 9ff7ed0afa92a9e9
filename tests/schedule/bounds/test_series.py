"""Series cuts, the series and window bounds, and the segment-by-segment solve."""

from __future__ import annotations

import time

import networkx as nx
import numpy as np
import pytest

from hetsched.plan import plan_from_schedule, validate
from hetsched.problem import Problem
from hetsched.schedule.bounds import (
    critical_path_bound,
    load_bound,
    lower_bound,
    series_bound,
    series_cuts,
    series_segments,
    window_load_bound,
)
from hetsched.schedule.latency.segments import segment_classes, solve_segments
from tests.bruteforce import brute_force_makespan
from tests.families import FAMILIES, random_problem, series_problem


def _cuts_by_definition(p: Problem) -> list[int]:
    g = nx.DiGraph()
    g.add_nodes_from(range(p.n))
    g.add_edges_from(zip(p.edge_src.tolist(), p.edge_dst.tolist(), strict=True))
    return [v for v in range(p.n) if len(nx.ancestors(g, v)) + len(nx.descendants(g, v)) == p.n - 1]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("family", [*FAMILIES, "series"])
def test_cuts_are_the_ops_comparable_with_every_other(family: str, seed: int) -> None:
    if family == "series":
        p = series_problem(seed, segments=3, width=1 + seed % 3, depth=1 + seed % 2)
    else:
        p = random_problem(seed, n=12, family=family)
    assert series_cuts(p).tolist() == _cuts_by_definition(p)
    segs = series_segments(p)
    assert np.concatenate(segs).tolist() == list(range(p.n))


@pytest.mark.parametrize("seed", range(16))
def test_series_and_window_bounds_never_exceed_the_brute_force_optimum(seed: int) -> None:
    p = series_problem(seed, segments=2, width=2, devices=2 + seed % 2)
    best = brute_force_makespan(p)
    assert 0 < series_bound(p) <= best
    assert window_load_bound(p) <= best
    assert lower_bound(p) <= best


def test_series_bound_is_stronger_than_the_whole_graph_bounds_somewhere() -> None:
    wins = 0
    for seed in range(16):
        p = series_problem(seed, segments=3, width=6, devices=2)
        wins += series_bound(p) > max(critical_path_bound(p), load_bound(p))
    assert wins >= 8


def test_window_bound_adds_fill_and_drain_to_the_load_bound() -> None:
    # a -> b -> c where only b is fast on y: y's work cannot start before a nor end after c.
    p = Problem.from_arrays(
        names=["a", "b", "c"],
        devices=["x", "y"],
        exec_time=np.array([[2.0, 9.0], [9.0, 2.0], [2.0, 9.0]]),
        edges=[(0, 1, 1.0), (1, 2, 1.0)],
        quantum=1.0,
    )
    assert load_bound(p) == 4
    assert window_load_bound(p) == 6 == brute_force_makespan(p)


def test_a_window_lp_cut_short_is_skipped_and_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    import hetsched.schedule.bounds as bounds
    from hetsched.bench.instances import build_problem, random_spec

    p = build_problem(random_spec(300, 8, 10.0, seed=0, beta=0.0))  # GLOP: ~0.5 s
    assert window_load_bound(p, time_limit=1e-3) == 0  # cut short
    assert window_load_bound(p) > 0  # the cut run was not kept as "no optimum"
    # in the bounds within a deadline: started (its estimate says it fits), cut, skipped
    monkeypatch.setattr(bounds, "LP_SECONDS_PER_UNIT", 0.0)
    twin = build_problem(random_spec(300, 8, 10.0, seed=0, beta=0.0))  # nothing memoised
    _, skipped = bounds.lower_bound_within(twin, time.perf_counter() + 1e-3)
    assert "window" in skipped and "window" not in bounds._BOUND_MEMO.get(twin, {})


@pytest.mark.parametrize("seed", range(3))
def test_segment_solve_returns_a_valid_shorter_schedule(seed: int) -> None:
    p = series_problem(seed, segments=6, width=5, devices=3, depth=2)
    classes = segment_classes(p)
    assert classes and all(m.size == classes[0].members[0].size for m in classes[0].members)
    # a poor start: everything on the first allowed device, in index order
    assign = np.argmax(p.allowed, axis=1)
    from hetsched.schedule.latency.listsched import retime

    start, _ = retime(p, assign, list(range(p.n)))
    before = int((start + p.dur[np.arange(p.n), assign]).max())
    out = solve_segments(p, assign, start, time_limit=3, workers=1)
    assert out is not None
    na, ns, xfer = out
    plan = plan_from_schedule(p, assign=na, start=ns, solver="segments", transfer_start=xfer)
    validate(plan, p)
    assert plan.makespan < before
    assert plan.makespan >= series_bound(p)


def _layers(layers: int, width: int, cut_time: list[float], op_time: list[float], **kw):
    """``layers`` x (a cut, ``width`` parallel ops), closed by a last cut."""
    names, edges, ex = [], [], []
    for layer in range(layers + 1):
        c = len(names)
        names.append(f"cut{layer}")
        ex.append(cut_time)
        if layer:
            edges += [(c - width + i, c, 1.0) for i in range(width)]
        if layer == layers:
            break
        for i in range(width):
            names.append(f"op{layer}_{i}")
            ex.append(op_time)
            edges.append((c, c + 1 + i, 1.0))
    return Problem.from_arrays(
        names=names, devices=["x", "y"], exec_time=np.array(ex), edges=sorted(edges), **kw
    )


def test_segment_solve_moves_the_cuts_too() -> None:
    # Cuts are 20x faster on y; starting from everything on x the copied pattern must move
    # every closing cut (each member's opening cut is the previous member's closing cut).
    from hetsched.schedule.latency.listsched import retime

    p = _layers(4, 3, [20.0, 1.0], [2.0, 2.0], quantum=1.0)
    assign = np.zeros(p.n, dtype=np.int64)
    start, _ = retime(p, assign, list(range(p.n)))
    out = solve_segments(p, assign, start, time_limit=3, workers=1)
    assert out is not None
    na, ns, _ = out
    cuts = [i for i, name in enumerate(p.names) if name.startswith("cut")]
    assert na[cuts[1:]].tolist() == [1, 1, 1, 1]
    assert int((ns + p.dur[np.arange(p.n), na]).max()) <= 40


def test_segment_solve_never_overflows_memory() -> None:
    from hetsched.schedule.latency.listsched import retime

    p = _layers(
        4,
        4,
        [1.0, 5.0],
        [1.0, 5.0],
        quantum=1.0,
        memory_bytes=np.ones(21),
        capacity=np.array([10.0, 1e9]),
        use_memory=True,
    )
    assign = np.ones(p.n, dtype=np.int64)
    assign[:10] = 0  # ten ops on x, its capacity
    start, _ = retime(p, assign, list(range(p.n)))
    out = solve_segments(p, assign, start, time_limit=2, workers=1)
    if out is not None:
        na, ns, xfer = out
        plan = plan_from_schedule(p, assign=na, start=ns, solver="segments", transfer_start=xfer)
        validate(plan, p)


def test_portfolio_never_returns_a_plan_over_memory() -> None:
    from hetsched.schedule.latency.portfolio import solve_portfolio

    p = _layers(
        90,
        4,
        [1.0, 5.0],
        [1.0, 5.0],
        quantum=1.0,
        memory_bytes=np.ones(451),
        capacity=np.array([200.0, 1e9]),
        use_memory=True,
    )
    plan = solve_portfolio(p, time_limit=3, seed=0, workers=1)
    validate(plan, p)


def test_lp_rounding_shares_a_class_out_like_the_lp() -> None:
    from hetsched.schedule.latency.lpround import lp_rounded_assignment

    ex = np.array([[2.0, 3.0]] * 4 + [[1.0, np.inf]])
    p = Problem.from_arrays(
        names=[f"o{i}" for i in range(5)],
        devices=["x", "y"],
        exec_time=ex,
        quantum=1.0,
        edges=[(i, 4, 1.0) for i in range(4)],
    )
    frac = np.array([[0.75, 0.25]] * 4 + [[0.2, 0.8]])  # the last op may only use x
    assign = lp_rounded_assignment(p, frac)
    assert sorted(assign[:4].tolist()) == [0, 0, 0, 1]
    assert assign[4] == 0


@pytest.mark.parametrize("seed", range(3))
def test_lp_heft_is_valid_and_keeps_a_valid_bound(seed: int) -> None:
    from hetsched.schedule.latency.lpround import solve_lp_heft

    p = random_problem(seed, n=60, devices=4, ccr=1.0)
    plan = solve_lp_heft(p)
    assert plan is not None
    validate(plan, p)
    assert plan.lower_bound <= lower_bound(p) * p.quantum + 1e-9


def _fan(width: int, latency: float) -> Problem:
    """A cut, ``width`` parallel ops, a closing cut; three devices, every op equally fast
    everywhere, ``latency`` for every transfer between devices."""
    n = width + 2
    edges = [(0, i, 1.0) for i in range(1, n - 1)] + [(i, n - 1, 1.0) for i in range(1, n - 1)]
    lat = np.full((3, 3), latency)
    np.fill_diagonal(lat, 0.0)
    return Problem.from_arrays(
        names=[f"o{i}" for i in range(n)],
        devices=["x", "y", "z"],
        exec_time=np.array([[1.0] * 3] + [[4.0] * 3] * width + [[1.0] * 3]),
        edges=edges,
        comm_latency=lat,
        quantum=1.0,
    )


def test_pinning_the_cuts_counts_the_fill_and_drain_of_every_other_device(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Left free, each device's head reads 1 (the cut could run on it); pinned, two of the
    # three devices wait for a transfer after the cut and send one before the closing cut.
    import hetsched.schedule.bounds.series as series

    monkeypatch.setattr(series, "SEGMENT_LP_MIN_OPS", 1)
    p = _fan(4, 3.0)
    best = brute_force_makespan(p)
    pinned = series_bound(p)
    monkeypatch.setattr(series, "PINNED_LP_MAX_WORK", 0)
    free = series_bound(p)
    assert free < pinned <= best


@pytest.mark.parametrize("seed", range(24))
def test_pinned_series_bound_never_exceeds_the_brute_force_optimum(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hetsched.schedule.bounds.series as series

    monkeypatch.setattr(series, "SEGMENT_LP_MIN_OPS", 1)  # pin even the tiny segments
    p = series_problem(
        seed, segments=1 + seed % 2, width=1 + seed % 3, devices=2 + seed % 2, depth=1
    )
    assert series_bound(p) <= brute_force_makespan(p)


@pytest.mark.parametrize("seed", range(4))
def test_pinned_series_bound_never_exceeds_the_cpsat_optimum(seed: int) -> None:
    from hetsched.schedule.latency.cpsat import solve_cpsat

    # segments of 10+ ops: the default thresholds pin them
    p = series_problem(seed, segments=2, width=4 + seed % 2, devices=3, depth=2)
    plan = solve_cpsat(p, time_limit=20, workers=1, seed=0)
    assert plan.status == "optimal"
    assert series_bound(p) <= round(plan.makespan / p.quantum)


def test_window_counts_the_part_of_an_op_it_cannot_leave() -> None:
    from hetsched.schedule.bounds.windows import _window_part

    # window [r=5, T-s] with s=2; heads, tails and durations of five ops on one device
    heads = np.array([6, 2, 2, 6, 0])
    tails = np.array([3, 3, 3, 0, 0])
    durs = np.array([4, 4, 2, 4, 9])
    # inside: 4; starts by 2 and ends by T-3: at least 2+4-5 = 1 inside; 2+2-5 < 0: 0;
    # starts inside, may end after T-2: 0+4-2 = 2; may overhang both ends: 0
    assert _window_part(heads, tails, durs, 5, 2).tolist() == [4, 1, 0, 2, 0]
