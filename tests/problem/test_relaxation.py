"""Modes end to end: exact solvers reach the brute-force optimum over modes, heuristics and
lower bounds stay on their side of it, and the relaxation bounds are computed on is one.

The brute force here enumerates a mode per op and a global topological dispatch order,
written from the mode semantics alone (:mod:`hetsched.problem.modes`), independently of
every hetsched solver, bound and of the device views:

* a mode occupies all its devices from the op's start to its end;
* a tensor reaches a device outside its producer's mode from the nearest device of that
  mode, once; a consumer starts when its inputs are on every device of its own mode.

Some optimal schedule is semi-active with each device running its ops in the order of one
global topological order (sort an optimal schedule by start, ties by index, and dispatch
it as early as possible: by induction no op starts later), so the minimum over this
enumeration is the optimum.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest

from hetsched.plan import Plan, mode_ids, plan_from_schedule, validate
from hetsched.problem import Modes, Problem, Tensors
from hetsched.schedule.bounds import bound_report, lower_bound, quick_lower_bound
from hetsched.schedule.latency.cpsat import solve_cpsat
from hetsched.schedule.latency.heuristics import solve_cpop, solve_heft, solve_peft
from hetsched.schedule.latency.portfolio import solve_portfolio
from tests.bruteforce import brute_force_makespan

SEEDS = range(40)


# ---------------------------------------------------------------------- the brute force
@dataclass(frozen=True)
class Raw:
    """A problem as plain Python data, read from its public arrays (no device views)."""

    n: int
    d: int
    modes: list[list[int]]  # op -> its mode ids
    devs: list[tuple[int, ...]]  # mode -> its devices
    dur: list[int]  # mode -> duration
    mem: list[float]  # mode -> bytes on each of its devices
    inputs: list[list[tuple[int, int]]]  # op -> (producer, tensor) per tensor it reads
    readers: list[tuple[int, list[int], float]]  # tensor -> (producer, consumers, bytes)
    comm: list[list[list[int]]]  # tensor -> [a][b] transfer time
    capacity: list[float]
    tags: list[str]  # mode -> its tag (sharded chains: keep:L / from:L)


def raw(p: Problem) -> Raw:
    modes = p.modes
    readers = [
        (
            int(p.tensors.src[t]),
            [int(c) for c in p.tensors.consumers(t)],
            float(p.tensors.nbytes[t]),
        )
        for t in range(p.tensors.num_tensors)
    ]
    inputs: list[list[tuple[int, int]]] = [[] for _ in range(p.n)]
    for t, (u, cons, _b) in enumerate(readers):
        for c in cons:
            inputs[c].append((u, t))
    return Raw(
        n=p.n,
        d=p.num_devices,
        modes=[list(range(int(modes.op_start[v]), int(modes.op_start[v + 1]))) for v in range(p.n)],
        devs=[
            tuple(int(x) for x in modes.devs[modes.dev_start[m] : modes.dev_start[m + 1]])
            for m in range(modes.num_modes)
        ],
        dur=[int(x) for x in p.mode_dur],
        mem=[float(x) for x in modes.memory],
        inputs=inputs,
        readers=readers,
        comm=p.tensor_comm.tolist(),
        capacity=[float(x) for x in p.capacity],
        tags=list(modes.tag),
    )


def _layout(tag: str, prefix: str) -> str | None:
    return next((x[len(prefix) :] for x in tag.split("+") if x.startswith(prefix)), None)


def reads_as_kept(r: Raw, mu: int, mv: int) -> bool:
    """A producer in mode ``mu`` that keeps its output sharded (``keep:L`` in its tag) is
    read only by modes that take ``L`` (``from:L``) on the same devices."""
    kept = _layout(r.tags[mu], "keep:")
    return kept is None or (_layout(r.tags[mv], "from:") == kept and r.devs[mu] == r.devs[mv])


def arrival(r: Raw, t: int, producer_mode: int, finish_u: int, b: int) -> int:
    """When tensor ``t`` is on device ``b``: at once on the producer's devices, else after
    the fastest transfer from one of them."""
    have = r.devs[producer_mode]
    if b in have:
        return finish_u
    return finish_u + min(r.comm[t][a][b] for a in have)


def memory_fits(r: Raw, chosen: dict[int, int]) -> bool:
    """Static residency of the ops placed so far, from the rule's words: every device of a
    mode holds its bytes; a device holds one copy of each tensor some op there reads and
    the producer's mode does not hold. Grows as ops are placed (producers first)."""
    used = [0.0] * r.d
    for m in chosen.values():
        for x in r.devs[m]:
            used[x] += r.mem[m]
    for u, cons, nbytes in r.readers:
        if u not in chosen:
            continue
        on = {x for c in cons if c in chosen for x in r.devs[chosen[c]]}
        for x in on - set(r.devs[chosen[u]]):
            used[x] += nbytes
    return all(used[x] <= r.capacity[x] * (1 + 1e-12) for x in range(r.d))


@dataclass(frozen=True)
class Schedule:
    """A schedule the enumeration found: makespan, mode id and start unit per op."""

    makespan: int
    modes: list[int]
    start: list[int]


def search(p: Problem, *, memory: bool = False, first: bool = False) -> Schedule | None:
    """The best schedule over every (mode per op, topological order), or with ``first`` the
    first one the enumeration reaches (a feasible, usually poor one); ``None`` if no mode
    choice fits memory (``memory=True`` enforces each device's capacity)."""
    r = raw(p)
    best: list[Schedule | None] = [None]
    start = [0] * r.n
    finish = [0] * r.n
    chosen: dict[int, int] = {}

    def rec(free: list[int], span: int) -> None:
        if len(chosen) == r.n:
            if best[0] is None or span < best[0].makespan:
                best[0] = Schedule(span, [chosen[v] for v in range(r.n)], list(start))
            return
        for v in range(r.n):
            if v in chosen or any(u not in chosen for u, _t in r.inputs[v]):
                continue
            for m in r.modes[v]:
                if first and best[0] is not None:
                    return
                if not all(reads_as_kept(r, chosen[u], m) for u, _t in r.inputs[v]):
                    continue
                devs = r.devs[m]
                s = max(free[x] for x in devs)
                for u, t in r.inputs[v]:
                    for b in devs:
                        s = max(s, arrival(r, t, chosen[u], finish[u], b))
                f = s + r.dur[m]
                if best[0] is not None and max(span, f) >= best[0].makespan:
                    continue
                chosen[v] = m
                if not memory or memory_fits(r, chosen):
                    start[v], finish[v] = s, f
                    after = list(free)
                    for x in devs:
                        after[x] = f
                    rec(after, max(span, f))
                del chosen[v]

    rec([0] * r.d, 0)
    return best[0]


def brute_force(p: Problem, *, memory: bool = False) -> int | None:
    """The optimal makespan (units) of ``p``, or ``None`` (see :func:`search`)."""
    found = search(p, memory=memory)
    return None if found is None else found.makespan


def as_plan(p: Problem, found: Schedule, solver: str = "brute-force") -> Plan:
    """A schedule of :func:`search` as a plan (transfers at the producer's finish)."""
    return plan_from_schedule(p, modes=found.modes, start=found.start, solver=solver)


def replay(p: Problem, plan: Plan) -> int:
    """The plan's makespan recomputed from its modes and per-device order (a second check
    that its times are consistent with the brute force's semantics)."""
    r = raw(p)
    m = mode_ids(plan, p)
    order = sorted(range(p.n), key=lambda v: (plan.start[p.names[v]], v))
    finish = [0] * p.n
    free = [0] * r.d
    for v in order:
        devs = r.devs[int(m[v])]
        s = max(free[x] for x in devs)
        for u, t in r.inputs[v]:
            for b in devs:
                s = max(s, arrival(r, t, int(m[u]), finish[u], b))
        finish[v] = s + r.dur[int(m[v])]
        for x in devs:
            free[x] = finish[v]
    return max(finish)


# ---------------------------------------------------------------------- instances
def random_mode_problem(seed: int, *, memory: bool = False) -> Problem:
    """<= 5 ops on <= 3 devices: single-device modes, a two-device mode on some ops, two
    precisions on one device on others; tensors with two consumers and pairs of tensors
    between the same two ops. Every op keeps a single-device mode; op 0 can always split.
    Integer units."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 6))
    d = int(rng.integers(2, 4))
    rows: list[tuple[int, tuple[int, ...], float, float, str]] = []
    for v in range(n):
        on = sorted(rng.choice(d, size=int(rng.integers(1, d + 1)), replace=False).tolist())
        for x in on:
            rows.append((v, (x,), float(rng.integers(2, 8)), float(rng.integers(1, 5)), "native"))
        if rng.random() < 0.5:  # a second precision on one device, faster and smaller
            x = int(on[0])
            rows.append((v, (x,), float(rng.integers(1, 5)), float(rng.integers(0, 3)), "fp16"))
        if v == 0 or rng.random() < 0.4:  # a tensor-parallel split over two devices
            pair = tuple(sorted(rng.choice(d, size=2, replace=False).tolist()))
            rows.append((v, pair, float(rng.integers(1, 4)), float(rng.integers(1, 3)), "native"))
    tensors: list[tuple[int, tuple[int, ...], float]] = []
    for u in range(n - 1):
        succ = [v for v in range(u + 1, n) if rng.random() < 0.45]
        if not succ:
            continue
        if len(succ) >= 2 and rng.random() < 0.6:
            tensors.append((u, tuple(succ[:2]), float(rng.integers(0, 4))))
            tensors += [(u, (v,), float(rng.integers(0, 4))) for v in succ[2:]]
        else:
            tensors += [(u, (v,), float(rng.integers(0, 4))) for v in succ]
        if rng.random() < 0.4:  # a second tensor between the same two ops
            tensors.append((u, (succ[0],), float(rng.integers(0, 4))))
    lat = rng.integers(0, 3, size=(d, d)).astype(float)
    inv = rng.integers(0, 2, size=(d, d)).astype(float)
    np.fill_diagonal(lat, 0.0)
    capacity = None
    if memory:
        capacity = rng.integers(3, 10, size=d).astype(float)
    return Problem.from_modes(
        names=[f"op{i}" for i in range(n)],
        devices=[f"d{j}" for j in range(d)],
        modes=Modes.build(n, rows),
        tensors=Tensors.build(n, tensors),
        comm_latency=lat,
        comm_inv_bandwidth=inv,
        capacity=capacity,
        use_memory=memory,
        quantum=1.0,
        units="u",
        name=f"modes{seed}",
    )


def features(p: Problem) -> set[str]:
    """Which of the mode and tensor shapes under test ``p`` has."""
    out = set()
    if p.modes.multi_device:
        out.add("two-device mode")
    keys = [(int(p.modes.op[m]), p.modes.devices_of(m)) for m in range(p.num_modes)]
    if len(keys) != len(set(keys)):
        out.add("two precisions on one device")
    if any(p.tensors.consumers(t).size > 1 for t in range(p.tensors.num_tensors)):
        out.add("tensor with two consumers")
    pairs = list(zip(p.edge_src.tolist(), p.edge_dst.tolist(), strict=True))
    if len(pairs) != len(set(pairs)):
        out.add("two tensors between two ops")
    return out


def test_the_instances_cover_every_shape_under_test() -> None:
    seen: dict[str, int] = {}
    for seed in SEEDS:
        p = random_mode_problem(seed)
        assert p.n <= 5 and p.num_devices <= 3
        assert not p.is_device_table
        for f in features(p):
            seen[f] = seen.get(f, 0) + 1
    assert set(seen) == {
        "two-device mode",
        "two precisions on one device",
        "tensor with two consumers",
        "two tensors between two ops",
    }
    assert min(seen.values()) >= 8, seen


def test_brute_force_on_a_hand_computed_two_device_mode() -> None:
    # a (x only, 2) feeds b twice: t0 (1 unit to y) and t1 (3 units to y). b runs on x
    # alone in 6, or split over x+y in 2 but then waits for both tensors on y: 2 + 3 + 2.
    modes = Modes.build(2, [(0, (0,), 2.0), (1, (0,), 6.0), (1, (0, 1), 2.0)])
    tensors = Tensors.build(2, [(0, (1,), 1.0), (0, (1,), 3.0)])
    p = Problem.from_modes(
        names=["a", "b"],
        devices=["x", "y"],
        modes=modes,
        tensors=tensors,
        comm_inv_bandwidth=np.array([[0.0, 1.0], [1.0, 0.0]]),
        quantum=1.0,
    )
    assert brute_force(p) == 7
    plan = solve_cpsat(p, time_limit=20, seed=0, workers=1)
    assert plan.status == "optimal" and plan.makespan == 7.0
    assert plan.modes["b"].devices == ("x", "y")
    # the relaxation lets b run on x or y alone for 2, its inputs free on x: 4
    assert brute_force(p.relaxation()) == 4 <= lower_bound(p) <= 7


# ---------------------------------------------------------------------- the properties
def _check(plan: Plan, p: Problem) -> None:
    validate(plan, p)
    assert not plan.interrupted
    assert replay(p, plan) == round(plan.makespan), plan.solver


@pytest.mark.parametrize("seed", SEEDS)
def test_solvers_and_bounds_against_the_brute_force_over_modes(seed: int) -> None:
    p = random_mode_problem(seed)
    opt = brute_force(p)
    assert opt is not None

    exact = solve_cpsat(p, time_limit=20, seed=0, workers=1)
    _check(exact, p)
    assert exact.status == "optimal"
    assert round(exact.makespan) == opt

    port = solve_portfolio(p, time_limit=20, seed=0, workers=1)
    _check(port, p)
    assert port.status == "optimal"
    assert round(port.makespan) == opt

    for solver in (solve_heft, solve_peft, solve_cpop):
        plan = solver(p, time_limit=5, seed=0)
        _check(plan, p)
        assert plan.makespan >= opt, solver.name
        assert plan.lower_bound <= opt, solver.name
        proven = plan.makespan <= plan.lower_bound
        assert plan.status == ("optimal" if proven else "heuristic"), solver.name

    assert quick_lower_bound(p) <= lower_bound(p) <= opt
    for name, value in bound_report(p).items():
        assert value <= opt, name


@pytest.mark.parametrize("seed", SEEDS)
def test_the_relaxation_is_a_device_table_whose_optimum_is_no_higher(seed: int) -> None:
    p = random_mode_problem(seed)
    relaxed = p.relaxation()
    assert relaxed.is_device_table
    assert relaxed.relaxation() is relaxed
    assert relaxed.names == p.names and relaxed.devices == p.devices
    # each op may run on every device of every one of its modes, for the fastest of them
    for v in range(p.n):
        best: dict[int, int] = {}
        for m in p.modes.ops_modes(v).tolist():
            for x in p.modes.devices_of(m):
                best[x] = min(best.get(x, 1 << 60), int(p.mode_dur[m]))
        assert relaxed.allowed_devices[v] == tuple(sorted(best))
        assert [int(relaxed.dur[v, x]) for x in sorted(best)] == [best[x] for x in sorted(best)]
    opt, relaxed_opt = brute_force(p), brute_force(relaxed)
    assert opt is not None and relaxed_opt is not None
    assert relaxed_opt <= opt
    # the independent device-table brute force agrees on the relaxation
    assert brute_force_makespan(relaxed) == relaxed_opt


# ---------------------------------------------------------------------- device tables
def paired_tensor_problem(seed: int) -> Problem:
    """A device table where some producer sends two tensors to the same consumer."""
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(3, 6))
    d = int(rng.integers(1, 4))
    ex = rng.integers(1, 7, size=(n, d)).astype(float)
    ex[rng.random((n, d)) < 0.25] = np.inf
    ex[np.arange(n), rng.integers(0, d, size=n)] = rng.integers(1, 7, size=n)
    tensors: list[tuple[int, tuple[int, ...], float]] = [
        (0, (1,), float(rng.integers(0, 4))),
        (0, (1,), float(rng.integers(0, 4))),
    ]
    for u in range(n):
        for v in range(u + 1, n):
            if rng.random() < 0.4:
                tensors.append((u, (v,), float(rng.integers(0, 4))))
                if rng.random() < 0.5:
                    tensors.append((u, (v,), float(rng.integers(0, 4))))
    lat = rng.integers(0, 4, size=(d, d)).astype(float)
    np.fill_diagonal(lat, 0.0)
    return Problem.from_arrays(
        names=[f"v{i}" for i in range(n)],
        devices=[f"d{j}" for j in range(d)],
        exec_time=ex,
        tensors=tensors,
        comm_latency=lat,
        comm_inv_bandwidth=rng.integers(0, 2, size=(d, d)).astype(float),
        quantum=1.0,
        name=f"paired{seed}",
    )


def test_two_tensors_of_one_producer_are_not_two_producers() -> None:
    # a (5 units) sends b two tensors on one device: b starts at 5, not after a twice.
    p = Problem.from_arrays(
        names=["a", "b"],
        devices=["x"],
        exec_time=np.array([[5.0], [1.0]]),
        tensors=[(0, (1,), 1.0), (0, (1,), 1.0)],
        quantum=1.0,
    )
    assert brute_force_makespan(p) == 6
    assert quick_lower_bound(p) == lower_bound(p) == 6
    assert all(value <= 6 for value in bound_report(p).values())


@pytest.mark.parametrize("seed", range(30))
def test_bounds_hold_where_two_tensors_link_the_same_ops(seed: int) -> None:
    p = paired_tensor_problem(seed)
    assert p.is_device_table
    pairs = list(zip(p.edge_src.tolist(), p.edge_dst.tolist(), strict=True))
    assert len(pairs) > len(set(pairs))
    opt = brute_force_makespan(p)
    assert brute_force(p) == opt
    assert quick_lower_bound(p) <= lower_bound(p) <= opt
    for name, value in bound_report(p).items():
        assert value <= opt, name
    exact = solve_cpsat(p, time_limit=20, seed=0, workers=1)
    validate(exact, p)
    assert exact.status == "optimal" and round(exact.makespan) == opt


# ---------------------------------------------------------------------- only a split
def split_only_problem() -> Problem:
    """Op ``b`` runs only as a split over x+y (no single-device mode)."""
    modes = Modes.build(
        3,
        [
            (0, (0,), 3.0),
            (0, (1,), 2.0),
            (1, (0, 1), 2.0),
            (2, (0,), 1.0),
            (2, (0,), 2.0, 0.0, "fp16"),
            (2, (1,), 3.0),
        ],
    )
    tensors = Tensors.build(3, [(0, (1, 2), 4.0), (0, (1,), 2.0), (1, (2,), 1.0)])
    return Problem.from_modes(
        names=["a", "b", "c"],
        devices=["x", "y"],
        modes=modes,
        tensors=tensors,
        comm_latency=np.array([[0.0, 1.0], [1.0, 0.0]]),
        comm_inv_bandwidth=np.array([[0.0, 0.5], [0.5, 0.0]]),
        quantum=1.0,
    )


def test_an_op_with_only_a_split_is_solved_by_cpsat_and_heft() -> None:
    p = split_only_problem()
    assert not p.allowed[1].any()
    opt = brute_force(p)
    assert opt == 8
    exact = solve_cpsat(p, time_limit=20, seed=0, workers=1)
    _check(exact, p)
    assert exact.status == "optimal" and round(exact.makespan) == opt
    for solver in (solve_heft, solve_peft, solve_cpop):
        plan = solver(p, time_limit=5, seed=0)
        _check(plan, p)
        assert plan.makespan >= opt
    assert quick_lower_bound(p) <= lower_bound(p) <= opt


def test_portfolio_solves_an_op_with_only_a_split() -> None:
    p = split_only_problem()
    plan = solve_portfolio(p, time_limit=20, seed=0, workers=1)
    _check(plan, p)
    assert plan.status == "optimal" and round(plan.makespan) == 8


@pytest.mark.parametrize("seed", SEEDS)
def test_the_brute_force_schedules_pass_the_validator(seed: int) -> None:
    # the enumeration and the validator read the mode semantics the same way
    p = random_mode_problem(seed)
    for found in (search(p), search(p, first=True)):
        assert found is not None
        plan = as_plan(p, found)
        validate(plan, p)
        assert round(plan.makespan) == found.makespan == replay(p, plan)


def test_every_mode_choice_of_a_tiny_problem_is_enumerated() -> None:
    # the brute force's search space: with no edges and one device per mode, the optimum
    # is the best balance of the chosen modes' durations
    modes = Modes.build(3, [(v, (x,), float(2 + v + x)) for v in range(3) for x in range(2)])
    p = Problem.from_modes(
        names=["a", "b", "c"],
        devices=["x", "y"],
        modes=modes,
        tensors=Tensors.build(3, []),
        quantum=1.0,
    )
    durs = [[2 + v + x for x in range(2)] for v in range(3)]
    want = min(
        max(sum(durs[v][x] for v in range(3) if pick[v] == x) for x in range(2))
        for pick in itertools.product(range(2), repeat=3)
    )
    assert brute_force(p) == want
