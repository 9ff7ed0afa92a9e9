"""Tensors with identity: construction invariants, derived edges, read-only arrays, and how a
Problem charges them (one transfer per tensor and destination device)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hetsched.errors import SolverError
from hetsched.problem import Problem, Tensors


def _raw(**kw: object) -> Tensors:
    """One tensor op 0 -> op 1 (8 bytes), fields overridable, no ``build`` normalisation."""
    fields: dict[str, object] = {
        "src": np.array([0]),
        "nbytes": np.array([8.0]),
        "cons_start": np.array([0, 1]),
        "cons": np.array([1]),
        "names": ("t",),
        "dtype": ("float32",),
    }
    fields.update(kw)
    return Tensors(**fields)  # type: ignore[arg-type]


def test_build_derives_edges_sorted_by_producer_consumer_tensor() -> None:
    t = Tensors.build(4, [(1, (3,), 2.0), (0, (2, 1), 8.0), (0, (2,), 4.0, "side", "int8")])
    assert t.num_tensors == 3
    assert t.consumers(1).tolist() == [1, 2]  # consumers sorted
    assert t.names == ("t0", "t1", "side") and t.dtype[2] == "int8"
    edges = list(zip(t.edge_src.tolist(), t.edge_dst.tolist(), t.edge_tensor.tolist(), strict=True))
    assert edges == [(0, 1, 1), (0, 2, 1), (0, 2, 2), (1, 3, 0)]


def test_from_edges_is_one_tensor_per_edge() -> None:
    t = Tensors.from_edges(3, [(0, 1, 8.0), (0, 2, 8.0)])
    assert t.num_tensors == 2
    assert t.edge_tensor.tolist() == [0, 1]


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (
            lambda: Tensors.build(3, [(1, (0,), 1.0)]),
            "consumer 0 of a tensor made by op 1 is not after",
        ),
        (lambda: Tensors.build(3, [(1, (1,), 1.0)]), "consumer 1 of a tensor made by op 1"),
        (lambda: Tensors.build(3, [(0, (1,), 1.0), (2, (1,), 1.0)]), "made by op 2 is not after"),
        (lambda: Tensors.build(3, [(0, (3,), 1.0)]), "op index out of range for 3 ops"),
        (lambda: Tensors.build(3, [(-1, (1,), 1.0)]), "op index out of range"),
        (lambda: Tensors.build(3, [(0, (1,), -1.0)]), "sizes must be finite and >= 0"),
        (lambda: Tensors.build(3, [(0, (1,), np.nan)]), "sizes must be finite"),
        (lambda: Tensors.build(3, [(0, (1,), 1.0), (0, (), 1.0)]), "tensor 't1' has no consumer"),
        (lambda: _raw(nbytes=np.array([1.0, 2.0])), "disagree on the number of tensors"),
        (lambda: _raw(cons_start=np.array([0, 2])), "cons_start must run from 0"),
        (lambda: _raw(names=()), "names and dtype need one entry per tensor"),
    ],
)
def test_invalid_tensors_are_one_line_solver_errors(make, needle) -> None:
    with pytest.raises(SolverError, match=needle) as err:
        make()
    assert "\n" not in str(err.value)


def test_a_lone_tensor_without_consumers_is_a_solver_error() -> None:
    with pytest.raises(SolverError, match="has no consumer"):
        Tensors.build(2, [(0, (), 1.0)])


def test_tensor_arrays_are_read_only() -> None:
    t = Tensors.build(3, [(0, (1, 2), 8.0)])
    for arr in (t.src, t.nbytes, t.cons_start, t.cons, t.edge_src, t.edge_dst, t.edge_tensor):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 1


def shared() -> Problem:
    """a feeds b and c with one 10-byte tensor and b with a second 20-byte one."""
    return Problem.from_arrays(
        names=["a", "b", "c"],
        devices=["x", "y"],
        exec_time=np.ones((3, 2)),
        tensors=[(0, (1, 2), 10.0), (0, (1,), 20.0, "extra")],  # type: ignore[list-item]
        comm_latency=np.array([[0.0, 1.0], [1.0, 0.0]]),
        comm_inv_bandwidth=np.array([[0.0, 0.1], [0.1, 0.0]]),
        quantum=1.0,
    )


def test_problem_tensor_comm_is_per_tensor_and_edges_share_it() -> None:
    p = shared()
    assert p.tensors.names == ("a:0", "extra")
    # 1 latency + bytes x 0.1, on every pair of distinct devices; 0 on the diagonal
    assert p.tensor_comm[:, 0, 1].tolist() == [2, 3]
    assert p.tensor_comm[:, 1, 1].tolist() == [0, 0]
    assert p.edge_src.tolist() == [0, 0, 0] and p.edge_dst.tolist() == [1, 1, 2]
    assert p.edge_tensor.tolist() == [0, 1, 0]
    assert p.edge_bytes.tolist() == [10.0, 20.0, 10.0]
    assert np.array_equal(p.comm, p.tensor_comm[p.edge_tensor])
    assert p.preds[1] == ((0, 0), (0, 1))
    assert p.succs[0] == ((1, 0), (1, 1), (2, 2))


@pytest.mark.parametrize(
    "write",
    [
        lambda p: p.tensor_comm.__setitem__((0, 0, 1), 9),
        lambda p: p.tensor_comm.__setitem__((slice(None), 0, 1), 9),
        lambda p: p.comm.__setitem__((0, 0, 1), 9),
        lambda p: p.edge_bytes.__setitem__(0, 9.0),
        lambda p: p.tensors.nbytes.__setitem__(0, 9.0),
    ],
)
def test_problem_tensor_arrays_are_read_only(write) -> None:
    with pytest.raises(ValueError, match="read-only"):
        write(shared())


def test_edges_and_tensors_are_exclusive_and_edges_must_go_forward() -> None:
    with pytest.raises(SolverError, match="not both"):
        Problem.from_arrays(
            names=["a", "b"],
            devices=["x"],
            exec_time=np.ones((2, 1)),
            edges=[(0, 1, 1.0)],
            tensors=[(0, (1,), 1.0)],
        )
    with pytest.raises(SolverError, match="not in topological order") as err:
        Problem.from_arrays(
            names=["a", "b"], devices=["x"], exec_time=np.ones((2, 1)), edges=[(1, 0, 1.0)]
        )
    assert "\n" not in str(err.value)
    with pytest.raises(SolverError, match="is not after it in topological order"):
        Problem.from_arrays(
            names=["a", "b"], devices=["x"], exec_time=np.ones((2, 1)), tensors=[(1, (0,), 1.0)]
        )


def test_replace_with_tensors_that_disagree_with_tensor_comm_is_rejected() -> None:
    p = shared()
    one = Tensors.build(3, [(0, (1, 2), 10.0)])
    with pytest.raises(SolverError, match=r"tensor_comm must be .* shape \(1, 2, 2\)"):
        dataclasses.replace(p, tensors=one)
    ok = dataclasses.replace(p, tensors=one, tensor_comm=p.tensor_comm[:1].copy())
    assert ok.num_edges == 2
    far = Tensors.build(4, [(0, (3,), 1.0)])
    with pytest.raises(SolverError, match="consumer is out of range"):
        dataclasses.replace(p, tensors=far, tensor_comm=p.tensor_comm[:1].copy())


def test_an_invalid_transfer_time_names_the_edge() -> None:
    from hetsched.errors import InfeasibleError

    with pytest.raises(InfeasibleError, match="edge 'a' -> 'b': no valid transfer from 'x' to 'y'"):
        Problem.from_arrays(
            names=["a", "b"],
            devices=["x", "y"],
            exec_time=np.ones((2, 2)),
            tensors=[(0, (1,), 1.0)],
            comm_latency=np.array([[0.0, np.inf], [1.0, 0.0]]),
        )
