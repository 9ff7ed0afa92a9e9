"""The one memory model: static residency and receive buffers, by hand, incrementally, and
as CP-SAT enforces it (device model and mode model) against a brute force that applies the
rule independently."""

from __future__ import annotations

import numpy as np
import pytest

from hetsched.plan import (
    MemoryTracker,
    mode_ids,
    overflow,
    plan_from_schedule,
    static_usage,
    validate,
)
from hetsched.plan.memory import received, within
from hetsched.problem import Modes, Problem, Tensors
from hetsched.schedule.latency.cpsat import solve_cpsat
from hetsched.schedule.latency.heuristics import solve_cpop, solve_heft, solve_peft
from hetsched.schedule.latency.portfolio import solve_portfolio
from tests.bruteforce import brute_force_makespan
from tests.problem.test_relaxation import as_plan, brute_force, random_mode_problem, search


def four_ops() -> Problem:
    """a -> b, c (t0, 10 B); a -> d (t1, 7 B); b -> d (t2, 1 B); c -> d (t3, 2 B).

    Modes (bytes): a: x (5), x+y (3);  b: y (2);  c: y (1), z (1);  d: z (2), y+z (4).
    """
    modes = Modes.build(
        4,
        [
            (0, (0,), 1.0, 5.0),
            (0, (0, 1), 1.0, 3.0),
            (1, (1,), 1.0, 2.0),
            (2, (1,), 1.0, 1.0),
            (2, (2,), 1.0, 1.0),
            (3, (2,), 1.0, 2.0),
            (3, (1, 2), 1.0, 4.0),
        ],
    )
    tensors = Tensors.build(4, [(0, (1, 2), 10.0), (0, (3,), 7.0), (1, (3,), 1.0), (2, (3,), 2.0)])
    return Problem.from_modes(
        names=list("abcd"), devices=list("xyz"), modes=modes, tensors=tensors, quantum=1.0
    )


def test_a_receive_buffer_per_tensor_and_device_however_many_readers() -> None:
    p = four_ops()
    m = np.array([0, 2, 3, 5])  # a@x, b@y, c@y, d@z
    # x: a 5.  y: b 2 + c 1 + t0 once (b and c both read it) 10.  z: d 2 + t1 7 + t2 1 + t3 2.
    assert static_usage(p, m).tolist() == [5.0, 13.0, 12.0]
    assert received(p, m) == [(0, 1), (1, 2), (2, 2), (3, 2)]


def test_a_split_holds_its_bytes_on_each_device_and_needs_no_buffer_there() -> None:
    p = four_ops()
    m = np.array([1, 2, 4, 6])  # a@x+y, b@y, c@z, d@y+z
    # x: a 3.  y: a 3 + b 2 + d 4 + t3 (c's output, made on z) 2; t0 and t1 are a's, already
    # on y.  z: c 1 + d 4 + t0 10 + t1 7 + t2 (b's, made on y) 1.
    assert static_usage(p, m).tolist() == [3.0, 11.0, 23.0]
    assert received(p, m) == [(0, 2), (1, 2), (2, 2), (3, 1)]


def test_the_doc_example_on_a_device_table() -> None:
    p = Problem.from_arrays(
        names=["a", "b", "c"],
        devices=["x", "y"],
        exec_time=np.ones((3, 2)),
        tensors=[(0, (1, 2), 8.0)],
        memory_bytes=np.array([10.0, 1.0, 1.0]),
        quantum=1.0,
    )
    assert static_usage(p, p.device_mode[np.arange(3), [0, 1, 1]]).tolist() == [10.0, 10.0]
    assert static_usage(p, p.device_mode[np.arange(3), [1, 1, 1]]).tolist() == [0.0, 12.0]
    assert static_usage(p, p.device_mode[np.arange(3), [1, 0, 1]]).tolist() == [9.0, 11.0]


def test_overflow_names_the_first_device_over_capacity() -> None:
    p = four_ops()
    m = np.array([0, 2, 3, 5])  # uses [5, 13, 12]
    assert overflow(p, m) is None  # memory constraints off
    assert overflow(p.with_memory(np.array([5.0, 13.0, 12.0])), m) is None
    assert overflow(p.with_memory(np.array([5.0, 12.0, 12.0])), m) == 1
    assert overflow(p.with_memory(np.array([5.0, 12.0, 11.0])), m) == 1
    assert overflow(p.with_memory(np.array([5.0, 13.0, 11.0])), m) == 2
    assert within(13.0, 13.0) and not within(13.0 + 1e-6, 13.0)


def test_validate_rejects_a_plan_over_capacity() -> None:
    from hetsched.errors import PlanError

    p = four_ops().with_memory(np.array([5.0, 12.0, 12.0]))
    plan = plan_from_schedule(p, modes=[0, 2, 3, 5], start=[0, 1, 2, 3], solver="manual")
    assert plan.memory == {"x": 5.0, "y": 13.0, "z": 12.0}
    with pytest.raises(
        PlanError,
        match=r"device 'y' holds 13 B at 1 s, over its capacity 12 B; largest live: t0 \(received",
    ):
        validate(plan, p)


@pytest.mark.parametrize("seed", range(20))
def test_the_tracker_equals_static_usage_after_a_whole_schedule(seed: int) -> None:
    p = random_mode_problem(seed)
    rng = np.random.default_rng(seed)
    for _ in range(10):
        m = np.array([rng.choice(p.modes.ops_modes(v)) for v in range(p.n)])
        tracker = MemoryTracker(p)
        for v in range(p.n):  # producers first: ops are in topological order
            add, _new = tracker.extra(v, int(m[v]))
            before = tracker.used.copy()
            tracker.place(v, int(m[v]))
            assert np.allclose(tracker.used, before + add)
        assert np.allclose(tracker.used, static_usage(p, m))
        assert sorted(tracker.buffers) == received(p, m)


# ---------------------------------------------------------------------- CP-SAT with memory
def memory_table(seed: int) -> Problem:
    """A tiny device table with op bytes and capacities (integers), memory on."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 6))
    d = int(rng.integers(2, 4))
    ex = rng.integers(1, 7, size=(n, d)).astype(float)
    ex[rng.random((n, d)) < 0.2] = np.inf
    ex[np.arange(n), rng.integers(0, d, size=n)] = rng.integers(1, 7, size=n)
    tensors = []
    for u in range(n - 1):
        succ = [v for v in range(u + 1, n) if rng.random() < 0.45]
        if succ:
            tensors.append((u, tuple(succ), float(rng.integers(0, 4))))
    lat = rng.integers(0, 3, size=(d, d)).astype(float)
    np.fill_diagonal(lat, 0.0)
    return Problem.from_arrays(
        names=[f"v{i}" for i in range(n)],
        devices=[f"d{j}" for j in range(d)],
        exec_time=ex,
        tensors=tensors,
        comm_latency=lat,
        memory_bytes=rng.integers(1, 5, size=n).astype(float),
        capacity=rng.integers(3, 9, size=d).astype(float),
        use_memory=True,
        quantum=1.0,
        name=f"memtable{seed}",
    )


# Seeds where memory binds: the optimum with capacities is above the optimum without them
# (checked by the test itself).
TABLE_SEEDS = (1, 4, 13, 15, 17, 21, 34, 46)
MODE_SEEDS = (0, 2, 9, 15, 21, 27, 32, 39)
CASES = [("devices", s) for s in TABLE_SEEDS] + [("modes", s) for s in MODE_SEEDS]
# ... and those where HEFT, PEFT and CPOP all place every op within memory.
GREEDY_FITS = [("devices", s) for s in (15, 17, 21, 34)] + [
    ("modes", s) for s in (0, 15, 21, 27, 32)
]


def memory_problem(model: str, seed: int) -> Problem:
    return memory_table(seed) if model == "devices" else random_mode_problem(seed, memory=True)


def _check_fits(plan, p: Problem) -> None:
    validate(plan, p)
    used = static_usage(p, mode_ids(plan, p))
    assert np.all(used <= p.capacity)  # the solvers keep the static envelope within capacity
    # a plan reports its live peak, which the envelope bounds
    assert all(plan.memory[x] <= u + 1e-9 for x, u in zip(p.devices, used, strict=True))


@pytest.mark.parametrize(("model", "seed"), CASES)
def test_cpsat_with_memory_reaches_the_memory_brute_force(model: str, seed: int) -> None:
    p = memory_problem(model, seed)
    assert p.use_memory
    assert p.is_device_table is (model == "devices")
    best, free = brute_force(p, memory=True), brute_force(p)
    assert best is not None and free is not None
    assert best > free, "memory must bind on this instance"
    if model == "devices":
        assert brute_force_makespan(p) == best  # tests/bruteforce.py's own memory rule
    # start from the enumeration's first schedule that fits, not from a heuristic
    start = search(p, memory=True, first=True)
    assert start is not None
    hint = as_plan(p, start)
    _check_fits(hint, p)

    plan = solve_cpsat(p, time_limit=20, seed=0, workers=1, hint=hint)
    _check_fits(plan, p)
    assert plan.stats["model"] == model  # the search ran: the bounds ignore memory
    assert plan.status == "optimal"
    assert round(plan.makespan) == best


@pytest.mark.parametrize(("model", "seed"), GREEDY_FITS)
def test_solvers_with_memory_and_no_hint(model: str, seed: int) -> None:
    p = memory_problem(model, seed)
    best = brute_force(p, memory=True)
    assert best is not None
    plan = solve_cpsat(p, time_limit=20, seed=0, workers=1)
    _check_fits(plan, p)
    assert plan.status == "optimal" and round(plan.makespan) == best
    for solver in (solve_heft, solve_peft, solve_cpop):
        heur = solver(p, time_limit=5, seed=0)
        _check_fits(heur, p)
        assert heur.makespan >= best


@pytest.mark.parametrize(("model", "seed"), [("devices", s) for s in (15, 17, 21, 34)])
def test_portfolio_with_memory_on_device_tables(model: str, seed: int) -> None:
    p = memory_problem(model, seed)
    plan = solve_portfolio(p, time_limit=20, seed=0, workers=1)
    _check_fits(plan, p)
    assert plan.status == "optimal" and round(plan.makespan) == brute_force(p, memory=True)


@pytest.mark.parametrize(("model", "seed"), [("devices", 1), ("modes", 2)])
def test_cpsat_needs_no_greedy_heuristic_to_fit_memory(model: str, seed: int) -> None:
    p = memory_problem(model, seed)
    best = brute_force(p, memory=True)
    plan = solve_cpsat(p, time_limit=20, seed=0, workers=1)
    _check_fits(plan, p)
    assert round(plan.makespan) == best


def test_portfolio_checks_memory_on_the_plans_own_modes() -> None:
    p = memory_problem("modes", 0)
    plan = solve_portfolio(p, time_limit=20, seed=0, workers=1)
    _check_fits(plan, p)
    assert round(plan.makespan) == brute_force(p, memory=True)


def test_cpsat_counts_fractional_bytes_as_the_memory_model_does() -> None:
    # two of the three ops fit x (2.5 + 2.5 <= 5): makespan 3 (two on x, one on y)
    p = Problem.from_arrays(
        names=["a", "b", "c"],
        devices=["x", "y"],
        exec_time=np.array([[1.0, 3.0]] * 3),
        memory_bytes=np.full(3, 2.5),
        capacity=np.array([5.0, 100.0]),
        use_memory=True,
        quantum=1.0,
    )
    assert brute_force(p, memory=True) == 3
    hint = plan_from_schedule(p, assign=[0, 1, 1], start=[0, 0, 3], solver="naive")
    plan = solve_cpsat(p, time_limit=20, seed=0, workers=1, hint=hint)
    validate(plan, p)
    assert plan.makespan == 3.0
