import math

import pytest

from hetsched.errors import GraphError
from hetsched.graph import Edge, OpGraph, OpNode, from_dict, load, parse_stg, read_stg, save
from hetsched.graph.formats import to_dict
from tests.paths import DATA


def small() -> OpGraph:
    return OpGraph(
        "g",
        [OpNode("c", flops=3), OpNode("a", flops=1, category="matmul"), OpNode("b", flops=2)],
        [Edge("a", "b", 4.0), Edge("b", "c", 8.0), Edge("a", "c", 1.0)],
    )


def test_topological_order_is_deterministic():
    g = small()
    assert [n.name for n in g.nodes] == ["a", "b", "c"]
    assert g.index["c"] == 2
    assert g.predecessors("c") == ("a", "b")
    assert g.total_flops == 6.0


def test_parallel_edges_merge_bytes():
    g = OpGraph("g", [OpNode("a"), OpNode("b")], [Edge("a", "b", 1.0), Edge("a", "b", 2.0)])
    assert len(g.edges) == 1 and g.edges[0].bytes == 3.0


@pytest.mark.parametrize(
    ("nodes", "edges", "needle"),
    [
        ([], [], "no nodes"),
        ([OpNode("a"), OpNode("a")], [], "duplicate node name 'a'"),
        ([OpNode("a")], [Edge("a", "zz")], "missing node 'zz'"),
        ([OpNode("a")], [Edge("a", "a")], "self-loop on node 'a'"),
        ([OpNode("a"), OpNode("b")], [Edge("a", "b"), Edge("b", "a")], "cycle"),
    ],
)
def test_bad_graphs_name_the_culprit(nodes, edges, needle):
    with pytest.raises(GraphError, match=needle):
        OpGraph("bad", nodes, edges)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"flops": -1.0}, "flops"),
        ({"flops": math.nan}, "flops"),
        ({"out_bytes": math.inf}, "out_bytes"),
        ({"category": "weird"}, "unknown category"),
        ({"cost": {"cpu": -2.0}}, "cost"),
    ],
)
def test_bad_node_fields(kw, needle):
    with pytest.raises(GraphError, match=needle):
        OpNode("x", **kw)


def test_negative_edge_bytes():
    with pytest.raises(GraphError, match="bytes"):
        Edge("a", "b", -1.0)


def test_json_round_trip_is_exact(tmp_path):
    g = OpGraph(
        "rt",
        [
            OpNode("a", op="aten.mm.default", category="matmul", flops=1.5e9, shape=(2, 3)),
            OpNode("b", cost={"cpu": 1.0, "npu": math.inf}, module="layers.0.mlp"),
        ],
        [Edge("a", "b", 24.0)],
        meta={"fx_nodes": {"a": ["a", "view"]}},
    )
    p = tmp_path / "g.json"
    save(g, p)
    g2 = load(p)
    assert g2 == g
    assert to_dict(g2) == to_dict(g)
    assert g2.meta["fx_nodes"] == {"a": ["a", "view"]}
    assert math.isinf(g2.node("b").cost["npu"])


def test_json_rejects_unknown_version_and_garbage(tmp_path):
    doc = to_dict(small())
    doc["format"] = "hetsched.graph/99"
    with pytest.raises(GraphError, match="unsupported graph format"):
        from_dict(doc)
    p = tmp_path / "trunc.json"
    p.write_text('{"format": "hetsched.graph/1", "nodes": [')
    with pytest.raises(GraphError, match="not valid JSON"):
        load(p)
    with pytest.raises(GraphError, match="no such file"):
        load(tmp_path / "missing.json")
    doc = to_dict(small())
    doc["nodes"][0]["colour"] = "red"
    with pytest.raises(GraphError, match="unknown field"):
        from_dict(doc)


def test_stg_reader_counts_and_critical_path():
    for f in sorted((DATA / "stg50").glob("*.stg")):
        g = read_stg(f)
        assert len(g.nodes) == 52  # 50 tasks + entry and exit dummies
        assert g.node("t0").cost["*"] == 0.0 and g.node("t51").cost["*"] == 0.0
        length, path = g.critical_path("*")
        assert length == g.meta["cp_length"], f.name
        assert sum(g.node(x).cost["*"] for x in path) == length


def test_stg_bad_predecessor_count():
    with pytest.raises(GraphError, match="task 1 says 2 predecessors but lists 1"):
        parse_stg("1\n0 0 0\n1 3 2 0\n2 0 1 1\n")
    with pytest.raises(GraphError, match="header says 3 tasks"):
        parse_stg("3\n0 0 0\n1 3 1 0\n2 0 1 1\n")
