"""SensitivityTable: validation, JSON round trip, graph checks, user tables in graph meta."""

from __future__ import annotations

import math
from typing import Any

import pytest

from hetsched.errors import UsageError
from hetsched.graph import graph_sha256
from hetsched.graph.opgraph import OpGraph, OpNode
from hetsched.precision import SensitivityTable, from_graph_meta, parse_precisions


def _graph(name: str = "g", **meta: Any) -> OpGraph:
    return OpGraph(name, [OpNode("mm", category="matmul"), OpNode("relu")], meta=meta)


def _table(graph: OpGraph) -> SensitivityTable:
    return SensitivityTable(
        graph.name, graph_sha256(graph),
        errors={"mm": {"int8": 0.02, "float16": 1e-4}, "relu": {"bfloat16": 1e-3}},
        sqnr_db={"mm": {"int8": 34.0, "float16": math.inf}}, samples=3,
    )  # fmt: skip


def test_error_lookup_and_additive_prediction() -> None:
    t = _table(_graph())
    assert t.error("mm", "float32") == 0.0
    assert t.error("mm", "int8") == 0.02
    assert t.precisions("mm") == ("float32", "int8", "float16")
    assert t.predicted_error({"mm": "int8", "relu": "bfloat16"}) == pytest.approx(0.021)
    with pytest.raises(UsageError, match="no int8 entry for op 'relu'"):
        t.error("relu", "int8")


def test_json_round_trip(tmp_path: Any) -> None:
    t = _table(_graph())
    path = tmp_path / "t.json"
    t.save(path)
    back = SensitivityTable.load(path)
    assert back == t
    assert back.sqnr_db["mm"]["float16"] == math.inf  # null in JSON
    assert back.to_dict()["format"] == "hetsched.sensitivity/1"


@pytest.mark.parametrize("bad", [math.nan, -0.1, math.inf, "x"])
def test_bad_errors_rejected(bad: Any) -> None:
    with pytest.raises(UsageError, match="op 'mm'"):
        SensitivityTable("g", "0" * 64, errors={"mm": {"int8": bad}})


def test_unknown_precision_rejected() -> None:
    with pytest.raises(UsageError, match="unknown precision 'fp8'"):
        SensitivityTable("g", "0" * 64, errors={"mm": {"fp8": 0.1}})
    with pytest.raises(UsageError, match="unknown precision 'fp12'"):
        parse_precisions("int8,fp12")


def test_sha_mismatch_names_both_graphs() -> None:
    t = _table(_graph("model-a"))
    t.check_for(_graph("model-a"))
    with pytest.raises(UsageError) as err:
        t.check_for(_graph("model-b"))
    msg = str(err.value)
    assert "'model-a'" in msg and "'model-b'" in msg and "\n" not in msg


def test_malformed_file(tmp_path: Any) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"format": "hetsched.sensitivity/1", "ops": {}}')
    with pytest.raises(UsageError, match="malformed"):
        SensitivityTable.load(path)
    path.write_text('{"format": "other"}')
    with pytest.raises(UsageError, match=r"not a hetsched\.sensitivity/1 document"):
        SensitivityTable.load(path)


def test_from_graph_meta() -> None:
    assert from_graph_meta(_graph()) is None
    g = _graph(sensitivity={"mm": {"int8": 0.05}})
    t = from_graph_meta(g)
    assert t is not None
    t.check_for(g)
    assert t.error("mm", "int8") == 0.05 and t.samples == 0
    with pytest.raises(UsageError, match="op 'nope', not in the graph"):
        from_graph_meta(_graph(sensitivity={"nope": {"int8": 0.05}}))
    with pytest.raises(UsageError, match="finite and >= 0"):
        from_graph_meta(_graph(sensitivity={"mm": {"int8": -1.0}}))
