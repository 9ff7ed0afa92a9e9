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
