"""The executor reproduces plans exactly in virtual time and computes eager's outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hetsched.errors import PlanError, UsageError
from hetsched.exec import execute
from hetsched.graph.formats import load
from hetsched.plan import Transfer
from hetsched.problem import Problem
from hetsched.schedule.latency.cpsat import solve_cpsat
from hetsched.schedule.latency.heuristics import solve_cpop, solve_heft, solve_peft
from tests.exec.helpers import check_order, exported, spread_problem, worker_threads
from tests.families import FAMILIES, random_problem
from tests.paths import DATA

SOLVERS = {"heft": solve_heft, "peft": solve_peft, "cpop": solve_cpop}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_virtual_makespan_equals_plan(family: str, seed: int, solver: str) -> None:
    p = random_problem(seed, n=12, family=family)
    plan = SOLVERS[solver](p, time_limit=5, seed=0)
    r = execute(plan, p)
    assert r.makespan == plan.makespan
    assert dict(r.start) == dict(plan.start) and dict(r.finish) == dict(plan.finish)
    assert sorted(_key(t) for t in r.transfers) == sorted(_key(t) for t in plan.transfers)
    assert dict(r.memory) == dict(plan.memory)
    check_order(r, p)
    assert not worker_threads()


def _key(t: Transfer) -> tuple:
    return (t.tensor, t.src, t.dsts, t.src_device, t.dst_device, t.start, t.finish)


def test_virtual_reproduces_cpsat_and_link_contention() -> None:
    p = random_problem(4, n=10, family="layered")
    plan = solve_cpsat(p, time_limit=5, seed=0, workers=1)
    assert execute(plan, p).makespan == plan.makespan
    g_plan = solve_heft(p, time_limit=5, seed=0)
    for policy in ("plan", "asap"):  # heft plans are left-justified: asap keeps them
        assert execute(g_plan, p, policy=policy).makespan == g_plan.makespan


def test_stg_graph_on_a_platform() -> None:
    g = load(DATA / "stg50" / "rand0000.stg")
    p = Problem.build(g, "edge-soc")
    plan = solve_heft(p, time_limit=5, seed=0)
    r = execute(plan, p)
    assert r.makespan == plan.makespan and r.outputs is None and r.outputs_match is None
    assert set(r.utilization) == set(p.devices)
    assert 0 < max(r.utilization.values()) <= 1 + 1e-9


@pytest.mark.parametrize("model", ["mlp", "attention"])
@pytest.mark.parametrize("solver", ["heft", "cpsat"])
def test_outputs_equal_eager(model: str, solver: str) -> None:
    ep, g, args = exported(model)
    p = spread_problem(g, seed=1)
    if solver == "heft":
        plan = solve_heft(p, time_limit=5, seed=0)
    else:
        plan = solve_cpsat(p, time_limit=3, seed=0, workers=1)
    assert len(set(plan.assignment.values())) >= 2
    r = execute(plan, p, graph=g, program=ep, inputs=args)
    assert r.outputs_match is True
    torch.testing.assert_close(r.outputs, ep.module()(*args))
    assert r.makespan == plan.makespan
    assert dict(r.memory) == dict(plan.memory)
    assert r.dispatch_median_us >= 0
    assert not worker_threads()


@pytest.mark.parametrize("name", ["mlp", "gpt", "resnet"])
def test_zoo_models_tiny(name: str) -> None:
    from hetsched.graph import zoo

    model, args = zoo.build(name, "tiny")
    ep = torch.export.export(model, args)
    from hetsched.graph.torch_import import from_exported

    g = from_exported(ep, name=name)
    p = spread_problem(g, seed=2)
    plan = solve_heft(p, time_limit=5, seed=0)
    assert len(set(plan.assignment.values())) >= 2
    r = execute(plan, p, graph=g, program=ep, inputs=args)
    assert r.outputs_match is True
    torch.testing.assert_close(r.outputs, model(*args))


@pytest.mark.parametrize("rep", range(4))
def test_scaled_clock_respects_dependencies(rep: int) -> None:
    ep, g, args = exported("attention")
    p = spread_problem(g, seed=rep)
    plan = solve_heft(p, time_limit=5, seed=0)
    r = execute(plan, p, graph=g, program=ep, inputs=args, clock="scaled", time_scale=0.5)
    assert r.outputs_match is True
    check_order(r, p)
    for name in plan.start:  # nothing starts before its planned time
        assert r.start[name] >= plan.start[name] - 1e-12
    assert r.makespan >= plan.makespan
    assert not worker_threads()


def test_scaled_asap_without_program() -> None:
    p = random_problem(1, n=20, family="layered")
    plan = solve_heft(p, time_limit=5, seed=0)
    r = execute(plan, p, clock="scaled", time_scale=2e-4, policy="asap")
    check_order(r, p)
    assert r.clock == "scaled" and r.wall_time > 0


def test_bad_arguments() -> None:
    p = random_problem(0, n=6)
    plan = solve_heft(p, time_limit=5, seed=0)
    with pytest.raises(UsageError):
        execute(plan, p, clock="sundial")
    with pytest.raises(UsageError):
        execute(plan, p, time_scale=0)
    with pytest.raises(UsageError):
        execute(plan, p, faults=["nosuchdev@1"])
    other = random_problem(1, n=7)
    with pytest.raises(PlanError):
        execute(plan, other)
    ep, g, args = exported("mlp")
    with pytest.raises(UsageError):
        execute(plan, p, program=ep)  # no inputs
    q = spread_problem(g)
    with pytest.raises(UsageError):
        execute(solve_heft(q, time_limit=5, seed=0), q, program=ep, inputs=(*args, *args))


def test_result_fields() -> None:
    p = random_problem(2, n=10)
    plan = solve_heft(p, time_limit=5, seed=0)
    r = execute(plan, p)
    s = r.summary()
    assert s["planned_makespan"] == plan.makespan and s["slowdown"] == 1.0
    assert len(r.runs) == p.n and all(x.status == "done" for x in r.runs)
    busy = sum(x.duration for x in r.runs)
    assert np.isclose(sum(r.utilization.values()) * r.makespan, busy)


def test_graph_module_program() -> None:
    ep, g, args = exported("attention")
    p = spread_problem(g, seed=3)
    plan = solve_heft(p, time_limit=5, seed=0)
    gm = ep.module()  # parameters as get_attr nodes, same compute node names
    r = execute(plan, p, graph=g, program=gm, inputs=args)
    assert r.outputs_match is True
    torch.testing.assert_close(tuple(r.outputs), tuple(ep.module()(*args)))


def test_a_view_of_a_buffer_read_by_two_ops_runs_in_either_order() -> None:
    """The importer gives a buffer's view to its first reader in fx order; a plan that runs
    the other reader first must still run (the view depends on parameters only)."""
    torch = pytest.importorskip("torch")
    from hetsched.exec import execute
    from hetsched.graph.torch_import import from_exported
    from hetsched.plan import plan_from_schedule
    from hetsched.problem import Problem
    from hetsched.schedule.latency.listsched import retime

    class TwoReaders(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("m", torch.randn(8, 8))

        def forward(self, x):
            v = self.m.t()  # a view of a buffer, read twice
            return x @ v + torch.relu(x) @ v

    model, args = TwoReaders(), (torch.randn(2, 8),)
    ep = torch.export.export(model, args)
    g = from_exported(ep, name="two-readers")
    p = Problem.build(g, "homogeneous-2")
    first, second = [n.name for n in g.nodes if n.category == "matmul"]
    names = [n.name for n in g.nodes]
    # the second reader first: the first one just before the op that reads its result
    rest = [i for i in range(p.n) if names[i] != first]
    reader = min(i for i in rest if first in g.predecessors(names[i]))
    order = [*rest[: rest.index(reader)], names.index(first), *rest[rest.index(reader) :]]
    assign = np.zeros(p.n, dtype=np.int64)
    start, xfer = retime(p, assign, order)
    plan = plan_from_schedule(p, assign=assign, start=start, solver="manual", transfer_start=xfer)
    assert plan.start[second] < plan.start[first]
    result = execute(plan, p, graph=g, program=ep, inputs=args, clock="virtual")
    assert result.outputs_match
