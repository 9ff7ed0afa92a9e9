"""One-port transfers (issue 22): a device sends one transfer and receives one at a time. Plans
of every solver that models links validate, and CP-SAT equals an exhaustive search over
orders of ops *and* transfers written here."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hetsched.errors import PlanError
from hetsched.plan import plan_from_schedule, validate
from hetsched.problem import Problem
from hetsched.solver import get_solver


def fan_out(seed: int) -> Problem:
    """One producer feeding three consumers, plus a random extra edge, on 2-3 devices: a
    device fanning out tensors is where one-port binds."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 4))
    n = 5
    ex = rng.integers(1, 5, size=(n, d)).astype(float)
    edges = [(0, 1, float(rng.integers(1, 4))), (0, 2, float(rng.integers(1, 4))),
             (0, 3, float(rng.integers(1, 4))), (int(rng.integers(1, 4)), 4, 1.0)]  # fmt: skip
    return Problem.from_arrays(
        names=[f"v{i}" for i in range(n)],
        devices=[f"d{j}" for j in range(d)],
        exec_time=ex,
        edges=edges,
        comm_latency=np.ones((d, d)) - np.eye(d),
        comm_inv_bandwidth=np.ones((d, d)) - np.eye(d),
        quantum=1.0,
    ).with_ports()


def _orders(nodes: list, before: dict):
    """Every order of ``nodes`` with each after everything in ``before[node]``."""
    order: list = []
    placed: set = set()

    def rec():
        if len(order) == len(nodes):
            yield list(order)
            return
        for x in nodes:
            if x not in placed and before[x] <= placed:
                order.append(x)
                placed.add(x)
                yield from rec()
                order.pop()
                placed.discard(x)

    return rec()


def brute_force_one_port(p: Problem) -> int:
    """Every assignment x every order of ops and transfers (a transfer after its producer,
    before its readers on its destination), each dispatched as early as its device or its
    two ports allow: some optimal schedule is such a dispatch of the order of its starts."""
    best = None
    n, d = p.n, p.num_devices
    for assign in itertools.product(*[np.flatnonzero(p.allowed[v]).tolist() for v in range(n)]):
        moves = sorted({(int(p.edge_tensor[k]), assign[int(p.edge_dst[k])])
                        for k in range(p.num_edges)
                        if assign[int(p.edge_src[k])] != assign[int(p.edge_dst[k])]})  # fmt: skip
        nodes = [("op", v) for v in range(n)] + [("tr", m) for m in moves]
        before: dict = {x: set() for x in nodes}
        for k in range(p.num_edges):
            u, v, t = int(p.edge_src[k]), int(p.edge_dst[k]), int(p.edge_tensor[k])
            if assign[u] == assign[v]:
                before[("op", v)].add(("op", u))
            else:
                before[("tr", (t, assign[v]))].add(("op", u))
                before[("op", v)].add(("tr", (t, assign[v])))
        for order in _orders(nodes, before):
            dev_free, out_free, in_free = [0] * d, [0] * d, [0] * d
            end: dict = {}
            for kind, x in order:
                ready = max((end[y] for y in before[(kind, x)]), default=0)
                if kind == "op":
                    s = max(ready, dev_free[assign[x]])
                    end[(kind, x)] = dev_free[assign[x]] = s + int(p.dur[x, assign[x]])
                else:
                    t, b = x
                    a = assign[int(p.tensors.src[t])]
                    s = max(ready, out_free[a], in_free[b])
                    end[(kind, x)] = out_free[a] = in_free[b] = s + int(p.tensor_comm[t, a, b])
            span = max(end[("op", v)] for v in range(n))
            best = span if best is None else min(best, span)
    assert best is not None
    return best


@pytest.mark.parametrize("seed", range(5))
def test_cpsat_equals_the_one_port_brute_force_and_heuristics_validate(seed: int) -> None:
    p = fan_out(seed)
    best = brute_force_one_port(p)
    plan = get_solver("cpsat")(p, time_limit=20, seed=0, workers=1)
    validate(plan, p)
    assert plan.status == "optimal" and round(plan.makespan) == best
    for name in ("heft", "peft", "cpop", "portfolio"):
        other = get_solver(name)(p, time_limit=5, seed=0)
        validate(other, p)
        assert other.makespan >= best and other.lower_bound <= best


def test_the_validator_refuses_two_sends_at_once() -> None:
    p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y", "z"],
        exec_time=np.ones((3, 3)), edges=[(0, 1, 2.0), (0, 2, 2.0)],
        comm_latency=np.ones((3, 3)) - np.eye(3), quantum=1.0)  # fmt: skip
    both = plan_from_schedule(p, assign=[0, 1, 2], start=[0, 3, 3], solver="manual")
    validate(both, p)  # without ports the two sends from x overlap freely
    ported = p.with_ports()
    with pytest.raises(PlanError, match=r"x\.out"):
        validate(plan_from_schedule(ported, assign=[0, 1, 2], start=[0, 3, 3], solver="m",
                                    transfer_start={(0, 1): 1, (1, 2): 1}), ported)  # fmt: skip
    ok = plan_from_schedule(ported, assign=[0, 1, 2], start=[0, 3, 3], solver="manual",
                            transfer_start={(0, 1): 1, (1, 2): 2})  # fmt: skip
    validate(ok, ported)
