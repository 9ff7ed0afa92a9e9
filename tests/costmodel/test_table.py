"""The vectorised cost table agrees with the scalar model."""

from __future__ import annotations

import math
import random
import time

import numpy as np
import pytest

from hetsched.costmodel import (
    MeasuredCostModel,
    Platform,
    RooflineCostModel,
    build_cost_table,
    predicate,
)
from hetsched.errors import InfeasibleError
from hetsched.graph import CATEGORIES, Edge, OpGraph, OpNode, parse_stg

DTYPES = ("float32", "torch.float16", "bfloat16", "int64", "int8", "bool", "float64")


def random_graph(n: int, seed: int = 0) -> OpGraph:
    rng = random.Random(seed)
    nodes = []
    for i in range(n):
        cost = {"gpu": rng.random()} if i % 17 == 3 else None
        nodes.append(
            OpNode(
                f"n{i}",
                op=f"aten.op{i % 7}.default",
                category=CATEGORIES[i % len(CATEGORIES)],
                flops=rng.choice([0.0, rng.random() * 1e9]),
                bytes_read=rng.random() * 1e7,
                bytes_written=rng.random() * 1e6,
                param_bytes=rng.random() * 1e5,
                out_bytes=rng.random() * 1e6,
                dtype=DTYPES[i % len(DTYPES)],
                cost=cost,
            )
        )
    edges = [Edge(f"n{rng.randrange(j)}", f"n{j}", rng.random() * 1e6) for j in range(1, n)]
    return OpGraph(f"rand{n}", nodes, edges)


def scalar_exec(graph: OpGraph, model, platform: Platform) -> np.ndarray:
    return np.array([[model.op_time(x, d) for d in platform.devices] for x in graph.nodes])


@pytest.mark.parametrize("name", ["edge-soc", "workstation", "multi-gpu", "homogeneous-3"])
def test_table_equals_op_time_exactly(name: str) -> None:
    p = Platform.preset(name)
    g = random_graph(300, seed=len(name))
    model = RooflineCostModel(p)
    t = build_cost_table(g, p, model, allow_infeasible=True)
    assert np.array_equal(t.exec, scalar_exec(g, model, p))  # bit-exact, inf included
    assert t.device_names == tuple(d.name for d in p.devices)
    assert t.device_kinds == tuple(d.kind for d in p.devices)
    # an op holds its weights and outputs, at least the largest tensor it produces
    largest = {x.name: 0.0 for x in g.nodes}
    for tensor in g.tensors:
        largest[tensor.src] = max(largest[tensor.src], tensor.bytes)
    want = [max(model.memory_bytes(x), x.param_bytes + largest[x.name]) for x in g.nodes]
    assert np.array_equal(t.memory, want)
    assert list(t.capacity) == [d.mem_capacity for d in p.devices]
    assert t.units == "s" and not t.exec.flags.writeable
    for e in range(0, len(g.edges), 37):
        for a, da in enumerate(p.devices):
            for b, db in enumerate(p.devices):
                want = model.transfer_time(g.edges[e].bytes, da, db)
                assert t.transfer_time(e, a, b) == want
                assert t.comm_times()[e, a, b] == (0.0 if a == b else want)
    src, dst = g.edge_index
    assert np.array_equal(t.edge_src, src) and np.array_equal(t.edge_dst, dst)


def test_route_links_and_store_and_forward() -> None:
    p = Platform.preset("edge-soc")
    g = OpGraph("g", [OpNode("a"), OpNode("b")], [Edge("a", "b", 1e6)])
    t = build_cost_table(g, p)
    n0, n1 = t.device_names.index("npu0"), t.device_names.index("npu1")
    assert [t.link_names[i] for i in t.route_links[n0, n1]] == ["cpu<->npu0", "cpu<->npu1"]
    assert t.comm_inv_bandwidth[n0, n1] == 2 / 34.1e9
    assert t.comm_latency[n0, n0] == 0 and (n0, n0) not in t.route_links


def test_unroutable_pair_is_inf() -> None:
    base = Platform.preset("edge-soc")
    p = Platform("cut", base.devices, base.links[:1])  # only cpu<->gpu remains
    t = build_cost_table(OpGraph("g", [OpNode("a")]), p)
    i, j = t.device_names.index("cpu"), t.device_names.index("npu0")
    assert math.isinf(t.comm_latency[i, j]) and (i, j) not in t.route_links


def test_infeasible_op_named_with_reasons() -> None:
    p = Platform.preset("edge-soc")
    g = OpGraph("g", [OpNode("ok"), OpNode("q8", op="aten.quant", dtype="int8")])
    assert np.isfinite(build_cost_table(g, p).exec[1, 0])  # the CPU has int8 units
    p2 = Platform("t", p.devices[1:], ())  # gpu + npus: gpu has no int8, npus refuse 'other'
    with pytest.raises(InfeasibleError, match=r"op 'q8' .* gpu: no int8 units.*npu0: category"):
        build_cost_table(g, p2)
    t = build_cost_table(g, p2, allow_infeasible=True)
    assert np.isinf(t.exec[1]).all()


def test_explicit_costs_keep_graph_units() -> None:
    g = parse_stg("2\n0 0 0\n1 3 1 0\n2 4 1 1\n3 0 1 2\n", name="tiny")
    t = build_cost_table(g, Platform.preset("homogeneous-2"))
    assert t.units == "stg time units"
    assert t.exec.tolist() == [[0, 0], [3, 3], [4, 4], [0, 0]]
    assert (t.comm_latency == 0).all() and (t.comm_inv_bandwidth == 0).all()
    onto_npu = build_cost_table(g, Platform.preset("edge-soc"))  # explicit beats support
    assert np.isfinite(onto_npu.exec).all()


def test_measured_and_custom_models_in_table() -> None:
    p = Platform.preset("workstation")
    g = random_graph(60, seed=3)
    base = RooflineCostModel(p)
    m = MeasuredCostModel([{"node": "n5", "device": "gpu", "seconds": 0.25}], base)
    t = build_cost_table(g, p, m, allow_infeasible=True)
    assert np.array_equal(t.exec, scalar_exec(g, m, p))
    assert t.exec[g.index["n5"], 1] == 0.25

    class Doubled(RooflineCostModel):
        def op_time(self, node, device):  # type: ignore[override]
            return 2 * super().op_time(node, device)

    d = Doubled(p)
    t2 = build_cost_table(g, p, d, allow_infeasible=True)
    assert np.array_equal(t2.exec, scalar_exec(g, d, p))


def test_per_node_predicates_in_table() -> None:
    base = Platform.preset("homogeneous-2")
    small = predicate(lambda n, _d: n.flops < 5e8, reason="too big")
    devs = (
        base.devices[0],
        type(base.devices[1])(**{**base.devices[1].__dict__, "supports": small}),
    )
    p = Platform("t", devs, base.links)
    g = random_graph(80, seed=5)
    model = RooflineCostModel(p)
    t = build_cost_table(g, p, model, allow_infeasible=True)
    assert np.array_equal(t.exec, scalar_exec(g, model, p))
    assert np.isinf(t.exec[:, 1]).any()


@pytest.mark.slow
def test_benchmark_10k_nodes_5_devices() -> None:
    p = Platform.preset("multi-gpu")
    g = random_graph(10_000, seed=1)
    assert len(g.edge_index[0]) == len(g.edges)  # build the cached index first
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        build_cost_table(g, p, allow_infeasible=True)
        best = min(best, time.perf_counter() - start)
    print(f"build_cost_table 10k x 5: {best * 1e3:.1f} ms")
    assert best < 1.0
