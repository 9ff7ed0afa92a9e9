"""What ``-o`` writes: atomically, with the usual file mode, never making directories."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hetsched.cli import main
from hetsched.fileio import write_json_atomic

from ..paths import DATA

STG = str(DATA / "stg50" / "rand0000.stg")


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_022")
def test_outputs_get_the_umask_mode_not_0600(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    argv = ["solve", STG, "--platform", "homogeneous-2", "--solver", "heft", "--quiet"]
    assert main([*argv, "-o", str(plan)]) == 0
    trace = tmp_path / "trace.json"
    assert main(["show", str(plan), "--trace", str(trace)]) == 0
    assert _mode(plan) == _mode(trace) == 0o644
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


@pytest.mark.usefixtures("umask_022")
def test_a_rewritten_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "private.json"
    write_json_atomic(path, {"a": 1})
    os.chmod(path, 0o600)
    write_json_atomic(path, {"a": 2})
    assert _mode(path) == 0o600 and path.read_text() == '{\n "a": 2\n}\n'
    os.umask(0o077)
    fresh = tmp_path / "fresh.json"
    write_json_atomic(fresh, {})
    assert _mode(fresh) == 0o600


def test_no_directory_is_made_and_the_message_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "deeper" / "plan.json"
    rc = main(["solve", STG, "--platform", "homogeneous-2", "--quiet", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert f"directory {tmp_path / 'new' / 'deeper'} does not exist" in err
    assert not (tmp_path / "new").exists()
    (tmp_path / "new" / "deeper").mkdir(parents=True)
    rc = main(["solve", STG, "--platform", "homogeneous-2", "--quiet", "-o", str(out)])
    assert rc == 0 and out.is_file()


def test_demo_takes_dash_o_like_every_other_writer() -> None:
    from hetsched.cli import build_parser

    args = build_parser().parse_args(["demo", "-o", "somewhere"])
    assert args.out == "somewhere"
