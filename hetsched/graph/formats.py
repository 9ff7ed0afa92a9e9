"""Graph file formats: ``hetsched.graph/1`` JSON and the Kasahara STG text format.

JSON round trips are lossless. STG tasks get an explicit ``cost`` (``{"*": c}``, the same on
every device); the two dummy tasks stay as zero-cost nodes. Costs of STG graphs are in the
graph's own time units.

Examples
--------
>>> import tempfile, os
>>> from hetsched.graph.opgraph import OpGraph, OpNode, Edge
>>> g = OpGraph("t", [OpNode("a", flops=2.0), OpNode("b")], [Edge("a", "b", 8.0)])
>>> p = os.path.join(tempfile.mkdtemp(), "g.json")
>>> save(g, p)
>>> load(p) == g
True
>>> g2 = parse_stg("2\\n0 0 0\\n1 3 1 0\\n2 4 1 1\\n3 0 1 2\\n", name="tiny")
>>> [n.cost["*"] for n in g2.nodes]
[0.0, 3.0, 4.0, 0.0]
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from hetsched.errors import GraphError
from hetsched.fileio import read_json, write_json_atomic
from hetsched.graph.opgraph import Edge, OpGraph, OpNode

__all__ = [
    "GRAPH_FORMAT",
    "from_dict",
    "graph_sha256",
    "load",
    "parse_stg",
    "read_stg",
    "save",
    "to_dict",
]

GRAPH_FORMAT = "hetsched.graph/1"
_NODE_KEYS = {
    "name",
    "op",
    "category",
    "flops",
    "bytes_read",
    "bytes_written",
    "param_bytes",
    "out_bytes",
    "dtype",
    "shape",
    "module",
    "cost",
}


def to_dict(graph: OpGraph) -> dict[str, Any]:
    """The ``hetsched.graph/1`` document of ``graph``."""
    doc: dict[str, Any] = {
        "format": GRAPH_FORMAT,
        "name": graph.name,
        "nodes": [n.to_dict() for n in graph.nodes],
        "edges": [{"src": e.src, "dst": e.dst, "bytes": e.bytes} for e in graph.edges],
    }
    if graph.meta:
        doc["meta"] = _jsonable(dict(graph.meta))
    return doc


def graph_sha256(graph: OpGraph) -> str:
    """Content hash of the graph's nodes and edges (plans record it to detect mismatches)."""
    doc = to_dict(graph)
    doc.pop("meta", None)
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def _jsonable(x: Any) -> Any:
    try:
        json.dumps(x, allow_nan=False)
        return x
    except (TypeError, ValueError):
        if isinstance(x, dict):
            return {str(k): _jsonable(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [_jsonable(v) for v in x]
        return str(x)


def from_dict(doc: Any, *, source: str = "<graph>") -> OpGraph:
    """Build an :class:`OpGraph` from a ``hetsched.graph/1`` document; strict."""
    if not isinstance(doc, dict):
        msg = f"{source}: expected a JSON object, got {type(doc).__name__}"
        raise GraphError(msg)
    fmt = doc.get("format")
    if fmt != GRAPH_FORMAT:
        msg = f"{source}: unsupported graph format {fmt!r} (expected {GRAPH_FORMAT!r})"
        raise GraphError(msg)
    nodes_doc = doc.get("nodes")
    edges_doc = doc.get("edges", [])
    if not isinstance(nodes_doc, list):
        msg = f"{source}: field 'nodes' must be a list"
        raise GraphError(msg)
    if not isinstance(edges_doc, list):
        msg = f"{source}: field 'edges' must be a list"
        raise GraphError(msg)
    nodes = []
    for i, nd in enumerate(nodes_doc):
        if not isinstance(nd, dict) or "name" not in nd:
            msg = f"{source}: node #{i} must be an object with a 'name'"
            raise GraphError(msg)
        unknown = set(nd) - _NODE_KEYS
        if unknown:
            msg = f"{source}: node {nd['name']!r} has unknown field(s) {sorted(unknown)}"
            raise GraphError(msg)
        kw = dict(nd)
        if "shape" in kw:
            if not isinstance(kw["shape"], list):
                msg = f"{source}: node {nd['name']!r}: 'shape' must be a list"
                raise GraphError(msg)
            kw["shape"] = tuple(kw["shape"])
        if kw.get("cost") is not None:
            if not isinstance(kw["cost"], dict):
                msg = f"{source}: node {nd['name']!r}: 'cost' must be an object"
                raise GraphError(msg)
            kw["cost"] = {k: (math.inf if v == "inf" else v) for k, v in kw["cost"].items()}
        try:
            nodes.append(OpNode(**kw))
        except TypeError as err:
            msg = f"{source}: node {nd['name']!r}: {err}"
            raise GraphError(msg) from err
    edges = []
    for i, ed in enumerate(edges_doc):
        if not isinstance(ed, dict) or "src" not in ed or "dst" not in ed:
            msg = f"{source}: edge #{i} must be an object with 'src' and 'dst'"
            raise GraphError(msg)
        edges.append(Edge(str(ed["src"]), str(ed["dst"]), ed.get("bytes", 0.0)))
    name = doc.get("name") or Path(source).stem
    return OpGraph(str(name), nodes, edges, meta=doc.get("meta") or {})


def save(graph: OpGraph, path: str | os.PathLike[str]) -> None:
    """Write ``graph`` as ``hetsched.graph/1`` JSON, atomically."""
    write_json_atomic(path, to_dict(graph))


def load(path: str | os.PathLike[str]) -> OpGraph:
    """Read a graph file: ``.stg`` (Kasahara STG) or ``hetsched.graph/1`` JSON."""
    p = Path(path)
    if p.suffix.lower() == ".stg":
        return read_stg(p)
    return from_dict(read_json(p, error=GraphError), source=str(p))


def read_stg(path: str | os.PathLike[str]) -> OpGraph:
    """Read an STG file (see ``parse_stg``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        msg = f"{p}: no such file"
        raise GraphError(msg) from None
    except OSError as err:
        msg = f"{p}: cannot read: {err}"
        raise GraphError(msg) from err
    return parse_stg(text, name=p.stem, source=str(p))


def parse_stg(text: str, *, name: str = "stg", source: str = "<stg>") -> OpGraph:
    """Parse Standard Task Graph text.

    First line: N (real tasks). Then N+2 lines ``id cost npred pred...`` (dummy entry 0 and
    exit N+1 included). ``#`` lines are comments; ``# CP Length : L`` is kept in ``meta``.
    """
    lines: list[tuple[int, str]] = []
    meta: dict[str, Any] = {"format_source": "stg"}
    for raw in text.splitlines():
        s = raw.strip()
        if not s:
            continue
        if s.startswith("#"):
            body = s.lstrip("#").strip()
            if ":" in body:
                k, _, v = body.partition(":")
                k = k.strip()
                if k == "CP Length":
                    with contextlib.suppress(ValueError, IndexError):
                        meta["cp_length"] = float(v.split()[0])
            continue
        lines.append((len(lines) + 1, s))
    if not lines:
        msg = f"{source}: empty STG file"
        raise GraphError(msg)
    try:
        n_real = int(lines[0][1].split()[0])
    except ValueError:
        msg = f"{source}: first line must be the task count, got {lines[0][1]!r}"
        raise GraphError(msg) from None
    task_lines = lines[1:]
    if len(task_lines) != n_real + 2:
        msg = (
            f"{source}: header says {n_real} tasks (+2 dummies = {n_real + 2} lines) "
            f"but {len(task_lines)} task lines follow"
        )
        raise GraphError(msg)
    nodes: list[OpNode] = []
    edges: list[Edge] = []
    for _, s in task_lines:
        parts = s.split()
        try:
            nums = [int(x) for x in parts]
        except ValueError:
            msg = f"{source}: task line {s!r} has a non-integer field"
            raise GraphError(msg) from None
        if len(nums) < 3:
            msg = f"{source}: task line {s!r} needs id, cost, predecessor count"
            raise GraphError(msg)
        tid, cost, npred = nums[0], nums[1], nums[2]
        preds = nums[3:]
        if npred != len(preds):
            msg = f"{source}: task {tid} says {npred} predecessors but lists {len(preds)}"
            raise GraphError(msg)
        if cost < 0:
            msg = f"{source}: task {tid} has negative cost {cost}"
            raise GraphError(msg)
        nodes.append(OpNode(f"t{tid}", op="stg.task", cost={"*": float(cost)}))
        edges.extend(Edge(f"t{p}", f"t{tid}", 0.0) for p in preds)
    meta["units"] = "stg time units"
    return OpGraph(name, nodes, edges, meta=meta)
