"""Modulo scheduling: bounds, unrolled validation, carried edges, memory, demo cases."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hetsched.errors import PlanError, UsageError
from hetsched.plan import overflow
from hetsched.problem import Problem
from hetsched.schedule.throughput.modulo import rec_mii, res_mii, solve_modulo, validate_modulo
from tests.schedule.throughput.conftest import random_problem


@pytest.mark.parametrize("seed", range(4))
def test_ii_above_bounds_and_unrolled_schedule_validates(seed):
    p = random_problem(seed, n=7, d=3)
    carried = [(p.names[-1], p.names[0], 2)] if seed % 2 else []
    plan = solve_modulo(p, carried=carried, time_limit=5, workers=1)
    r = plan.modulo
    assert plan.objective == "modulo" and plan.solver == "modulo"
    assert r.ii >= max(r.res_mii, r.rec_mii) - 1e-9
    assert r.ii >= r.ii_bound - 1e-9
    validate_modulo(plan, p, iterations=6)
    if not carried:
        assert plan.status == "optimal" and r.ii == r.res_mii and r.proved_by == "bound"
    assert not {"ii", "ii_bound", "res_mii", "rec_mii", "throughput"} & set(plan.stats)


@pytest.mark.parametrize("seed", range(3))
def test_memory_respected(seed):
    p = random_problem(20 + seed, n=6, d=3, memory=True, shared=True)
    plan = solve_modulo(p, time_limit=5, workers=1)
    validate_modulo(plan, p, iterations=4)
    assign = np.array([p.device_index[plan.assignment[x]] for x in p.names])
    assert overflow(p, p.device_mode[np.arange(p.n), assign]) is None


def test_bounds_by_hand():
    p = Problem.from_arrays(
        names=["a", "b", "c"], devices=["x", "y"], quantum=1.0,
        exec_time=np.array([[3.0, 4.0], [2.0, 2.0], [2.0, 5.0]]), edges=[(0, 1, 1.0), (1, 2, 1.0)],
    )  # fmt: skip
    res, exact, assign = res_mii(p)
    assert (res, exact) == (4, True) and assign is not None
    assert rec_mii(p, []) == 0
    assert rec_mii(p, [("c", "a", 1)]) == 7
    assert rec_mii(p, [("c", "a", 2)]) == 4
    plan = solve_modulo(p, carried=[("c", "a", 2)], time_limit=5, workers=1)
    validate_modulo(plan, p, iterations=6)
    assert plan.modulo.ii >= 4.0
    assert plan.modulo.carried == (("c", "a", 2),)


def test_validate_modulo_catches_overlap():
    p = random_problem(6, n=5, d=2, unsupported=0.0)
    plan = solve_modulo(p, time_limit=5, workers=1)
    r = plan.modulo
    squeezed = replace(r, ii=r.ii / 4, res_mii=0.0, rec_mii=0.0, ii_bound=0.0)
    with pytest.raises(PlanError, match="unrolled"):
        validate_modulo(plan.with_(modulo=squeezed), p, iterations=4)
    with pytest.raises(PlanError, match="offset"):
        validate_modulo(plan.with_(modulo=replace(r, offset={})), p)
    with pytest.raises(PlanError, match="not a modulo plan"):
        validate_modulo(plan.with_(objective="latency", modulo=None), p)


def test_bad_carried_edges():
    p = random_problem(6, n=3, d=2)
    with pytest.raises(UsageError, match="'nope'"):
        solve_modulo(p, carried=[("nope", "op0", 1)], time_limit=2)
    with pytest.raises(UsageError, match="distance >= 1"):
        solve_modulo(p, carried=[("op2", "op0", 0)], time_limit=2)
    with pytest.raises(UsageError, match="takes no option 'iterations'"):
        solve_modulo(p, iterations=3, time_limit=2)


def test_demo_cases_run():
    from hetsched.schedule.throughput.demo import run_demo

    rows = run_demo(time_limit=4, names=["gpt-head", "resnet-frame-tracked"])
    assert [r["case"] for r in rows] == ["gpt-head", "resnet-frame-tracked"]
    for r in rows:
        assert r["ii_units"] >= max(r["res_mii_units"], r["rec_mii_units"])


def test_a_guided_denoising_step_chains_through_its_carried_edges():
    from hetsched.schedule.throughput.demo import run_demo

    (row,) = run_demo(time_limit=4, names=["unet-cfg-denoise"])
    assert row["ops"] > 80  # two UNet passes and their combination
    assert row["rec_mii_units"] > 0  # each step waits for the one before
    assert row["ii_units"] >= max(row["res_mii_units"], row["rec_mii_units"])
