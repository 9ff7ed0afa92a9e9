"""Device failures re-plan and still compute eager's outputs; op errors end runs cleanly."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from hetsched.errors import UsageError
from hetsched.exec import (
    DeviceFailure,
    ExecutionError,
    OpFailure,
    ReplanRequest,
    TransferLoss,
    execute,
    mask_devices,
    parse_fault,
    replan_list,
)
from hetsched.plan import plan_from_schedule
from hetsched.problem import Problem
from hetsched.schedule.latency.heuristics import solve_heft
from tests.exec.helpers import exported, spread_problem, worker_threads
from tests.families import random_problem


@pytest.fixture(scope="module")
def attention() -> tuple:
    ep, g, args = exported("attention")
    p = spread_problem(g, seed=1)
    return ep, g, args, p, solve_heft(p, time_limit=5, seed=0)


@pytest.mark.parametrize("frac", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("dev", ["dev0", "dev1", "dev2"])
def test_device_failure_mid_run_keeps_outputs(attention: tuple, dev: str, frac: float) -> None:
    ep, g, args, p, plan = attention
    r = execute(plan, p, graph=g, program=ep, inputs=args,
                faults=[DeviceFailure(dev, frac * plan.makespan)])  # fmt: skip
    assert r.outputs_match is True
    assert r.faults_seen == (f"{dev}@{frac * plan.makespan:g}",)
    assert len(r.replans) == 1
    t = frac * plan.makespan
    assert all(r.finish[x] <= t + 1e-12 for x, d in r.assignment.items() if d == dev)
    assert all(x.finish <= t + 1e-12 for x in r.runs if x.device == dev)
    assert set(r.start) == set(p.names)
    assert not worker_threads()


def test_device_failure_scaled_clock(attention: tuple) -> None:
    ep, g, args, p, plan = attention
    busiest = max(plan.ops_per_device(), key=plan.ops_per_device().get)
    r = execute(plan, p, graph=g, program=ep, inputs=args, clock="scaled", time_scale=0.5,
                faults=[f"{busiest}@{plan.makespan / 3}"])  # fmt: skip
    assert r.outputs_match is True and r.faults_seen and r.replans
    assert busiest not in {r.assignment[x] for x in r.assignment if r.start[x] > plan.makespan / 3}


def test_two_failures_and_late_failure() -> None:
    p = random_problem(3, n=16, family="layered", unsupported=0.0)
    plan = solve_heft(p, time_limit=5, seed=0)
    r = execute(plan, p, faults=["d0@3", "d1@6"])
    assert r.faults_seen == ("d0@3", "d1@6") and len(r.replans) == 2
    late = execute(plan, p, faults=[f"d0@{plan.makespan + 1}"])
    assert late.faults_seen == () and late.makespan == plan.makespan


def test_losing_every_device_is_an_error() -> None:
    p = random_problem(3, n=10, unsupported=0.0)
    plan = solve_heft(p, time_limit=5, seed=0)
    with pytest.raises(ExecutionError, match="re-planning"):
        execute(plan, p, faults=["d0@1", "d1@1", "d2@1"])
    assert not worker_threads()


def test_op_exception_stops_cleanly(attention: tuple) -> None:
    ep, g, args, p, plan = attention
    victim = sorted(plan.start, key=plan.start.get)[len(plan.start) // 2]
    t0 = time.perf_counter()
    with pytest.raises(ExecutionError, match=victim) as info:
        execute(plan, p, graph=g, program=ep, inputs=args, faults=[OpFailure(victim)],
                watchdog=5.0)  # fmt: skip
    assert info.value.op == victim and info.value.device == plan.assignment[victim]
    assert time.perf_counter() - t0 < 5.0
    assert not worker_threads()


def test_real_op_error_is_reported(attention: tuple) -> None:
    ep, g, _args, p, plan = attention
    bad = (torch.randn(2, 5, 7),)  # wrong feature size: the first linear raises
    with pytest.raises(ExecutionError, match="raised RuntimeError"):
        execute(plan, p, graph=g, program=ep, inputs=bad, check=False)
    assert not worker_threads()


def test_transfer_loss_retried_once_then_error() -> None:
    p = random_problem(5, n=12, family="layered")
    plan = solve_heft(p, time_limit=5, seed=0)
    t = plan.transfers[0]
    r = execute(plan, p, faults=[TransferLoss(t.src, t.dsts[0])])
    lost = [x for x in r.transfer_runs if x.status == "lost"]
    assert len(lost) == 1 and r.makespan >= plan.makespan
    assert (lost[0].transfer.tensor, lost[0].transfer.dst_device) == (t.tensor, t.dst_device)
    with pytest.raises(ExecutionError, match="lost twice"):
        execute(plan, p, faults=[TransferLoss(t.src, t.dsts[0], times=2)])
    r = execute(plan, p, faults=[f"transfer:{t.tensor}@{t.dst_device}"])
    lost = [x.transfer for x in r.transfer_runs if x.status == "lost"]
    assert [(x.tensor, x.dst_device) for x in lost] == [(t.tensor, t.dst_device)]
    with pytest.raises(ExecutionError, match="lost twice"):
        execute(plan, p, faults=[f"transfer:{t.tensor}@{t.dst_device}x2"])
    with pytest.raises(UsageError):
        execute(plan, p, faults=["transfer:nosuchtensor@d0"])
    assert not worker_threads()


def test_edge_loss_names_the_shared_transfer() -> None:
    """Two readers of one tensor on one device: one transfer; losing it by either edge
    loses that transfer, once."""
    p = Problem.from_arrays(
        names=["a", "b", "c"], devices=["x", "y"], exec_time=np.ones((3, 2)),
        tensors=[(0, (1, 2), 4.0)], comm_latency=np.array([[0.0, 2.0], [2.0, 0.0]]),
        quantum=1.0,
    )  # fmt: skip
    plan = plan_from_schedule(p, assign=[0, 1, 1], start=[0, 3, 4], solver="manual")
    assert len(plan.transfers) == 1
    for fault in ("transfer:a->c", "transfer:a->b"):
        r = execute(plan, p, faults=[fault])
        runs = [(x.transfer.tensor, x.transfer.dst_device, x.status) for x in r.transfer_runs]
        assert runs == [(p.tensors.names[0], "y", "lost"), (p.tensors.names[0], "y", "done")]
        assert r.transfers[0].dsts == ("b", "c") and r.makespan == plan.makespan + 2


def test_parse_and_replan_helpers() -> None:
    assert parse_fault("gpu@0.5") == DeviceFailure("gpu", 0.5)
    assert parse_fault("transfer:x@gpu") == TransferLoss(tensor="x", device="gpu")
    assert str(parse_fault("transfer:a->bx3")) == "transfer:a->bx3"
    with pytest.raises(UsageError):
        parse_fault("gpu at noon")
    p = random_problem(0, n=6, unsupported=0.0)
    q = mask_devices(p, ["d1"])
    assert not q.allowed[:, 1].any() and q.allowed[:, 0].all()
    req = ReplanRequest(problem=q, time=0.0, run=p.names, copies={})
    plan = replan_list(req)
    assert set(plan.assignment) == set(p.names) and "d1" not in plan.assignment.values()
