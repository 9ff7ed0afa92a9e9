"""Run an exported program with chosen fx nodes at another precision (torch numerics).

:class:`PrecisionInterpreter` is a :class:`torch.fx.Interpreter` over
``ExportedProgram.graph_module``. Each *compute* fx node named in ``changes`` runs as:

- ``float16`` / ``bfloat16``: every floating tensor argument (activations and weights) is
  cast to that dtype, the node computes in it, and its floating outputs are cast back to
  their exported dtype. Inside a fused op every member rounds its output to the low dtype
  (a cast back and forth is exact), as a kernel computing in that dtype would.
- ``int8``: weights (floating tensors that do not depend on the user inputs, two or more
  dimensions) are fake-quantized per output channel, symmetric, with scales from their
  per-channel absmax (:class:`~torch.ao.quantization.PerChannelMinMaxObserver`,
  :func:`torch.fake_quantize_per_channel_affine`); activations entering the op from outside
  it are fake-quantized per tensor with the scale and zero point calibrated for them
  (``act_qparams``, :func:`torch.fake_quantize_per_tensor_affine`). The node computes in
  float32 (int32 accumulation is exact for these sizes); one-dimensional weights (biases,
  norm affine parameters) stay float32, as int8 kernels keep them in int32/float.
  Scaled-dot-product attention quantizes ``q``, ``k`` and ``v`` only (not the mask).

View nodes (aliases, ``getitem``) run unchanged. :meth:`PrecisionInterpreter.run_from`
re-runs only the nodes downstream of the changes on top of a recorded reference run.

Examples
--------
>>> import torch
>>> m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
>>> x = torch.randn(2, 4)
>>> ep = torch.export.export(m, (x,))
>>> interp = PrecisionInterpreter(ep)
>>> torch.equal(interp.outputs(interp.run(*interp.flat_inputs((x,))))[0], m(x))
True
>>> half = PrecisionInterpreter(ep, {"linear": NodeChange("float16")})
>>> y = half.outputs(half.run(*half.flat_inputs((x,))))[0]
>>> y.dtype, bool(torch.allclose(y, m(x), atol=1e-2))
(torch.float32, True)
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import fx
from torch.export.graph_signature import InputKind, OutputKind

from hetsched.costmodel.precision import PRECISIONS
from hetsched.errors import UsageError
from hetsched.precision.quant import NodeChange, convert_rule, fake_quant_weight

__all__ = [
    "NodeChange",
    "PrecisionInterpreter",
    "fake_quant_weight",
    "input_independent",
    "is_view",
]


def is_view(node: fx.Node) -> bool:
    """``getitem`` or an op whose schema returns an alias of an input (no compute)."""
    if node.op != "call_function":
        return False
    if node.target is operator.getitem:
        return True
    schema = getattr(node.target, "_schema", None)
    if schema is None or not schema.returns:
        return False
    alias = schema.returns[0].alias_info
    return alias is not None and not alias.is_write


def input_independent(graph: fx.Graph, held: Iterable[str] = ()) -> set[str]:
    """fx names of ``graph`` whose values do not depend on the user inputs: the ``held``
    placeholders (an exported program's weights and buffers), ``get_attr`` nodes, and
    calls on those alone (views and casts of weights)."""
    const = set(held)
    for n in graph.nodes:
        if n.op == "get_attr" or (
            n.op == "call_function"
            and n.all_input_nodes
            and all(a.name in const for a in n.all_input_nodes)
        ):
            const.add(n.name)
    return const


class PrecisionInterpreter(fx.Interpreter):
    """Interprets ``program.graph_module`` with ``changes`` (compute fx name -> change)."""

    def __init__(
        self, program: torch.export.ExportedProgram, changes: Mapping[str, NodeChange] = {}
    ) -> None:
        super().__init__(program.graph_module, garbage_collect_values=True)
        self.program = program
        self.by_name = {n.name: n for n in self.graph.nodes}
        self.changes: dict[str, NodeChange] = {}
        self.set_changes(changes)
        self.constant = self._input_independent()
        # weights do not change: quantized once per (node, argument, dtype)
        self._qweights: dict[tuple[str, int, str, str], torch.Tensor] = {}

    def set_changes(self, changes: Mapping[str, NodeChange]) -> None:
        """Run with ``changes`` from now on (the quantized weights stay cached)."""
        for name, ch in changes.items():
            if ch.precision not in PRECISIONS:
                msg = f"fx node {name!r}: unknown precision {ch.precision!r}"
                raise UsageError(msg)
            if name not in self.by_name:
                msg = f"change names fx node {name!r}, which the program does not have"
                raise UsageError(msg)
        self.changes = dict(changes)

    # ------------------------------------------------------------------ inputs / outputs
    def flat_inputs(self, args: Sequence[Any]) -> list[Any]:
        """Weights, buffers and constants of the program with the user ``args``, in
        placeholder order."""
        ep = self.program
        users = iter(args)
        flat: list[Any] = []
        for spec in ep.graph_signature.input_specs:
            if spec.kind == InputKind.USER_INPUT:
                flat.append(next(users))
            elif spec.target in ep.state_dict:
                flat.append(ep.state_dict[spec.target])
            else:
                flat.append(ep.constants[spec.target])
        return flat

    def outputs(self, result: Any) -> list[Any]:
        """The user outputs of a :meth:`run` result (buffer mutations dropped)."""
        items = list(result) if isinstance(result, list | tuple) else [result]
        specs = self.program.graph_signature.output_specs
        return [v for v, s in zip(items, specs, strict=True) if s.kind == OutputKind.USER_OUTPUT]

    def output_nodes(self) -> list[fx.Node]:
        """The fx nodes whose values are the user outputs, in order."""
        out = next(n for n in self.graph.nodes if n.op == "output")
        items = out.args[0]
        items = list(items) if isinstance(items, list | tuple) else [items]
        specs = self.program.graph_signature.output_specs
        return [a for a, s in zip(items, specs, strict=True) if s.kind == OutputKind.USER_OUTPUT]

    def _input_independent(self) -> set[str]:
        """fx names whose values do not depend on the user inputs (weights and their views)."""
        user = {
            s.arg.name
            for s in self.program.graph_signature.input_specs
            if s.kind == InputKind.USER_INPUT
        }
        held = [n.name for n in self.graph.nodes if n.op == "placeholder" and n.name not in user]
        return input_independent(self.graph, held)

    # ------------------------------------------------------------------ evaluation
    def record(self, args: Sequence[Any]) -> dict[fx.Node, Any]:
        """Run on user ``args`` and return the value of every node (the output's excepted)."""
        env: dict[fx.Node, Any] = {}
        flat = iter(self.flat_inputs(args))
        self.env = env
        try:
            for n in self.graph.nodes:
                if n.op == "placeholder":
                    env[n] = next(flat)
                elif n.op != "output":
                    env[n] = self.run_node(n)
        finally:
            self.env = {}
        return env

    def run_from(
        self, reference: Mapping[fx.Node, Any], nodes: Iterable[fx.Node]
    ) -> dict[fx.Node, Any]:
        """Evaluate ``nodes`` (graph order) over the values of a reference run; return the
        new values (values of other nodes are the reference's)."""
        overlay: dict[fx.Node, Any] = {}
        env = _Overlay(overlay, reference)
        self.env = env  # type: ignore[assignment]
        get = env.__getitem__
        try:
            for n in nodes:
                if n.op == "call_function" and n.name not in self.changes:
                    # the unchanged bulk of the work: skip the Interpreter's per-node context
                    args = fx.node.map_arg(n.args, get)
                    kwargs = fx.node.map_arg(n.kwargs, get)
                    overlay[n] = n.target(*args, **kwargs)  # type: ignore[operator]
                else:
                    overlay[n] = self.run_node(n)
        finally:
            self.env = {}
        return overlay

    def run_node(self, n: fx.Node) -> Any:
        change = self.changes.get(n.name)
        if change is None or n.op != "call_function" or is_view(n):
            return super().run_node(n)
        with self._set_current_node(n):
            args = tuple(self._arg(n, i, a, change) for i, a in enumerate(n.args))
            kwargs = {k: self._arg(n, -1, a, change) for k, a in n.kwargs.items()}
            result = self.call_function(n.target, args, kwargs)
        return _restore(result, n.meta.get("val"))

    def _arg(self, n: fx.Node, index: int, a: Any, change: NodeChange) -> Any:
        """The value of argument ``a`` (position ``index``) of changed node ``n``."""
        return fx.node.map_arg(a, lambda x: self._convert(n, index, x, change))

    def _convert(self, n: fx.Node, index: int, a: fx.Node, change: NodeChange) -> Any:
        v = self.env[a]
        if not isinstance(v, torch.Tensor) or not v.is_floating_point():
            return v
        const = a.name in self.constant
        rule = convert_rule(n, index, a.name, change, constant=const, ndim=v.dim())
        if rule is None:
            return v
        if rule.kind != "weight":
            return rule(v)
        key = (n.name, index, a.name, str(rule.dtype))
        if key not in self._qweights:
            self._qweights[key] = rule(v)
        return self._qweights[key]


class _Overlay(dict):  # type: ignore[type-arg]
    """A dict view: new values first, then the reference run's (never written)."""

    def __init__(self, new: dict[fx.Node, Any], reference: Mapping[fx.Node, Any]) -> None:
        super().__init__()
        self.new = new
        self.reference = reference

    def __getitem__(self, key: fx.Node) -> Any:
        try:
            return self.new[key]
        except KeyError:
            return self.reference[key]

    def __contains__(self, key: object) -> bool:
        return key in self.new or key in self.reference


def _restore(result: Any, val: Any) -> Any:
    """Cast the floating tensors of ``result`` back to the dtypes the export recorded."""
    if isinstance(result, torch.Tensor):
        if (
            isinstance(val, torch.Tensor)
            and result.is_floating_point()
            and result.dtype != val.dtype
        ):
            return result.to(val.dtype)
        return result
    if isinstance(result, list | tuple):
        vals = (
            val
            if isinstance(val, list | tuple) and len(val) == len(result)
            else [None] * len(result)
        )
        return type(result)(_restore(r, v) for r, v in zip(result, vals, strict=True))
    return result
