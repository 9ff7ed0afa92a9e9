"""Import ``torch.export`` programs (and fx graphs, and modules) as :class:`OpGraph`.

One :class:`OpNode` per real compute fx node, named like the fx node. Placeholders, the
output, ``getitem`` and pure views/aliases are not nodes: data is routed through them, so the
DAG holds real compute and real data movement. One :class:`Tensor` per fx value that ops read,
named like that fx node (a view or getitem, or the producing op itself): its producer is the
op that owns the value, its consumers every op reading that same fx node, each once (two views
of one output are two tensors). FLOPs come from torch's own formulas
(:data:`torch.utils.flop_counter.flop_registry`) evaluated on the shapes in ``meta["val"]``.
FLOP counting and op categories live in :mod:`hetsched.graph.flops`. torch is imported lazily.

Examples
--------
>>> import torch
>>> lin = torch.nn.Linear(8, 4)
>>> g = from_torch(torch.nn.Sequential(lin, torch.nn.ReLU()), (torch.randn(2, 8),), name="m")
>>> [(n.name, n.op, n.category, n.flops) for n in g.nodes]  # doctest: +NORMALIZE_WHITESPACE
[('linear', 'aten.linear.default', 'matmul', 128.0),
 ('relu', 'aten.relu.default', 'elementwise', 8.0)]
>>> g.node("linear").param_bytes
144.0
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import operator
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from hetsched.errors import GraphError
from hetsched.graph.dynamic import finite_upper as _finite_upper
from hetsched.graph.dynamic import symbol_sizes
from hetsched.graph.dynamic import value_range as _value_range
from hetsched.graph.flops import (
    SymbolSizes,
    dtype_name,
    node_flops,
    op_name,
    shape_of,
    tensor_bytes,
    tensors_in,
)
from hetsched.graph.opgraph import OpGraph, OpNode, Tensor
from hetsched.graph.optable import OpKind, op_kind

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import fx

__all__ = ["from_exported", "from_fx", "from_torch"]


def _module_path(fx_node: fx.Node) -> str:
    stack = fx_node.meta.get("nn_module_stack")
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return path if isinstance(path, str) else str(path)


# ----------------------------------------------------------------------------- conversion


# Ops that move no data in a graph like this one, although their schema has no view alias.
_ALIAS_LIKE = frozenset(
    {"_unsafe_view", "lift_fresh", "lift_fresh_copy", "detach", "detach_", "dropout", "dropout_"}
)


def _is_view(fx_node: fx.Node, outs: list[Any]) -> bool:
    """An alias-annotated op whose output shares storage with its first tensor input."""
    schema = getattr(fx_node.target, "_schema", None)
    if schema is None or not schema.returns:
        return False
    if schema.name.partition("::")[2] in _ALIAS_LIKE:
        return True
    alias = schema.returns[0].alias_info
    if alias is None or alias.is_write:
        return False
    ins = [a for a in fx_node.all_input_nodes if tensors_in(a.meta.get("val"))]
    if not outs or not ins:
        return True
    from torch.multiprocessing.reductions import StorageWeakRef

    try:
        base = tensors_in(ins[0].meta["val"])[0]
        return bool(
            StorageWeakRef(outs[0].untyped_storage()) == StorageWeakRef(base.untyped_storage())
        )
    except Exception:  # no storage to compare (e.g. a tensor subclass): trust the schema
        return True


def _out_kwarg_nodes(n: fx.Node) -> set[str]:
    """fx names passed only as an ``out=`` tensor: written by the op, not read."""
    from torch import fx

    out = n.kwargs.get("out")
    items = out if isinstance(out, list | tuple) else [out]
    return {x.name for x in items if isinstance(x, fx.Node)}


def _gathered_bytes(kind: OpKind, n: fx.Node, out_bytes: float) -> float:
    """Bytes of its table or source a gather reads: the rows it gathers (its output's worth;
    for an embedding bag, one row per index)."""
    if kind.canonical.startswith(("embedding_bag", "_embedding_bag")) and len(n.args) > 1:
        table, idx = (tensors_in(getattr(a, "meta", {}).get("val")) for a in n.args[:2])
        if table and idx and table[0].dim() == 2:
            row = shape_of(table[0])[1] * table[0].dtype.itemsize
            return float(math.prod(shape_of(idx[0])) * row)
    return out_bytes


class _Importer:
    """One pass over an fx graph in topological order (see :func:`from_exported`)."""

    def __init__(self, params: set[str], sizes: SymbolSizes | None = None) -> None:
        self.params = params
        self.sizes = sizes or SymbolSizes()
        self.data_dependent: dict[str, dict[str, Any]] = {}  # op -> what size was assumed
        # fx name -> (kind, owner, base bytes, element); kind is "op", "param" or "input";
        # owner is the OpNode name (kind "op") or the placeholder name; element is "" for
        # an op's whole output and "[i]" for item i of a tuple output (views keep theirs).
        self.route: dict[str, tuple[str, str, float, str]] = {}
        self.owner: dict[str, str] = {}  # absorbed fx node -> OpNode that covers it
        self.absorbed_inputs: dict[str, list[fx.Node]] = {}
        self.nodes: list[OpNode] = []
        # (producing OpNode, element) -> ({consumer: {view read: bytes}}, base bytes, dtype)
        self.tensors: dict[tuple[str, str], tuple[dict[str, dict[str, float]], float, str]] = {}
        self.dtypes: dict[str, str] = {}  # OpNode name -> dtype of its first output
        self.fx_nodes: dict[str, list[str]] = {}
        self.outputs: list[str] = []
        self.param_total = 0.0
        self.kinds: dict[Any, tuple[str, OpKind]] = {}

    def nbytes(self, val: Any) -> float:
        """Bytes of the tensors in an fx value, symbolic sizes as this import costs them."""
        return float(sum(tensor_bytes(t, self.sizes) for t in tensors_in(val)))

    def run(self, graph: fx.Graph) -> None:
        for n in graph.nodes:
            if n.op in ("placeholder", "get_attr"):
                val = n.meta.get("val")
                kind = "param" if n.op == "get_attr" or n.name in self.params else "input"
                size = self.nbytes(val)
                self.route[n.name] = (kind, n.name, size, "")
                if kind == "param":
                    self.param_total += size
                continue
            if n.op == "output":
                for a in n.all_input_nodes:
                    self.outputs.append(a.name)
                continue
            val = n.meta.get("val")
            outs = tensors_in(val)
            if n.target is operator.getitem or not outs or _is_view(n, outs):
                self._absorb(n, outs)
            else:
                self._compute(n, val, outs)

    def _absorb(self, n: fx.Node, outs: list[Any]) -> None:
        srcs = [a for a in n.all_input_nodes if a.name in self.route]
        self.absorbed_inputs[n.name] = list(n.all_input_nodes)
        if not srcs:
            return
        kind, owner, base, element = self.route[srcs[0].name]
        if n.target is operator.getitem and len(n.args) > 1 and srcs[0].name == owner:
            # one item of an op's tuple output (values and indices, mean and rstd): a tensor
            # of its own; items of a view's tuple (split, chunk, unbind) share its storage
            element = f"{element}[{n.args[1]}]"
            base = self.nbytes(outs)
        if not outs:  # a symbolic size or an assert: keeps the dependency, carries no data
            base = 0.0
        self.route[n.name] = (kind, owner, base, element)
        if kind == "op":
            self.owner[n.name] = owner
            self.fx_nodes[owner].append(n.name)

    def _claim(self, fx_name: str, op: str) -> None:
        """Give unowned absorbed nodes (views of inputs/params) to their first consumer."""
        stack = [fx_name]
        while stack:
            x = stack.pop()
            if x in self.owner or x not in self.absorbed_inputs:
                continue
            self.owner[x] = op
            self.fx_nodes[op].append(x)
            stack.extend(a.name for a in self.absorbed_inputs[x])

    def _kind(self, target: Any) -> tuple[str, OpKind]:
        """``(op string, OpKind)`` of an fx target, cached per overload."""
        hit = self.kinds.get(target)
        if hit is None:
            hit = self.kinds[target] = (op_name(target)[0], op_kind(target))
        return hit

    def _bind_data_dependent(self, n: fx.Node, op: str, val: Any, ins: list[Any]) -> None:
        """Give each size symbol first produced by ``n`` (``nonzero``'s row count) a size.

        The symbol's declared range when it has a finite one, else the element count of the
        op's largest input (no selection, gather or unique returns more), recorded in
        ``data_dependent``.
        """
        from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols

        new = sorted(
            (u for u in free_unbacked_symbols(val) if str(u) not in self.sizes.values), key=str
        )
        if not new:
            return
        largest = max((math.prod(shape_of(t, self.sizes)) for t in ins), default=1)
        assumed: dict[str, int] = {}
        basis = "elements of the largest input"
        for u in new:
            upper = _finite_upper(_value_range(val, u))
            size = upper if upper is not None else largest
            if upper is not None:
                basis = "declared range"
            self.sizes.bind(str(u), size)
            assumed[str(u)] = size
        outs = tensors_in(val)
        shape = [str(d) for d in outs[0].shape] if outs else []
        self.data_dependent[n.name] = {
            "op": op, "shape": shape, "assumed": assumed, "basis": basis,
        }  # fmt: skip

    def _compute(self, n: fx.Node, val: Any, outs: list[Any]) -> None:
        from torch import fx

        op, kind = self._kind(n.target)
        category = kind.category
        name = n.name
        self.fx_nodes[name] = [name]
        ins = [t for a in n.all_input_nodes for t in tensors_in(a.meta.get("val"))]
        self._bind_data_dependent(n, op, val, ins)
        out_bytes = self.nbytes(outs)
        first = n.args[0] if n.args and isinstance(n.args[0], fx.Node) else None
        written = _out_kwarg_nodes(n)
        read = param = 0.0
        for a in n.all_input_nodes:
            self._claim(a.name, name)
            r = self.route.get(a.name)
            if r is None:
                continue
            kind_, src, base, element = r
            b = self.nbytes(a.meta.get("val"))
            b = min(b, base) if base else b
            if kind.reads == "shape" or a.name in written:  # no element is read
                if kind_ == "op":
                    self._read(a, src, element, base, name, 0.0)
                continue
            # a gather reads the rows it gathers, but the whole source must be where it runs
            read += min(b, _gathered_bytes(kind, n, out_bytes)) if a is first and \
                kind.reads == "gathered" else b  # fmt: skip
            if kind_ == "param":
                param += b
            elif kind_ == "op":
                self._read(a, src, element, base, name, b)
        args = fx.node.map_arg(n.args, lambda x: x.meta.get("val"))
        kwargs = fx.node.map_arg(n.kwargs, lambda x: x.meta.get("val"))
        flops = node_flops(n.target, args, dict(kwargs), val, category, sizes=self.sizes)
        self.nodes.append(
            OpNode(
                name,
                op=op,
                category=category,
                flops=flops,
                bytes_read=read,
                bytes_written=out_bytes,
                param_bytes=param,
                out_bytes=out_bytes,
                dtype=dtype_name(outs[0].dtype),
                shape=shape_of(outs[0], self.sizes),
                module=_module_path(n),
            )
        )
        self.route[name] = ("op", name, out_bytes, "")
        self.dtypes[name] = self.nodes[-1].dtype

    def _read(
        self, a: fx.Node, src: str, element: str, base: float, consumer: str, size: float
    ) -> None:
        """``consumer`` reads ``size`` bytes of fx value ``a``: a view of ``element`` of op
        ``src``'s output. Views of one output are one tensor (they share its storage)."""
        hit = self.tensors.get((src, element))
        if hit is None:
            ts = tensors_in(a.meta.get("val"))
            dtype = dtype_name(ts[0].dtype) if ts else self.dtypes[src]
            hit = self.tensors[(src, element)] = ({}, base, dtype)
        hit[0].setdefault(consumer, {})[a.name] = size

    def tensor_list(self) -> list[Tensor]:
        """One tensor per op output (or item of an op's tuple output) read by another op. Its
        size is what its largest reader reads: that reader's distinct views added, at most
        the whole output."""
        out = []
        for (src, element), (readers, base, dtype) in self.tensors.items():
            nbytes = max(sum(views.values()) for views in readers.values())
            if base:
                nbytes = min(nbytes, base)
            out.append(Tensor(f"{src}{element}", src, tuple(readers), nbytes, dtype))
        return out


def from_exported(ep: torch.export.ExportedProgram, *, name: str | None = None) -> OpGraph:
    """Build an :class:`OpGraph` from an ``ExportedProgram``.

    Parameters
    ----------
    ep : the exported program (any IR level; ``run_decompositions()`` output works too).
    name : graph name (default ``"exported"``).

    Returns
    -------
    OpGraph
        ``meta`` holds ``source`` (``"torch.export"``), ``inputs`` (user input placeholders),
        ``outputs`` (fx names feeding the output), ``fx_nodes`` (OpNode name -> the fx nodes it
        covers, absorbed views and getitems included), ``param_bytes_total`` (bytes of all
        parameters, buffers and constants, each counted once) and, when some view chain
        reaches an output without any op, ``unowned`` (those fx names). A program exported
        with dynamic dimensions is costed at each ``Dim``'s upper bound, or at the example's
        size where the ``Dim`` has none: ``dynamic_shapes`` says which, per symbol (see
        :func:`hetsched.graph.dynamic.symbol_sizes`). Ops whose output size depends on the
        data (``nonzero``, ``masked_select``, ``unique``) are costed at an upper bound and
        listed in ``data_dependent`` (op name -> ``op``, symbolic ``shape``, ``assumed``
        sizes, ``basis``).

    Raises
    ------
    GraphError
        If the program contains no compute op.
    """
    sig = ep.graph_signature
    params = {
        *sig.inputs_to_parameters,
        *sig.inputs_to_buffers,
        *sig.inputs_to_lifted_tensor_constants,
    }
    sizes, dynamic = symbol_sizes(ep)
    imp = _Importer(params, sizes)
    imp.run(ep.graph)
    gname = name or "exported"
    if not imp.nodes:
        msg = f"graph {gname!r}: the program has no compute ops (only inputs and views)"
        raise GraphError(msg)
    unowned = [x for x in imp.absorbed_inputs if x not in imp.owner]
    meta: dict[str, Any] = {
        "source": "torch.export",
        "inputs": [x for x in sig.user_inputs if isinstance(x, str)],
        "outputs": imp.outputs,
        "param_bytes_total": imp.param_total,
        "fx_nodes": imp.fx_nodes,
    }
    if unowned:
        meta["unowned"] = unowned
    reads = matmul_inputs(ep.graph)
    if reads:
        meta["matmul_inputs"] = reads
    if dynamic:
        meta["dynamic_shapes"] = dynamic
    if imp.data_dependent:
        meta["data_dependent"] = imp.data_dependent
    return OpGraph(gname, imp.nodes, tensors=imp.tensor_list(), meta=meta)


_THROUGH = frozenset({"view", "reshape", "_unsafe_view", "contiguous", "clone", "alias"})


def matmul_inputs(graph: fx.Graph) -> dict[str, str]:
    """fx node of each linear layer (``linear``, ``addmm``) -> the fx node its input
    comes from, through views: which op's output a layer multiplies (not merely reads in
    an op fused with it), for the sharded chains of :mod:`hetsched.costmodel.sharding`."""
    import torch
    from torch import fx

    aten = torch.ops.aten
    arg = {aten.linear.default: 0, aten.addmm.default: 1}
    out: dict[str, str] = {}
    for n in graph.nodes:
        j = arg.get(n.target)  # type: ignore[call-overload]
        if j is None or len(n.args) <= j or not isinstance(n.args[j], fx.Node):
            continue
        x = n.args[j]
        while (
            x.op == "call_function"
            and getattr(x.target, "__name__", "").split(".")[0] in _THROUGH
            and x.args
            and isinstance(x.args[0], fx.Node)
        ):
            x = x.args[0]
        out[n.name] = x.name
    return out


class _Held(logging.Filter):
    """Holds back the records one torch log handler would print."""

    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self.handler = handler
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False


@contextlib.contextmanager
def _held_torch_output() -> Iterator[list[Any]]:
    """Hold torch's log lines and stderr prints during an export; ``release()`` replays them.

    A failed export prints a partial graph and warnings that would bury the one-line
    :class:`GraphError`; a successful one gets its output back unchanged.
    """
    loggers = [
        lg
        for name, lg in list(logging.Logger.manager.loggerDict.items())
        if (name == "torch" or name.startswith("torch.")) and isinstance(lg, logging.Logger)
    ]
    held = [_Held(h) for lg in loggers for h in lg.handlers]
    for f in held:
        f.handler.addFilter(f)
    buf = io.StringIO()
    state: list[Any] = [held, buf]
    try:
        with contextlib.redirect_stderr(buf):
            yield state
    finally:
        for f in held:
            f.handler.removeFilter(f)


def _release(state: list[Any]) -> None:
    held, buf = state
    for f in held:
        for record in f.records:
            f.handler.handle(record)
    sys.stderr.write(buf.getvalue())


def from_torch(
    model: torch.nn.Module,
    example_args: Any,
    *,
    name: str | None = None,
    strict: bool = False,
    dynamic_shapes: Any = None,
) -> OpGraph:
    """Export ``model`` with ``torch.export.export`` and import it (see :func:`from_exported`).

    ``example_args`` is a tuple of positional inputs (a single tensor is wrapped).

    Raises
    ------
    GraphError
        If torch.export cannot trace the model; the message names the model and gives the
        first line of torch's reason. torch's own log lines and partial-graph dump are then
        dropped (set ``HETSCHED_DEBUG=1`` to see them); after a successful export they are
        printed as usual.
    """
    import torch

    args = example_args if isinstance(example_args, tuple) else (example_args,)
    label = name or type(model).__name__
    try:
        with _held_torch_output() as held:
            ep = torch.export.export(model, args, strict=strict, dynamic_shapes=dynamic_shapes)
    except Exception as err:
        if os.environ.get("HETSCHED_DEBUG"):
            _release(held)
        lines = [x.strip() for x in str(err).splitlines() if x.strip()]
        reason = lines[0] if lines else type(err).__name__
        msg = f"torch.export could not trace model {label!r}: {type(err).__name__}: {reason}"
        raise GraphError(msg) from err
    _release(held)
    return from_exported(ep, name=name or type(model).__name__)


def from_fx(gm: fx.GraphModule, example_inputs: Any, *, name: str | None = None) -> OpGraph:
    """Import an fx ``GraphModule`` (e.g. from ``symbolic_trace``) by exporting it.

    Exporting re-traces the module to aten ops with ``meta["val"]`` shapes, so call_module /
    call_method nodes and torch-level functions all come out as aten ops.
    """
    return from_torch(gm, example_inputs, name=name or "fx_graph")
