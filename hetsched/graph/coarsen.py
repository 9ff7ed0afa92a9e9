"""Coarsening: fuse cheap ops into neighbours and group ops by module path.

Every merge keeps the quotient graph acyclic. The quotient keeps a topological position per
group; two merges are safe by construction and keep the positions valid:

- a cheap group joins its *latest* predecessor (largest position): any other path from that
  predecessor into the group would have to enter through another predecessor, which comes
  earlier, so no cycle can form;
- a cheap group without predecessors joins its *earliest* successor, by the mirror argument.

A module group (all groups whose representative's module path has the same prefix of
``group_by_module`` components) is merged only when it is convex: no path leaves it and comes
back. The check walks forward from the group, pruned at its last position; a non-convex group
is tried per weakly connected component, and what still fails stays ungrouped.

A merged node takes the name, op and category of its representative: the member with the most
FLOPs (ties: a non-cheap member, then the earliest); ``flops``, ``bytes_read``,
``bytes_written``, ``param_bytes`` and explicit ``cost`` (keys common to all members) are
summed; ``out_bytes`` counts the members whose output leaves the group (or leaves the graph).
It lists its members in ``parts`` (a fused member by its own parts), so a device runs the group
only if it runs every member: the category of the representative never lets a group holding a
``cat`` or an int64 ``arange`` onto a device that refuses those.
Tensors keep their name, size and dtype: a tensor produced in group G and read in other groups
goes from G's merged node to those groups (its consumers inside G are dropped); a tensor read
only inside G disappears. A tensor shared by two groups thus stays one tensor, moved once per
device however many of its readers were merged.

Examples
--------
>>> from hetsched.graph.opgraph import Edge, OpGraph, OpNode
>>> g = OpGraph("g", [OpNode("mm", category="matmul", flops=100.0, out_bytes=8.0),
...                   OpNode("relu", category="elementwise", flops=2.0, out_bytes=8.0),
...                   OpNode("mm2", category="matmul", flops=50.0)],
...             [Edge("mm", "relu", 8.0), Edge("relu", "mm2", 8.0)])
>>> c = coarsen(g)
>>> [n.name for n in c.nodes], c.total_flops, dict(c.meta["groups"])
(['mm', 'mm2'], 152.0, {'mm': ['mm', 'relu']})
>>> c.tensors
(Tensor(name='relu->mm2', src='mm', dsts=('mm2',), bytes=8.0, dtype='float32'),)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hetsched.errors import UsageError
from hetsched.graph.opgraph import OpGraph, OpNode, Tensor

__all__ = ["CHEAP_CATEGORIES", "CoarsenReport", "coarsen", "coarsen_with_report"]

CHEAP_CATEGORIES: tuple[str, ...] = ("elementwise", "data_movement")


@dataclass(frozen=True)
class CoarsenReport:
    """What :func:`coarsen_with_report` did."""

    nodes_before: int
    nodes_after: int
    edges_before: int
    edges_after: int
    fused: int  # nodes absorbed by fusion
    grouped: int  # groups absorbed by module grouping
    ungrouped_modules: tuple[str, ...]  # module keys (partly) left alone: cycle or flops cap

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["ungrouped_modules"] = list(self.ungrouped_modules)
        return d


class _Quotient:
    """Groups of nodes with quotient adjacency and valid topological positions."""

    def __init__(self, graph: OpGraph) -> None:
        self.graph = graph
        names = [n.name for n in graph.nodes]
        self.members: dict[str, list[str]] = {x: [x] for x in names}
        self.group_of: dict[str, str] = {x: x for x in names}
        self.preds: dict[str, set[str]] = {x: set(graph.predecessors(x)) for x in names}
        self.succs: dict[str, set[str]] = {x: set(graph.successors(x)) for x in names}
        self.order: list[str | None] = list(names)
        self.pos: dict[str, int] = dict(graph.index)
        self.flops: dict[str, float] = {n.name: n.flops for n in graph.nodes}

    def absorb(self, keep: str, gone: str) -> None:
        """Merge group ``gone`` into group ``keep`` (positions are the caller's business)."""
        for m in self.members[gone]:
            self.group_of[m] = keep
        self.members[keep].extend(self.members.pop(gone))
        self.flops[keep] += self.flops.pop(gone)
        for p in self.preds.pop(gone):
            self.succs[p].discard(gone)
            if p != keep:
                self.succs[p].add(keep)
                self.preds[keep].add(p)
        for s in self.succs.pop(gone):
            self.preds[s].discard(gone)
            if s != keep:
                self.preds[s].add(keep)
                self.succs[keep].add(s)
        self.order[self.pos.pop(gone)] = None

    def descendants_before(self, group: set[str]) -> tuple[bool, list[str]]:
        """Non-members reachable from ``group`` positioned before its last member.

        Returns ``(convex, those nodes)``; ``convex`` is False when such a path re-enters.
        """
        last = max(self.pos[g] for g in group)
        seen: set[str] = set()
        stack = [s for g in group for s in self.succs[g] if s not in group]
        while stack:
            x = stack.pop()
            if x in seen or self.pos[x] > last:
                continue
            seen.add(x)
            for s in self.succs[x]:
                if s in group:
                    return False, []
                stack.append(s)
        return True, sorted(seen, key=self.pos.__getitem__)

    def merge_convex(self, group: list[str], keep: str, after: list[str]) -> None:
        """Merge a convex ``group`` into ``keep``; ``after`` = its in-window descendants."""
        first, last = min(self.pos[g] for g in group), max(self.pos[g] for g in group)
        gset, aset = set(group), set(after)
        window = [x for x in self.order[first : last + 1] if x is not None]
        for g in group:
            if g != keep:
                self.absorb(keep, g)
        new: list[str | None] = [x for x in window if x not in gset and x not in aset]
        new += [keep, *after]
        new += [None] * (last + 1 - first - len(new))
        self.order[first : last + 1] = new
        for i, x in enumerate(new, start=first):
            if x is not None:
                self.pos[x] = i


def _fuse(q: _Quotient, cheap: Iterable[str], max_flops: float | None) -> int:
    cheap = set(cheap)
    fused = 0
    for node in q.graph.nodes:
        if node.category not in cheap:
            continue
        g = q.group_of[node.name]
        if q.preds[g]:
            target = max(q.preds[g], key=q.pos.__getitem__)
        elif q.succs[g]:
            target = min(q.succs[g], key=q.pos.__getitem__)
        else:
            continue
        if max_flops is not None and q.flops[g] + q.flops[target] > max_flops:
            continue
        q.absorb(target, g)
        fused += 1
    return fused


def _components(q: _Quotient, group: list[str]) -> list[list[str]]:
    gset, comp = set(group), {g: g for g in group}

    def find(x: str) -> str:
        while comp[x] != x:
            comp[x] = comp[comp[x]]
            x = comp[x]
        return x

    for g in group:
        for s in q.succs[g]:
            if s in gset:
                comp[find(s)] = find(g)
    out: dict[str, list[str]] = {}
    for g in group:
        out.setdefault(find(g), []).append(g)
    return list(out.values())


def _group_modules(q: _Quotient, depth: int, max_flops: float | None) -> tuple[int, list[str]]:
    buckets: dict[str, list[str]] = {}
    for g in sorted(q.members, key=q.pos.__getitem__):
        module = q.graph.node(g).module
        if module:
            buckets.setdefault(".".join(module.split(".")[:depth]), []).append(g)
    grouped, rejected = 0, []
    for key, groups in buckets.items():
        if len(groups) < 2:
            continue
        todo, failed = [groups], False
        while todo:
            part = todo.pop()
            if len(part) < 2:
                continue
            if max_flops is not None and sum(q.flops[g] for g in part) > max_flops:
                failed = True
                continue
            convex, after = q.descendants_before(set(part))
            if convex:
                keep = max(part, key=lambda g: (q.flops[g], -q.pos[g]))
                q.merge_convex(part, keep, after)
                grouped += len(part) - 1
                continue
            parts = _components(q, part)
            failed = True
            if len(parts) > 1:
                todo.extend(parts)
        if failed:
            rejected.append(key)
    return grouped, rejected


def _cost(nodes: list[OpNode]) -> dict[str, float] | None:
    costs = [n.cost for n in nodes]
    if any(c is None for c in costs):
        return None
    keys = set.intersection(*(set(c) for c in costs if c is not None))
    return {k: sum(c[k] for c in costs if c is not None) for k in sorted(keys)}


def _parts(nodes: list[OpNode]) -> tuple[OpNode, ...]:
    """What a merged node is made of: each member's parts, or the member itself."""
    return tuple(
        x
        for n in nodes
        for x in (n.parts or (OpNode(n.name, op=n.op, category=n.category, dtype=n.dtype),))
    )


def _quotient_tensors(
    graph: OpGraph, group_of: dict[str, str], name_of: dict[str, str]
) -> list[Tensor]:
    """Each tensor from its producer's group to the other groups reading it (if any)."""
    out = []
    for t in graph.tensors:
        home = group_of[t.src]
        dsts = dict.fromkeys(name_of[group_of[d]] for d in t.dsts if group_of[d] != home)
        if dsts:
            out.append(Tensor(t.name, name_of[home], tuple(dsts), t.bytes, t.dtype))
    return out


def coarsen_with_report(
    graph: OpGraph,
    *,
    fuse: bool = True,
    group_by_module: int | None = None,
    max_group_flops: float | None = None,
    cheap: Iterable[str] = CHEAP_CATEGORIES,
) -> tuple[OpGraph, CoarsenReport]:
    """:func:`coarsen`, also returning a :class:`CoarsenReport`."""
    if group_by_module is not None and group_by_module < 1:
        msg = f"group_by_module must be a depth >= 1, got {group_by_module}"
        raise UsageError(msg)
    cheap = tuple(cheap)
    q = _Quotient(graph)
    fused = _fuse(q, cheap, max_group_flops) if fuse else 0
    grouped, rejected = 0, list[str]()
    if group_by_module is not None:
        grouped, rejected = _group_modules(q, group_by_module, max_group_flops)
    old_groups = graph.meta.get("groups", {})
    old_fx = graph.meta.get("fx_nodes")
    nodes: list[OpNode] = []
    groups: dict[str, list[str]] = {}
    fx_nodes: dict[str, list[str]] = {}
    cheap_set = set(cheap)
    name_of: dict[str, str] = {}
    for grp in (x for x in q.order if x is not None):
        members = sorted(q.members[grp], key=graph.index.__getitem__)
        mnodes = [graph.node(m) for m in members]
        leaving = [
            n
            for n in mnodes
            if not graph.successors(n.name)
            or any(q.group_of[s] != grp for s in graph.successors(n.name))
        ]
        last = leaving[-1] if leaving else mnodes[-1]
        r = max(mnodes, key=lambda n: (n.flops, n.category not in cheap_set, -graph.index[n.name]))
        rep = name_of[grp] = r.name
        module = r.module
        if len(members) > 1 and group_by_module and module:
            module = ".".join(module.split(".")[:group_by_module])
        nodes.append(
            OpNode(
                rep,
                op=r.op,
                category=r.category,
                flops=sum(n.flops for n in mnodes),
                bytes_read=sum(n.bytes_read for n in mnodes),
                bytes_written=sum(n.bytes_written for n in mnodes),
                param_bytes=sum(n.param_bytes for n in mnodes),
                out_bytes=sum(n.out_bytes for n in leaving),
                dtype=last.dtype,
                shape=last.shape,
                module=module,
                cost=_cost(mnodes),
                parts=_parts(mnodes) if len(mnodes) > 1 else r.parts,
            )
        )
        if len(members) > 1:
            groups[rep] = [x for m in members for x in old_groups.get(m, [m])]
        elif rep in old_groups:
            groups[rep] = list(old_groups[rep])
        if old_fx is not None:
            fx_nodes[rep] = [x for m in members for x in old_fx.get(m, [])]
    tensors = _quotient_tensors(graph, q.group_of, name_of)
    pairs = {(t.src, d) for t in tensors for d in t.dsts}
    report = CoarsenReport(
        len(graph.nodes), len(nodes), len(graph.edges), len(pairs), fused, grouped, tuple(rejected)
    )
    meta = dict(graph.meta)
    meta["groups"] = groups
    if old_fx is not None:
        meta["fx_nodes"] = fx_nodes
    meta["coarsen"] = report.to_dict()
    return OpGraph(graph.name, nodes, tensors=tensors, meta=meta), report


def coarsen(
    graph: OpGraph,
    *,
    fuse: bool = True,
    group_by_module: int | None = None,
    max_group_flops: float | None = None,
    cheap: Iterable[str] = CHEAP_CATEGORIES,
) -> OpGraph:
    """A smaller, still acyclic graph: cheap ops fused, optionally grouped by module.

    Parameters
    ----------
    graph : the graph to coarsen (not modified).
    fuse : fuse each node of a ``cheap`` category into a neighbour (see the module docstring).
    group_by_module : merge ops whose module paths share this many leading components.
    max_group_flops : no merge may create a node with more FLOPs than this.
    cheap : the categories that fusion absorbs.

    Returns
    -------
    OpGraph
        ``meta["groups"]`` maps each merged node to its original member names,
        ``meta["fx_nodes"]`` (when the input had it) is merged accordingly, and
        ``meta["coarsen"]`` holds the :class:`CoarsenReport` as a dict.

    Raises
    ------
    UsageError
        If ``group_by_module`` is not a positive depth.
    """
    return coarsen_with_report(
        graph,
        fuse=fuse,
        group_by_module=group_by_module,
        max_group_flops=max_group_flops,
        cheap=cheap,
    )[0]
