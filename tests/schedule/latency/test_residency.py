"""Weights streamed first, kept resident after: the restriction, the upgrade, the portfolio."""

from __future__ import annotations

import numpy as np
import pytest

from hetsched.errors import SolverError
from hetsched.plan import mode_ids, validate
from hetsched.problem import Modes, Problem, Tensors
from hetsched.schedule.latency.portfolio import solve_portfolio
from hetsched.schedule.latency.residency import (
    make_resident,
    resident_twins,
    spread_runs,
    streamed_restriction,
    twin_devices,
)
from hetsched.solver import run_solver
from tests.plan.test_liveness import live_problem


def crowded() -> Problem:
    """An SRAM of 10 on the npu: ``a``'s resident weights (6) leave no room for ``b``'s
    output (8), so a greedy that keeps ``a`` resident sends ``b`` to the slow cpu."""
    rows = [
        (0, (0,), 1.0, 7.0, "float32", "", 6.0),
        (0, (0,), 2.0, 1.0, "float32", "streamed", 0.0),
        (0, (1,), 5.0, 7.0, "float32", "", 6.0),
        (1, (0,), 1.0, 8.0, "float32", "", 0.0),
        (1, (1,), 20.0, 8.0, "float32", "", 0.0),
    ]
    return Problem.from_modes(
        names=["a", "b"],
        devices=["npu", "cpu"],
        modes=Modes.build(2, rows),
        tensors=Tensors.build(2, [(0, (1,), 1.0)]),
        capacity=np.array([10.0, 100.0]),
        use_memory=True,
        quantum=1.0,
        units="u",
        name="crowded",
    )


def test_streaming_first_beats_the_greedy_that_fills_the_sram() -> None:
    p = crowded()
    greedy = run_solver("heft", p)
    assert greedy.assignment["b"] == "cpu"
    sub = streamed_restriction(p)
    assert sub is not None
    assert [sub.modes.tag[k] for k in sub.modes.ops_modes(0).tolist()] == ["streamed", ""]
    plan = make_resident(run_solver("heft", sub), p)
    validate(plan, p)
    assert plan.assignment == {"a": "npu", "b": "npu"}
    assert plan.makespan == 3.0 < greedy.makespan
    assert plan.modes["a"].tag == "streamed"  # resident would not leave room for b
    best = solve_portfolio(p, time_limit=5, workers=1)
    assert best.makespan == 3.0
    assert best.baselines["heft-streamed"] == 3.0


def test_a_twin_is_the_same_op_devices_precision_and_error() -> None:
    p = crowded()
    twin = resident_twins(p)
    assert twin.tolist() == [-1, 0, -1, -1, -1]
    resident_only = p.select_modes(np.array([0, 2, 3, 4]))
    assert streamed_restriction(resident_only) is None
    assert not np.any(resident_twins(resident_only) >= 0)


@pytest.mark.parametrize("seed", range(40))
def test_made_resident_plans_are_valid_and_never_slower(seed: int) -> None:
    p = live_problem(seed)
    sub = streamed_restriction(p)
    if sub is None:
        pytest.skip("no op has both a resident and a streamed mode")
    try:
        first = run_solver("heft", sub)
    except SolverError:
        pytest.skip("the greedy found no plan that fits")
    plan = make_resident(first, p)
    validate(plan, p)
    assert plan.makespan <= first.makespan + 1e-9
    assert plan.lower_bound == 0.0  # a restriction's bound is not the problem's
    ids = mode_ids(plan, p)
    was = mode_ids(first, p)
    for v in range(p.n):  # only streamed -> resident twins change
        assert ids[v] == was[v] or resident_twins(p)[was[v]] == ids[v]


def npu_pair(blocks: int = 4) -> Problem:
    """``blocks`` x (matmul on npu0 or npu1 -> attention on the gpu only), a chain; each
    matmul 2 with its 4 bytes of weights resident, 5 streamed; each NPU holds 10 bytes, so
    one NPU keeps two matmuls' weights and the pair keeps four."""
    rows: list[tuple] = []
    for b in range(blocks):
        for d in (0, 1):
            rows += [(2 * b, (d,), 2.0, 5.0, "float32", "", 4.0),
                     (2 * b, (d,), 5.0, 1.0, "float32", "streamed", 0.0)]  # fmt: skip
        rows.append((2 * b + 1, (2,), 1.0, 1.0, "float32", "", 0.0))
    n = 2 * blocks
    chain = Tensors.build(n, [(v, (v + 1,), 1.0) for v in range(n - 1)])
    lat = np.array([[0.0, 2.0, 1.0], [2.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    return Problem.from_modes(
        names=[f"op{i}" for i in range(n)], devices=["npu0", "npu1", "gpu"],
        modes=Modes.build(n, rows), tensors=chain,
        comm_latency=lat, capacity=np.array([10.0, 10.0, 100.0]), use_memory=True, quantum=1.0,
        units="u", name="npu-pair",
    )  # fmt: skip


def test_spreading_runs_over_twin_npus_keeps_twice_the_weights_resident() -> None:
    p = npu_pair()
    assert twin_devices(p) == [(0, 1)]
    first = run_solver("heft", streamed_restriction(p))
    assert {first.modes[f"op{2 * b}"].devices for b in range(4)} == {("npu0",)}  # EFT's tie
    alone = make_resident(first, p)
    spread = [make_resident(x, p) for x in spread_runs(first, p)]
    assert spread
    for plan in spread:
        validate(plan, p)
    best = min(spread, key=lambda x: x.makespan)
    resident = [
        op for op, m in best.modes.items() if m.tag == "" and op in ("op0", "op2", "op4", "op6")
    ]
    assert len(resident) == 4 and best.makespan < alone.makespan
    assert solve_portfolio(p, time_limit=10, seed=0, workers=1).makespan <= best.makespan
