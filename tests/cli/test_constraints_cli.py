"""``--pin``/``--forbid``/``--colocate``/``--max-segments`` and a graph file's own rules,
through ``hetsched.cli.main``: the plan records them, ``run`` re-checks them."""

from __future__ import annotations

import json

import pytest

import hetsched
from hetsched.cli import main
from hetsched.graph import Edge, OpGraph, OpNode, save


def chain(meta: dict | None = None) -> OpGraph:
    nodes = [
        OpNode(f"fc{i}", category="matmul", flops=4e8, bytes_read=2e6, out_bytes=1e5,
               module=f"layers.{i}")
        for i in range(4)
    ]  # fmt: skip
    edges = [Edge(f"fc{i}", f"fc{i + 1}", 1e5) for i in range(3)]
    return OpGraph("chain4", nodes, edges, meta=meta or {})


@pytest.fixture
def graph_file(tmp_path) -> str:
    path = tmp_path / "g.json"
    save(chain(), path)
    return str(path)


def test_flags_reach_the_plan_and_run_rechecks_them(graph_file, tmp_path, capsys) -> None:
    out = tmp_path / "plan.json"
    args = ["solve", graph_file, "--platform", "edge-soc", "--time-limit", "5", "-o", str(out)]
    rules = ["--pin", "layers.0=cpu", "--forbid", "fc3=npu*", "--colocate", "fc1,fc2",
             "--max-segments", "2"]  # fmt: skip
    assert main(args + rules) == 0
    text = capsys.readouterr().out
    assert "rules     pin layers.0=cpu; forbid fc3=npu*; colocate fc1,fc2;" in text
    doc = json.loads(out.read_text())
    assert doc["constraints"] == {"pin": ["layers.0=cpu"], "forbid": ["fc3=npu*"],
                                  "colocate": [["fc1", "fc2"]], "max_segments": 2}  # fmt: skip
    nodes = {n["name"]: n["device"] for n in doc["nodes"]}
    assert nodes["fc0"] == "cpu" and nodes["fc1"] == nodes["fc2"]
    assert not nodes["fc3"].startswith("npu")
    assert main(["run", str(out), "--graph", graph_file, "--platform", "edge-soc"]) == 0
    capsys.readouterr()
    # the same plan with fc0 moved off its pin: run refuses it, naming the rule
    doc["nodes"][0]["device"] = "gpu"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert main(["run", str(bad), "--graph", graph_file, "--platform", "edge-soc"]) == 2
    err = capsys.readouterr().err
    assert "node 'fc0' runs on 'gpu', which pin 'layers.0=cpu' rule(s) out" in err


def test_a_graph_files_own_rules_apply_and_bad_ones_are_one_line(tmp_path, capsys) -> None:
    path = tmp_path / "g.json"
    save(chain({"constraints": {"pin": ["fc*=gpu"]}}), path)
    plan = hetsched.solve(hetsched.load(path), "edge-soc", time_limit=5)
    assert set(plan.assignment.values()) == {"gpu"}
    assert main(["solve", str(path), "--platform", "edge-soc", "--pin", "fc9=cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "hetsched: error: pin 'fc9=cpu': 'fc9' matches no op name or module path"
    assert main(["solve", str(path), "--platform", "edge-soc", "--pin", "fc0=tpu"]) == 2
    assert "no device or device kind 'tpu'" in capsys.readouterr().err


def test_the_api_takes_constraints_and_refuses_groups_off_latency() -> None:
    g = chain()
    rules = hetsched.Constraints.parse(colocate=["fc0,fc3"])
    plan = hetsched.solve(g, "edge-soc", time_limit=5, constraints=rules)
    assert plan.assignment["fc0"] == plan.assignment["fc3"]
    with pytest.raises(hetsched.errors.UsageError, match="apply to objective latency"):
        hetsched.solve(g, "edge-soc", objective="throughput", constraints=rules)
