"""peak_of_order on hand-made graphs with known answers, and order validation."""

from __future__ import annotations

import numpy as np
import pytest

from hetsched.errors import PlanError
from hetsched.graph import Edge, OpGraph, OpNode, Tensor
from hetsched.schedule.memory import (
    MemoryInstance,
    check_order,
    live_bytes,
    lpmf_order,
    peak_of_order,
    topological_order,
)


def _branches() -> OpGraph:
    nodes = [OpNode(x) for x in ("a", "b1", "b2", "c1", "c2")]
    nodes.append(OpNode("z", out_bytes=1.0, param_bytes=2.0))
    return OpGraph("branches", nodes, tensors=[
        Tensor("x", "a", ("b1", "b2"), 1.0), Tensor("y1", "b1", ("c1",), 9.0),
        Tensor("y2", "b2", ("c2",), 9.0), Tensor("s1", "c1", ("z",), 1.0),
        Tensor("s2", "c2", ("z",), 1.0),
    ])  # fmt: skip


def test_chain_holds_input_and_output_while_an_op_runs() -> None:
    g = OpGraph("chain", [OpNode("a"), OpNode("b"), OpNode("c", out_bytes=2.0)],
                [Edge("a", "b", 5.0), Edge("b", "c", 3.0)])  # fmt: skip
    inst = MemoryInstance.from_graph(g)
    assert live_bytes(inst, [0, 1, 2]).tolist() == [5.0, 8.0, 5.0]
    assert peak_of_order(inst, ["a", "b", "c"]).activation_peak == 8.0


def test_branches_known_peaks_by_order() -> None:
    inst = MemoryInstance.from_graph(_branches())
    bad = peak_of_order(inst, ["a", "b1", "b2", "c1", "c2", "z"])
    good = peak_of_order(inst, ["a", "b1", "c1", "b2", "c2", "z"])
    assert (bad.peak, bad.activation_peak, bad.weights, bad.position) == (21.0, 19.0, 2.0, 2)
    assert (good.peak, good.activation_peak) == (13.0, 11.0)
    assert live_bytes(inst, [0, 1, 3, 2, 4, 5]).tolist() == [1.0, 10.0, 11.0, 11.0, 11.0, 3.0]


def test_sink_outputs_stay_to_the_end() -> None:
    g = OpGraph("two-sinks", [OpNode("a"), OpNode("b", out_bytes=4.0), OpNode("c", out_bytes=6.0)],
                tensors=[Tensor("x", "a", ("b", "c"), 1.0)])  # fmt: skip
    inst = MemoryInstance.from_graph(g)
    assert live_bytes(inst, ["a", "b", "c"]).tolist() == [1.0, 5.0, 11.0]
    assert live_bytes(inst, ["a", "c", "b"]).tolist() == [1.0, 7.0, 11.0]


def test_instance_arrays_are_topological_csr() -> None:
    inst = MemoryInstance.from_graph(_branches())
    assert inst.names == ("a", "b1", "b2", "c1", "c2", "z")
    assert inst.src.tolist() == [0, 1, 2, 3, 4]
    assert inst.cons_start.tolist() == [0, 2, 3, 4, 5, 6]
    assert inst.cons.tolist() == [1, 2, 3, 4, 5, 5]
    assert inst.sink_bytes.tolist() == [0, 0, 0, 0, 0, 1.0]
    assert inst.weights == 2.0
    assert not inst.src.flags.writeable


@pytest.mark.parametrize("name", ["gpt", "unet", "mamba", "resnet", "mlp"])
def test_an_orders_peak_is_the_live_peak_of_the_plan_that_runs_it(name: str) -> None:
    """The one memory model: the plan running the ops in an order on one device peaks at
    exactly what :func:`peak_of_order` says, for the export's order, the greedy and a
    random topological order."""
    pytest.importorskip("torch")
    from hetsched.graph import fuse, zoo
    from hetsched.plan import plan_from_schedule
    from hetsched.problem import Problem

    graph = fuse(zoo.graph(name, "tiny"))
    problem = Problem.build(graph, "edge-soc")
    inst = MemoryInstance.from_problem(problem, "cpu")
    rng = np.random.default_rng(0)
    orders = [topological_order(inst), lpmf_order(inst), _random_topological(inst, rng)]
    dur = problem.dur[:, problem.device_index["cpu"]]
    for order in orders:
        start = np.zeros(problem.n, dtype=np.int64)
        start[order] = np.concatenate([[0], np.cumsum(dur[order])[:-1]])
        plan = plan_from_schedule(
            problem, assign=np.zeros(problem.n, dtype=np.int64), start=start, solver="order"
        )
        assert plan.memory["cpu"] == pytest.approx(peak_of_order(inst, order).peak)


def _random_topological(inst: MemoryInstance, rng: np.random.Generator) -> np.ndarray:
    indeg = np.zeros(inst.n, dtype=np.int64)
    succ: list[list[int]] = [[] for _ in range(inst.n)]
    for u, v in inst.edges():
        indeg[v] += 1
        succ[u].append(v)
    ready = [v for v in range(inst.n) if indeg[v] == 0]
    out = []
    while ready:
        v = ready.pop(int(rng.integers(len(ready))))
        out.append(v)
        for w in succ[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                ready.append(w)
    return np.array(out, dtype=np.int64)


@pytest.mark.parametrize(
    "order",
    [["a", "b1", "b2", "c1", "c2"], ["a", "c1", "b1", "b2", "c2", "z"], [0, 0, 1, 2, 3, 4],
     ["a", "b1", "b2", "c1", "c2", "nope"]],
)  # fmt: skip
def test_invalid_orders_raise(order: list[object]) -> None:
    inst = MemoryInstance.from_graph(_branches())
    with pytest.raises(PlanError):
        check_order(inst, order)  # type: ignore[arg-type]


def test_positions_of_a_valid_order() -> None:
    inst = MemoryInstance.from_graph(_branches())
    assert check_order(inst, np.array([0, 2, 1, 4, 3, 5])).tolist() == [0, 2, 1, 4, 3, 5]
