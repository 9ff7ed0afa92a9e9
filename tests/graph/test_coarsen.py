"""Coarsening: totals preserved, always acyclic, module grouping, reports, errors."""

from __future__ import annotations

import random
from typing import Any

import pytest

from hetsched.errors import UsageError
from hetsched.graph.coarsen import coarsen, coarsen_with_report
from hetsched.graph.opgraph import CATEGORIES, Edge, OpGraph, OpNode, Tensor

TOTALS = ("flops", "bytes_read", "bytes_written", "param_bytes")


def _random_dag(seed: int, n: int = 60, p: float = 0.08) -> OpGraph:
    rng = random.Random(seed)
    cats = [*CATEGORIES, "elementwise", "elementwise", "data_movement"]
    nodes = [
        OpNode(
            f"n{i}",
            category=rng.choice(cats),
            flops=float(rng.randint(0, 100)),
            bytes_read=float(rng.randint(0, 50)),
            bytes_written=float(rng.randint(0, 50)),
            param_bytes=float(rng.randint(0, 5)),
            out_bytes=float(rng.randint(1, 50)),
            module=rng.choice(["", "a", "a.x", "a.y", "b", "b.x", "b.x.0", "c.z"]),
            cost={"cpu": 1.0 + i, "gpu": 0.5},
        )
        for i in range(n)
    ]
    edges = [
        Edge(f"n{i}", f"n{j}", float(rng.randint(1, 20)))
        for i in range(n)
        for j in range(i + 1, n)
        if rng.random() < p
    ]
    return OpGraph(f"r{seed}", nodes, edges)


def _check(orig: OpGraph, c: OpGraph, *, exact_out: bool = True) -> None:
    for f in TOTALS:
        assert sum(getattr(n, f) for n in c.nodes) == pytest.approx(
            sum(getattr(n, f) for n in orig.nodes)
        )
    groups = {n.name: c.meta["groups"].get(n.name, [n.name]) for n in c.nodes}
    members = sorted(m for ms in groups.values() for m in ms)
    assert members == sorted(n.name for n in orig.nodes)  # a partition
    group_of = {m: g for g, ms in groups.items() for m in ms}
    crossing = {(group_of[e.src], group_of[e.dst]) for e in orig.edges}
    crossing = {(s, d) for s, d in crossing if s != d}
    assert {(e.src, e.dst) for e in c.edges} == crossing
    assert c.total_edge_bytes <= orig.total_edge_bytes
    if not exact_out:  # a coarsened graph no longer knows its members' own out_bytes
        return
    for n in c.nodes:  # out_bytes counts members whose output leaves the group
        leaving = [
            m
            for m in groups[n.name]
            if not orig.successors(m) or any(group_of[s] != n.name for s in orig.successors(m))
        ]
        assert n.out_bytes == pytest.approx(sum(orig.node(m).out_bytes for m in leaving))


def _chain() -> OpGraph:
    return OpGraph(
        "chain",
        [
            OpNode("mm", category="matmul", flops=100.0, out_bytes=8.0, module="blk.0.fc"),
            OpNode("relu", category="elementwise", flops=2.0, out_bytes=8.0, module="blk.0"),
            OpNode("mm2", category="matmul", flops=50.0, out_bytes=4.0, module="blk.1.fc"),
            OpNode("add", category="elementwise", flops=1.0, out_bytes=4.0, module="blk.1"),
        ],
        [Edge("mm", "relu", 8.0), Edge("relu", "mm2", 8.0), Edge("mm2", "add", 4.0)],
        meta={"fx_nodes": {"mm": ["mm", "view"], "relu": ["relu"], "mm2": ["mm2"], "add": ["add"]}},
    )


def test_fusion_into_producer() -> None:
    c, report = coarsen_with_report(_chain())
    assert [n.name for n in c.nodes] == ["mm", "mm2"]
    assert dict(c.meta["groups"]) == {"mm": ["mm", "relu"], "mm2": ["mm2", "add"]}
    assert dict(c.meta["fx_nodes"]) == {"mm": ["mm", "view", "relu"], "mm2": ["mm2", "add"]}
    assert c.edges == (Edge("mm", "mm2", 8.0),)
    assert c.node("mm").category == "matmul" and c.node("mm").flops == 102.0
    assert (report.nodes_before, report.nodes_after, report.fused) == (4, 2, 2)
    assert c.meta["coarsen"]["nodes_after"] == 2
    _check(_chain(), c)


def test_group_by_module_and_flops_cap() -> None:
    c = coarsen(_chain(), fuse=False, group_by_module=1)
    assert [n.name for n in c.nodes] == ["mm"] and c.node("mm").module == "blk"
    c = coarsen(_chain(), fuse=False, group_by_module=2)
    assert [n.module for n in c.nodes] == ["blk.0", "blk.1"]
    capped = coarsen(_chain(), group_by_module=1, max_group_flops=110.0)
    assert len(capped.nodes) == 2 and max(n.flops for n in capped.nodes) <= 110.0


def test_non_convex_module_group_is_left_alone() -> None:
    g = OpGraph(
        "nc",
        [OpNode("a", module="x"), OpNode("b", module="y"), OpNode("c", module="x")],
        [Edge("a", "b", 1.0), Edge("b", "c", 1.0)],
    )
    c, report = coarsen_with_report(g, fuse=False, group_by_module=1)
    assert len(c.nodes) == 3 and report.ungrouped_modules == ("x",)


def test_cost_dicts_are_summed() -> None:
    g = OpGraph(
        "cost",
        [
            OpNode("a", category="matmul", cost={"cpu": 2.0, "gpu": 1.0}),
            OpNode("b", category="elementwise", cost={"cpu": 1.0, "gpu": 0.5, "npu": 9.0}),
        ],
        [Edge("a", "b", 3.0)],
    )
    (node,) = coarsen(g).nodes
    assert dict(node.cost or {}) == {"cpu": 3.0, "gpu": 1.5}


@pytest.mark.parametrize("seed", range(25))
def test_random_dags_stay_acyclic_and_keep_totals(seed: int) -> None:
    g = _random_dag(seed)
    kws: list[dict[str, Any]] = [{}, {"group_by_module": 1}, {"group_by_module": 2, "fuse": False}]
    for kw in kws:
        c = coarsen(g, **kw)  # OpGraph's constructor rejects cycles
        _check(g, c)
        assert len(c.nodes) <= len(g.nodes)
    twice = coarsen(coarsen(g), group_by_module=1)
    _check(g, twice, exact_out=False)


def test_max_group_flops_is_respected_on_random_dags() -> None:
    g = _random_dag(7, n=80)
    c = coarsen(g, group_by_module=1, max_group_flops=150.0)
    _check(g, c)
    assert all(n.flops <= 150.0 for n in c.nodes if len(c.meta["groups"].get(n.name, [n.name])) > 1)


def test_no_merge_when_nothing_to_do() -> None:
    g = _random_dag(3)
    c = coarsen(g, fuse=False)
    assert c == g and c.meta["groups"] == {}


def test_bad_depth_is_usage_error() -> None:
    with pytest.raises(UsageError, match="group_by_module"):
        coarsen(_chain(), group_by_module=0)


def test_imported_model_coarsens() -> None:
    pytest.importorskip("torch")
    from hetsched.graph import zoo

    g = zoo.graph("gpt", "tiny")
    c = coarsen(g, group_by_module=2)
    _check(g, c)
    assert len(c.nodes) < len(g.nodes) // 2
    fx = sorted(x for xs in c.meta["fx_nodes"].values() for x in xs)
    assert fx == sorted(x for xs in g.meta["fx_nodes"].values() for x in xs)
    assert {"blocks.0", "blocks.1"} <= {n.module for n in c.nodes}


def _shared() -> OpGraph:
    """``mm`` makes ``x``, read by ``relu`` (fusable), ``fc1`` and ``fc2`` (one module)."""
    return OpGraph(
        "shared",
        [
            OpNode("mm", category="matmul", flops=100.0, out_bytes=8.0),
            OpNode("relu", category="elementwise", flops=1.0, out_bytes=8.0),
            OpNode("fc1", category="matmul", flops=50.0, out_bytes=4.0, module="head.fc1"),
            OpNode("fc2", category="matmul", flops=50.0, out_bytes=4.0, module="head.fc2"),
            OpNode("add", category="matmul", flops=9.0, module="out"),
        ],
        tensors=[
            Tensor("x", "mm", ("relu", "fc1", "fc2"), 8.0),
            Tensor("r", "relu", ("add",), 8.0, dtype="float16"),
            Tensor("h1", "fc1", ("add",), 4.0),
            Tensor("h2", "fc2", ("add",), 4.0),
        ],
    )


def test_coarsen_keeps_a_shared_tensor_shared() -> None:
    c = coarsen(_shared())  # relu fuses into mm: x loses that consumer
    assert dict(c.meta["groups"]) == {"mm": ["mm", "relu"]}
    by_name = {t.name: t for t in c.tensors}
    assert (by_name["x"].src, by_name["x"].dsts, by_name["x"].bytes) == ("mm", ("fc1", "fc2"), 8.0)
    assert (by_name["r"].src, by_name["r"].dsts, by_name["r"].dtype) == ("mm", ("add",), "float16")
    grouped, report = coarsen_with_report(_shared(), group_by_module=1)
    assert dict(grouped.meta["groups"])["fc1"] == ["fc1", "fc2"]
    x = {t.name: t for t in grouped.tensors}["x"]
    assert x.dsts == ("fc1",) and x.bytes == 8.0  # read by both members: moved once
    h = [t for t in grouped.tensors if t.src == "fc1"]
    assert sorted((t.name, t.dsts, t.bytes) for t in h) == [
        ("h1", ("add",), 4.0),
        ("h2", ("add",), 4.0),
    ]
    assert report.edges_after == len(grouped.edges) == 3
    _check(_shared(), grouped)


def test_a_tensor_read_only_inside_its_group_disappears() -> None:
    g = OpGraph(
        "inner",
        [OpNode("a", category="matmul", flops=5.0), OpNode("b", category="elementwise")],
        tensors=[Tensor("t", "a", ("b",), 4.0)],
    )
    c = coarsen(g)
    assert len(c.nodes) == 1 and c.tensors == () and c.edges == ()


def _random_tensor_dag(seed: int, n: int = 50) -> OpGraph:
    """Each node makes up to two tensors, each read by a few later nodes."""
    rng = random.Random(seed)
    base = _random_dag(seed, n=n, p=0.0)
    tensors = []
    for i in range(n - 1):
        for k in range(rng.randint(0, 2)):
            dsts = rng.sample(range(i + 1, n), min(n - i - 1, rng.randint(1, 3)))
            tensors.append(Tensor(f"n{i}:{k}", f"n{i}", tuple(f"n{j}" for j in dsts), 4.0 + k))
    return base.replace(tensors=tensors)


@pytest.mark.parametrize("seed", range(10))
def test_random_tensor_dags_keep_tensor_identity(seed: int) -> None:
    g = _random_tensor_dag(seed)
    for kw in [{}, {"group_by_module": 1}]:
        c = coarsen(g, **kw)
        _check(g, c)
        groups = {n.name: c.meta["groups"].get(n.name, [n.name]) for n in c.nodes}
        group_of = {m: grp for grp, ms in groups.items() for m in ms}
        expect = {}
        for t in g.tensors:
            outside = {group_of[d] for d in t.dsts} - {group_of[t.src]}
            if outside:
                expect[t.name] = (group_of[t.src], outside, t.bytes, t.dtype)
        got = {t.name: (t.src, set(t.dsts), t.bytes, t.dtype) for t in c.tensors}
        assert got == expect


# ------------------------------------------------------------- support of coarsened groups


def test_a_group_lists_its_members_as_parts() -> None:
    c = coarsen(_chain())
    assert [(p.name, p.category) for p in c.node("mm").parts] == [
        ("mm", "matmul"), ("relu", "elementwise")]  # fmt: skip
    fused = OpNode("f", category="conv", parts=(OpNode("f"), OpNode("g", category="other")))
    g = OpGraph("p", [fused, OpNode("h", category="elementwise")], [Edge("f", "h", 1.0)])
    assert [p.name for p in coarsen(g).node("f").parts] == ["f", "g", "h"]  # flattened
    lone = coarsen(g, fuse=False).node("f")
    assert lone.parts == fused.parts


def _support_dag(seed: int, n: int = 40) -> OpGraph:
    """Random DAG without explicit costs: categories and dtypes the NPU refuses included."""
    rng = random.Random(seed)
    nodes = [
        OpNode(
            f"n{i}",
            op=f"aten.op{i}.default",
            category=rng.choice(["matmul", "conv", "elementwise", "elementwise",
                                 "data_movement", "reduction", "norm"]),
            flops=float(rng.randint(0, 10**6)),
            bytes_read=float(rng.randint(0, 10**5)),
            bytes_written=float(rng.randint(1, 10**5)),
            out_bytes=float(rng.randint(1, 10**4)),
            dtype=rng.choice(["float32", "float32", "float32", "int64"]),
            module=rng.choice(["a", "a.x", "b", "b.y"]),
        )
        for i in range(n)
    ]  # fmt: skip
    edges = [
        Edge(f"n{i}", f"n{j}", float(rng.randint(1, 10**4)))
        for i in range(n)
        for j in range(i + 1, n)
        if rng.random() < 0.1
    ]
    return OpGraph(f"s{seed}", nodes, edges)


@pytest.mark.parametrize("seed", range(8))
def test_no_device_takes_a_group_it_refuses_a_member_of(seed: int) -> None:
    from hetsched.problem import Problem

    g = _support_dag(seed)
    fine = Problem.build(g, "edge-soc")
    for kw in [{}, {"group_by_module": 1}]:
        c = coarsen(g, **kw)
        coarse = Problem.build(c, "edge-soc")
        for v, name in enumerate(coarse.names):
            for m in c.meta["groups"].get(name, [name]):
                # allowed for the group => allowed for every member
                assert not (coarse.allowed[v] & ~fine.allowed[fine.index[m]]).any(), (name, m)


def test_coarse_plan_refined_and_validated_on_the_fine_graph() -> None:
    from hetsched.api import solve
    from hetsched.partition.refine import refine_plan
    from hetsched.plan import validate
    from hetsched.problem import Problem

    g = _support_dag(3, n=60)
    c = coarsen(g, group_by_module=1)
    plan = solve(c, "edge-soc", solver="heft", time_limit=5)
    fine_problem = Problem.build(g, "edge-soc")
    fine = refine_plan(plan, c, fine_problem)
    validate(fine, fine_problem)
    assert set(fine.assignment) == {n.name for n in g.nodes}
    for grp, members in c.meta["groups"].items():
        assert {fine.assignment[m] for m in members} == {plan.assignment[grp]}
    assert fine.stats["coarse"]["ops"] == len(c.nodes)
    assert fine.lower_bound <= fine.makespan
    assert fine.status in ("heuristic", "optimal")  # no exact search ran on the fine problem


def test_zoo_groups_with_refused_members_stay_off_the_npu() -> None:
    pytest.importorskip("torch")
    from hetsched.costmodel import Platform
    from hetsched.costmodel.device import unsupported_reason
    from hetsched.graph import zoo
    from hetsched.problem import Problem

    npu = Platform.preset("edge-soc").device("npu0")
    g = zoo.graph("gpt", "tiny")
    c = coarsen(g, group_by_module=2)
    p = Problem.build(c, "edge-soc")
    refused = 0
    for v, name in enumerate(p.names):
        members = [g.node(m) for m in c.meta["groups"].get(name, [name])]
        if any(unsupported_reason(m, npu) is not None for m in members):
            refused += 1
            assert not p.allowed[v, p.device_index["npu0"]], name
    assert refused > 0


def test_solve_coarsen_reports_the_fine_plan(tmp_path: Any, capsys: Any) -> None:
    pytest.importorskip("torch")
    from hetsched.cli import main
    from hetsched.graph.resolve import load_graph_spec
    from hetsched.plan import load_plan

    out = tmp_path / "plan.json"
    assert main(["solve", "gpt", "--coarsen", "--solver", "heft", "--quiet",
                 "-o", str(out)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    fine = load_graph_spec("gpt")
    plan = load_plan(out)
    assert set(plan.assignment) == {n.name for n in fine.nodes}
    assert f"({len(fine.nodes)} ops)" in text and "coarse " in text
    assert main(["solve", "gpt", "--coarsen", "--objective", "throughput", "--quiet"]) == 2
