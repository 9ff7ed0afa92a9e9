"""Apply a plan to the program it was made for: one fx submodule per device segment.

:func:`apply` maps every fx node to the device of the op that covers it (the first device of
a multi-device mode; an op the plan splits tensor-parallel becomes shards, each on its own
device, :func:`~hetsched.shard.shard_program`) (``graph.meta["fx_nodes"]``; absorbed views
and getitems follow their op, the rest follow their first consumer, else their producer),
takes the fx nodes of each op as one unit (a fused op's members stay together even when the
program interleaves them with other ops), cuts a topological order of the units into
segments wherever the device changes, and calls
:func:`torch.fx.passes.split_module.split_module`. Segments only depend on earlier ones, so
the split module calls them in a valid order. Each submodule
carries ``device``; the parent carries ``hetsched_devices`` (submodule -> device) and
``hetsched_segments`` (one row per segment: device, ops, FLOPs).

Examples
--------
>>> import torch
>>> from hetsched.graph.torch_import import from_exported
>>> from hetsched.plan import Plan
>>> from hetsched.problem import ModeSpec
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
>>> ep = torch.export.export(model, (torch.randn(1, 4),))
>>> g = from_exported(ep, name="seq")
>>> devs = {"linear": "cpu", "relu": "gpu", "linear_1": "gpu"}
>>> modes = {op: ModeSpec((d,)) for op, d in devs.items()}
>>> t = dict.fromkeys(devs, 0.0)
>>> plan = Plan(modes=modes, start=t, finish=t, transfers=(), makespan=0.0, lower_bound=0.0,
...             solver="manual")
>>> split = apply(plan, ep, g)
>>> split.hetsched_devices
{'submod_0': 'cpu', 'submod_1': 'gpu'}
>>> x = torch.randn(1, 4)
>>> torch.testing.assert_close(split(x), model(x))
>>> print(segment_report(split))
segment   device  ops  MFLOPs
submod_0  cpu       1   0.000
submod_1  gpu       2   0.000
devices: cpu 1 segment(s), gpu 1 segment(s)
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hetsched.errors import PlanError

if TYPE_CHECKING:  # pragma: no cover
    from torch import fx

    from hetsched.graph.opgraph import OpGraph
    from hetsched.plan import Plan

__all__ = ["apply", "node_devices", "segment_report", "segment_tags", "tag_exported"]


def _as_graph_module(program: Any) -> fx.GraphModule:
    import torch
    from torch import fx

    if isinstance(program, torch.export.ExportedProgram):
        return program.module()  # type: ignore[return-value]
    if isinstance(program, fx.GraphModule):
        return program
    msg = f"apply needs an ExportedProgram or fx.GraphModule, got {type(program).__name__}"
    raise PlanError(msg)


def node_devices(
    plan: Plan,
    graph: OpGraph,
    gm: fx.GraphModule,
    *,
    fx_nodes: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, str]:
    """Device of every computing fx node of ``gm`` (placeholders, attrs, output excluded).

    ``fx_nodes`` (op -> fx node names of ``gm``) defaults to ``graph.meta["fx_nodes"]``.
    Raises :class:`PlanError` when the plan and the program disagree, naming the op.
    """
    if fx_nodes is None:
        fx_nodes = graph.meta.get("fx_nodes") or {}
    if not fx_nodes:
        msg = f"graph {graph.name!r} has no fx_nodes map: import it from the program"
        raise PlanError(msg)
    for op in plan.assignment:
        if op not in fx_nodes:
            msg = f"plan places op {op!r}, which graph {graph.name!r} of the program lacks"
            raise PlanError(msg)
    by_name = {n.name: n for n in gm.graph.nodes}
    dev: dict[str, str] = {}
    for op, names in fx_nodes.items():
        if op not in plan.assignment:
            msg = f"plan does not place op {op!r} of the program"
            raise PlanError(msg)
        for x in names:
            if x not in by_name:
                msg = f"op {op!r} covers fx node {x!r}, which the program does not have"
                raise PlanError(msg)
            dev[x] = plan.assignment[op]
    compute = [n for n in gm.graph.nodes if n.op not in ("placeholder", "get_attr", "output")]
    for n in reversed(compute):  # unowned nodes follow their first consumer
        if n.name not in dev:
            users = [u.name for u in n.users if u.name in dev]
            if users:
                dev[n.name] = dev[users[0]]
    last = next(iter(plan.assignment.values()), "cpu")
    for n in compute:  # ... else their producer (or the previous node)
        if n.name not in dev:
            ins = [a.name for a in n.all_input_nodes if a.name in dev]
            dev[n.name] = dev[ins[0]] if ins else last
        last = dev[n.name]
    return dev


def _segments(
    gm: fx.GraphModule, dev: dict[str, str], owner: dict[str, str]
) -> tuple[dict[str, int], list[str]]:
    """Segment of every fx node with a device, and the device of every segment.

    A *unit* is the fx nodes of one op (``owner``), or one fx node no op covers. Units go in
    a topological order of the units' dependencies (ties: the unit's first fx node first) and
    a new segment starts wherever the device changes. A fused op whose members are not
    adjacent in the program (a residual add after a later branch) thus stays one piece, and
    every segment depends only on earlier ones.
    """
    compute = [n for n in gm.graph.nodes if n.name in dev]
    unit_of = {n.name: owner.get(n.name, n.name) for n in compute}
    members: dict[str, list[str]] = {}
    for n in compute:
        members.setdefault(unit_of[n.name], []).append(n.name)
    first = {u: i for i, u in enumerate(members)}
    succs: dict[str, set[str]] = {u: set() for u in members}
    indeg = dict.fromkeys(members, 0)
    for n in compute:
        u = unit_of[n.name]
        for a in n.all_input_nodes:
            w = unit_of.get(a.name)
            if w is not None and w != u and u not in succs[w]:
                succs[w].add(u)
                indeg[u] += 1
    ready = [(first[u], u) for u in members if indeg[u] == 0]
    heapq.heapify(ready)
    seg_of: dict[str, int] = {}
    seg_dev: list[str] = []
    while ready:
        _, u = heapq.heappop(ready)
        d = dev[members[u][0]]
        if not seg_dev or seg_dev[-1] != d:
            seg_dev.append(d)
        seg_of.update(dict.fromkeys(members[u], len(seg_dev) - 1))
        for s in sorted(succs[u], key=first.__getitem__):
            indeg[s] -= 1
            if indeg[s] == 0:
                heapq.heappush(ready, (first[s], s))
    if len(seg_of) != len(compute):
        stuck = sorted((u for u in members if indeg[u] > 0), key=first.__getitem__)
        msg = (
            f"the ops {', '.join(stuck[:5])} depend on each other through the program: "
            "their fx node groups (graph.meta['fx_nodes']) do not form a DAG"
        )
        raise PlanError(msg)
    return seg_of, seg_dev


def apply(
    plan: Plan,
    program: Any,
    graph: OpGraph,
    *,
    calibration: Sequence[Sequence[Any]] | None = None,
) -> fx.GraphModule:
    """Split ``program`` (ExportedProgram or GraphModule) by ``plan``; see the module docs.

    Ops the plan runs in a reduced precision compute in it in the split program
    (:func:`~hetsched.precision.rewrite.lower_program`, the numerics of
    :class:`~hetsched.precision.interpreter.PrecisionInterpreter`); ``calibration`` (user
    input tuples) calibrates the int8 activation scales, by default the inputs
    ``measure_sensitivity`` uses. The split module's ``hetsched_precisions`` names them
    (op -> precision). Ops the plan runs tensor-parallel compute as shards on their
    devices (:func:`~hetsched.shard.shard_program`: weight slices, one shard per device,
    a cat on the first); ``hetsched_splits`` names them (op -> devices).

    Raises
    ------
    PlanError
        The plan places an op the program lacks, misses one of its ops, or the graph's
        ``fx_nodes`` map names nodes the program does not have.
    UsageError
        Ops are lowered but ``program`` is not an ExportedProgram (see ``lower_program``).
    """
    from torch.fx.passes.split_module import split_module

    from hetsched.precision.rewrite import lower_program, plan_precisions
    from hetsched.shard import plan_split_tags, plan_splits, shard_program

    precisions = plan_precisions(plan, graph)
    fx_nodes: Mapping[str, Sequence[str]] = graph.meta.get("fx_nodes") or {}
    if precisions:
        lowered = lower_program(program, graph, precisions, calibration=calibration)
        gm, fx_nodes = lowered.module, lowered.fx_nodes
    else:
        gm = _as_graph_module(program)
    splits = plan_splits(plan)
    shards: Mapping[str, tuple[tuple[str, ...], ...]] = {}
    on: Mapping[str, str] = {}
    replicas: Mapping[str, Mapping[str, str]] = {}
    if splits:
        sharded = shard_program(gm, fx_nodes, splits, plan_split_tags(plan))
        gm, fx_nodes, shards, on = sharded.module, sharded.fx_nodes, sharded.shards, sharded.devices
        replicas = sharded.replicas
    dev = node_devices(plan, graph, gm, fx_nodes=fx_nodes)
    dev.update(on)
    _read_local_copies(gm, dev, replicas)
    owner = {x: op for op, names in fx_nodes.items() for x in names}
    for op, groups in shards.items():  # before the shards, each shard, the cat and after
        first = min(list(fx_nodes[op]).index(x[0]) for x in groups)
        for x in fx_nodes[op][:first]:
            owner[x] = f"{op}#in"
        for i, group in enumerate(groups):
            owner.update(dict.fromkeys(group, f"{op}#{i}"))
    seg_of, seg_dev = _segments(gm, dev, owner)
    split = split_module(gm, gm, lambda n: seg_of.get(n.name, 0))
    # Keep the program's calling convention (pytree in/out specs of ExportedProgram.module()).
    split.graph._codegen = gm.graph._codegen
    split.recompile()
    devices: dict[str, str] = {}
    rows = []
    for i, d in enumerate(seg_dev):
        name = f"submod_{i}"
        if not hasattr(split, name):
            continue
        sub = getattr(split, name)
        sub.device = d
        devices[name] = d
        ops = [x for x, s in seg_of.items() if s == i and owner.get(x) == x and x not in shards]
        flops = sum(graph.node(x).flops for x in ops)
        cut = [  # shards of split ops in this segment: each 1/k of the op
            (op, len(groups))
            for op, groups in shards.items()
            for g in groups
            if seg_of.get(g[-1]) == i
        ]
        flops += sum(graph.node(op).flops / k for op, k in cut)
        rows.append(
            {"segment": name, "device": d, "ops": len(ops) + len(cut), "flops": float(flops),
             "precisions": sorted({precisions[x] for x in [*ops, *(op for op, _ in cut)]
                                   if x in precisions}),
             "shards": [f"{op} 1/{k}" for op, k in cut]}
        )  # fmt: skip
        tags = segment_tags(rows[-1])
        for n in sub.graph.nodes:  # the fx program out carries the decisions too
            if n.op not in ("placeholder", "output"):
                n.meta["custom"] = {**n.meta.get("custom", {}), **tags}
    # nn.Module's __setattr__ is typed for tensors and modules only; these are plain data.
    object.__setattr__(split, "hetsched_devices", devices)
    object.__setattr__(split, "hetsched_segments", rows)
    object.__setattr__(split, "hetsched_precisions", precisions)
    object.__setattr__(split, "hetsched_splits", dict(splits))
    return split


def _read_local_copies(
    gm: fx.GraphModule, dev: Mapping[str, str], replicas: Mapping[str, Mapping[str, str]]
) -> None:
    """Every reader of a replicated op reads the copy on its own device."""
    if not replicas:
        return
    by_name = {n.name: n for n in gm.graph.nodes}
    for n in list(gm.graph.nodes):
        for a in list(n.all_input_nodes):
            copy = replicas.get(a.name, {}).get(dev.get(n.name, ""))
            if copy is not None and copy != a.name:
                n.replace_input_with(a, by_name[copy])
    gm.recompile()


def segment_tags(row: Mapping[str, Any]) -> dict[str, str]:
    """The decisions of one segment as node metadata (``node.meta["custom"]``, which
    ``torch.export.save`` keeps): device, segment, precisions, shards."""
    return {
        "hetsched.device": str(row["device"]),
        "hetsched.segment": str(row["segment"]),
        "hetsched.precision": ",".join(row.get("precisions", [])) or "as exported",
        "hetsched.shards": ",".join(row.get("shards", [])),
    }


def tag_exported(program: Any, split: fx.GraphModule) -> Any:
    """``program`` (``torch.export.export(split, ...)``) with every op node tagged with its
    segment's :func:`segment_tags`, so a downstream compiler reads the decisions from the
    saved ``.pt2`` without the plan.

    Re-exporting inlines the segments and drops their module paths, but traces their ops in
    the order the split program runs them: the segments' op nodes, in call order, are matched
    to the exported op nodes with the same target, in order; an op export inserts on the way
    (a dtype assertion) takes the tags of the op before it."""
    source = []
    for n in split.graph.nodes:
        if n.op == "call_module":
            sub = getattr(split, str(n.target))
            source += [(m.target, m.meta.get("custom", {})) for m in sub.graph.nodes
                       if m.op == "call_function"]  # fmt: skip
    k = 0
    for n in program.graph.nodes:
        if n.op != "call_function" or not source:
            continue
        hit = next((j for j in range(k, len(source)) if source[j][0] == n.target), None)
        if hit is None:  # inserted by export: part of the segment it sits in
            tags = source[max(0, k - 1)][1]
        else:
            tags, k = source[hit][1], hit + 1
        n.meta["custom"] = {**n.meta.get("custom", {}), **tags}
    return program


def segment_report(split: fx.GraphModule) -> str:
    """Text table of the segments of an :func:`apply` result and the count per device."""
    rows = getattr(split, "hetsched_segments", None)
    if rows is None:
        msg = "segment_report needs a module returned by hetsched.partition.apply"
        raise PlanError(msg)
    lines = [f"{'segment':<9} {'device':<7} {'ops':>3}  {'MFLOPs':>6}"]
    per: dict[str, int] = {}
    for r in rows:
        lines.append(f"{r['segment']:<9} {r['device']:<7} {r['ops']:>3}  {r['flops'] / 1e6:6.3f}")
        per[r["device"]] = per.get(r["device"], 0) + 1
    lines.append("devices: " + ", ".join(f"{d} {k} segment(s)" for d, k in per.items()))
    return "\n".join(lines)
