"""Write a plan's precisions into the program: an fx graph that computes them eagerly.

:func:`lower_program` turns an ``ExportedProgram`` into the ``fx.GraphModule`` of
``program.module()`` in which every op given a reduced precision computes in it, exactly as
:class:`~hetsched.precision.interpreter.PrecisionInterpreter` runs it (one rule,
:func:`~hetsched.precision.quant.convert_rule`; the same calibration as
:func:`~hetsched.precision.sensitivity.measure_sensitivity` unless told otherwise):

- ``float16`` / ``bfloat16``: a ``.to(dtype)`` node before each floating tensor argument of
  each compute fx node of the op, and a ``.to(exported dtype)`` after each floating output.
- ``int8``: each weight argument is replaced by a new buffer holding its per-channel
  fake-quantized copy (``hetsched_int8_<node>_<index>``); each activation entering the op
  goes through a ``torch.fake_quantize_per_tensor_affine`` call with the scale and zero
  point calibrated for it, as constants.

The nodes it inserts belong to the op they convert for (:attr:`LoweredProgram.fx_nodes`):
an op is an island that converts its inputs and outputs on its own device. Ops already at
their exported precision (``"native"`` or the op's dtype) are left alone; with none lowered
the module is ``program.module()`` untouched.

Examples
--------
>>> import torch
>>> from hetsched.graph.torch_import import from_exported
>>> torch.manual_seed(0) and None
>>> m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
>>> x = torch.randn(3, 4)
>>> ep = torch.export.export(m, (x,))
>>> low = lower_program(ep, from_exported(ep), {"linear": "int8", "linear_1": "float16"})
>>> sorted(low.changes), low.fx_nodes["linear_1"]
(['linear', 'linear_1'], ('to', 'to_1', 'to_2', 'linear_1', 'to_3'))
>>> from hetsched.precision.interpreter import PrecisionInterpreter
>>> ref = PrecisionInterpreter(ep, low.changes)
>>> torch.equal(low.module(x), ref.outputs(ref.run(*ref.flat_inputs((x,))))[0])
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import fx
from torch.export.graph_signature import InputKind

from hetsched.errors import UsageError
from hetsched.precision.interpreter import input_independent, is_view
from hetsched.precision.quant import NodeChange, convert_rule
from hetsched.precision.table import NATIVE, PRECISIONS

if TYPE_CHECKING:  # pragma: no cover
    from hetsched.graph.opgraph import OpGraph
    from hetsched.plan import Plan

__all__ = ["CALIBRATION_SAMPLES", "LoweredProgram", "lower_program", "plan_precisions"]

CALIBRATION_SAMPLES = 2
"""Calibration inputs by default: :func:`~hetsched.precision.measure_sensitivity`'s."""
_EXPORTED = frozenset({"native", NATIVE})


@dataclass(frozen=True)
class LoweredProgram:
    """A program with its ops' precisions written in.

    ``module``: the rewritten ``fx.GraphModule`` (called like the program's ``module()``);
    ``fx_nodes``: op -> its fx nodes in ``module``, the inserted conversions included;
    ``changes``: compute fx node -> the :class:`~hetsched.precision.quant.NodeChange` it
    carries (give it to ``PrecisionInterpreter`` to run the same numerics);
    ``precisions``: the lowered ops (op -> precision).
    """

    module: fx.GraphModule
    fx_nodes: Mapping[str, tuple[str, ...]]
    changes: Mapping[str, NodeChange]
    precisions: Mapping[str, str]


def plan_precisions(plan: Plan, graph: OpGraph) -> dict[str, str]:
    """Op -> precision for the ops ``plan`` runs in a precision other than their exported
    one (``"native"``, ``"float32"`` and the op's dtype count as exported), in graph order."""
    out: dict[str, str] = {}
    for node in graph.nodes:
        spec = plan.modes.get(node.name)
        if spec is not None and spec.precision not in (*_EXPORTED, node.dtype):
            out[node.name] = spec.precision
    return out


def lower_program(
    program: Any,
    graph: OpGraph,
    precisions: Mapping[str, str],
    *,
    calibration: Sequence[Sequence[Any]] | None = None,
) -> LoweredProgram:
    """Rewrite ``program`` so that each op of ``precisions`` computes in its precision.

    Parameters
    ----------
    program : the ``torch.export.ExportedProgram`` ``graph`` was imported from (an
        ``fx.GraphModule`` is accepted when nothing is lowered).
    graph : its :class:`~hetsched.graph.opgraph.OpGraph` (``meta["fx_nodes"]``).
    precisions : op -> ``"int8"``, ``"float16"``, ``"bfloat16"`` (``"native"``,
        ``"float32"`` or the op's dtype: left alone).
    calibration : user input tuples the int8 activation scales are calibrated on; default
        :func:`~hetsched.precision.sensitivity.calibration_inputs` of the program's example
        inputs, 2 samples, seed 0 (what ``measure_sensitivity`` measured with).

    Returns
    -------
    LoweredProgram

    Raises
    ------
    UsageError
        An op the graph lacks, an unknown precision, a program that is not an
        ``ExportedProgram`` while ops are lowered, or no calibration inputs.
    """
    from hetsched.precision.runs import Measurer
    from hetsched.precision.sensitivity import calibration_inputs

    ops = {n.name: n for n in graph.nodes}
    choices: dict[str, str] = {}
    for op, prec in precisions.items():
        if op not in ops:
            msg = f"graph {graph.name!r} has no op {op!r}"
            raise UsageError(msg)
        if prec in _EXPORTED or prec == ops[op].dtype:
            continue
        if prec not in PRECISIONS:
            msg = f"op {op!r}: unknown precision {prec!r} (known: {', '.join(PRECISIONS)})"
            raise UsageError(msg)
        choices[op] = prec
    fx_nodes = {op: tuple(names) for op, names in (graph.meta.get("fx_nodes") or {}).items()}
    if not choices:
        module = program.module() if isinstance(program, torch.export.ExportedProgram) else program
        return LoweredProgram(module, fx_nodes, {}, {})
    if not isinstance(program, torch.export.ExportedProgram):
        msg = (
            f"lowering ops to reduced precisions needs the ExportedProgram, "
            f"not {type(program).__name__}"
        )
        raise UsageError(msg)
    if calibration is None:
        if program.example_inputs is None:
            msg = "the program records no example inputs: pass calibration inputs"
            raise UsageError(msg)
        calibration = calibration_inputs(program.example_inputs[0], CALIBRATION_SAMPLES)
    inputs = [tuple(args) for args in calibration]
    if not inputs:
        msg = "calibration needs at least one input tuple"
        raise UsageError(msg)
    with torch.no_grad():
        changes = Measurer(program, graph, inputs).changes(choices)
    module = program.module()
    owner = {x: op for op, names in fx_nodes.items() for x in names}
    user = [
        s.arg.name for s in program.graph_signature.input_specs if s.kind == InputKind.USER_INPUT
    ]
    holders = [n.name for n in module.graph.nodes if n.op == "placeholder"]
    if len(holders) != len(user):
        msg = f"program.module() takes {len(holders)} inputs, the program {len(user)}"
        raise UsageError(msg)
    # module() may rename user inputs (``input`` -> ``input_1``); compute nodes keep names
    aliases = dict(zip(holders, user, strict=True))
    added = _rewrite(module, changes, aliases)  # type: ignore[arg-type]
    for node_name, new in added.items():
        op = owner[node_name]
        fx_nodes[op] = (*fx_nodes[op], *new)
    position = {n.name: i for i, n in enumerate(module.graph.nodes)}
    fx_nodes = {op: tuple(sorted(xs, key=position.__getitem__)) for op, xs in fx_nodes.items()}
    return LoweredProgram(module, fx_nodes, changes, choices)  # type: ignore[arg-type]


class _Rewriter:
    """Inserts the conversions of the changed nodes of one module."""

    def __init__(self, gm: fx.GraphModule, aliases: Mapping[str, str]) -> None:
        self.gm = gm
        self.aliases = dict(aliases)
        self.const = input_independent(gm.graph)
        self._values: dict[str, Any] = {}
        self.added: dict[str, list[str]] = {}

    def value(self, n: fx.Node) -> Any:
        """The value of an input-independent node."""
        if n.name not in self._values:
            if n.op == "get_attr":
                v: Any = self.gm
                for part in str(n.target).split("."):
                    v = getattr(v, part)
            else:
                args = fx.node.map_arg(n.args, self.value)
                kwargs = fx.node.map_arg(n.kwargs, self.value)
                if n.op == "call_method":
                    v = getattr(args[0], str(n.target))(*args[1:], **kwargs)
                else:
                    v = n.target(*args, **kwargs)  # type: ignore[operator]
            self._values[n.name] = v
        return self._values[n.name]

    def meta_tensor(self, a: fx.Node) -> Any:
        """A tensor with ``a``'s dtype and shape (its value when constant), else None."""
        v = self.value(a) if a.name in self.const else a.meta.get("val")
        return v if isinstance(v, torch.Tensor) else None

    def convert(self, n: fx.Node, index: int, a: fx.Node, change: NodeChange) -> fx.Node:
        t = self.meta_tensor(a)
        if t is None or not t.is_floating_point():
            return a
        const = a.name in self.const
        name = self.aliases.get(a.name, a.name)  # the program's name for it
        rule = convert_rule(n, index, name, change, constant=const, ndim=t.dim())
        if rule is None:
            return a
        graph = self.gm.graph
        with graph.inserting_before(n):
            if rule.kind == "weight":
                name = f"hetsched_int8_{n.name}_{index if index >= 0 else 'kw'}_{a.name}"
                self.gm.register_buffer(name, rule(self.value(a)))
                return graph.get_attr(name)
            if rule.kind == "cast":
                new = graph.call_method("to", (a, rule.dtype))
            else:
                new = graph.call_function(
                    torch.fake_quantize_per_tensor_affine,
                    (a, rule.scale, rule.zero_point, 0, 255),
                )
        new.meta["val"] = a.meta.get("val")
        self.added.setdefault(n.name, []).append(new.name)
        return new

    def restore(self, n: fx.Node) -> None:
        """Cast ``n``'s floating outputs back to the dtypes the export recorded."""
        val = n.meta.get("val")
        if isinstance(val, torch.Tensor):
            self._cast_after(n, n, val)
        elif isinstance(val, list | tuple):
            for u in list(n.users):
                if u.op != "call_function" or len(u.args) != 2 or not isinstance(u.args[1], int):
                    msg = f"fx node {n.name!r} returns a tuple read by {u.name!r}, not getitem"
                    raise UsageError(msg)
                k = u.args[1]
                if k < len(val) and isinstance(val[k], torch.Tensor):
                    self._cast_after(n, u, val[k])

    def _cast_after(self, owner: fx.Node, n: fx.Node, val: torch.Tensor) -> None:
        if not val.is_floating_point():
            return
        with self.gm.graph.inserting_after(n):
            back = self.gm.graph.call_method("to", (n, val.dtype))
        back.meta["val"] = val
        n.replace_all_uses_with(back, delete_user_cb=lambda u: u is not back)
        # readers see the value of ``n`` (as the interpreter restores it) under its name
        self.aliases[back.name] = self.aliases.get(n.name, n.name)
        if n.name in self.const:
            self.const.add(back.name)
        self.added.setdefault(owner.name, []).append(back.name)


def _rewrite(
    gm: fx.GraphModule, changes: Mapping[str, NodeChange], aliases: Mapping[str, str]
) -> dict[str, list[str]]:
    """Insert the conversions of ``changes`` into ``gm`` (``aliases``: its placeholder
    names -> the program's); changed node -> the new nodes."""
    rw = _Rewriter(gm, aliases)
    for n in list(gm.graph.nodes):
        change = changes.get(n.name)
        if change is None or n.op != "call_function" or is_view(n):
            continue
        _convert_args(rw, n, change)
        if change.precision != "int8":
            rw.restore(n)
    gm.graph.lint()
    gm.recompile()
    return rw.added


def _convert_args(rw: _Rewriter, n: fx.Node, change: NodeChange) -> None:
    """Point ``n``'s arguments at their converted values."""
    n.args = tuple(
        fx.node.map_arg(a, lambda x, i=i: rw.convert(n, i, x, change))  # type: ignore[misc]
        for i, a in enumerate(n.args)
    )
    n.kwargs = {k: fx.node.map_arg(a, lambda x: rw.convert(n, -1, x, change))
                for k, a in n.kwargs.items()}  # fmt: skip
