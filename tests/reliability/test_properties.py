"""Properties over random instances: every solver's plan validates, exact <= heuristic,
bound <= makespan; graphs, platforms and plans round-trip exactly through their files.

Example counts come from the hypothesis profile (``HYPOTHESIS_PROFILE``: ``ci`` 25,
``nightly`` 500; see ``conftest.py``).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hetsched.costmodel import Platform
from hetsched.graph import Edge, OpGraph, OpNode, from_dict, graph_sha256, load, save, to_dict
from hetsched.plan import load_plan, plan_to_dict, save_plan, validate
from hetsched.problem import Modes, Problem
from hetsched.solver import get_solver
from tests.families import FAMILIES, random_problem

from .conftest import PROFILE_NAME

PROFILE = settings(settings.get_profile(PROFILE_NAME))
HEURISTICS = ("heft", "peft", "cpop")
WORKERS = {"cpsat", "lns", "portfolio"}


def run(name: str, problem: Problem, *, time_limit: float = 5.0, seed: int = 0, **kw):
    extra: dict = {"workers": 1} if name in WORKERS else {}
    if name == "lns":  # anytime to its limit: keep it short
        extra["step_time"] = 0.1
        time_limit = min(time_limit, 0.5)
    if name == "ls":  # a fixed number of moves: deterministic and quick
        extra["max_evaluations"] = 2000
    return get_solver(name)(problem, time_limit=time_limit, seed=seed, **extra, **kw)


problems = st.builds(
    random_problem,
    st.integers(0, 2**31 - 1),
    n=st.integers(2, 9),
    devices=st.integers(1, 4),
    family=st.sampled_from(FAMILIES),
    ccr=st.sampled_from((0.1, 1.0, 5.0)),
    unsupported=st.sampled_from((0.0, 0.15, 0.4)),
)
identical = st.builds(
    random_problem,
    st.integers(0, 2**31 - 1),
    n=st.integers(2, 8),
    devices=st.integers(1, 3),
    family=st.sampled_from(FAMILIES),
    unsupported=st.just(0.0),
    uniform_links=st.just(True),
)


def _identical(p: Problem) -> Problem:
    """Same problem on identical devices: every column equal to the first."""
    from dataclasses import replace

    modes = Modes.device_modes(np.repeat(p.exec_time[:, :1], p.num_devices, axis=1))
    dur = np.repeat(p.dur[:, :1], p.num_devices, axis=1).ravel()
    return replace(p, modes=modes, mode_dur=dur, name=f"{p.name}/identical")


@PROFILE
@given(problems)
def test_every_solver_validates_exact_le_heuristic_bound_le_makespan(p):
    heur = {}
    for name in HEURISTICS:
        plan = run(name, p)
        validate(plan, p)
        assert plan.lower_bound <= plan.makespan + 1e-9
        heur[name] = plan.makespan
    best = min(heur.values())
    for name in ("cpsat", "portfolio", "ls", "lns", "milp"):
        plan = run(name, p, time_limit=5.0)
        validate(plan, p)
        assert plan.lower_bound <= plan.makespan + 1e-9, name
        if name in ("cpsat", "portfolio", "lns"):  # exact, or seeded with the heuristics
            assert plan.makespan <= best + 1e-9, (name, plan.makespan, heur)
        if name == "ls":  # never worse than its start (HEFT)
            assert plan.makespan <= heur["heft"] + 1e-9, (plan.makespan, heur)
        if plan.status == "optimal":
            assert plan.makespan <= best + 1e-9, (name, plan.makespan, heur)
            assert abs(plan.lower_bound - plan.makespan) <= 1e-9, name


@PROFILE
@given(identical)
def test_sat_on_identical_devices(p):
    p = _identical(p)
    plan = run("sat", p, time_limit=5.0)
    validate(plan, p)
    exact = run("cpsat", p)
    assert plan.lower_bound <= plan.makespan + 1e-9
    if plan.status == "optimal" and exact.status == "optimal":
        assert plan.makespan == exact.makespan
    assert plan.makespan <= min(run(h, p).makespan for h in HEURISTICS) + 1e-9


# ---------------------------------------------------------------------------- round trips
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=12,
)
sizes = st.floats(0, 1e12, allow_nan=False, allow_infinity=False)
costs = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(("*", "cpu", "gpu", "npu", "d0")),
        st.one_of(st.floats(0, 1e6, allow_nan=False), st.just(math.inf)),
        min_size=1,
        max_size=3,
    ),
)


@st.composite
def graphs(draw):
    labels = draw(st.lists(names, min_size=1, max_size=8, unique=True))
    nodes = [
        OpNode(
            x,
            op=draw(st.sampled_from(("aten.mm.default", "aten.add.Tensor", "ünï.çødé"))),
            category=draw(st.sampled_from(("matmul", "elementwise", "other", "attention"))),
            flops=draw(sizes),
            bytes_read=draw(sizes),
            out_bytes=draw(sizes),
            shape=tuple(draw(st.lists(st.integers(0, 4096), max_size=4))),
            module=draw(names),
            cost=draw(costs),
        )
        for x in labels
    ]
    edges = [
        Edge(labels[i], labels[j], draw(sizes))
        for j in range(len(labels))
        for i in range(j)
        if draw(st.booleans())
    ]
    return OpGraph(draw(names), nodes, edges)


@PROFILE
@given(graphs())
def test_graph_json_round_trip_is_exact(tmp_path_factory, g):
    path = tmp_path_factory.mktemp("g") / "g.json"
    save(g, path)
    back = load(path)
    assert to_dict(back) == to_dict(g)
    assert graph_sha256(back) == graph_sha256(g)
    assert back.nodes == g.nodes
    assert to_dict(from_dict(to_dict(g))) == to_dict(g)


finite_pos = st.floats(1e-3, 1e15, allow_nan=False, allow_infinity=False)


# Device speeds within 5 orders of magnitude: a 1e9x spread overflows the integer time
# scale (a named SolverError, see RELIABILITY.md), which is not what this property tests.
realistic = st.floats(1e9, 1e14, allow_nan=False, allow_infinity=False)


@st.composite
def platform_toml(draw, num=finite_pos):
    """TOML of 1-4 devices, every one linked to ``d0``; numbers drawn from ``num``."""
    k = draw(st.integers(1, 4))
    kinds = ("cpu", "gpu", "asic")
    lines = [f'name = "p{draw(st.integers(0, 999))}"']
    for i in range(k):
        lines += [
            "[[device]]",
            f'name = "d{i}"',
            f'kind = "{kinds[i % 3] if i else "cpu"}"',
            f"mem_bandwidth = {draw(num)!r}",
            f"mem_capacity = {draw(num)!r}",
            f"launch_overhead = {draw(st.floats(0, 1e-3))!r}",
            f"peak_flops = {{ fp32 = {draw(num)!r}, fp16 = {draw(num)!r} }}",
        ]
    for i in range(k):
        for j in range(k):
            if i < j and (i == 0 or draw(st.booleans())):  # undirected; all reach d0
                lines += ["[[link]]", f'src = "d{i}"', f'dst = "d{j}"',
                          f"bandwidth = {draw(num)!r}",
                          f"latency = {draw(st.floats(0, 1e-3))!r}"]  # fmt: skip
    return "\n".join(lines) + "\n"


@PROFILE
@given(platform_toml())
def test_platform_toml_round_trip_is_exact(text):
    p = Platform.from_toml(text)
    back = Platform.from_toml(p.to_toml())
    assert back == p
    assert back.to_dict() == p.to_dict()
    assert back.to_toml() == p.to_toml()


@PROFILE
@given(problems, st.sampled_from((*HEURISTICS, "cpsat")))
def test_plan_json_round_trip_is_exact(tmp_path_factory, p, solver):
    plan = run(solver, p)
    path = tmp_path_factory.mktemp("p") / "plan.json"
    save_plan(plan, path)
    back = load_plan(path)
    assert plan_to_dict(back) == plan_to_dict(plan)
    assert back.assignment == plan.assignment
    assert back.start == plan.start and back.finish == plan.finish
    assert back.makespan == plan.makespan and back.lower_bound == plan.lower_bound
    validate(back, p)


@PROFILE
@given(platform_toml(realistic), st.integers(0, 2**31 - 1), st.integers(2, 12))
def test_random_platform_random_graph_plans_validate(text, seed, n):
    from .builders import random_graph

    platform = Platform.from_toml(text)
    g = random_graph(n, seed)
    p = Problem.build(g, platform)
    for name in (*HEURISTICS, "cpsat"):
        plan = run(name, p, time_limit=3.0)
        validate(plan, p)
        assert plan.lower_bound <= plan.makespan * (1 + 1e-9)
