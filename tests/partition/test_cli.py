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
