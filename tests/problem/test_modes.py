"""Execution modes and the Problem around them: invariants on construction, read-only
arrays, restriction, memory, sub-problems and device views."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hetsched.errors import InfeasibleError, SolverError
from hetsched.problem import Modes, ModeSpec, Problem, Tensors, subproblem
from hetsched.problem.sub import internal_edges


def _raw_modes(devs: list[int], **kw: object) -> Modes:
    """One op with one mode on ``devs`` exactly as given (no sorting by ``build``)."""
    fields: dict[str, object] = {
        "op_start": np.array([0, 1]),
        "op": np.array([0]),
        "dev_start": np.array([0, len(devs)]),
        "devs": np.array(devs, dtype=np.int64),
        "time": np.array([1.0]),
        "memory": np.array([0.0]),
        "precision": ("native",),
        "tag": ("",),
    }
    fields.update(kw)
    return Modes(**fields)  # type: ignore[arg-type]


def mixed() -> Problem:
    """Three ops on x, y, z with every kind of mode.

    a: x (4), x@fp16 (2), y (3), x+y (1);  b: y (2), x+z (1);  c: x (1), z (2).
    Bytes per mode: a 5, 1, 2, 3;  b 4, 2;  c 0, 8.
    Tensors: t0 a -> b, c (4 bytes); t1 a -> c (1 byte); t2 b -> c (2 bytes).
    """
    modes = Modes.build(
        3,
        [
            (0, (0,), 4.0, 5.0),
            (0, (0,), 2.0, 1.0, "fp16"),
            (0, (1,), 3.0, 2.0),
            (0, (0, 1), 1.0, 3.0),
            (1, (1,), 2.0, 4.0),
            (1, (2, 0), 1.0, 2.0),  # given unsorted: build sorts it
            (2, (0,), 1.0, 0.0),
            (2, (2,), 2.0, 8.0),
        ],
    )
    tensors = Tensors.build(3, [(0, (1, 2), 4.0), (0, (2,), 1.0), (1, (2,), 2.0)])
    return Problem.from_modes(
        names=["a", "b", "c"],
        devices=["x", "y", "z"],
        modes=modes,
        tensors=tensors,
        comm_latency=np.ones((3, 3)),
        quantum=1.0,
    )


def labels(p: Problem) -> list[str]:
    return [f"{p.names[int(p.modes.op[m])]}:{p.describe_mode(m)}" for m in range(p.num_modes)]


# ---------------------------------------------------------------------- construction
def test_build_groups_by_op_and_sorts_devices() -> None:
    p = mixed()
    assert p.modes.op.tolist() == [0, 0, 0, 0, 1, 1, 2, 2]
    assert p.modes.op_start.tolist() == [0, 4, 6, 8]
    assert p.modes.devices_of(5) == (0, 2)
    assert p.modes.width.tolist() == [1, 1, 1, 2, 1, 2, 1, 1]
    assert p.modes.multi_device
    assert p.mode_dur.tolist() == [4, 2, 3, 1, 2, 1, 1, 2]
    assert labels(p) == [
        "a:x",
        "a:x@fp16",
        "a:y",
        "a:x+y",
        "b:y",
        "b:x+z",
        "c:x",
        "c:z",
    ]
    assert p.mode_of(0, ModeSpec(("x",), "fp16")) == 1
    assert p.mode_of(1, ModeSpec(("x", "z"))) == 5
    with pytest.raises(KeyError):
        p.mode_of(2, ModeSpec(("y",)))


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: Modes.build(2, [(0, (0,), 1.0)]), "op 1 has no mode"),
        (
            lambda: _raw_modes([1, 0]),
            r"devices of mode 0 must be sorted and distinct, got \(1, 0\)",
        ),
        (lambda: _raw_modes([0, 0]), r"sorted and distinct, got \(0, 0\)"),
        (lambda: _raw_modes([]), "every mode needs at least one device"),
        (lambda: Modes.build(1, [(0, (0,), -1.0)]), "time must be finite and >= 0"),
        (lambda: Modes.build(1, [(0, (0,), np.inf)]), "time must be finite and >= 0"),
        (lambda: Modes.build(1, [(0, (0,), 1.0, -2.0)]), "memory must be finite and >= 0"),
        (lambda: Modes.build(1, [(0, (0,), 1.0), (0, (0,), 2.0)]), "op 0 has two modes on"),
        (lambda: Modes.build(1, [(1, (0,), 1.0)]), "op index 1 out of range"),
        (lambda: _raw_modes([0], time=np.array([1.0, 2.0])), "time must be finite"),
        (lambda: _raw_modes([0], precision=()), "precision and tag need one entry per mode"),
        (lambda: _raw_modes([0], op_start=np.array([0, 2])), "op_start must run from 0"),
        (lambda: _raw_modes([0], dev_start=np.array([0])), "dev_start must have one entry"),
    ],
)
def test_invalid_modes_are_one_line_solver_errors(make, needle) -> None:
    with pytest.raises(SolverError, match=needle) as err:
        make()
    assert "\n" not in str(err.value)


def test_two_precisions_on_one_device_are_two_modes() -> None:
    m = Modes.build(1, [(0, (0,), 2.0), (0, (0,), 1.0, 0.0, "fp16"), (0, (0,), 1.0, 0.0, "x", "t")])
    assert m.num_modes == 3
    assert [m.describe(k, ["x"]).__str__() for k in range(3)] == ["x", "x@fp16", "x@x[t]"]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"mode_dur": np.array([4, 2, 3, 1, 2, 1, 1, -2])}, "mode_dur must be non-negative int64"),
        ({"mode_dur": np.array([4, 2, 3])}, "mode_dur must be non-negative int64"),
        ({"mode_dur": np.array([4.0, 2, 3, 1, 2, 1, 1, 2])}, "mode_dur must be non-negative int64"),
        (
            {"tensor_comm": np.zeros((2, 3, 3), np.int64)},
            r"tensor_comm must be .* shape \(3, 3, 3\)",
        ),
        ({"tensor_comm": np.ones((3, 3, 3), np.int64)}, "same device must take 0"),
        ({"capacity": np.ones(2)}, "capacity must be 3 non-negative numbers"),
        ({"capacity": np.array([1.0, -1.0, 1.0])}, "capacity must be 3"),
        ({"names": ("a", "a", "c")}, "op names must be unique"),
        ({"names": ("a", "b")}, "modes cover 3 ops, the problem has 2"),
        ({"device_kinds": ("cpu",)}, "one kind per device"),
        ({"quantum": 0.0}, "quantum must be positive"),
        ({"quantum": float("inf")}, "quantum must be positive"),
        ({"devices": ("x", "y"), "device_kinds": ("c", "c")}, "device index out of range"),
    ],
)
def test_dataclasses_replace_rechecks_every_invariant(change, needle) -> None:
    with pytest.raises(SolverError, match=needle) as err:
        dataclasses.replace(mixed(), **change)
    assert "\n" not in str(err.value)


def test_replace_with_valid_fields_gives_a_fresh_problem() -> None:
    p = mixed()
    q = dataclasses.replace(p, mode_dur=np.array([5, 2, 3, 1, 2, 1, 1, 2], dtype=np.int64))
    assert q.dur[0, 0] == 2  # x@fp16 is now the fastest on x (5 > 2)
    assert q.min_dur.tolist() == [1, 1, 1]
    assert p.mode_dur[0] == 4  # the original is untouched


# ---------------------------------------------------------------------- read-only
@pytest.mark.parametrize(
    "write",
    [
        lambda p: p.dur.__setitem__((0, 0), 7),
        lambda p: p.mode_dur.__setitem__(0, 7),
        lambda p: p.tensor_comm.__setitem__((0, 0, 1), 7),
        lambda p: p.comm.__setitem__((0, 0, 1), 7),
        lambda p: p.capacity.__setitem__(0, 7.0),
        lambda p: p.allowed.__setitem__((0, 2), True),
        lambda p: p.exec_time.__setitem__((0, 0), 7.0),
        lambda p: p.device_mode.__setitem__((0, 0), 0),
        lambda p: p.min_dur.__setitem__(0, 0),
        lambda p: p.modes.time.__setitem__(0, 7.0),
        lambda p: p.modes.memory.__setitem__(0, 7.0),
        lambda p: p.modes.devs.__setitem__(0, 2),
        lambda p: p.tensors.nbytes.__setitem__(0, 7.0),
        lambda p: p.tensors.cons.__setitem__(0, 2),
        lambda p: p.edge_src.__setitem__(0, 1),
        lambda p: p.relaxation().dur.__setitem__((0, 0), 7),
    ],
)
def test_every_array_is_read_only(write) -> None:
    p = mixed()
    with pytest.raises(ValueError, match="read-only"):
        write(p)


def test_maps_are_read_only() -> None:
    p = mixed()
    with pytest.raises(TypeError):
        p.index["d"] = 3  # type: ignore[index]
    with pytest.raises(TypeError):
        p.meta["k"] = 1  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.quantum = 2.0  # type: ignore[misc]


def test_a_problem_does_not_share_memory_with_the_callers_arrays() -> None:
    p = mixed()
    base = np.array([4, 2, 3, 1, 2, 1, 1, 2], dtype=np.int64)
    q = dataclasses.replace(p, mode_dur=base[:])
    base[0] = 99
    assert q.mode_dur[0] == 4


# ---------------------------------------------------------------------- restrict
def test_pinning_an_op_keeps_only_modes_inside_its_devices() -> None:
    p = mixed()
    keep = np.ones((3, 3), dtype=bool)
    keep[0] = [True, False, False]  # a on x only: its y and x+y modes go
    r = p.restrict(keep, name="pinned")
    assert labels(r) == ["a:x", "a:x@fp16", "b:y", "b:x+z", "c:x", "c:z"]
    assert r.mode_dur.tolist() == [4, 2, 2, 1, 1, 2]
    assert r.name == "pinned"
    assert r.tensors is p.tensors
    assert np.array_equal(r.tensor_comm, p.tensor_comm)


def test_losing_a_device_drops_every_mode_that_uses_it() -> None:
    p = mixed()
    keep = np.ones((3, 3), dtype=bool)
    keep[:, 2] = False  # z fails: b's x+z split and c's z mode go
    r = p.restrict(keep)
    assert labels(r) == ["a:x", "a:x@fp16", "a:y", "a:x+y", "b:y", "c:x"]
    assert r.mode_dur.tolist() == [4, 2, 3, 1, 2, 1]
    assert not r.allowed[:, 2].any()


def test_restricting_nothing_returns_the_same_problem() -> None:
    p = mixed()
    assert p.restrict(np.ones((3, 3), dtype=bool)) is p


def test_an_op_left_with_no_mode_is_named() -> None:
    p = mixed()
    keep = np.ones((3, 3), dtype=bool)
    keep[1] = [True, False, False]  # b runs on y or x+z: neither is inside {x}
    with pytest.raises(InfeasibleError, match="op 'b' has no mode left") as err:
        p.restrict(keep)
    assert "\n" not in str(err.value)
    with pytest.raises(SolverError, match="mask has shape"):
        p.restrict(np.ones((3, 2), dtype=bool))


# ---------------------------------------------------------------------- memory
def test_with_memory_drops_the_modes_that_cannot_fit_alone() -> None:
    p = mixed()
    m = p.with_memory(np.array([4.0, 10.0, 7.0]))
    # a:x holds 5 > 4 on x; c:z holds 8 > 7 on z; the x+y split (3) fits x and y
    assert labels(m) == ["a:x@fp16", "a:y", "a:x+y", "b:y", "b:x+z", "c:x"]
    for k in range(m.num_modes):
        v = int(m.modes.op[k])
        assert m.mode_dur[k] == p.mode_dur[p.mode_of(v, m.describe_mode(k))]
    assert m.use_memory and m.capacity.tolist() == [4.0, 10.0, 7.0]
    assert not p.use_memory


def test_with_memory_per_op_bytes_apply_to_every_mode() -> None:
    p = mixed()
    m = p.with_memory(np.array([3.0, 3.0, 3.0]), op_memory=np.array([3.0, 2.0, 1.0]))
    assert labels(m) == labels(p)
    assert m.modes.memory.tolist() == [3.0, 3.0, 3.0, 3.0, 2.0, 2.0, 1.0, 1.0]
    assert np.array_equal(m.mode_dur, p.mode_dur)
    with pytest.raises(InfeasibleError, match="op 'b' needs 4 bytes") as err:
        p.with_memory(np.array([3.0, 3.0, 3.0]), op_memory=np.array([3.0, 3.5, 1.0]))
    assert "\n" not in str(err.value)
    with pytest.raises(SolverError, match="op_memory has shape"):
        p.with_memory(np.ones(3), op_memory=np.ones(2))


def test_building_with_memory_on_drops_the_same_modes() -> None:
    p = mixed()
    built = Problem.from_modes(
        names=p.names,
        devices=p.devices,
        modes=p.modes,
        tensors=p.tensors,
        comm_latency=np.ones((3, 3)),
        capacity=np.array([4.0, 10.0, 7.0]),
        use_memory=True,
        quantum=1.0,
    )
    m = p.with_memory(np.array([4.0, 10.0, 7.0]))
    assert labels(built) == labels(m)
    assert np.array_equal(built.mode_dur, m.mode_dur)


# ---------------------------------------------------------------------- sub-problems
@pytest.mark.parametrize("ops", [[0, 1], [1, 2], [0, 2], [0, 1, 2]])
def test_subproblem_keeps_the_parents_edges_in_order_and_its_durations(ops: list[int]) -> None:
    p = mixed()
    sub = subproblem(p, np.array(ops))
    assert sub.names == tuple(p.names[v] for v in ops)
    assert sub.devices == p.devices and sub.quantum == p.quantum
    parent = internal_edges(p, np.array(ops))
    assert parent.tolist() == sorted(parent.tolist())
    got = [
        (sub.names[int(u)], sub.names[int(v)], sub.tensors.names[int(t)])
        for u, v, t in zip(sub.edge_src, sub.edge_dst, sub.edge_tensor, strict=True)
    ]
    want = [
        (
            p.names[int(p.edge_src[k])],
            p.names[int(p.edge_dst[k])],
            p.tensors.names[int(p.edge_tensor[k])],
        )
        for k in parent.tolist()
    ]
    assert got == want
    assert np.array_equal(sub.comm, p.comm[parent])
    for i, v in enumerate(ops):
        mine = [(str(sub.describe_mode(k)), int(sub.mode_dur[k])) for k in sub.modes.ops_modes(i)]
        theirs = [(str(p.describe_mode(k)), int(p.mode_dur[k])) for k in p.modes.ops_modes(v)]
        assert mine == theirs
    assert not sub.use_memory


def test_subproblem_of_two_tensors_between_two_ops() -> None:
    p = mixed()
    sub = subproblem(p, np.array([0, 2]))  # a -> c by t0 (its b reader dropped) and t1
    assert sub.tensors.names == ("t0", "t1")
    assert [sub.tensors.consumers(t).tolist() for t in range(2)] == [[1], [1]]
    assert sub.edge_src.tolist() == [0, 0] and sub.edge_dst.tolist() == [1, 1]


# ---------------------------------------------------------------------- device views
def test_device_views_take_the_faster_of_two_precisions() -> None:
    p = mixed()
    # a on x: native 4, fp16 2 -> the view is fp16 (mode 1); a split is no device view
    assert p.device_mode.tolist() == [[1, 2, -1], [-1, 4, -1], [6, -1, 7]]
    assert p.dur.tolist() == [[2, 3, 0], [0, 2, 0], [1, 0, 2]]
    assert p.allowed.tolist() == [[True, True, False], [False, True, False], [True, False, True]]
    assert p.exec_time[0].tolist() == [2.0, 3.0, np.inf]
    assert p.dev_memory[0].tolist() == [1.0, 2.0, 0.0]
    assert p.min_dur.tolist() == [1, 1, 1]  # the splits
    assert p.allowed_devices == ((0, 1), (1,), (0, 2))


def test_a_tie_between_precisions_goes_to_less_memory_then_the_lower_mode() -> None:
    modes = Modes.build(
        2,
        [
            (0, (0,), 2.0, 5.0),
            (0, (0,), 2.0, 1.0, "fp16"),
            (1, (0,), 3.0),
            (1, (0,), 3.0, 0.0, "b"),
        ],
    )
    p = Problem.from_modes(
        names=["a", "b"], devices=["x"], modes=modes, tensors=Tensors.build(2, []), quantum=1.0
    )
    assert p.device_mode[:, 0].tolist() == [1, 2]


def test_relaxation_of_two_precisions_and_a_split() -> None:
    r = mixed().relaxation()
    assert r.is_device_table
    # a: x min(4, 2, 1) = 1, y min(3, 1) = 1;  b: x 1 (split), y 2, z 1 (split);  c: x 1, z 2
    assert r.dur.tolist() == [[1, 1, 0], [1, 2, 1], [1, 0, 2]]
    # t0 (a's output) moves free between x and y, which share a's split
    assert r.tensor_comm[0, 0, 1] == r.tensor_comm[0, 1, 0] == 0
    assert r.tensor_comm[2, 0, 2] == 0  # b's output between x and z (b's split)
    assert r.tensor_comm[2, 0, 1] == 1


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([(0, (0,), 1.0), (0, (1,), 2.0), (1, (1,), 1.0)], True),
        ([(0, (0,), 1.0), (0, (0,), 2.0, 0.0, "fp16"), (1, (1,), 1.0)], False),
        ([(0, (0,), 1.0), (0, (0, 1), 2.0), (1, (1,), 1.0)], False),
        ([(0, (0, 1), 2.0), (1, (1,), 1.0)], False),
        ([(0, (1,), 1.0), (1, (0,), 1.0), (1, (1,), 1.0)], True),
    ],
)
def test_is_device_table(rows, expected: bool) -> None:
    modes = Modes.build(2, rows)
    assert modes.is_device_table(2) is expected
    p = Problem.from_modes(
        names=["a", "b"], devices=["x", "y"], modes=modes, tensors=Tensors.build(2, []), quantum=1.0
    )
    assert p.is_device_table is expected
    assert (p.relaxation() is p) is expected


def test_from_arrays_is_a_device_table() -> None:
    p = Problem.from_arrays(
        names=["a", "b"],
        devices=["x", "y"],
        exec_time=np.array([[1.0, np.inf], [2.0, 3.0]]),
        edges=[(0, 1, 1.0)],
        quantum=1.0,
    )
    assert p.is_device_table and not p.modes.multi_device
    assert p.num_modes == 3
    assert p.relaxation() is p
