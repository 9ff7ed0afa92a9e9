"""Real numerics for the executor: evaluate the fx nodes of one op on CPU tensors.

A :class:`ProgramRunner` binds a ``torch.export.ExportedProgram`` (or an ``fx.GraphModule``)
to its weights and user inputs. :meth:`ProgramRunner.run_op` evaluates the fx nodes an op
covers (``graph.meta["fx_nodes"]``), in graph order, each by calling ``node.target`` on its
arguments looked up in a shared environment, like ``torch.fx.Interpreter`` does node by
node. Nodes no op covers (placeholders, parameters, views of inputs, the output) are
evaluated on demand by whichever thread needs them. torch is imported lazily.

Examples
--------
>>> import torch
>>> from hetsched.graph.torch_import import from_exported
>>> torch.manual_seed(0) and None
>>> m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
>>> x = torch.randn(2, 4)
>>> ep = torch.export.export(m, (x,))
>>> r = ProgramRunner(ep, from_exported(ep).meta["fx_nodes"], (x,))
>>> for op in ("linear", "relu"):
...     r.run_op(op)
>>> torch.equal(r.outputs(), m(x))
True
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from hetsched.errors import UsageError
from hetsched.exec.errors import ExecutionError

if TYPE_CHECKING:
    from hetsched.problem import Problem

__all__ = ["OpRunner", "ProgramRunner", "make_runner", "outputs_close"]


class OpRunner(Protocol):
    """What the executor asks of a runner: run an op's fx nodes, forget what a lost op
    produced, warm a device thread up."""

    def run_op(self, op: str) -> None: ...

    def forget(self, op: str) -> None: ...

    def warmup(self) -> None: ...


class ProgramRunner:
    """Evaluates the fx nodes of an exported program op by op (thread-safe per op)."""

    def __init__(
        self,
        program: Any,
        fx_nodes: Mapping[str, Sequence[str]],
        inputs: Sequence[Any],
        shards: Mapping[str, Sequence[Sequence[str]]] | None = None,
    ) -> None:
        import torch
        from torch import fx
        from torch.utils import _pytree as pytree

        self.program = program
        self._lock = threading.RLock()  # a free node may read another free node
        self.env: dict[str, Any] = {}
        flat = pytree.tree_flatten((tuple(inputs), {}))[0]
        if isinstance(program, torch.export.ExportedProgram):
            self.graph = program.graph
            self.module: Any = None
            self._bind_exported(program, flat)
            self._out_spec = program.call_spec.out_spec
        elif isinstance(program, fx.GraphModule):
            self.graph = program.graph
            self.module = program
            holders = [n for n in self.graph.nodes if n.op == "placeholder"]
            if len(holders) != len(flat):
                msg = f"program takes {len(holders)} inputs, {len(flat)} given"
                raise UsageError(msg)
            self.env.update({n.name: v for n, v in zip(holders, flat, strict=True)})
            # ExportedProgram.module() returns its outputs through a pytree spec
            info = getattr(program.graph._codegen, "pytree_info", None)
            self._out_spec = getattr(info, "out_spec", None)
        else:
            msg = f"program must be an ExportedProgram or fx.GraphModule, not {type(program)}"
            raise UsageError(msg)
        self.nodes = {n.name: n for n in self.graph.nodes}
        position = {n.name: i for i, n in enumerate(self.graph.nodes)}
        self.owner: dict[str, str] = {}
        self.steps: dict[str, list[fx.Node]] = {}
        for op, names in fx_nodes.items():
            missing = [x for x in names if x not in self.nodes]
            if missing:
                msg = f"op {op!r} covers fx node {missing[0]!r}, which the program does not have"
                raise UsageError(msg)
            self.steps[op] = [self.nodes[x] for x in sorted(names, key=position.__getitem__)]
            self.owner.update(dict.fromkeys(names, op))
        # an op split tensor-parallel: its shards' fx nodes, one group per device
        self.shards = {op: [set(g) for g in groups] for op, groups in (shards or {}).items()}
        self._output = next(n for n in self.graph.nodes if n.op == "output")
        # fx nodes that depend on program inputs and parameters only (a view of a causal-mask
        # buffer, say): the importer gives them to their first reader, but any reader may run
        # first in a plan, so they are evaluated on demand
        self._free: set[str] = set()
        for n in self.graph.nodes:
            if n.op in ("placeholder", "get_attr"):
                continue
            if all(a.op in ("placeholder", "get_attr") or a.name in self._free
                   for a in n.all_input_nodes):  # fmt: skip
                self._free.add(n.name)

    def _bind_exported(self, ep: Any, flat: list[Any]) -> None:
        from torch.export.graph_signature import InputKind

        users = iter(flat)
        for spec in ep.graph_signature.input_specs:
            name = spec.arg.name
            if spec.kind == InputKind.USER_INPUT:
                try:
                    self.env[name] = next(users)
                except StopIteration:
                    msg = "program takes more user inputs than were given"
                    raise UsageError(msg) from None
            elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
                src = ep.state_dict if spec.target in ep.state_dict else ep.constants
                self.env[name] = src[spec.target]
            elif spec.kind == InputKind.CONSTANT_TENSOR or spec.target in ep.constants:
                self.env[name] = ep.constants[spec.target]
            else:
                msg = f"unsupported program input {name!r} of kind {spec.kind.name}"
                raise UsageError(msg)
        if next(users, None) is not None:
            msg = "more user inputs were given than the program takes"
            raise UsageError(msg)

    # ------------------------------------------------------------------ evaluation
    def value(self, name: str) -> Any:
        """The value of fx node ``name``, evaluating uncovered nodes on demand."""
        try:
            return self.env[name]
        except KeyError:
            pass
        if name in self.owner and name not in self._free:
            msg = f"fx node {name!r} of op {self.owner[name]!r} is used before that op ran"
            raise ExecutionError(msg, op=self.owner[name])
        with self._lock:
            if name not in self.env:
                node = self.nodes[name]
                self.env[name] = self._eval(node, {})
        return self.env[name]

    def _eval(self, node: Any, local: dict[str, Any]) -> Any:
        from torch import fx

        def look(n: fx.Node) -> Any:
            return local[n.name] if n.name in local else self.value(n.name)

        args = fx.node.map_arg(node.args, look)
        kwargs = fx.node.map_arg(node.kwargs, look)
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        if node.op == "call_method":
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        if node.op == "call_module" and self.module is not None:
            return self.module.get_submodule(node.target)(*args, **kwargs)
        if node.op == "get_attr" and self.module is not None:
            obj = self.module
            for part in str(node.target).split("."):
                obj = getattr(obj, part)
            return obj
        msg = f"cannot evaluate fx node {node.name!r} ({node.op})"
        raise ExecutionError(msg)

    def run_op(self, op: str) -> None:
        """Evaluate every fx node ``op`` covers; results go into the shared environment."""
        steps = self.steps.get(op)
        if steps is None:
            msg = f"op {op!r} has no fx nodes in the program"
            raise ExecutionError(msg, op=op)
        local: dict[str, Any] = {}
        groups = self.shards.get(op)
        if groups:  # the shards at once, one thread each (as their devices would)
            sharded = set().union(*groups)
            first = next(i for i, n in enumerate(steps) if n.name in sharded)
            for node in steps[:first]:
                local[node.name] = self._eval(node, local)
            self._run_shards([[n for n in steps if n.name in g] for g in groups], local)
            steps = [n for n in steps[first:] if n.name not in sharded]
        for node in steps:
            local[node.name] = self._eval(node, local)
        self.env.update(local)

    def _run_shards(self, groups: list[list[Any]], local: dict[str, Any]) -> None:
        """Evaluate each group of fx nodes on its own thread; results into ``local``."""
        from collections import ChainMap

        results: list[dict[str, Any]] = [{} for _ in groups]
        errors: list[BaseException] = []

        def shard(nodes: list[Any], out: dict[str, Any]) -> None:
            try:
                view = ChainMap(out, local)
                for node in nodes:
                    out[node.name] = self._eval(node, view)  # type: ignore[arg-type]
            except BaseException as err:  # re-raised on the op's thread
                errors.append(err)

        threads = [
            threading.Thread(target=shard, args=(g, r), daemon=True)
            for g, r in zip(groups[1:], results[1:], strict=True)
        ]
        for t in threads:
            t.start()
        shard(groups[0], results[0])
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        for r in results:
            local.update(r)

    def warmup(self) -> None:
        """Run tiny ops once on the calling thread (its first torch calls are slow)."""
        import torch

        x = torch.ones(2, 4)
        torch.nn.functional.layer_norm(torch.nn.functional.linear(x, torch.ones(4, 4)), (4,))

    def forget(self, op: str) -> None:
        """Drop the values ``op`` produced (its results were lost with a device)."""
        for node in self.steps.get(op, ()):
            self.env.pop(node.name, None)

    def outputs(self) -> Any:
        """The program's user outputs, structured as the eager module returns them."""
        from torch import fx
        from torch.utils import _pytree as pytree

        flat = fx.node.map_arg(self._output.args[0], lambda n: self.value(n.name))
        if self._out_spec is None:
            return flat
        if self.module is not None:
            return pytree.tree_unflatten(list(flat), self._out_spec)
        from torch.export.graph_signature import OutputKind

        specs = self.program.graph_signature.output_specs
        user = [v for v, s in zip(flat, specs, strict=True) if s.kind == OutputKind.USER_OUTPUT]
        return pytree.tree_unflatten(user, self._out_spec)


def outputs_close(
    got: Any, want: Any, *, rtol: float | None = None, atol: float | None = None
) -> bool:
    """True when two output structures match (``torch.testing.assert_close``).

    By default floating outputs may differ by float32 reassociation: ops run on other
    threads than in eager sum in another order, so the tolerance is 1e-4 relative and 1e-6 of
    the output's largest magnitude (at least 1e-5) absolute.
    """
    import torch

    if rtol is None and atol is None:
        scale = max(
            (float(t.detach().abs().max()) for t in _tensors(want) if t.is_floating_point()),
            default=0.0,
        )
        rtol, atol = 1e-4, max(1e-5, 1e-6 * scale)
    try:
        torch.testing.assert_close(got, want, rtol=rtol, atol=atol)
    except (AssertionError, TypeError, ValueError):
        return False
    return True


def _tensors(x: Any) -> list[Any]:
    import torch

    if isinstance(x, torch.Tensor):
        return [x] if x.numel() else []
    if isinstance(x, dict):
        return [t for v in x.values() for t in _tensors(v)]
    if isinstance(x, list | tuple):
        return [t for v in x for t in _tensors(v)]
    return []


def make_runner(
    p: Problem,
    graph: Any,
    program: Any,
    inputs: Any,
    *,
    fx_nodes: Mapping[str, Sequence[str]] | None = None,
    shards: Mapping[str, Sequence[Sequence[str]]] | None = None,
) -> ProgramRunner | None:
    """A runner for ``program`` over ``p``'s ops (None without a program); ``fx_nodes``
    (op -> fx nodes) defaults to ``graph.meta["fx_nodes"]``, else each op's own name;
    ``shards`` (op -> fx nodes of each shard) run at once, one thread each."""
    if program is None:
        return None
    if inputs is None:
        msg = "a program needs its inputs"
        raise UsageError(msg)
    if fx_nodes is None:
        meta = getattr(graph, "meta", {}) or {}
        fx_nodes = meta.get("fx_nodes") or {x: [x] for x in p.names}
    runner = ProgramRunner(program, fx_nodes, tuple(inputs), shards)
    missing = [x for x in p.names if x not in runner.steps]
    if missing:
        msg = f"op {missing[0]!r} has no fx nodes in the program ({len(missing)} ops lack them)"
        raise UsageError(msg)
    return runner
