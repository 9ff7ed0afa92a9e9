"""Measured sensitivities on tiny zoo models and a CNN from outside the zoo."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest

from hetsched.graph import graph_sha256
from hetsched.precision import measure_error, measure_sensitivity, op_precisions
from hetsched.precision import sensitivity as sens

torch = pytest.importorskip("torch")


def test_every_op_has_its_precisions(program: Any, measured: Any) -> None:
    _, graph, _ = program
    assert measured.graph_sha256 == graph_sha256(graph)
    for node in graph.nodes:
        wanted = op_precisions(node)
        assert tuple(measured.errors.get(node.name, {})) == wanted, node.name
    assert any(n.category in ("matmul", "conv") for n in graph.nodes)


def test_errors_finite_nonnegative_and_ordered(measured: Any) -> None:
    by_prec: dict[str, list[float]] = {}
    for op in measured.ops:
        for prec, err in measured.errors[op].items():
            assert math.isfinite(err) and err >= 0.0
            assert measured.sqnr_db[op][prec] > 0.0  # one op never drowns the signal
            by_prec.setdefault(prec, []).append(err)
    med = {p: statistics.median(v) for p, v in by_prec.items()}
    # int8 (8 bits) > bfloat16 (8-bit mantissa, wider rounding) > float16 (11-bit)
    assert med["int8"] > med["bfloat16"] > med["float16"] > 0.0


def test_interpreter_without_changes_is_exact(program: Any) -> None:
    from hetsched.precision.interpreter import PrecisionInterpreter

    ep, _, args = program
    interp = PrecisionInterpreter(ep)
    with torch.no_grad():
        got = interp.outputs(interp.run(*interp.flat_inputs(args)))
        want = ep.module()(*args)
    want = list(want) if isinstance(want, list | tuple) else [want]
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g, w)


def test_nothing_changed_is_zero_error(program: Any) -> None:
    ep, graph, args = program
    assert measure_error(ep, graph, {}, example_args=args) == (0.0, math.inf)
    op = graph.nodes[0].name
    assert measure_error(ep, graph, {op: "float32"}, example_args=args)[0] == 0.0


def test_single_op_matches_table(program: Any, measured: Any) -> None:
    ep, graph, args = program
    op = next(o for o in measured.ops if "int8" in measured.errors[o])
    rel, _ = measure_error(ep, graph, {op: "int8"}, example_args=args)
    assert rel == pytest.approx(measured.error(op, "int8"), rel=1e-9)


def test_additive_model_over_predicts_moderately(gpt_tiny: Any) -> None:
    # Independent rounding noise adds in power, not in norm: the sum of per-op relative
    # L2 errors is an upper estimate; on gpt tiny the measured/predicted ratio is ~0.5-0.95.
    ep, graph, args = gpt_tiny
    table = measure_sensitivity(ep, graph, example_args=args)
    for prec in ("int8", "bfloat16"):
        choices = {op: prec for op in ("linear", "linear_1", "linear_2")}
        measured = measure_error(ep, graph, choices, example_args=args)[0]
        ratio = measured / table.predicted_error(choices)
        assert 0.3 < ratio <= 1.05, (prec, ratio)


def test_cache_hit_on_second_call(gpt_tiny: Any, tmp_path: Any, monkeypatch: Any) -> None:
    ep, graph, args = gpt_tiny
    calls = []
    real = sens._measure
    monkeypatch.setattr(sens, "_measure", lambda *a: calls.append(1) or real(*a))
    kw: dict[str, Any] = {"example_args": args, "precisions": "float16", "cache_dir": tmp_path}
    first = measure_sensitivity(ep, graph, **kw)
    second = measure_sensitivity(ep, graph, **kw)
    assert len(calls) == 1 and first == second
    assert len(list(tmp_path.glob("*.json"))) == 1
    measure_sensitivity(ep, graph, **kw, samples=1)  # another key: measured again
    assert len(calls) == 2


def test_module_and_default_graph() -> None:
    from hetsched.graph import zoo

    model, args = zoo.build("mlp", "tiny")
    table = measure_sensitivity(model, example_args=args, precisions=["int8"], cache=False)
    assert table.ops and all(tuple(row) == ("int8",) for row in table.errors.values())
