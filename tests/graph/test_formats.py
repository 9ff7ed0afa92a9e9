"""``hetsched.graph/2`` JSON: tensors round trip, ``/1`` documents still load, strict errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from hetsched.errors import GraphError
from hetsched.graph import Edge, OpGraph, OpNode, from_dict, graph_sha256, load, save, to_dict
from hetsched.graph.formats import GRAPH_FORMAT, GRAPH_FORMATS
from hetsched.graph.opgraph import Tensor


def fork() -> OpGraph:
    """``a`` makes one tensor read by ``b`` and ``c``, and an int64 one read by ``c``."""
    return OpGraph(
        "fork",
        [OpNode("a", flops=2.0), OpNode("b"), OpNode("c", category="matmul")],
        tensors=[
            Tensor("x", "a", ("c", "b"), 16.0),
            Tensor("idx", "a", ("c",), 8.0, dtype="int64"),
            Tensor("y", "b", ("c",), 4.0, dtype="float16"),
        ],
        meta={"source": "test"},
    )


def v2_doc(tensors: list[Any]) -> dict[str, Any]:
    doc = to_dict(fork())
    doc["tensors"] = tensors
    return doc


def test_v2_round_trip_keeps_tensors(tmp_path: Path) -> None:
    g = fork()
    p = tmp_path / "g.json"
    save(g, p)
    doc = json.loads(p.read_text())
    assert doc["format"] == GRAPH_FORMAT == "hetsched.graph/2" and "edges" not in doc
    assert doc["tensors"][0] == {
        "name": "x",
        "src": "a",
        "dsts": ["b", "c"],
        "bytes": 16.0,
        "dtype": "float32",
    }
    back = load(p)
    assert back == g and back.tensors == g.tensors and back.edges == g.edges
    assert to_dict(back) == to_dict(g) and graph_sha256(back) == graph_sha256(g)
    assert back.meta["source"] == "test"


def test_v1_documents_load_with_one_tensor_per_edge(tmp_path: Path) -> None:
    v1 = {
        "format": "hetsched.graph/1",
        "name": "old",
        "nodes": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "edges": [
            {"src": "a", "dst": "b", "bytes": 4.0},
            {"src": "a", "dst": "c", "bytes": 4.0},
            {"src": "b", "dst": "c"},
        ],
    }
    p = tmp_path / "old.json"
    p.write_text(json.dumps(v1))
    g = load(p)
    assert [(t.name, t.src, t.dsts, t.bytes) for t in g.tensors] == [
        ("a->b", "a", ("b",), 4.0),
        ("a->c", "a", ("c",), 4.0),
        ("b->c", "b", ("c",), 0.0),
    ]
    assert not g.has_named_tensors
    assert g == OpGraph("old", g.nodes, [Edge("a", "b", 4.0), Edge("a", "c", 4.0), Edge("b", "c")])
    q = tmp_path / "new.json"
    save(g, q)  # re-saved as version 2, same graph and hash
    assert json.loads(q.read_text())["format"] == "hetsched.graph/2"
    assert load(q) == g and graph_sha256(load(q)) == graph_sha256(g)


def test_hash_sees_tensor_identity() -> None:
    nodes = [OpNode("a"), OpNode("b"), OpNode("c")]
    shared = OpGraph("g", nodes, tensors=[Tensor("x", "a", ("b", "c"), 4.0)])
    split = OpGraph("g", nodes, [Edge("a", "b", 4.0), Edge("a", "c", 4.0)])
    assert shared.edges == split.edges
    assert graph_sha256(shared) != graph_sha256(split)


def _one_line(err: pytest.ExceptionInfo[GraphError]) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_unknown_version_names_file_and_known_versions(tmp_path: Path) -> None:
    p = tmp_path / "future.json"
    doc = to_dict(fork())
    doc["format"] = "hetsched.graph/3"
    p.write_text(json.dumps(doc))
    with pytest.raises(GraphError, match="unsupported graph format") as err:
        load(p)
    text = _one_line(err)
    assert str(p) in text and "'hetsched.graph/3'" in text
    assert all(repr(f) in text for f in GRAPH_FORMATS)


@pytest.mark.parametrize(
    ("tensors", "needle"),
    [
        ([{"name": "x", "src": "a", "dsts": ["b"]}], "tensor 'x' is missing field(s) ['bytes']"),
        ([{"src": "a", "dsts": ["b"], "bytes": 1.0}], "tensor #0 is missing field(s) ['name']"),
        (["x"], "tensor #0 must be an object"),
        (
            [{"name": "x", "src": "a", "dsts": ["b"], "bytes": 1.0, "size": 2}],
            "tensor 'x' has unknown field(s) ['size']",
        ),
        ([{"name": 3, "src": "a", "dsts": ["b"], "bytes": 1.0}], "'name' must be a non-empty"),
        ([{"name": "x", "src": ["a"], "dsts": ["b"], "bytes": 1.0}], "'src' must be a node name"),
        ([{"name": "x", "src": "a", "dsts": "b", "bytes": 1.0}], "'dsts' must be a non-empty list"),
        ([{"name": "x", "src": "a", "dsts": [], "bytes": 1.0}], "'dsts' must be a non-empty list"),
        ([{"name": "x", "src": "a", "dsts": ["b"], "bytes": "1"}], "'bytes' must be a number"),
        ([{"name": "x", "src": "a", "dsts": ["b"], "bytes": True}], "'bytes' must be a number"),
        ([{"name": "x", "src": "a", "dsts": ["b"], "bytes": -1.0}], "finite and >= 0"),
        (
            [{"name": "x", "src": "a", "dsts": ["b"], "bytes": 1.0, "dtype": 32}],
            "'dtype' must be a string",
        ),
        (
            [{"name": "x", "src": "a", "dsts": ["b", "zz"], "bytes": 1.0}],
            "tensor 'x': references unknown node 'zz'",
        ),
        (
            [{"name": "x", "src": "zz", "dsts": ["b"], "bytes": 1.0}],
            "tensor 'x': references unknown node 'zz'",
        ),
        (
            [
                {"name": "x", "src": "a", "dsts": ["b"], "bytes": 1.0},
                {"name": "x", "src": "b", "dsts": ["c"], "bytes": 1.0},
            ],
            "duplicate tensor name 'x'",
        ),
        ({"x": 1}, "field 'tensors' must be a list"),
    ],
)
def test_malformed_tensors_are_one_line_errors(tensors: Any, needle: str) -> None:
    with pytest.raises(GraphError, match=re.escape(needle)) as err:
        from_dict(v2_doc(tensors), source="bad.json")
    assert _one_line(err).startswith("bad.json: ")


def test_versions_do_not_mix_fields() -> None:
    doc = v2_doc([])
    doc["edges"] = [{"src": "a", "dst": "b"}]
    with pytest.raises(GraphError, match="has no field 'edges'"):
        from_dict(doc, source="mix.json")
    old = {"format": "hetsched.graph/1", "nodes": [{"name": "a"}], "tensors": []}
    with pytest.raises(GraphError, match="has no field 'tensors'"):
        from_dict(old, source="mix.json")
    doc = v2_doc([])
    doc["colour"] = "red"
    with pytest.raises(GraphError, match=r"unknown top-level field\(s\) \['colour'\]"):
        from_dict(doc, source="mix.json")


def test_dtype_may_be_left_out() -> None:
    g = from_dict(v2_doc([{"name": "x", "src": "a", "dsts": ["b", "c"], "bytes": 2}]))
    assert g.tensors == (Tensor("x", "a", ("b", "c"), 2.0, "float32"),)
