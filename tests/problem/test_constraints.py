"""Pin, forbid, colocate, segment cap (issue 21): every solver honours them, the validator
checks them, bounds stay below the brute-force optimum under them, and rules that conflict
get one line naming them."""

from __future__ import annotations

import numpy as np
import pytest

from hetsched.errors import InfeasibleError, PlanError, UsageError
from hetsched.plan import plan_from_schedule, validate
from hetsched.problem import Problem
from hetsched.problem.constraints import Constraints, count_segments
from hetsched.schedule.structure import structure_assignment, structure_restriction
from hetsched.solver import get_solver
from tests.bruteforce import brute_force_makespan, random_tiny_problem

SOLVERS = ["heft", "peft", "cpop", "bounds", "cpsat", "milp", "sat", "ls", "lns", "portfolio"]


def chain3() -> Problem:
    return Problem.from_arrays(
        names=["a", "b", "c"],
        devices=["cpu", "npu0", "npu1"],
        device_kinds=["cpu", "npu", "npu"],
        exec_time=np.array([[4.0, 1.0, 1.0], [4.0, 1.0, np.inf], [4.0, 1.0, 1.0]]),
        edges=[(0, 1, 1.0), (1, 2, 1.0)],
        comm_latency=np.ones((3, 3)) - np.eye(3),
        quantum=1.0,
    )


def test_rules_parse_and_round_trip_through_their_file_form() -> None:
    c = Constraints.parse(pins=["a=cpu"], forbid=["b*=npu"], colocate=["a,c"], max_segments=2)
    assert Constraints.from_dict(c.to_dict()) == c
    assert not Constraints() and c


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pins": ["a"]}, r"pin 'a': expected OPS=DEVICES"),
        ({"pins": ["zz=cpu"]}, r"'zz' matches no op name or module path"),
        ({"forbid": ["a=tpu"]}, r"forbid 'a=tpu': no device or device kind 'tpu'"),
        ({"max_segments": 0}, r"max_segments must be a positive integer"),
    ],
)
def test_bad_rules_are_one_line_usage_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        chain3().with_constraints(Constraints.parse(**kwargs))


def test_rules_that_leave_no_device_name_themselves() -> None:
    p = chain3()
    with pytest.raises(InfeasibleError, match=r"op 'b' has no device left: pin 'b=npu1'"):
        p.with_constraints(Constraints.parse(pins=["b=npu1"]))
    both = Constraints.parse(pins=["a=npu"], forbid=["a=npu0,npu1"])
    with pytest.raises(InfeasibleError, match=r"pin 'a=npu', forbid 'a=npu0,npu1'"):
        p.with_constraints(both)
    group = Constraints.parse(pins=["a=npu1"], colocate=["a,b"])
    with pytest.raises(InfeasibleError, match=r"colocate 'a,b' with pin 'a=npu1': no device"):
        p.with_constraints(group)


def test_pins_and_forbids_remove_modes_and_kinds_select_devices() -> None:
    p = chain3().with_constraints(Constraints.parse(pins=["a=npu"], forbid=["c=npu0"]))
    assert p.allowed.tolist() == [[False, True, True], [True, True, False], [True, False, True]]


def _accepts(p: Problem):
    rules = p.constraints

    def ok(assign) -> bool:
        if any(len({assign[v] for v in g}) > 1 for g in rules.groups):
            return False
        return rules.max_segments is None or count_segments(list(assign)) <= rules.max_segments

    return ok


def constrained(seed: int) -> Problem:
    """A tiny random problem under one pin, one forbid, one group and a segment cap."""
    base = random_tiny_problem(seed, n=6, devices=3)
    rng = np.random.default_rng(seed)
    a, b, c = (int(x) for x in rng.choice(6, size=3, replace=False))
    pin_dev = next(d for d in range(3) if base.allowed[a, d])
    rules = Constraints.parse(
        pins=[f"op{a}={base.devices[pin_dev]}"],
        forbid=[f"op{b}={base.devices[int(rng.integers(3))]}"],
        colocate=[f"op{b},op{c}"],
        max_segments=int(rng.integers(2, 4)),
    )
    return base.with_constraints(rules)


def _feasible_seeds() -> list[int]:
    out = []
    for seed in range(40):
        try:
            p = constrained(seed)
            structure_restriction(p)
        except InfeasibleError:
            continue
        out.append(seed)
        if len(out) == 6:
            break
    return out


@pytest.mark.parametrize("seed", _feasible_seeds())
def test_every_solver_honours_the_rules_and_cpsat_matches_brute_force(seed: int) -> None:
    p = constrained(seed)
    best = brute_force_makespan(p, accept=_accepts(p))
    for name in SOLVERS:
        # the exact ones get the time to prove; the others stop only at the bound or the limit
        limit = 10 if name in ("cpsat", "portfolio") else 1
        plan = get_solver(name)(p, time_limit=limit, seed=0)
        validate(plan, p)  # checks pins, forbids, groups, the cap
        assert plan.lower_bound <= best + 1e-9, name
        assert plan.makespan >= best - 1e-9, name
        if name in ("cpsat", "portfolio"):
            assert plan.status == "optimal" and plan.makespan == best, name


def test_the_validator_names_each_broken_rule() -> None:
    p = chain3()

    def plan(assign, problem):
        return plan_from_schedule(problem, assign=assign, start=[0, 10, 20], solver="manual")

    pinned = p.with_constraints(Constraints.parse(forbid=["a=npu0"]))
    with pytest.raises(PlanError, match=r"'a' runs on 'npu0'|'a' is placed on 'npu0'"):
        validate(plan([1, 1, 1], p), pinned)
    grouped = p.with_constraints(Constraints.parse(colocate=["a,c"]))
    with pytest.raises(PlanError, match=r"colocate 'a,c' is broken: a on npu0, c on npu1"):
        validate(plan([1, 1, 2], p), grouped)
    capped = p.with_constraints(Constraints(max_segments=2))
    with pytest.raises(PlanError, match=r"plan has 3 segments along the op order; the cap is 2"):
        validate(plan([0, 1, 0], p), capped)
    validate(plan([1, 1, 0], p), capped)


def test_the_restriction_caps_segments_and_says_when_it_cannot() -> None:
    p = chain3()
    one = p.with_constraints(Constraints(max_segments=1))
    r, how = structure_restriction(one)
    assert all(r.allowed[v].sum() == 1 for v in range(r.n)) and "at most 1" in how
    assert count_segments([int(np.flatnonzero(r.allowed[v])[0]) for v in range(r.n)]) == 1
    stuck = p.with_constraints(Constraints.parse(pins=["a=npu1", "b=npu0"], max_segments=1))
    with pytest.raises(InfeasibleError, match=r"cannot all hold: max_segments 1 \(with pin"):
        structure_restriction(stuck)


def test_a_cap_of_one_segment_costs_what_brute_force_says() -> None:
    for seed in range(4):
        base = random_tiny_problem(seed, n=5, devices=2)
        whole = [d for d in range(2) if base.allowed[:, d].all()]
        if not whole:
            continue
        p = base.with_constraints(Constraints(max_segments=1))
        plan = get_solver("cpsat")(p, time_limit=10, seed=0)
        validate(plan, p)
        serial = min(int(base.dur[:, d].sum()) for d in whole)
        assert round(plan.makespan) == serial == brute_force_makespan(p, accept=_accepts(p))


def test_rules_that_conflict_only_together_are_named_by_a_cpsat_core() -> None:
    # a on npu1 only and b on npu0 only (pins), c with a: one segment is impossible
    p = chain3().with_constraints(
        Constraints.parse(pins=["a=npu1", "b=npu0"], colocate=["a,c"], max_segments=1)
    )
    with pytest.raises(InfeasibleError, match=r"these rules cannot all hold: max_segments 1"):
        structure_assignment(p)
    for name in ("heft", "cpsat", "portfolio"):
        with pytest.raises(
            InfeasibleError, match=r"cannot all hold: .*max_segments 1.*pin 'a=npu1'"
        ):
            get_solver(name)(p, time_limit=5)
