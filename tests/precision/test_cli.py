"""``hetsched sensitivity`` on the command line."""

from __future__ import annotations

from typing import Any

import pytest

from hetsched.cli import main
from hetsched.precision import SensitivityTable


def test_sensitivity_command_writes_table(tmp_path: Any, capsys: Any) -> None:
    out = tmp_path / "x.json"
    assert main(["sensitivity", "gpt", "--size", "tiny", "-o", str(out)]) == 0
    table = SensitivityTable.load(out)
    assert table.graph_name == "gpt-tiny" and table.samples == 2
    printed = capsys.readouterr().out
    assert "linear" in printed and f"wrote {out}" in printed


def test_bad_precision_is_one_line_exit_2(capsys: Any) -> None:
    assert main(["sensitivity", "gpt", "--precisions", "fp12"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown precision 'fp12'" in err


@pytest.mark.parametrize("samples", ["0"])
def test_bad_samples(samples: str, capsys: Any) -> None:
    assert main(["sensitivity", "resnet", "--samples", samples]) == 2
    assert "samples must be >= 1" in capsys.readouterr().err


def test_precision_front_writes_points_and_a_plot(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from hetsched.cli import main

    out, png = tmp_path / "front.json", tmp_path / "front.png"
    argv = ["precision-front", "resnet", "--budgets", "0,0.01", "--time-limit", "2"]
    assert main([*argv, "-o", str(out), "--plot", str(png)]) == 0
    points = json.loads(out.read_text())["points"]
    assert [p["budget"] for p in points] == [0.0, 0.01]
    assert points[1]["makespan"] <= points[0]["makespan"]  # more budget is never slower
    assert points[0]["measured"] == 0.0 and points[1]["measured"] <= 0.01
    assert png.stat().st_size > 0
    capsys.readouterr()
    assert main(["precision-front", "resnet", "--budgets", "a,b"]) == 2
    assert "--budgets takes numbers" in capsys.readouterr().err
