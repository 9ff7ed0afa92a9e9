"""The validator catches every kind of violation, independently of any solver."""

import numpy as np
import pytest

from hetsched.errors import PlanError
from hetsched.plan import (
    load_plan,
    plan_from_dict,
    plan_from_schedule,
    plan_to_dict,
    save_plan,
    validate,
)
from hetsched.problem import ModeSpec, Problem


def two_dev(**kw) -> Problem:
    return Problem.from_arrays(
        names=["a", "b", "c"],
        devices=["cpu", "gpu"],
        exec_time=np.array([[2.0, 1.0], [3.0, np.inf], [2.0, 2.0]]),
        edges=[(0, 1, 10.0), (0, 2, 10.0)],
        comm_latency=np.array([[0.0, 1.0], [1.0, 0.0]]),
        comm_inv_bandwidth=np.array([[0.0, 0.1], [0.1, 0.0]]),
        route_links={(0, 1): (0,), (1, 0): (0,)},
        link_names=["pcie"],
        memory_bytes=np.array([5.0, 5.0, 5.0]),
        capacity=np.array([100.0, 8.0]),
        quantum=1.0,
        **kw,
    )


def make(p, assign, start, **kw):
    return plan_from_schedule(p, assign=assign, start=start, solver="t", **kw)


def test_good_plan_validates_and_transfers_are_listed():
    p = two_dev()
    plan = make(p, [1, 0, 1], [0, 3, 1])
    validate(plan, p)
    assert plan.makespan == 6.0
    assert [(t.tensor, t.src, t.dsts, t.links) for t in plan.transfers] == [
        ("a->b", "a", ("b",), ("pcie",))
    ]


@pytest.mark.parametrize(
    ("assign", "start", "needle"),
    [
        ([1, 1, 1], [0, 3, 1], "which does not support it"),
        ([1, 0, 1], [0, 2, 1], "arrives at 3"),
        ([0, 0, 0], [0, 2, 2], "overlap on 'cpu'"),
    ],
)
def test_violations_are_named(assign, start, needle):
    p = two_dev()
    with pytest.raises(PlanError, match=needle):
        validate(make(p, assign, start), p)


def test_wrong_duration_and_makespan_and_bound():
    p = two_dev()
    plan = make(p, [1, 0, 1], [0, 3, 1])
    finish = dict(plan.finish)
    finish["c"] = 10.0
    with pytest.raises(PlanError, match="runs 9 units, cost table says 2"):
        validate(plan.with_(finish=finish), p)
    with pytest.raises(PlanError, match="not the last finish"):
        validate(plan.with_(makespan=5.0), p)
    with pytest.raises(PlanError, match="exceeds its makespan"):
        validate(plan.with_(lower_bound=7.0), p)


def test_membership_errors():
    p = two_dev()
    plan = make(p, [1, 0, 1], [0, 3, 1])
    m = dict(plan.modes)
    m["a"] = ModeSpec(("tpu",))
    with pytest.raises(PlanError, match="device 'tpu', which is not on platform"):
        validate(plan.with_(modes=m), p)
    m = dict(plan.modes)
    del m["c"]
    with pytest.raises(PlanError, match="does not place op 'c'"):
        validate(plan.with_(modes=m), p)
    m = dict(plan.modes)
    m["a"] = ModeSpec(("gpu",), precision="int8")
    with pytest.raises(PlanError, match=r"has no such mode|does not support it"):
        validate(plan.with_(modes=m), p)
    with pytest.raises(PlanError, match="sha256"):
        validate(plan.with_(graph_sha256="abc"), two_dev(graph_sha256="def"))


def test_memory_capacity_checked_when_on():
    p = two_dev(use_memory=True)
    # gpu holds 8 bytes; a and c need 5 each.
    plan = make(p, [1, 0, 1], [0, 3, 1])
    with pytest.raises(PlanError, match="over its capacity"):
        validate(plan, p)
    validate(make(p, [0, 0, 0], [0, 2, 5]), p)
    # c alone fits the gpu, but it also holds the 10-byte tensor it receives from a
    with pytest.raises(PlanError, match="'gpu' holds 15 B"):
        validate(make(p, [0, 0, 1], [0, 2, 4]), p)
    assert make(p, [0, 0, 1], [0, 2, 4]).memory == {"cpu": 10.0, "gpu": 15.0}


def test_link_contention_checked_when_on():
    p = Problem.from_arrays(
        names=["a", "b", "c"],
        devices=["cpu", "gpu"],
        exec_time=np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]),
        edges=[(0, 1, 1.0), (0, 2, 1.0)],
        comm_latency=np.array([[0.0, 2.0], [2.0, 0.0]]),
        route_links={(0, 1): (0,), (1, 0): (0,)},
        link_names=["bus"],
        link_contention=True,
        quantum=1.0,
    )
    both_at_once = make(p, [0, 1, 1], [0, 3, 4])
    with pytest.raises(PlanError, match="overlap on link 'bus'"):
        validate(both_at_once, p)
    serial = make(p, [0, 1, 1], [0, 3, 5], transfer_start={(0, 1): 1, (1, 1): 3})
    validate(serial, p)


def test_a_tensor_read_twice_on_one_device_moves_once():
    p = Problem.from_arrays(
        names=["a", "b", "c"],
        devices=["cpu", "gpu"],
        exec_time=np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]),
        tensors=[(0, (1, 2), 1.0)],
        comm_latency=np.array([[0.0, 2.0], [2.0, 0.0]]),
        route_links={(0, 1): (0,), (1, 0): (0,)},
        link_names=["bus"],
        link_contention=True,
        quantum=1.0,
    )
    plan = make(p, [0, 1, 1], [0, 3, 4])
    validate(plan, p)
    assert [(t.tensor, t.dsts, t.start, t.finish) for t in plan.transfers] == [
        ("a:0", ("b", "c"), 1.0, 3.0)
    ]
    doubled = plan.with_(transfers=plan.transfers * 2)
    with pytest.raises(PlanError, match="moved to 'gpu' twice"):
        validate(doubled, p)


def test_json_round_trip(tmp_path):
    p = two_dev()
    plan = make(p, [1, 0, 1], [0, 3, 1], lower_bound=4)
    path = tmp_path / "plan.json"
    save_plan(plan, path)
    back = load_plan(path)
    assert plan_to_dict(back) == plan_to_dict(plan)
    validate(back, p)
    doc = plan_to_dict(plan)
    doc["format"] = "hetsched.plan/0"
    with pytest.raises(PlanError, match="unsupported plan format"):
        plan_from_dict(doc)
    del doc["nodes"]
    doc["format"] = "hetsched.plan/1"
    with pytest.raises(PlanError, match="malformed plan"):
        plan_from_dict(doc)
