"""Tensors move once per device, and multi-device modes hold all their devices, in runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hetsched.exec import execute, simulate
from hetsched.exec.trace import chrome_trace
from hetsched.graph.torch_import import from_exported
from hetsched.plan import Plan, mode_array, plan_from_schedule, validate
from hetsched.problem import Modes, ModeSpec, Problem, Tensors
from hetsched.schedule.latency.listsched import retime_modes
from tests.exec.helpers import check_order, spread_problem, worker_threads


class Fan(torch.nn.Module):
    """One tensor (``linear``'s output) read by two ops."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        return torch.relu(h) + torch.sigmoid(h)


def _plan(p: Problem, modes: np.ndarray) -> Plan:
    """The earliest schedule of ``modes`` in topological order."""
    start, xfer = retime_modes(p, modes, list(range(p.n)))
    plan = plan_from_schedule(p, modes=modes, start=start, solver="manual", transfer_start=xfer)
    validate(plan, p)
    return plan


@pytest.mark.parametrize("clock", ["virtual", "scaled"])
def test_tensor_read_twice_on_a_remote_device_moves_once(clock: str) -> None:
    torch.manual_seed(0)
    model, args = Fan().eval(), (torch.randn(4, 8),)
    ep = torch.export.export(model, args)
    g = from_exported(ep, name="fan")
    p = spread_problem(g, seed=0, devices=2)
    t = p.tensors.names.index("linear")
    assert sorted(p.names[c] for c in p.tensors.consumers(t)) == ["relu", "sigmoid"]
    assign = [0 if x == "linear" else 1 for x in p.names]
    plan = _plan(p, mode_array(p, assign=assign))
    moved = [x for x in plan.transfers if x.tensor == "linear"]
    assert len(moved) == 1 and sorted(moved[0].dsts) == ["relu", "sigmoid"]
    r = execute(plan, p, graph=g, program=ep, inputs=args, clock=clock, time_scale=0.5)
    assert r.outputs_match is True
    torch.testing.assert_close(r.outputs, model(*args))
    runs = [x for x in r.transfer_runs if x.transfer.tensor == "linear"]
    assert len(runs) == 1 and sorted(runs[0].transfer.dsts) == ["relu", "sigmoid"]
    assert len(r.transfers) == len(plan.transfers)
    check_order(r, p)
    if clock == "virtual":
        assert r.makespan == plan.makespan
        assert dict(r.start) == dict(plan.start) and dict(r.finish) == dict(plan.finish)
        assert dict(r.memory) == dict(plan.memory)
    assert not worker_threads()


def test_two_device_mode_computes_once_with_real_numerics() -> None:
    torch.manual_seed(0)
    model, args = Fan().eval(), (torch.randn(4, 8),)
    ep = torch.export.export(model, args)
    g = from_exported(ep, name="fan")
    base = spread_problem(g, seed=0, devices=3)
    rows = [(v, (d,), base.exec_time[v, d], 64.0) for v in range(base.n) for d in range(3)]
    rows.append((base.index["linear"], (0, 1), 1e-4, 64.0))
    p = Problem.from_modes(
        names=base.names, devices=base.devices, modes=Modes.build(base.n, rows),
        tensors=base.tensors, comm_latency=np.where(np.eye(3, dtype=bool), 0.0, 5e-5),
        name="fan",
    )  # fmt: skip
    where = {"linear": ("dev0", "dev1"), "relu": ("dev1",), "sigmoid": ("dev2",), "add": ("dev0",)}
    plan = _plan(p, np.array([p.mode_of(v, ModeSpec(where[x])) for v, x in enumerate(p.names)]))
    r = execute(plan, p, graph=g, program=ep, inputs=args)
    assert r.outputs_match is True
    torch.testing.assert_close(r.outputs, model(*args))
    assert r.makespan == plan.makespan and dict(r.start) == dict(plan.start)
    assert dict(r.memory) == dict(plan.memory)
    moved = sorted((x.tensor, x.src_device, x.dst_device) for x in r.transfers)
    # linear's output is on dev0 and dev1 when it ends: relu reads it on dev1 with no transfer
    assert moved == [
        ("linear", "dev0", "dev2"),
        ("relu", "dev1", "dev0"),
        ("sigmoid", "dev2", "dev0"),
    ]


def split_problem() -> Problem:
    """Four ops on x, y, z; ``b`` may run on y and z together; ``a``'s tensor feeds b and c."""
    modes = Modes.build(
        4,
        [
            (0, (0,), 2.0, 10.0),
            (1, (1, 2), 3.0, 5.0),
            (1, (0,), 6.0, 5.0),
            (2, (1,), 2.0, 3.0),
            (2, (2,), 2.0, 3.0),
            (3, (0,), 1.0, 1.0),
            (3, (1, 2), 0.5, 1.0),
        ],
    )
    tensors = Tensors.build(4, [(0, (1, 2), 8.0, "ta"), (1, (3,), 4.0, "tb"), (2, (3,), 2.0, "tc")])
    lat = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    return Problem.from_modes(
        names=["a", "b", "c", "d"], devices=["x", "y", "z"], modes=modes, tensors=tensors,
        comm_latency=lat, quantum=1.0, units="u", name="split",
    )  # fmt: skip


def split_plan(p: Problem) -> Plan:
    specs = [ModeSpec(("x",)), ModeSpec(("y", "z")), ModeSpec(("z",)), ModeSpec(("x",))]
    return _plan(p, np.array([p.mode_of(v, s) for v, s in enumerate(specs)]))


def test_two_device_mode_runs_on_the_plan_timeline() -> None:
    p = split_problem()
    plan = split_plan(p)
    # a 0-2 on x; ta to y 2-3 and to z 2-4 (read there by b and c); b 4-7 on y+z; c 7-9 on z
    assert (plan.start["b"], plan.finish["b"], plan.start["c"], plan.makespan) == (4, 7, 7, 12)
    assert sorted((x.tensor, x.dst_device) for x in plan.transfers) == [
        ("ta", "y"), ("ta", "z"), ("tb", "x"), ("tc", "x"),
    ]  # fmt: skip
    for clock in ("virtual", "scaled"):
        r = execute(plan, p, clock=clock, time_scale=2e-3)
        check_order(r, p)
        assert r.modes["b"] == ("y", "z") and r.assignment["b"] == "y"
        assert [x.devices for x in r.runs if x.op == "b"] == [("y", "z")]
        assert not worker_threads()
    r = execute(plan, p)
    assert r.makespan == plan.makespan
    assert dict(r.start) == dict(plan.start) and dict(r.finish) == dict(plan.finish)
    key = sorted(
        (x.tensor, x.dsts, x.src_device, x.dst_device, x.start, x.finish) for x in plan.transfers
    )
    assert (
        sorted(
            (x.tensor, x.dsts, x.src_device, x.dst_device, x.start, x.finish) for x in r.transfers
        )
        == key
    )
    assert dict(r.memory) == dict(plan.memory) == {"x": 17.0, "y": 13.0, "z": 16.0}
    assert r.utilization["y"] == pytest.approx(3 / 12) and r.utilization["z"] == pytest.approx(
        5 / 12
    )
    assert float(simulate(plan, p, policy="plan").makespan[0]) == plan.makespan
    bars = [(e["name"], e["args"]["row"]) for e in chrome_trace(r)["traceEvents"] if e["ph"] == "X"]
    assert ("b", "y") in bars and ("b", "z") in bars and ("ta@z", "x->z") in bars


def test_failure_during_a_two_device_op() -> None:
    p = split_problem()
    plan = split_plan(p)
    r = execute(plan, p, faults=["z@5"])
    lost = [(x.op, x.devices) for x in r.runs if x.status == "lost"]
    assert lost == [("b", ("y", "z"))]
    assert r.faults_seen == ("z@5",) and len(r.replans) == 1
    assert all("z" not in r.modes[x] for x in ("b", "c", "d"))
    assert r.start["b"] >= 5
    check_order(r, p)
    assert not worker_threads()
