"""Evaluate one program with some ops at reduced precision, on recorded reference runs.

:class:`Measurer` records the float32 run of every calibration input once (every fx
node's value), calibrates activation scales lazily (one
:class:`~torch.ao.quantization.MinMaxObserver` per tensor, quint8 affine, over all samples)
and, for op -> precision choices, re-runs only the fx nodes downstream of the changed ops
with :class:`~hetsched.precision.interpreter.PrecisionInterpreter`. The error is measured
over the model's float outputs of all samples, concatenated.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from hetsched.errors import UsageError
from hetsched.precision.table import NATIVE

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import fx

    from hetsched.graph.opgraph import OpGraph
    from hetsched.precision.interpreter import NodeChange

__all__ = ["Measurer", "output_error"]


class Measurer:
    """One program, its op -> fx map, and the reference runs on the calibration inputs."""

    def __init__(self, ep: Any, graph: OpGraph, inputs: list[tuple[Any, ...]]) -> None:
        from hetsched.precision.interpreter import PrecisionInterpreter, is_view

        fx_nodes = graph.meta.get("fx_nodes")
        if not isinstance(fx_nodes, Mapping):
            msg = f"graph {graph.name!r} has no meta['fx_nodes']: import it from the program"
            raise UsageError(msg)
        self.graph = graph
        self.interp = PrecisionInterpreter(ep)
        self.position = {n: i for i, n in enumerate(self.interp.graph.nodes)}
        by_name = self.interp.by_name
        self.compute: dict[str, list[fx.Node]] = {}
        self.internal: dict[str, frozenset[str]] = {}
        for node in graph.nodes:
            names = fx_nodes.get(node.name, ())
            missing = [x for x in names if x not in by_name]
            if missing:
                msg = f"op {node.name!r} covers fx node {missing[0]!r}, which the program lacks"
                raise UsageError(msg)
            members = sorted((by_name[x] for x in names), key=self.position.__getitem__)
            inside: set[str] = set()
            for n in members:  # made inside the op: a compute member, or a view of one
                if not is_view(n) or any(a.name in inside for a in n.all_input_nodes):
                    inside.add(n.name)
            self.internal[node.name] = frozenset(inside)
            self.compute[node.name] = [
                n for n in members if n.op == "call_function" and not is_view(n)
            ]
        self.references = [self.interp.record(args) for args in inputs]
        self.out_nodes = self.interp.output_nodes()
        self._qparams: dict[str, tuple[float, int] | None] = {}

    @functools.cached_property
    def reference_out(self) -> torch.Tensor:
        """The float outputs of the reference runs, flat and concatenated."""
        return self.flat([self._outputs(ref, {}) for ref in self.references])

    def _outputs(self, ref: Mapping[fx.Node, Any], new: Mapping[fx.Node, Any]) -> list[Any]:
        return [new[n] if n in new else ref[n] for n in self.out_nodes]

    @staticmethod
    def flat(per_sample: list[list[Any]]) -> torch.Tensor:
        """Every floating output of every sample, flattened (float64) and concatenated."""
        import torch
        from torch.utils import _pytree as pytree

        leaves = [
            t.detach().reshape(-1).double()
            for outs in per_sample
            for t in pytree.tree_leaves(outs)
            if isinstance(t, torch.Tensor) and t.is_floating_point()
        ]
        if not leaves:
            msg = "the program has no floating-point output to measure an error on"
            raise UsageError(msg)
        return torch.cat(leaves)

    def qparams(self, fx_name: str) -> tuple[float, int] | None:
        """Calibrated per-tensor (scale, zero point) of an activation; None if not finite."""
        if fx_name not in self._qparams:
            from hetsched.precision.quant import activation_qparams

            node = self.interp.by_name[fx_name]
            self._qparams[fx_name] = activation_qparams(ref[node] for ref in self.references)
        return self._qparams[fx_name]

    def changes(self, choices: Mapping[str, str]) -> dict[str, NodeChange]:
        """fx compute node -> change, for op -> precision ``choices``."""
        import torch

        from hetsched.precision.interpreter import NodeChange

        out: dict[str, NodeChange] = {}
        for op, prec in sorted(choices.items()):
            if op not in self.compute:
                msg = f"graph {self.graph.name!r} has no op {op!r}"
                raise UsageError(msg)
            if prec == NATIVE:
                continue
            internal = self.internal[op]
            for n in self.compute[op]:
                qp: dict[str, tuple[float, int]] = {}
                if prec == "int8":
                    for a in n.all_input_nodes:
                        val = a.meta.get("val")
                        floating = isinstance(val, torch.Tensor) and val.is_floating_point()
                        if not floating or a.name in internal or a.name in self.interp.constant:
                            continue
                        hit = self.qparams(a.name)
                        if hit is not None:
                            qp[a.name] = hit
                out[n.name] = NodeChange(prec, internal, qp)
        return out

    def downstream(self, names: Iterable[str]) -> list[fx.Node]:
        """The changed fx nodes and every node reading them, in graph order."""
        seen: set[fx.Node] = set()
        stack = [self.interp.by_name[x] for x in names]
        while stack:
            n = stack.pop()
            if n in seen or n.op == "output":
                continue
            seen.add(n)
            stack.extend(n.users)
        return sorted(seen, key=self.position.__getitem__)

    def error(self, choices: Mapping[str, str]) -> tuple[float, float]:
        """(relative L2 error, SQNR dB) of the outputs with ``choices`` applied."""
        changes = self.changes(choices)
        if not changes:
            return 0.0, math.inf
        self.interp.set_changes(changes)
        nodes = self.downstream(changes)
        try:
            outs = [self._outputs(ref, self.interp.run_from(ref, nodes)) for ref in self.references]
        finally:
            self.interp.set_changes({})
        return output_error(self.reference_out, self.flat(outs))


def output_error(ref: torch.Tensor, out: torch.Tensor) -> tuple[float, float]:
    """(relative L2 error, SQNR dB) of ``out`` against ``ref`` (inf dB: identical)."""
    noise = float((out - ref).square().sum())
    signal = float(ref.square().sum())
    if math.isnan(noise) or math.isinf(noise):
        return math.inf, -math.inf
    if noise == 0.0:
        return 0.0, math.inf
    rel = math.sqrt(noise / signal) if signal > 0 else math.inf
    sqnr = 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf
    return rel, sqnr
