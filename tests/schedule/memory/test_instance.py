"""peak_of_order on hand-made graphs with known answers, and order validation."""

from __future__ import annotations

import numpy as np
import pytest

from hetsched.errors import PlanError
from hetsched.graph import Edge, OpGraph, OpNode, Tensor
from hetsched.problem import Tensors
from hetsched.schedule.memory import MemoryInstance, check_order, live_bytes, peak_of_order


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


def test_from_problem_reads_the_problem_tensors() -> None:
    from types import SimpleNamespace

    ref = MemoryInstance.from_graph(_branches())
    rows = [(0, [1, 2], 1.0), (1, [3], 9.0), (2, [4], 9.0), (3, [5], 1.0), (4, [5], 1.0)]
    problem = SimpleNamespace(tensors=Tensors.build(6, rows), names=ref.names)
    inst = MemoryInstance.from_problem(problem)  # type: ignore[arg-type]
    assert inst.cons.tolist() == ref.cons.tolist()
    assert peak_of_order(inst, [0, 1, 2, 3, 4, 5]).activation_peak == 19.0
    assert inst.weights == 0.0


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
