"""``hetsched export`` / ``inspect`` / ``models`` through ``hetsched.cli.main``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from hetsched.cli import main
from hetsched.graph.formats import load
from hetsched.graph.opgraph import Edge, OpGraph, OpNode


def _one_line_error(capsys: pytest.CaptureFixture[str], rc: int, match: str) -> None:
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("hetsched: error:") and match in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_models_lists_the_zoo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("gpt", "mamba", "mlp", "resnet", "unet"):
        assert f"\n{name} " in f"\n{out}"


def test_export_then_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    (tmp_path / "out").mkdir()  # -o makes no directories
    path = tmp_path / "out" / "mlp.json"
    assert main(["export", "mlp", "--size", "tiny", "--batch", "2", "-o", str(path)]) == 0
    assert "wrote" in capsys.readouterr().out
    g = load(path)
    assert g.name == "mlp-tiny" and g.meta["source"] == "torch.export"
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"graph mlp-tiny: {len(g.nodes)} nodes") and "critical path" in out
    assert main(["inspect", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nodes"] == len(g.nodes)
    coarse, plain = tmp_path / "coarse.json", tmp_path / "plain.json"
    assert main(["export", "mlp", "--no-fuse", "-o", str(plain)]) == 0
    assert main(["export", "mlp", "--no-fuse", "--coarsen", "-o", str(coarse)]) == 0
    assert len(load(coarse).nodes) < len(load(plain).nodes)


def test_inspect_zoo_name_and_stg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    assert main(["inspect", "gpt", "--heads", "split"]) == 0
    assert "graph gpt-tiny" in capsys.readouterr().out
    stg = tmp_path / "t.stg"
    stg.write_text("2\n0 0 0\n1 3 1 0\n2 4 1 1\n3 0 1 2\n")
    assert main(["inspect", str(stg)]) == 0
    out = capsys.readouterr().out
    assert "4 nodes" in out and "7 cost units" in out


def test_factory_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    (tmp_path / "my_models_pkg.py").write_text(
        textwrap.dedent(
            """
            import torch

            class Bad(torch.nn.Module):
                def forward(self, x):
                    return x + 1 if x.sum() > 0 else x

            def build():
                return torch.nn.Linear(4, 2), (torch.randn(3, 4),)

            def bad():
                return Bad(), (torch.randn(3),)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "f.json"
    assert main(["export", "my_models_pkg:build", "-o", str(out)]) == 0
    assert load(out).name == "build"
    capsys.readouterr()
    rc = main(["export", "my_models_pkg:bad", "-o", str(tmp_path / "bad.json")])
    _one_line_error(capsys, rc, "could not trace model 'bad'")
    assert not (tmp_path / "bad.json").exists()
    rc = main(["export", "my_models_pkg:nope", "-o", str(out)])
    _one_line_error(capsys, rc, "has no attribute 'nope'")
    rc = main(["export", "no_such_pkg_xyz:build", "-o", str(out)])
    _one_line_error(capsys, rc, "cannot import module 'no_such_pkg_xyz'")


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["inspect", "vgg"], "unknown graph 'vgg'"),
        (["inspect", "missing.json"], "no such file"),
        (["export", "gpt", "--batch", "0", "-o", "x.json"], "--batch must be an integer >= 1"),
        (["export", "gpt", "--size", "huge", "-o", "x.json"], "invalid choice: 'huge'"),
        (["export", "gpt"], "required: -o/--output"),
        (["export", "g.json", "-o", "x.json"], "no such file"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    argv: list[str],
    match: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse errors exit from the parser
        rc = int(exc.code or 0)
    _one_line_error(capsys, rc, match)


def test_inspect_malformed_graph_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "bad.json"
    p.write_text('{"format": "hetsched.graph/99", "nodes": []}')
    _one_line_error(capsys, main(["inspect", str(p)]), "unsupported graph format")
    good = tmp_path / "good.json"
    from hetsched.graph.formats import save

    save(OpGraph("g", [OpNode("a", flops=1e9), OpNode("b")], [Edge("a", "b", 4.0)]), good)
    assert main(["inspect", str(good)]) == 0
    assert "graph g: 2 nodes, 1 edges" in capsys.readouterr().out
