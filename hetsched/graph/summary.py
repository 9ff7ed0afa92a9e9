"""A one-screen summary of an :class:`OpGraph`: sizes, category mix, critical path.

Examples
--------
>>> from hetsched.graph.opgraph import Edge, OpGraph, OpNode
>>> g = OpGraph("g", [OpNode("a", category="matmul", flops=2e9, out_bytes=4e6),
...                   OpNode("b", category="elementwise", flops=1e6)], [Edge("a", "b", 4e6)])
>>> s = summarize(g)
>>> s.nodes, s.edges, s.gflops, s.critical_path_gflops, s.critical_path_length
(2, 1, 2.001, 2.001, 2)
>>> print(format_summary(s).splitlines()[0])
graph g: 2 nodes, 1 edges
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hetsched.graph.opgraph import OpGraph

__all__ = ["GraphSummary", "format_summary", "summarize"]


@dataclass(frozen=True)
class GraphSummary:
    """Sizes of a graph.

    ``assumed_sizes`` says, one line each, at which size a dynamic dimension or a
    data-dependent output was costed (``meta["dynamic_shapes"]``, ``meta["data_dependent"]``).

    Byte totals sum over nodes (a weight read by two ops counts twice), except
    ``param_bytes``: the importer's count of distinct parameter bytes
    (``meta["param_bytes_total"]``) when the graph has one, else the sum over nodes.
    """

    name: str
    nodes: int
    edges: int
    gflops: float
    bytes_read: float
    bytes_written: float
    param_bytes: float
    edge_bytes: float
    categories: dict[str, int]
    category_gflops: dict[str, float]
    critical_path_gflops: float
    critical_path_length: int
    critical_path: tuple[str, ...]
    explicit_costs: bool
    source: str
    assumed_sizes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["critical_path"] = list(self.critical_path)
        d["assumed_sizes"] = list(self.assumed_sizes)
        return d


def summarize(graph: OpGraph) -> GraphSummary:
    """Counts, totals, category histogram and the FLOP-weighted critical path of ``graph``.

    For graphs with explicit costs (STG), the critical path is weighted by the cheapest cost.
    """
    explicit = graph.has_explicit_costs
    length, path = graph.critical_path("cost" if explicit else "flops")
    cat_flops: dict[str, float] = {}
    for n in graph.nodes:
        cat_flops[n.category] = cat_flops.get(n.category, 0.0) + n.flops / 1e9
    hist = graph.category_histogram()
    unique = graph.meta.get("param_bytes_total")
    return GraphSummary(
        name=graph.name,
        nodes=len(graph.nodes),
        edges=len(graph.edges),
        gflops=graph.total_flops / 1e9,
        bytes_read=float(sum(n.bytes_read for n in graph.nodes)),
        bytes_written=float(sum(n.bytes_written for n in graph.nodes)),
        param_bytes=float(unique)
        if isinstance(unique, int | float)
        else float(sum(n.param_bytes for n in graph.nodes)),
        edge_bytes=graph.total_edge_bytes,
        categories=hist,
        category_gflops={c: cat_flops[c] for c in hist},
        critical_path_gflops=length if explicit else length / 1e9,
        critical_path_length=len(path),
        critical_path=tuple(path),
        explicit_costs=explicit,
        source=str(graph.meta.get("source", graph.meta.get("format_source", ""))),
        assumed_sizes=_assumed_sizes(graph),
    )


def _assumed_sizes(graph: OpGraph) -> tuple[str, ...]:
    """One line per dynamic dimension and per data-dependent op of an imported graph."""
    lines = []
    dynamic = graph.meta.get("dynamic_shapes") or {}
    for sym, d in dynamic.items() if isinstance(dynamic, dict) else ():
        where = f" ({d.get('input')})" if d.get("input") else ""
        lines.append(f"{sym}{where} = {d.get('size')}: {d.get('basis')}")
    data = graph.meta.get("data_dependent") or {}
    for op, d in data.items() if isinstance(data, dict) else ():
        sizes = ", ".join(f"{k} = {v}" for k, v in dict(d.get("assumed", {})).items())
        shape = ", ".join(str(x) for x in d.get("shape", []))
        lines.append(f"{op} ({d.get('op')}) output ({shape}) depends on the data: "
                     f"{sizes} assumed ({d.get('basis')})")  # fmt: skip
    return tuple(lines)


def _bytes(b: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(b) < 1024 or unit == "GiB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.2f} {unit}"
        b /= 1024
    return f"{b:.2f} GiB"  # pragma: no cover


def format_summary(s: GraphSummary, *, path_limit: int = 6) -> str:
    """A plain-text table of a :class:`GraphSummary`."""
    lines = [f"graph {s.name}: {s.nodes} nodes, {s.edges} edges"]
    if s.source:
        lines.append(f"  source          {s.source}")
    lines += [
        f"  total           {s.gflops:.4g} GFLOP",
        f"  bytes read      {_bytes(s.bytes_read)}",
        f"  bytes written   {_bytes(s.bytes_written)}",
        f"  parameters      {_bytes(s.param_bytes)}",
        f"  edge traffic    {_bytes(s.edge_bytes)}",
    ]
    unit = "cost units" if s.explicit_costs else "GFLOP"
    shown = list(s.critical_path[:path_limit])
    if len(s.critical_path) > path_limit:
        shown.append(f"... {s.critical_path[-1]}")
    lines.append(
        f"  critical path   {s.critical_path_gflops:.4g} {unit} over {s.critical_path_length} "
        f"nodes: {' -> '.join(shown)}"
    )
    for i, line in enumerate(s.assumed_sizes):
        lines.append(f"  {'assumed size' if i == 0 else '':<15} {line}")
    lines.append(f"  {'category':<14}  {'nodes':>6}  {'GFLOP':>10}  {'share':>6}")
    for c, k in s.categories.items():
        gf = s.category_gflops.get(c, 0.0)
        share = 100.0 * gf / s.gflops if s.gflops else 0.0
        lines.append(f"  {c:<14}  {k:>6}  {gf:>10.4g}  {share:>5.1f}%")
    return "\n".join(lines)
