"""The executor tracks real allocations and frees: its peaks are the plan's liveness peaks.

The reference is :func:`hetsched.plan.memory.memory_profile` on the times the executor
realized (and ``plan.memory``, the same function on the planned times): the executor's
own account comes from the events it ran, buffer by buffer.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest

from hetsched.exec import ExecutionResult, execute, replan_list
from hetsched.exec.memory import END, DeviceMemory
from hetsched.exec.replan import ReplanRequest, mask_devices
from hetsched.plan import Plan, mode_ids, plan_from_schedule, static_usage, validate
from hetsched.plan.memory import live_intervals, memory_profile, peaks
from hetsched.problem import Modes, Problem, Tensors
from hetsched.schedule.latency.heuristics import solve_heft
from hetsched.schedule.latency.listsched import retime_modes
from tests.exec.helpers import check_order, worker_threads

ZOO = ["gpt", "resnet", "unet", "mamba", "mlp"]


def run_profile(r: ExecutionResult, p: Problem, modes: np.ndarray) -> dict[str, float]:
    """``memory_profile`` of what a virtual run realized: its op times and, per transfer,
    its first attempt's start (the buffer's allocation) and its delivery."""
    q = p.quantum
    tid = {x: t for t, x in enumerate(p.tensors.names)}
    first: dict[tuple[int, int], float] = {}
    for x in r.transfer_runs:
        key = (tid[x.transfer.tensor], p.device_index[x.transfer.dst_device])
        first[key] = min(first.get(key, math.inf), round(x.transfer.start / q))
    sends = {
        (tid[x.tensor], p.device_index[x.dst_device]): (
            first[tid[x.tensor], p.device_index[x.dst_device]],
            round(x.finish / q),
            p.device_index[x.src_device],
        )
        for x in r.transfers
    }
    start = [round(r.start[x] / q) for x in p.names]
    finish = [round(r.finish[x] / q) for x in p.names]
    peak = memory_profile(p, modes, start, finish, sends).peak
    return {p.devices[d]: float(peak[d]) for d in range(p.num_devices)}


def spread_plan(p: Problem, seed: int) -> Plan:
    """A random mode per op, each op as early as it can go in topological order."""
    rng = np.random.default_rng(seed)
    modes = np.array([int(rng.choice(p.modes.ops_modes(v))) for v in range(p.n)])
    start, xfer = retime_modes(p, modes, list(range(p.n)))
    plan = plan_from_schedule(p, modes=modes, start=start, solver="manual", transfer_start=xfer)
    validate(plan, p)
    return plan


def check_run(plan: Plan, p: Problem, **kw: object) -> ExecutionResult:
    """Execute ``plan`` on the virtual clock: peaks equal the plan's and the run's profile."""
    r = execute(plan, p, **kw)  # type: ignore[arg-type]
    assert dict(r.memory) == run_profile(r, p, mode_ids(plan, p))
    if kw.get("policy", "plan") == "plan":
        assert dict(r.memory) == dict(plan.memory)
    check_order(r, p)
    assert not worker_threads()
    return r


# ---------------------------------------------------------------------- zoo models
@pytest.fixture(scope="module")
def zoo_problems() -> dict[str, Problem]:
    from hetsched.api import build_problem
    from hetsched.graph import zoo

    return {name: build_problem(zoo.graph(name, "tiny"), "edge-soc") for name in ZOO}


@pytest.mark.parametrize("name", ZOO)
def test_zoo_tiny_peaks_equal_the_plan(zoo_problems: dict[str, Problem], name: str) -> None:
    p = zoo_problems[name]
    check_run(solve_heft(p, time_limit=2, seed=0), p)
    plan = spread_plan(p, seed=0)
    assert plan.transfers
    check_run(plan, p)
    # tensors die: some device holds less at its peak than everything it ever stores
    static = static_usage(p, mode_ids(plan, p))
    assert any(plan.memory[d] < static[i] for i, d in enumerate(p.devices))


# ---------------------------------------------------------------------- random problems
def random_weights_problem(seed: int, *, everywhere: bool = False) -> Problem:
    """<= 6 ops on <= 3 devices: two-device modes, two precisions on a device, resident
    weights below each mode's memory (so outputs have bytes), tensors with two consumers,
    two tensors between one pair of ops, zero-byte tensors, zero-length ops. Integer units.
    ``everywhere``: every op runs on every device (a failure leaves it somewhere to go)."""
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(3, 7)), int(rng.integers(2, 4))
    rows: list[tuple[object, ...]] = []

    def mode(v: int, on: tuple[int, ...], time: float, precision: str = "native") -> None:
        mem = int(rng.integers(1, 9))
        rows.append((v, on, time, float(mem), precision, "", float(rng.integers(0, mem + 1))))

    for v in range(n):
        on = sorted(rng.choice(d, size=int(rng.integers(1, d + 1)), replace=False).tolist())
        on = list(range(d)) if everywhere else on
        for x in on:
            mode(v, (x,), float(rng.integers(0, 6)))
        if rng.random() < 0.4:
            mode(v, (int(on[0]),), float(rng.integers(1, 4)), "fp16")
        if v == 0 or rng.random() < 0.4:
            mode(v, tuple(sorted(rng.choice(d, size=2, replace=False).tolist())), 2.0)
    tensors: list[tuple[int, tuple[int, ...], float]] = []
    for u in range(n - 1):
        succ = [v for v in range(u + 1, n) if rng.random() < 0.5]
        if not succ:
            continue
        if len(succ) >= 2 and rng.random() < 0.6:
            tensors.append((u, tuple(succ[:2]), float(rng.integers(0, 6))))
            succ = succ[2:]
        tensors += [(u, (v,), float(rng.integers(0, 6))) for v in succ]
        if rng.random() < 0.3:
            tensors.append((u, (u + 1,), float(rng.integers(0, 4))))
    lat = rng.integers(0, 3, size=(d, d)).astype(float)
    np.fill_diagonal(lat, 0.0)
    return Problem.from_modes(
        names=[f"op{i}" for i in range(n)],
        devices=[f"d{j}" for j in range(d)],
        modes=Modes.build(n, rows),
        tensors=Tensors.build(n, tensors),
        comm_latency=lat,
        comm_inv_bandwidth=rng.integers(0, 2, size=(d, d)).astype(float) * (1 - np.eye(d)),
        quantum=1.0,
        units="u",
        name=f"weights{seed}",
    )


@pytest.mark.parametrize("seed", range(40))
def test_random_problems_peaks_equal_the_plan(seed: int) -> None:
    p = random_weights_problem(seed)
    for k in range(3):
        check_run(spread_plan(p, seed=seed * 3 + k), p)
    check_run(solve_heft(p, time_limit=2, seed=0), p)


@pytest.mark.parametrize("seed", range(10))
def test_asap_and_lost_transfers_follow_what_ran(seed: int) -> None:
    """Other times than the plan's (ASAP, a transfer retried): the peak follows the run; a
    retried transfer keeps one buffer from its first start to its delivery."""
    p = random_weights_problem(seed)
    plan = spread_plan(p, seed=seed)
    check_run(plan, p, policy="asap")
    if plan.transfers:
        x = plan.transfers[0]
        r = check_run(plan, p, faults=[f"transfer:{x.tensor}@{x.dst_device}"])
        assert len(r.transfer_runs) == len(plan.transfers) + 1


# ---------------------------------------------------------------------- hand-made cases
def chain_problem() -> Problem:
    """a -> b -> c on x (outputs 10 each), c -> d on y (tensor 4, 2 units over the link);
    d's weights 5 and outputs 3; a, b, c have weights 1."""
    rows = [
        (0, (0,), 2.0, 11.0, "native", "", 1.0),
        (1, (0,), 2.0, 11.0, "native", "", 1.0),
        (2, (0,), 2.0, 11.0, "native", "", 1.0),
        (3, (1,), 2.0, 8.0, "native", "", 5.0),
    ]
    return Problem.from_modes(
        names=["a", "b", "c", "d"],
        devices=["x", "y"],
        modes=Modes.build(4, rows),
        tensors=Tensors.build(4, [(0, (1,), 10.0), (1, (2,), 10.0), (2, (3,), 4.0)]),
        comm_latency=np.array([[0.0, 2.0], [2.0, 0.0]]),
        quantum=1.0,
        units="u",
    )


def test_freeing_keeps_the_peak_below_the_static_envelope() -> None:
    p = chain_problem()
    plan = plan_from_schedule(p, assign=[0, 0, 0, 1], start=[0, 2, 4, 8], solver="manual")
    # x: weights 3; a's outputs [0, 4), b's [2, 6), c's [4, 8) until its transfer ends:
    # frees at 4 come before c's allocation at 4, so x peaks at 3 + 20, not 3 + 30
    # y: d's weights 5, the received tensor [6, 10), d's outputs [8, 10)
    assert static_usage(p, mode_ids(plan, p)).tolist() == [33.0, 12.0]
    r = check_run(plan, p)
    assert dict(r.memory) == dict(plan.memory) == {"x": 23.0, "y": 12.0}
    late = plan_from_schedule(p, assign=[0, 0, 0, 1], start=[0, 2, 4, 9], solver="manual")
    assert dict(check_run(late, p).memory) == {"x": 23.0, "y": 12.0}


def test_same_instant_free_before_allocation_on_a_shared_device() -> None:
    """Two readers end where the next op starts, on the devices of a two-device mode."""
    rows = [
        (0, (0, 1), 2.0, 6.0, "native", "", 0.0),
        (1, (0,), 3.0, 4.0, "native", "", 0.0),
        (2, (1,), 3.0, 4.0, "native", "", 0.0),
        (3, (0, 1), 1.0, 5.0, "native", "", 0.0),
    ]
    p = Problem.from_modes(
        names=["s", "l", "r", "j"],
        devices=["x", "y"],
        modes=Modes.build(4, rows),
        tensors=Tensors.build(4, [(0, (1, 2), 6.0), (1, (3,), 4.0), (2, (3,), 4.0)]),
        comm_latency=np.array([[0.0, 1.0], [1.0, 0.0]]),
        quantum=1.0,
        units="u",
    )
    plan = spread_plan(p, seed=0)
    r = check_run(plan, p)
    # s 0-2 on x+y, l 2-5 on x, r 2-5 on y, their tensors cross 5-6, j 6-7 on x+y. On x:
    # s's outputs (6) die at 5, where r's tensor (4) arrives: 6 + 4 + 4 = 14 if the
    # allocation came first; l's outputs 4 + the received 4 + j's outputs 5 = 13 at 6
    assert dict(r.memory) == {"x": 13.0, "y": 13.0}
    static = static_usage(p, mode_ids(plan, p)).tolist()
    assert static == [19.0, 19.0]


def test_scaled_clock_peaks_follow_the_clock() -> None:
    p = chain_problem()
    plan = plan_from_schedule(p, assign=[0, 0, 0, 1], start=[0, 2, 4, 8], solver="manual")
    r = execute(plan, p, clock="scaled", time_scale=2e-3)
    check_order(r, p)
    assert r.memory["y"] == 12.0 and 23.0 <= r.memory["x"] <= 33.0


# ---------------------------------------------------------------------- failures
class _Recorded(DeviceMemory):
    """The executor's tracker, kept for inspection."""

    made: ClassVar[list[DeviceMemory]] = []

    def __init__(self, num_devices: int) -> None:
        super().__init__(num_devices)
        _Recorded.made.append(self)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("frac", [0.0, 0.3, 0.6, 0.9])
def test_device_failure_keeps_the_tracker_sane(
    seed: int, frac: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = random_weights_problem(seed, everywhere=True)
    plan = spread_plan(p, seed=seed)
    busiest = max(plan.ops_per_device(), key=plan.ops_per_device().__getitem__)
    monkeypatch.setattr("hetsched.exec.executor.DeviceMemory", _Recorded)
    _Recorded.made.clear()
    r = execute(plan, p, faults=[f"{busiest}@{frac * plan.makespan}"])
    assert r.faults_seen and set(r.start) == set(p.names)
    (mem,) = _Recorded.made
    spans = mem.intervals
    assert all(x.nbytes >= 0 and x.begin <= x.end < math.inf for x in spans)
    assert all(x.end <= r.makespan / p.quantum for x in spans)
    fail = frac * plan.makespan / p.quantum
    assert all(x.end <= fail for x in spans if x.device == p.device_index[busiest])
    assert dict(r.memory) == dict(zip(p.devices, mem.peak, strict=True))
    assert all(math.isfinite(x) and x >= 0 for x in r.memory.values())
    # the failed device held a prefix of the plan's run, and lost it at the failure
    assert r.memory[busiest] <= plan.memory[busiest]
    late = execute(plan, p, faults=[f"{busiest}@{plan.makespan + 1}"])
    assert dict(late.memory) == dict(plan.memory)
    assert not worker_threads()


def test_tracker_after_a_failure_and_a_rerun() -> None:
    mem = DeviceMemory(2)
    for key, user in [
        (("outputs", 0, 0), ("op", 0, -1)),
        (("outputs", 0, 0), ("op", 1, -1)),
        (("outputs", 0, 0), ("xfer", 0, 1)),
        (("received", 0, 1), ("xfer", 0, 1)),
        (("received", 0, 1), ("op", 2, -1)),
        (("outputs", 1, 0), ("op", 1, -1)),
        (("weights", 7, 1), END),
    ]:
        mem.need(key, user)
    mem.allocate(("weights", 7, 1), 2.0, 2, 0.0)
    mem.op_started(0, (0,), 5.0, 0.0)
    mem.op_finished(0, 2.0)
    mem.transfer_started(0, 1, 3.0, 2.0)
    mem.op_started(1, (0,), 4.0, 2.0)
    mem.release(("op", 9, -1), 1.0)  # a user nobody named: nothing happens
    mem.op_lost(1, (0,), 3.0)  # device 0 fails at 3, mid-transfer
    mem.transfer_finished(0, 1, 3.0)
    mem.op_finished(1, 4.0)  # released twice: nothing more happens
    mem.interrupt(3.0, 0)
    # op 2 never ran: the buffer on device 1 is freed at the failure; a re-plan reads it
    mem.need_copy(("received", 0, 1), ("op", 2, -1), 3.0, 0, 3.0)
    mem.need(("outputs", 2, 1), ("op", 2, -1))
    mem.op_started(2, (1,), 1.0, 4.0)
    mem.op_finished(2, 6.0)
    mem.close(6.0)
    spans = sorted((x.what, x.item, x.device, x.begin, x.end) for x in mem.intervals)
    assert spans == [
        ("outputs", 0, 0, 0.0, 3.0),
        ("outputs", 1, 0, 2.0, 3.0),
        ("outputs", 2, 1, 4.0, 6.0),
        ("received", 0, 1, 2.0, 6.0),  # kept on: still held when the phase resumed
        ("weights", 2, 1, 0.0, 6.0),
    ]
    assert mem.peak == [9.0, 6.0]


def test_peak_of_matches_memory_profile_on_the_plans_intervals() -> None:
    for seed in range(10):
        p = random_weights_problem(seed)
        plan = spread_plan(p, seed=seed)
        m = mode_ids(plan, p)
        start = [round(plan.start[x]) for x in p.names]
        finish = [round(plan.finish[x]) for x in p.names]
        tid = {x: t for t, x in enumerate(p.tensors.names)}
        sends = {
            (tid[x.tensor], p.device_index[x.dst_device]): (
                x.start,
                x.finish,
                p.device_index[x.src_device],
            )
            for x in plan.transfers
        }
        ref = memory_profile(p, m, start, finish, sends).peak.tolist()
        assert peaks(live_intervals(p, m, start, finish, sends), p.num_devices)[0].tolist() == ref


# ---------------------------------------------------------------------- re-plans
def test_replan_memory_is_the_live_peak() -> None:
    """A re-plan of every op from time 0 reports what a plan of the same schedule does; one
    that moves a survivor's copy counts its receive buffer while it lives."""
    p = chain_problem()
    new = replan_list(ReplanRequest(problem=p, time=0.0, run=tuple(p.names), copies={}))
    m = mode_ids(new, p)
    starts = [round(new.start[x]) for x in p.names]
    tid = {x: t for t, x in enumerate(p.tensors.names)}
    xs = {(tid[x.tensor], p.device_index[x.dst_device]): round(x.start) for x in new.transfers}
    same = plan_from_schedule(p, modes=m, start=starts, solver="manual", transfer_start=xs)
    assert dict(new.memory) == dict(same.memory)
    # z failed; x is busy until 20: c re-runs on y, from b's copy on x moved to y (5-7)
    rows = [
        (0, (0,), 2.0, 11.0, "native", "", 1.0),
        (1, (0,), 2.0, 11.0, "native", "", 1.0),
        (2, (0,), 2.0, 11.0, "native", "", 1.0),
        (2, (1,), 2.0, 11.0, "native", "", 1.0),
        (2, (2,), 2.0, 11.0, "native", "", 1.0),
        (3, (1,), 2.0, 8.0, "native", "", 5.0),
    ]
    p2 = Problem.from_modes(
        names=["a", "b", "c", "d"],
        devices=["x", "y", "z"],
        modes=Modes.build(4, rows),
        tensors=Tensors.build(4, [(0, (1,), 10.0), (1, (2,), 10.0), (2, (3,), 4.0)]),
        comm_latency=np.where(np.eye(3, dtype=bool), 0.0, 2.0),
        quantum=1.0,
        units="u",
    )
    tb = p2.tensors.names[1]
    req = ReplanRequest(
        problem=mask_devices(p2, ["z"]), time=5.0, run=("c", "d"), copies={tb: {"x": 4.0}},
        device_free={"x": 20.0}, failed=("z",),
    )  # fmt: skip
    new = replan_list(req)
    assert dict(new.assignment) == {"c": "y", "d": "y"}
    assert [(x.tensor, x.dst_device, x.start, x.finish) for x in new.transfers] == [
        (tb, "y", 5.0, 7.0)
    ]
    # y: weights 1 + 5; b's copy [5, 9); c's outputs [7, 11) (d reads them); d's [9, 11)
    assert dict(new.memory) == {"x": 0.0, "y": 26.0, "z": 0.0}
