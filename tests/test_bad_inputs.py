"""The bad-input catalogue: every input a user can get wrong, and the one line they get.

Each case runs the CLI (exit code 2, one line on stderr naming the culprit, no traceback)
or the API (the named exception). Add new cases to the tables below.
"""

from __future__ import annotations

import json
import math

import pytest

from hetsched.cli import main
from hetsched.errors import (
    GraphError,
    HetschedError,
    InfeasibleError,
    PlanError,
    PlatformError,
    SolverError,
)

from .paths import DATA

STG = str(DATA / "stg50" / "rand0000.stg")


def graph_doc(nodes, edges=(), fmt="hetsched.graph/1"):
    return {"format": fmt, "name": "bad", "nodes": list(nodes), "edges": list(edges)}


def node(name, **kw):
    return {"name": name, "op": "aten.add.Tensor", "category": "elementwise", **kw}


OK_NODES = [node("a", flops=10.0, out_bytes=16.0), node("b", flops=10.0, out_bytes=16.0)]
OK_EDGES = [{"src": "a", "dst": "b", "bytes": 16.0}]

# (case id, file contents (JSON doc, or raw text), extra CLI args, expected words)
GRAPH_FILE_CASES = [
    ("empty-graph", graph_doc([]), [], "no nodes"),
    (
        "cycle",
        graph_doc(OK_NODES, [*OK_EDGES, {"src": "b", "dst": "a", "bytes": 1.0}]),
        [],
        "cycle",
    ),
    ("self-loop", graph_doc(OK_NODES, [{"src": "a", "dst": "a"}]), [], "self-loop on node 'a'"),
    (
        "missing-node",
        graph_doc(OK_NODES, [{"src": "a", "dst": "zz"}]),
        [],
        "missing node 'zz'",
    ),
    ("duplicate-name", graph_doc([node("a"), node("a")]), [], "duplicate node name 'a'"),
    (
        "nan-flops",
        '{"format": "hetsched.graph/1", "nodes": [{"name": "a", "flops": NaN}]}',
        [],
        "'flops' must be finite",
    ),
    ("negative-bytes", graph_doc([node("a", out_bytes=-5.0)]), [], "'out_bytes'"),
    (
        "inf-edge",
        '{"format": "hetsched.graph/1", "nodes": [{"name": "a"}, {"name": "b"}], '
        '"edges": [{"src": "a", "dst": "b", "bytes": Infinity}]}',
        [],
        "bytes must be finite",
    ),
    (
        "unknown-version",
        graph_doc(OK_NODES, fmt="hetsched.graph/9"),
        [],
        "unsupported graph format",
    ),
    ("truncated", '{"format": "hetsched.graph/1", "nodes": [', [], "not valid JSON"),
    ("not-json", "hello", [], "not valid JSON"),
    ("unknown-category", graph_doc([node("a", category="magic")]), [], "unknown category"),
    (
        "no-device-supports",
        graph_doc([node("a", cost={"*": "inf"})]),
        ["--platform", "homogeneous-2"],
        "runs on no device",
    ),
    (
        "overflow",
        graph_doc(
            [node("a", cost={"*": 1.5e308}), node("b", cost={"*": 1.5e308})],
            [{"src": "a", "dst": "b"}],
        ),
        ["--platform", "homogeneous-2"],
        "overflow",
    ),
    (
        "npu-only-op-missing",
        graph_doc([{"name": "a", "op": "aten.sort.default", "category": "other", "flops": 1.0}]),
        ["--platform", str(DATA / "platforms" / "npu-only.toml")],
        "'a'",
    ),
]


def _two_dev_toml(bandwidth="1e9", latency="0"):
    return (
        'name = "p"\n[[device]]\nname = "a"\nkind = "cpu"\nmem_bandwidth = 1e9\n'
        'peak_flops = { fp32 = 1e9 }\n[[device]]\nname = "b"\nkind = "gpu"\n'
        "mem_bandwidth = 1e9\npeak_flops = { fp32 = 1e9 }\n"
        f'[[link]]\nsrc = "a"\ndst = "b"\nbandwidth = {bandwidth}\nlatency = {latency}\n'
    )


PLATFORM_CASES = [
    ("no-devices", 'name = "empty"\n', "device"),
    ("toml-syntax", "name = \n[[device\n", "TOML"),
    (
        "unknown-kind",
        'name = "p"\n[[device]]\nname = "x"\nkind = "fpga"\nmem_bandwidth = 1e9\n'
        "peak_flops = { fp32 = 1e9 }\n",
        "fpga",
    ),
    (
        "zero-bandwidth-link",
        'name = "p"\n[[device]]\nname = "a"\nkind = "cpu"\nmem_bandwidth = 1e9\n'
        'peak_flops = { fp32 = 1e9 }\n[[device]]\nname = "b"\nkind = "gpu"\n'
        "mem_bandwidth = 1e9\npeak_flops = { fp32 = 1e9 }\n"
        '[[link]]\nsrc = "a"\ndst = "b"\nbandwidth = 0\nlatency = 0\n',
        "bandwidth",
    ),
    (
        "link-unknown-device",
        'name = "p"\n[[device]]\nname = "a"\nkind = "cpu"\nmem_bandwidth = 1e9\n'
        'peak_flops = { fp32 = 1e9 }\n[[link]]\nsrc = "a"\ndst = "ghost"\nbandwidth = 1e9\n'
        "latency = 0\n",
        "ghost",
    ),
    ("nan-bandwidth", _two_dev_toml(bandwidth="nan"), "bandwidth"),
    ("negative-latency", _two_dev_toml(latency="-1e-6"), "latency"),
    ("nan-latency", _two_dev_toml(latency="nan"), "latency"),
    (
        "negative-mem-bandwidth",
        'name = "p"\n[[device]]\nname = "a"\nkind = "cpu"\nmem_bandwidth = -1\n'
        "peak_flops = { fp32 = 1e9 }\n",
        "mem_bandwidth",
    ),
    (
        "inf-peak-flops",
        'name = "p"\n[[device]]\nname = "a"\nkind = "cpu"\nmem_bandwidth = 1e9\n'
        "peak_flops = { fp32 = inf }\n",
        "peak_flops",
    ),
]


def assert_one_line_error(capsys, code, *needles):
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = [x for x in err.splitlines() if x.strip() and not x.startswith("[")]
    assert len(lines) == 1, err
    assert lines[0].startswith("hetsched: error:"), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.mark.parametrize(
    ("case", "content", "args", "needle"), GRAPH_FILE_CASES, ids=[c[0] for c in GRAPH_FILE_CASES]
)
def test_bad_graph_files(tmp_path, capsys, case, content, args, needle):
    path = tmp_path / f"{case}.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    code = main(["solve", str(path), "--time-limit", "2", "--quiet", *args])
    assert_one_line_error(capsys, code, needle)


@pytest.mark.parametrize(
    ("case", "toml", "needle"), PLATFORM_CASES, ids=[c[0] for c in PLATFORM_CASES]
)
def test_bad_platforms(tmp_path, capsys, case, toml, needle):
    path = tmp_path / f"{case}.toml"
    path.write_text(toml)
    code = main(["solve", STG, "--platform", str(path), "--time-limit", "2", "--quiet"])
    assert_one_line_error(capsys, code, needle)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--time-limit", "0"], "time limit must be positive"),
        (["--time-limit", "-3"], "time limit must be positive"),
        (["--seed", "1.5"], "invalid int value"),
        (["--solver", "magic"], "invalid choice"),
        (["--platform", "nonexistent-preset"], "nonexistent-preset"),
        (["--workers", "0"], "workers"),
        (["--seed", "-1"], "seed"),
        (["--seed", "abc"], "invalid int value"),
        (["--time-limit", "nan"], "time limit"),
        (["--time-limit", "inf"], "time limit"),
        (["--workers", "-2"], "workers"),
    ],
)
def test_bad_arguments(capsys, args, needle):
    code = main(["solve", STG, "--quiet", *args])
    assert_one_line_error(capsys, code, needle)


def test_missing_and_unknown_graph(capsys, tmp_path):
    assert_one_line_error(
        capsys, main(["solve", str(tmp_path / "nope.json"), "--quiet"]), "no such file"
    )
    assert_one_line_error(capsys, main(["solve", "not-a-model", "--quiet"]), "not-a-model")


def test_stg_bad_predecessor_count(tmp_path, capsys):
    path = tmp_path / "bad.stg"
    path.write_text("1\n0 0 0\n1 3 2 0\n2 0 1 1\n")
    code = main(["solve", str(path), "--platform", "homogeneous-2", "--quiet"])
    assert_one_line_error(capsys, code, "task 1 says 2 predecessors but lists 1")


def test_model_whose_export_fails(capsys):
    code = main(["solve", "tests.bad_models:untraceable", "--quiet"])
    assert_one_line_error(capsys, code)
    code = main(["solve", "tests.bad_models:not_a_pair", "--quiet"])
    assert_one_line_error(capsys, code)


def test_memory_too_small_for_one_op(tmp_path, capsys):
    doc = graph_doc([node("big", flops=1.0, param_bytes=1e12, out_bytes=4.0)])
    path = tmp_path / "big.json"
    path.write_text(json.dumps(doc))
    code = main(["solve", str(path), "--memory", "--quiet"])
    assert_one_line_error(capsys, code, "'big'")


def test_plan_for_another_graph_and_foreign_device():
    import hetsched
    from hetsched.graph import read_stg
    from hetsched.plan import validate
    from hetsched.problem import ModeSpec, Problem

    g = read_stg(STG)
    plan = hetsched.solve(g, "homogeneous-2", solver="heft", time_limit=1)
    other = read_stg(DATA / "stg50" / "rand0001.stg")
    with pytest.raises(PlanError, match="sha256"):
        validate(plan, Problem.build(other, "homogeneous-2"))
    modes = dict(plan.modes)
    modes["t1"] = ModeSpec(("tpu9",))
    with pytest.raises(PlanError, match="'tpu9', which is not on platform"):
        validate(plan.with_(modes=modes), Problem.build(g, "homogeneous-2"))


def test_api_errors_are_in_the_hierarchy():
    import hetsched
    from hetsched.graph import read_stg

    g = read_stg(STG)
    for kwargs, exc in [
        ({"time_limit": 0}, SolverError),
        ({"time_limit": math.nan}, SolverError),
        ({"seed": "x"}, SolverError),
        ({"objective": "speed"}, HetschedError),
        ({"solver": "nope"}, HetschedError),
    ]:
        with pytest.raises(exc):
            hetsched.solve(g, "homogeneous-2", **kwargs)
    for exc in (GraphError, PlatformError, InfeasibleError, PlanError, SolverError):
        assert issubclass(exc, HetschedError)


# ---------------------------------------------------------------- added by the reliability pass


@pytest.mark.parametrize(
    ("case", "text", "needle"),
    [
        ("empty", "", "empty.stg"),
        ("blank-lines", "\n\n  \n", "blank-lines.stg"),
        ("not-numbers", "2\nx y z\n", "not-numbers.stg"),
        ("negative-cost", "1\n0 0 0\n1 -3 1 0\n2 0 1 1\n", "negative-cost.stg"),
    ],
)
def test_bad_stg_files(tmp_path, capsys, case, text, needle):
    path = tmp_path / f"{case}.stg"
    path.write_text(text)
    code = main(["solve", str(path), "--platform", "homogeneous-2", "--quiet"])
    assert_one_line_error(capsys, code, needle)


@pytest.fixture(scope="module")
def stg_plan(tmp_path_factory):
    """A plan for STG (rand0000) on homogeneous-2, written by ``hetsched solve``."""
    path = tmp_path_factory.mktemp("plans") / "plan.json"
    assert main(["solve", STG, "--platform", "homogeneous-2", "--solver", "heft", "--quiet",
                 "-o", str(path)]) == 0  # fmt: skip
    return path


PLAN_CMDS = ["run", "show"]


@pytest.mark.parametrize("cmd", PLAN_CMDS)
def test_plan_for_another_graph_cli(capsys, stg_plan, cmd):
    other = str(DATA / "stg50" / "rand0001.stg")
    capsys.readouterr()
    code = main([cmd, str(stg_plan), "--graph", other, "--platform", "homogeneous-2"])
    assert_one_line_error(capsys, code, "sha256")


@pytest.mark.parametrize("cmd", PLAN_CMDS)
def test_plan_device_not_on_platform_cli(tmp_path, capsys, stg_plan, cmd):
    doc = json.loads(stg_plan.read_text())
    doc["nodes"][0]["device"] = "tpu9"
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(doc))
    capsys.readouterr()
    code = main([cmd, str(path), "--graph", STG, "--platform", "homogeneous-2"])
    assert_one_line_error(capsys, code, "'tpu9'")


@pytest.mark.parametrize(
    ("case", "mangle", "needle"),
    [
        ("truncated", lambda t: t[: len(t) // 2], "not valid JSON"),
        ("empty", lambda _t: "", "not valid JSON"),
        ("unknown-version", lambda t: t.replace("hetsched.plan/2", "hetsched.plan/7"), "format"),
        ("not-an-object", lambda _t: "[1, 2, 3]", "plan"),
    ],
)
@pytest.mark.parametrize("cmd", ["run", "show"])
def test_bad_plan_files(tmp_path, capsys, stg_plan, cmd, case, mangle, needle):
    path = tmp_path / f"{case}.json"
    path.write_text(mangle(stg_plan.read_text()))
    capsys.readouterr()
    code = main([cmd, str(path), "--graph", STG, "--platform", "homogeneous-2"])
    assert_one_line_error(capsys, code, needle)


def test_export_of_a_model_whose_export_fails(tmp_path, capsys):
    out = tmp_path / "g.json"
    code = main(["export", "tests.bad_models:untraceable", "-o", str(out)])
    assert_one_line_error(capsys, code, "untraceable")
    assert not out.exists()
    code = main(["export", "tests.bad_models:not_a_pair", "-o", str(out)])
    assert_one_line_error(capsys, code, "not_a_pair")
    code = main(["export", "tests.bad_models:no_such_factory", "-o", str(out)])
    assert_one_line_error(capsys, code, "no_such_factory")
    assert not out.exists()


def test_api_platform_numbers_raise_platform_error():
    from hetsched.costmodel import Platform

    for text in (_two_dev_toml(bandwidth="nan"), _two_dev_toml(latency="-1")):
        with pytest.raises(PlatformError):
            Platform.from_toml(text)


def test_infinite_link_bandwidth_means_free_transfer(tmp_path):
    # Not an error by design: `bandwidth = inf` is how a platform says "free communication"
    # (the homogeneous-N presets use it). Latency still counts.
    from hetsched.costmodel import Platform

    path = tmp_path / "free.toml"
    path.write_text(_two_dev_toml(bandwidth="inf", latency="2e-6"))
    platform = Platform.load(path)
    assert platform.route("a", "b")[0].time(1e12) == pytest.approx(2e-6)
