"""LNS: exact neighbourhoods, plans validate, never worse than the start, honest bounds."""

import numpy as np
import pytest

from hetsched.plan import mode_ids, plan_from_schedule, schedule_arrays, static_usage, validate
from hetsched.schedule.bounds import lower_bound
from hetsched.schedule.latency.heuristics import solve_heft
from hetsched.schedule.latency.listsched import priority_order, retime
from hetsched.schedule.latency.lns import NEIGHBOURHOODS, choose_window, solve_lns
from hetsched.schedule.latency.neighbourhood import disjunctive_tails, solve_neighbourhood
from hetsched.solver import StopToken
from tests.families import random_problem


def _retimed(p, plan):
    a, s = schedule_arrays(plan, p)
    s, _ = retime(p, a, priority_order(p, s))
    return a, s


@pytest.mark.parametrize("ccr", [0.1, 1.0, 5.0])
def test_lns_validates_and_never_worse(ccr):
    p = random_problem(3, n=120, devices=4, family="layered", ccr=ccr)
    h = solve_heft(p)
    plan = solve_lns(p, time_limit=2.0, seed=0, hint=h, workers=1)
    validate(plan, p)
    assert plan.makespan <= h.makespan
    assert plan.lower_bound <= plan.makespan
    assert plan.lower_bound <= lower_bound(p) * p.quantum + 1e-9


def test_lns_improves_heft_on_a_mid_size_dag():
    p = random_problem(1, n=300, devices=5, family="layered", ccr=1.0)
    h = solve_heft(p)
    plan = solve_lns(p, time_limit=4.0, seed=0, hint=h, workers=1)
    validate(plan, p)
    assert plan.makespan < h.makespan
    assert plan.stats["improvements"] >= 1


def test_disjunctive_tails_reach_the_makespan():
    p = random_problem(2, n=60, devices=3, family="layered")
    a, s = _retimed(p, solve_heft(p))
    fin = s + p.dur[np.arange(p.n), a]
    tail = disjunctive_tails(p, a, s)
    assert int((fin + tail).max()) == int(fin.max())
    assert (fin + tail <= fin.max()).all()


@pytest.mark.parametrize("kind", sorted(set(NEIGHBOURHOODS)))
def test_neighbourhood_objective_is_the_real_makespan(kind):
    p = random_problem(4, n=80, devices=4, family="layered", ccr=1.0)
    a, s = _retimed(p, solve_heft(p))
    rng = np.random.default_rng(0)
    w = choose_window(p, a, s, 12, kind, rng)
    assert w.size > 0
    sub = solve_neighbourhood(p, a, s, w, time_limit=2.0, seed=0, workers=1)
    assert sub is not None
    start, xfer = retime(p, sub.assign, priority_order(p, sub.key))
    ms = int((start + p.dur[np.arange(p.n), sub.assign]).max())
    # the model's objective is an upper bound of the re-timed makespan, never above the start
    assert ms <= sub.makespan <= int((s + p.dur[np.arange(p.n), a]).max())
    plan = plan_from_schedule(p, assign=sub.assign, start=start, solver="t", transfer_start=xfer)
    validate(plan, p)


def test_lns_honours_stop_and_memory():
    p = random_problem(5, n=60, devices=3, family="layered")
    # capacities that HEFT's own placement just fits, so the constraint binds
    free = p.with_memory(np.full(3, np.inf), np.ones(p.n))
    unconstrained = solve_heft(free)
    # (the static envelope: LNS keeps it within capacity, and HEFT, which frees nothing
    # before every reader is placed, needs at most that much)
    p = p.with_memory(static_usage(free, mode_ids(unconstrained, free)), np.ones(p.n))
    stop = StopToken()
    stop.set()
    h = solve_heft(p)
    plan = solve_lns(p, time_limit=5.0, seed=0, hint=h, workers=1, stop=stop)
    assert plan.interrupted and plan.makespan <= h.makespan
    plan = solve_lns(p, time_limit=1.0, seed=0, hint=h, workers=1)
    validate(plan, p)
