"""``hetsched platforms``, ``cost`` and ``calibrate`` through ``hetsched.cli.main``."""

from __future__ import annotations

import functools

import pytest

from hetsched.cli import main
from hetsched.costmodel import Platform
from hetsched.costmodel.tomlio import loads
from hetsched.graph import Edge, OpGraph, OpNode, save


@pytest.fixture
def graph_file(tmp_path):
    g = OpGraph(
        "cli",
        [
            OpNode("conv", category="conv", flops=1e9, bytes_read=4e6, out_bytes=4e6),
            OpNode("perm", category="data_movement", flops=0.0, bytes_read=4e6),
            OpNode("fc", category="matmul", flops=2e8, bytes_read=1e6),
        ],
        [Edge("conv", "perm", 4e6), Edge("perm", "fc", 1e4)],
    )
    path = tmp_path / "g.json"
    save(g, path)
    return str(path)


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hetsched: error: ")
    return lines[0]


def test_platforms_list(capsys) -> None:
    assert main(["platforms"]) == 0
    out = capsys.readouterr().out
    for name in ("edge-soc", "workstation", "multi-gpu", "homogeneous-N"):
        assert name in out


def test_platforms_show(capsys, tmp_path) -> None:
    assert main(["platforms", "edge-soc"]) == 0
    out = capsys.readouterr().out
    assert "npu0" in out and "int8=36.86T" in out and "cpu<->npu1" in out
    assert main(["platforms", "homogeneous-3", "--toml"]) == 0
    text = capsys.readouterr().out
    assert Platform.from_toml(text) == Platform.preset("homogeneous-3")
    path = tmp_path / "p.toml"
    path.write_text(text)
    assert main(["platforms", str(path)]) == 0


def test_platforms_unknown(capsys) -> None:
    assert main(["platforms", "nope"]) == 2
    assert "unknown platform 'nope': not a preset" in one_error_line(capsys.readouterr().err)


def test_cost_table(capsys, graph_file) -> None:
    assert main(["cost", graph_file, "--platform", "edge-soc", "--top", "1"]) == 0
    out = capsys.readouterr().out
    rows = out.split("total")[0]
    assert "\nconv " in rows and "\nfc " not in rows
    assert main(["cost", graph_file]) == 0
    out = capsys.readouterr().out
    perm = next(line for line in out.splitlines() if line.startswith("perm"))
    assert perm.count(" - ") + perm.count("-  ") >= 2  # NPUs refuse the layout change


def test_cost_explain(capsys, graph_file) -> None:
    assert main(["cost", graph_file, "--platform", "workstation", "--explain", "conv"]) == 0
    out = capsys.readouterr().out
    assert "conv on gpu" in out and "compute" in out and "overhead" in out


def test_cost_errors(capsys, graph_file, tmp_path) -> None:
    assert main(["cost", graph_file, "--explain", "nothere"]) == 2
    assert "nothere" in one_error_line(capsys.readouterr().err)
    assert main(["cost", graph_file, "--platform", "mars"]) == 2
    one_error_line(capsys.readouterr().err)
    assert main(["cost", str(tmp_path / "missing.json")]) == 2
    one_error_line(capsys.readouterr().err)


def test_calibrate_quick(capsys, tmp_path, monkeypatch) -> None:
    from hetsched.costmodel import calibrate as calibration

    # one timing round instead of five: the command's path is what is tested here
    monkeypatch.setattr(calibration, "measure", functools.partial(calibration.measure, repeats=1))
    out_path = tmp_path / "prof.toml"
    assert main(["calibrate", "--quick", "-o", str(out_path)]) == 0
    out = capsys.readouterr().out
    assert "before med" in out and "matmul" in out and "data_movement" in out
    doc = loads(out_path.read_text())
    assert doc["device"]["peak_flops"]["fp32"] > 0


def test_calibrate_gpu_refused(capsys, tmp_path) -> None:
    assert main(["calibrate", "--device", "gpu", "-o", str(tmp_path / "x.toml")]) == 2
    assert "only the host CPU" in one_error_line(capsys.readouterr().err)
