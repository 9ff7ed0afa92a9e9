"""Every solver x every graph family: plans validate, bounds hold, exact <= heuristic."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hetsched.plan import mode_ids, plan_to_dict, static_usage, validate
from hetsched.schedule.bounds import bound_report, lower_bound
from hetsched.solver import SOLVERS, get_solver
from tests.families import FAMILIES, random_problem

HEURISTICS = ("heft", "peft", "cpop")
EXACT_FAST = ("cpsat", "lns", "portfolio")


def run(name, problem, **kw):
    fn = get_solver(name)
    extra = {"workers": 1} if name in ("cpsat", "lns", "portfolio") else {}
    return fn(problem, time_limit=kw.pop("time_limit", 5.0), seed=0, **extra, **kw)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("solver", [*HEURISTICS, "bounds", *EXACT_FAST])
def test_every_solver_every_family_validates(solver, family):
    for seed in range(2):
        p = random_problem(seed, n=10, devices=3, family=family)
        plan = run(solver, p, time_limit=2.0 if solver == "lns" else 5.0)  # LNS runs it out
        validate(plan, p)
        assert plan.lower_bound <= plan.makespan
        assert len(plan.assignment) == p.n


@pytest.mark.parametrize("family", FAMILIES)
def test_exact_no_worse_than_best_heuristic_and_bound_below(family):
    p = random_problem(7, n=12, devices=3, family=family, ccr=2.0)
    heur = min(run(h, p).makespan for h in HEURISTICS)
    exact = run("cpsat", p)
    validate(exact, p)
    assert exact.makespan <= heur
    assert exact.status == "optimal"
    lb = lower_bound(p) * p.quantum
    assert lb <= exact.makespan
    for name, value in bound_report(p).items():
        assert value * p.quantum <= exact.makespan, name


def test_registry_lists_every_solver():
    assert {"heft", "peft", "cpop", "bounds", "cpsat", "milp", "sat", "portfolio"} <= set(SOLVERS)


def test_link_contention_and_memory_plans_validate():
    base = random_problem(3, n=10, devices=3, family="layered", ccr=3.0)
    d = base.num_devices
    links = {(a, b): (0,) for a in range(d) for b in range(d) if a != b}
    from dataclasses import replace

    p = replace(base, link_contention=True, route_links=links, link_names=("bus",))
    for solver in (*HEURISTICS, "cpsat", "portfolio"):
        plan = run(solver, p)
        validate(plan, p)
    # every op may use d2, which has room for anything: a greedy scheduler never dead-ends
    full = random_problem(3, n=10, devices=3, family="layered", ccr=3.0, unsupported=0.0)
    mem = np.full(base.n, 10.0)
    cap = np.array([30.0, 50.0, 1e9])
    p2 = full.with_memory(cap, mem)
    for solver in (*HEURISTICS, "cpsat"):
        plan = run(solver, p2)
        validate(plan, p2)
        used = static_usage(p2, mode_ids(plan, p2))
        assert used[0] <= 30 and used[1] <= 50
        assert all(plan.memory[d] <= u + 1e-9 for d, u in zip(p2.devices, used, strict=True))


def test_cpsat_is_deterministic_with_one_worker():
    p = random_problem(11, n=14, devices=3, family="layered")
    a = run("cpsat", p)
    b = run("cpsat", p)

    def strip(pl):
        return {k: v for k, v in plan_to_dict(pl).items() if k not in ("solve_time", "stats")}

    assert strip(a) == strip(b)


def test_identical_devices_use_cumulative_and_colouring():
    # homogeneous devices, free communication: the pooled cumulative path.
    from hetsched.problem import Problem

    rng = np.random.default_rng(0)
    n = 20
    edges = [(i, j, 0.0) for j in range(1, n) for i in range(j) if rng.random() < 0.15]
    costs = rng.integers(1, 10, size=n).astype(float)
    p = Problem.from_arrays(
        names=[f"t{i}" for i in range(n)],
        devices=["p0", "p1", "p2"],
        exec_time=np.repeat(costs[:, None], 3, axis=1),
        edges=edges,
        quantum=1.0,
    )
    assert p.device_groups == ((0, 1, 2),)
    plan = run("cpsat", p)
    validate(plan, p)
    assert plan.status == "optimal"
    assert plan.makespan >= np.ceil(costs.sum() / 3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 9),
    devices=st.integers(1, 3),
    family=st.sampled_from(FAMILIES),
    ccr=st.sampled_from([0.1, 1.0, 5.0]),
)
def test_property_random_dag_random_platform(seed, n, devices, family, ccr):
    p = random_problem(
        seed, n=max(n, 4) if family == "diamond" else n, devices=devices, family=family, ccr=ccr
    )
    plans = {h: run(h, p) for h in HEURISTICS}
    exact = run("cpsat", p)
    for plan in [*plans.values(), exact]:
        validate(plan, p)
        assert plan.lower_bound <= plan.makespan
    assert exact.makespan <= min(pl.makespan for pl in plans.values())
    assert lower_bound(p) * p.quantum <= exact.makespan
