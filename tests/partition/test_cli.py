"""`hetsched partition` and `hetsched solve --objective throughput|modulo` end to end."""

from __future__ import annotations

import pytest

from hetsched.cli import main

pytest.importorskip("torch")


def test_solve_throughput_then_partition(tmp_path, capsys):
    plan = tmp_path / "plan.json"
    assert main(["solve", "mlp", "--objective", "throughput", "--time-limit", "3",
                 "--workers", "1", "--quiet", "-o", str(plan)]) == 0  # fmt: skip
    out = tmp_path / "split.py"
    assert main(["partition", "mlp", "--plan", str(plan), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "segment" in text and "devices:" in text
    assert "device:" in out.read_text()


def test_partition_wrong_model(tmp_path, capsys):
    plan = tmp_path / "plan.json"
    assert main(["solve", "mlp", "--objective", "throughput", "--time-limit", "3",
                 "--workers", "1", "--quiet", "-o", str(plan)]) == 0  # fmt: skip
    assert main(["partition", "resnet", "--plan", str(plan)]) == 2
    assert "plan" in capsys.readouterr().err


def test_a_saved_pt2_carries_each_segments_device(tmp_path, capsys):
    import torch

    plan = tmp_path / "plan.json"
    assert main(["solve", "mlp", "--time-limit", "3", "--quiet", "-o", str(plan),
                 "--pin", "blocks.0=gpu", "--pin", "blocks.1=cpu"]) == 0  # fmt: skip
    out = tmp_path / "split.pt2"
    assert main(["partition", "mlp", "--plan", str(plan), "-o", str(out)]) == 0
    capsys.readouterr()
    program = torch.export.load(str(out))
    tags = [n.meta.get("custom", {}) for n in program.graph.nodes if n.op == "call_function"]
    assert tags and all("hetsched.device" in t for t in tags)
    assert {"gpu", "cpu"} <= {t["hetsched.device"] for t in tags}
    assert all(t["hetsched.segment"].startswith("submod_") for t in tags)
    assert {t["hetsched.precision"] for t in tags} == {"as exported"}
