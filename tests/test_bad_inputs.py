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
    UsageError,
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


# ---------------------------------------------------------------- issue 15: the rough edges
# Each case fails before any work (the work is patched to fail loudly), in one line.


def _chain(name, n, cost=2.0):
    """An OpGraph of ``n`` ops in a chain, explicit costs (no torch)."""
    from hetsched.graph import Edge, OpGraph, OpNode

    nodes = [OpNode(f"op{i}", cost={"*": cost}) for i in range(n)]
    edges = [Edge(f"op{i}", f"op{i + 1}", 8.0) for i in range(n - 1)]
    return OpGraph(name, nodes, edges)


@pytest.fixture
def no_work(monkeypatch):
    """Any solve, export, run, split, calibration or benchmark started is a test failure."""
    import hetsched.api
    import hetsched.bench
    import hetsched.costmodel.calibrate
    import hetsched.graph.resolve
    import hetsched.plan

    def started(*_a, **_k):
        raise AssertionError("the work started before the output path was checked")

    for mod, name in [
        (hetsched.api, "solve"),
        (hetsched.graph.resolve, "load_graph_spec"),
        (hetsched.graph.resolve, "load_program_spec"),
        (hetsched.plan, "load_plan"),
        (hetsched.costmodel.calibrate, "calibrate"),
        (hetsched.bench, "run_bench"),
    ]:
        monkeypatch.setattr(mod, name, started)


def _writers(out):
    """Every command that writes a file named on the command line, with ``out`` there."""
    return [
        ["solve", STG, "--quiet", "-o", out],
        ["export", "mlp", "-o", out],
        ["run", "plan.json", "--graph", STG, "--gantt", out],
        ["run", "plan.json", "--graph", STG, "--trace", out],
        ["show", "plan.json", "--gantt", out],
        ["show", "plan.json", "--trace", out],
        ["partition", "mlp", "--plan", "plan.json", "-o", out],
        ["calibrate", "-o", out],
    ]


_WRITER_IDS = [w[0] + w[-2] for w in _writers("x")]


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize("which", range(len(_WRITER_IDS)), ids=_WRITER_IDS)
@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("a-dir", "is a directory"),
        ("good.json/plan.json", "good.json is a file, not a directory"),
        ("missing/dir/plan.json", "directory missing/dir does not exist"),
    ],
)
def test_output_path_checked_before_the_work(tmp_path, monkeypatch, capsys, which, case, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "good.json").write_text("{}")
    (tmp_path / "a-dir.py").mkdir()
    argv = _writers(case)[which]
    if argv[0] == "partition":  # its output must end in .py or .pt2
        argv[-1] = "a-dir.py" if case == "a-dir" else case.replace("plan.json", "split.py")
    assert_one_line_error(capsys, main(argv), needle)
    assert not (tmp_path / "missing").exists()  # no directory was created
    assert (tmp_path / "good.json").read_text() == "{}"


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["bench", "--suite", "random", "--quick", "-o", "good.json"], "is a file"),
        (["bench", "--suite", "random", "--quick", "-o", "missing/res"], "missing does not"),
        (["demo", "--out", "good.json"], "is a file"),
        (["demo", "-o", "missing/out"], "missing does not exist"),
        (["demo", "-o", "out"], "out/plan.json: is a directory"),
    ],
)
def test_output_directory_checked_before_the_work(tmp_path, monkeypatch, capsys, argv, needle):
    import hetsched.graph.zoo

    def started(*_a, **_k):
        raise AssertionError("the demo started before its output directory was checked")

    monkeypatch.setattr(hetsched.graph.zoo, "build", started)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.json").write_text("{}")
    (tmp_path / "out" / "plan.json").mkdir(parents=True)
    assert_one_line_error(capsys, main(argv), needle)
    assert not (tmp_path / "missing").exists()


def test_api_writers_refuse_the_same_paths(tmp_path):
    from hetsched.errors import OutputError, UsageError
    from hetsched.fileio import write_json_atomic
    from hetsched.plan import save_plan

    plan = __import__("hetsched").solve(_chain("g", 3), "homogeneous-2", solver="heft")
    for bad in (tmp_path, tmp_path / "nope" / "p.json"):
        with pytest.raises(OutputError) as info:
            save_plan(plan, bad)
        assert isinstance(info.value, UsageError) and isinstance(info.value, OSError)
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a directory"):
        write_json_atomic(tmp_path / "f" / "p.json", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--time-scale", "0"], "time scale must be a finite number > 0, got 0.0"),
        (["--time-scale", "-2"], "time scale"),
        (["--time-scale", "nan"], "time scale"),
        (["--watchdog", "0"], "watchdog"),
        (["--noise", "-1"], "noise must be a finite number >= 0, got -1.0"),
        (["--noise", "inf"], "noise"),
        (["--noise", "0.1", "--samples", "0"], "samples must be an integer >= 1, got 0"),
        (["--samples", "10"], "--samples 10 applies only with --noise"),
    ],
)
def test_run_options_rejected_before_the_run(capsys, args, needle):
    # load_plan is patched to fail: the options are refused before the plan is even read
    assert_one_line_error(capsys, main(["run", "plan.json", "--graph", STG, *args]), needle)


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--objective", "modulo", "--iterations", "0"], "iterations must be a positive"),
        (["--objective", "modulo", "--iterations", "-3"], "iterations must be a positive"),
        (["--iterations", "3"], "--iterations applies to --objective modulo, not latency"),
        (["--contiguous"], "--contiguous applies to --objective throughput"),
        (["--objective", "modulo", "--max-latency", "1"], "--max-latency applies to --objective"),
    ],
)
def test_solve_options_rejected_before_the_solve(capsys, args, needle):
    assert_one_line_error(capsys, main(["solve", STG, "--quiet", *args]), needle)


def test_api_iterations_zero_is_not_the_default():
    import hetsched

    for bad in (0, -1, 2.5, True):
        with pytest.raises(HetschedError, match="iterations must be a positive integer"):
            hetsched.solve(_chain("g", 3), "homogeneous-2", objective="modulo", iterations=bad)


def test_api_platform_takes_a_toml_path_as_the_cli_does(tmp_path):
    import hetsched

    path = tmp_path / "two.toml"
    path.write_text(_two_dev_toml())
    g = _chain("g", 4)
    for platform in (path, str(path)):
        plan = hetsched.solve(g, platform, solver="heft")
        assert plan.platform == "p" and set(plan.assignment.values()) <= {"a", "b"}
    assert list(hetsched.build_problem(g, str(path)).devices) == ["a", "b"]
    with pytest.raises(PlatformError, match="no such platform file"):
        hetsched.solve(g, str(tmp_path / "missing.toml"))
    with pytest.raises(PlatformError, match=r"not a preset .* nor a platform TOML"):
        hetsched.solve(g, "no-such-platform")


def test_api_solve_takes_torch_programs_or_says_what_to_pass():
    torch = pytest.importorskip("torch")
    import hetsched
    from hetsched.errors import UsageError

    model, x = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU()), torch.randn(2, 4)
    ep = torch.export.export(model, (x,))
    for given, kw in [(ep, {}), (model, {"example_args": (x,)}), ((model, (x,)), {}),
                      (model, {"example_args": x})]:  # fmt: skip
        plan = hetsched.solve(given, "edge-soc", solver="heft", **kw)
        assert list(plan.assignment) == ["linear"]  # relu fused into the linear
    assert len(hetsched.solve(ep, "edge-soc", solver="heft", fuse=False).assignment) == 2
    with pytest.raises(UsageError, match=r"example_args=\(x,\)"):
        hetsched.solve(model, "edge-soc")
    with pytest.raises(UsageError, match="drop example_args"):
        hetsched.solve(ep, "edge-soc", example_args=(x,))
    with pytest.raises(UsageError, match=r"give an OpGraph, a torch\.export\.ExportedProgram"):
        hetsched.solve({"nodes": []}, "edge-soc")


def test_import_hetsched_reaches_the_readme_names_without_torch():
    import subprocess
    import sys

    code = (
        "import sys, hetsched\n"
        "assert callable(hetsched.partition.apply) and callable(hetsched.graph.from_exported)\n"
        "assert callable(hetsched.graph.from_torch) and callable(hetsched.exec.execute)\n"
        "assert hetsched.costmodel.Platform and hetsched.schedule\n"
        "assert 'torch' not in sys.modules, 'torch imported eagerly'\n"
        "assert not hasattr(hetsched, 'nope')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr


def _solved(tmp_path, graph, name):
    from hetsched.graph import save

    path = tmp_path / f"{name}.json"
    save(graph, path)
    plan = tmp_path / f"{name}-plan.json"
    assert main(["solve", str(path), "--platform", "homogeneous-2", "--solver", "heft",
                 "--quiet", "-o", str(plan)]) == 0  # fmt: skip
    return path, plan


def test_plan_for_a_coarsened_graph_says_why(tmp_path, capsys):
    fine, _ = _solved(tmp_path, _chain("net", 6), "fine")
    _, coarse_plan = _solved(tmp_path, _chain("net", 3, cost=4.0), "coarse")
    doc = json.loads(coarse_plan.read_text())
    assert doc["graph"]["ops"] == 3 and doc["graph"]["name"] == "net"
    capsys.readouterr()
    for cmd in ("run", "show"):
        code = main([cmd, str(coarse_plan), "--graph", str(fine), "--platform", "homogeneous-2"])
        assert_one_line_error(capsys, code, "plan is for graph 'net' (3 ops", "not 'net' (6 ops",
                              "--coarsen")  # fmt: skip


def test_plan_mismatch_messages():
    import hetsched
    from hetsched.plan import validate
    from hetsched.problem import Problem

    plan = hetsched.solve(_chain("net", 4), "homogeneous-2", solver="heft")
    cases = [
        (_chain("net", 8), "the plan's has fewer ops: solved with --coarsen or fusion?"),
        (_chain("net", 2), "this one has fewer ops"),
        (_chain("net", 4, cost=3.0), "same op count"),
        (_chain("other", 4), "give the graph the plan was solved for"),
    ]
    for graph, needle in cases:
        with pytest.raises(PlanError, match="sha256") as info:
            validate(plan, Problem.build(graph, "homogeneous-2"))
        assert needle in str(info.value) and "\n" not in str(info.value)


def test_plan_file_op_count_must_match_its_nodes(tmp_path, stg_plan):
    from hetsched.plan import load_plan

    doc = json.loads(stg_plan.read_text())
    assert doc["graph"]["ops"] == len(doc["nodes"])
    doc["graph"]["ops"] = 7
    path = tmp_path / "lying.json"
    path.write_text(json.dumps(doc))
    n = len(doc["nodes"])
    with pytest.raises(PlanError, match=rf"graph\.ops says 7 ops but the plan places {n}"):
        load_plan(path)
    del doc["graph"]["ops"]  # plans written before the field still load
    path.write_text(json.dumps(doc))
    assert len(load_plan(path).assignment) == n


def test_run_names_a_platform_that_is_not_a_preset(tmp_path, capsys):
    toml = tmp_path / "two.toml"
    toml.write_text(_two_dev_toml())
    graph, plan = tmp_path / "g.json", tmp_path / "p.json"
    from hetsched.graph import save

    save(_chain("g", 3), graph)
    assert main(["solve", str(graph), "--platform", str(toml), "--solver", "heft", "--quiet",
                 "-o", str(plan)]) == 0  # fmt: skip
    capsys.readouterr()
    code = main(["run", str(plan), "--graph", str(graph)])
    assert_one_line_error(capsys, code, "platform 'p', which is not a preset", "--platform")
    assert main(["run", str(plan), "--graph", str(graph), "--platform", str(toml)]) == 0


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["inspect", STG, "--batch", "4"], "is a graph file, so --batch 4 does not apply"),
        (["inspect", STG, "--seq", "64"], "--seq 64 does not apply"),
        (["solve", STG, "--size", "small", "--quiet"], "--size small does not apply"),
        (["cost", STG, "--size", "base"], "--size base does not apply"),
        (["inspect", "mlp", "--batch", "0"], "--batch must be an integer >= 1, got 0"),
        (["run", "plan.json", "--graph", STG, "--batch", "2"], "--batch 2 does not apply"),
        (["partition", "mlp", "--plan", "p.json", "-o", "split.txt"], "must end in .py or .pt2"),
    ],
)
def test_options_that_would_be_ignored(capsys, monkeypatch, tmp_path, argv, needle):
    import hetsched.plan

    # never reaches the plan: the graph options are refused first (run), or the output (split)
    monkeypatch.setattr(hetsched.plan, "load_plan", lambda _path: None)
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(capsys, main(argv), needle)


# `module:factory` specs: the current directory first (as `python -c`), never a script or a
# dependency's module of the same name; size options a factory does not take are an error.
_FACTORY_FILE = """
import torch

def build():
    return torch.nn.Linear(4, 2), (torch.randn(3, 4),)

def sized(batch=1, seq=4):
    return torch.nn.Linear(seq, 2), (torch.randn(batch, seq),)
"""


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    """A ``models.py`` in the current directory and an installed ``models`` package that
    would shadow it; neither stays imported after the test."""
    pytest.importorskip("torch")
    import sys

    work, site, scripts = tmp_path / "work", tmp_path / "site" / "models", tmp_path / "bin"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("INSTALLED = True\n")
    scripts.mkdir()  # a console script's sys.path[0]: PySAT installs a models.py script there
    (scripts / "models.py").write_text("raise SystemExit('the models.py script ran')\n")
    work.mkdir()
    (work / "models.py").write_text(_FACTORY_FILE)
    monkeypatch.syspath_prepend(str(site.parent))
    monkeypatch.syspath_prepend(str(scripts))
    monkeypatch.setattr(sys, "executable", str(scripts / "python"))
    monkeypatch.chdir(work)
    monkeypatch.delitem(sys.modules, "models", raising=False)
    yield work
    sys.modules.pop("models", None)


def test_factory_module_comes_from_the_current_directory(user_models, capsys):
    import sys

    assert main(["inspect", "models:build"]) == 0
    assert "graph build: 1 nodes" in capsys.readouterr().out
    assert sys.modules["models"].__file__ == str(user_models / "models.py")
    assert str(user_models) not in sys.path  # the path is put back as it was


def test_factory_module_already_imported_from_elsewhere(user_models, capsys):
    import importlib.util
    import sys

    init = user_models.parent / "site" / "models" / "__init__.py"
    spec = importlib.util.spec_from_file_location("models", init)
    installed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(installed)
    sys.modules["models"] = installed  # a dependency imported its own `models` already
    assert_one_line_error(capsys, main(["inspect", "models:build"]),
                          "module 'models' is already imported from", "rename yours")  # fmt: skip
    sys.modules.pop("models")
    (user_models / "models.py").unlink()  # no file of the user's: the installed one is found
    assert_one_line_error(capsys, main(["inspect", "models:build"]),
                          "site/models/__init__.py) has no attribute 'build'")  # fmt: skip


@pytest.mark.usefixtures("user_models")
def test_factory_size_options_are_passed_or_refused(capsys):
    assert_one_line_error(
        capsys,
        main(["inspect", "models:build", "--batch", "4", "--seq", "64"]),
        "factory 'models:build' takes no 'batch' parameter, so --batch 4 would be ignored",
    )
    assert main(["inspect", "models:sized", "--batch", "4", "--seq", "64", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["nodes"] == 1
    from hetsched.graph.resolve import load_program_spec

    model, (x,) = load_program_spec("models:sized", batch=4, seq=64)
    assert tuple(x.shape) == (4, 64) and model.in_features == 64


# ---------------------------------------------------------------- issue 17: precision
def _sensitivity_file(tmp_path, graph_name="other", sha="0" * 64):
    from hetsched.precision import SensitivityTable

    path = tmp_path / "sens.json"
    SensitivityTable(graph_name, sha, errors={"a": {"int8": 0.01}}).save(path)
    return path


@pytest.mark.parametrize(
    ("budget", "needle"),
    [
        ("-0.1", "error budget must be a number >= 0"),
        ("nan", "error budget must be a number >= 0"),
    ],
)
def test_bad_error_budgets(capsys, tmp_path, budget, needle):
    path = tmp_path / "g.json"
    path.write_text(json.dumps(graph_doc(OK_NODES, OK_EDGES)))
    sens = _sensitivity_file(tmp_path)
    args = ["solve", str(path), "--quiet", "--error-budget", budget, "--sensitivity", str(sens)]
    assert_one_line_error(capsys, main(args), needle)


def test_a_sensitivity_table_for_another_graph(capsys, tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps(graph_doc(OK_NODES, OK_EDGES)))
    sens = _sensitivity_file(tmp_path)
    args = ["solve", str(path), "--quiet", "--error-budget", "0.01", "--sensitivity", str(sens)]
    assert_one_line_error(capsys, main(args), "sensitivity table is for graph 'other'")


def test_a_budget_without_errors_and_a_table_without_a_budget(capsys, tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps(graph_doc(OK_NODES, OK_EDGES)))
    args = ["solve", str(path), "--quiet"]
    assert_one_line_error(
        capsys, main([*args, "--error-budget", "0.01"]), "an error budget needs per-op errors"
    )
    sens = _sensitivity_file(tmp_path)
    assert_one_line_error(
        capsys, main([*args, "--sensitivity", str(sens)]), "--sensitivity is read for"
    )


def test_a_precision_no_device_supports(capsys, tmp_path):
    from hetsched.graph import graph_sha256, load

    path = tmp_path / "g.json"
    path.write_text(json.dumps(graph_doc(OK_NODES, OK_EDGES)))
    sens = _sensitivity_file(tmp_path, "bad", graph_sha256(load(path)))
    args = ["solve", str(path), "--quiet", "--error-budget", "0.01", "--sensitivity", str(sens)]
    assert_one_line_error(capsys, main([*args, "--platform", "homogeneous-2"]), "computes in int8")


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--objective", "throughput"], "tensor-parallel splits apply to objective latency"),
        (["--coarsen"], "--coarsen and --split do not go together"),
    ],
)
def test_split_where_it_does_not_apply(capsys, tmp_path, extra, needle):
    path = tmp_path / "g.json"
    path.write_text(json.dumps(graph_doc(OK_NODES, OK_EDGES)))
    args = ["solve", str(path), "--quiet", "--split", *extra]
    assert_one_line_error(capsys, main(args), needle)


def test_running_a_split_plan_needs_the_graph():
    import torch

    from hetsched.exec import execute
    from hetsched.graph.resolve import import_program
    from hetsched.problem import Problem
    from hetsched.schedule.latency.heuristics import solve_heft
    from hetsched.schedule.latency.splits import fixed_sharding

    m = torch.nn.Sequential(torch.nn.Linear(8, 8))
    x = torch.randn(2, 8)
    ep = torch.export.export(m, (x,))
    graph = import_program(ep, name="fc")
    problem = Problem.build(graph, "multi-gpu", split=True)
    plan = solve_heft(fixed_sharding(problem), time_limit=5)
    assert any(mode.tag.startswith("split:") for mode in plan.modes.values())
    with pytest.raises(UsageError, match="runs split: running a program's shards needs its graph"):
        execute(plan, problem, program=ep, inputs=[x])


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["solve", STG, "--pin", "t1"], "pin 't1': expected OPS=DEVICES"),
        (["solve", STG, "--max-segments", "0"], "max_segments must be a positive integer, got 0"),
        (["solve", STG, "--colocate", ","], "colocate ',': name at least one op"),
        (["solve", STG, "--forbid", "nosuchop=p0"], "'nosuchop' matches no op name or module"),
        (["solve", STG, "--objective", "throughput", "--colocate", "t1,t2"],
         "colocate and max_segments apply to objective latency"),
    ],
)  # fmt: skip
def test_bad_rules_are_one_line_errors(capsys, argv, needle):
    assert_one_line_error(capsys, main(argv), needle)
