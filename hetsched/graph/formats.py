"""Graph file formats: ``hetsched.graph/2`` JSON and the Kasahara STG text format.

A ``hetsched.graph/2`` document holds ``name``, ``nodes`` (:meth:`OpNode.to_dict` objects),
``tensors`` (``{"name", "src", "dsts", "bytes", "dtype"}``: one producer, its consumers, the
size) and optionally ``meta``. :func:`save` writes version 2; :func:`load` also reads
``hetsched.graph/1`` documents, whose ``edges`` (``{"src", "dst", "bytes"}``) become one
tensor each, named ``"src->dst"``. JSON round trips are lossless.

STG tasks get an explicit ``cost`` (``{"*": c}``, the same on every device); the two dummy
tasks stay as zero-cost nodes, and edges carry no bytes (one tensor each). Costs of STG graphs
are in the graph's own time units.

Examples
--------
>>> import tempfile, os
>>> from hetsched.graph.opgraph import OpGraph, OpNode, Tensor
>>> g = OpGraph("t", [OpNode("a", flops=2.0), OpNode("b"), OpNode("c")],
...             tensors=[Tensor("x", "a", ("b", "c"), 8.0)])
>>> doc = to_dict(g)
>>> doc["format"], doc["tensors"]  # doctest: +NORMALIZE_WHITESPACE
('hetsched.graph/2',
 [{'name': 'x', 'src': 'a', 'dsts': ['b', 'c'], 'bytes': 8.0, 'dtype': 'float32'}])
>>> p = os.path.join(tempfile.mkdtemp(), "g.json")
>>> save(g, p)
>>> load(p) == g
True
>>> v1 = {"format": "hetsched.graph/1", "nodes": [{"name": "a"}, {"name": "b"}],
...       "edges": [{"src": "a", "dst": "b", "bytes": 4.0}]}
>>> from_dict(v1).tensors
(Tensor(name='a->b', src='a', dsts=('b',), bytes=4.0, dtype='float32'),)
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
from hetsched.graph.opgraph import Edge, OpGraph, OpNode, Tensor

__all__ = [
    "GRAPH_FORMAT",
    "GRAPH_FORMATS",
    "from_dict",
    "graph_sha256",
    "load",
    "parse_stg",
    "read_stg",
    "save",
    "to_dict",
]

GRAPH_FORMAT = "hetsched.graph/2"
_FORMAT_V1 = "hetsched.graph/1"
GRAPH_FORMATS: tuple[str, ...] = (_FORMAT_V1, GRAPH_FORMAT)
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
    "parts",
}
_TENSOR_REQUIRED = ("name", "src", "dsts", "bytes")
_TENSOR_KEYS = {*_TENSOR_REQUIRED, "dtype"}
_V2_KEYS = {"format", "name", "nodes", "tensors", "meta"}


def to_dict(graph: OpGraph) -> dict[str, Any]:
    """The ``hetsched.graph/2`` document of ``graph``."""
    doc: dict[str, Any] = {
        "format": GRAPH_FORMAT,
        "name": graph.name,
        "nodes": [n.to_dict() for n in graph.nodes],
        "tensors": [t.to_dict() for t in graph.tensors],
    }
    if graph.meta:
        doc["meta"] = _jsonable(dict(graph.meta))
    return doc


def graph_sha256(graph: OpGraph) -> str:
    """Content hash of the graph's name, nodes and tensors (plans record it against mismatches)."""
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
    """Build an :class:`OpGraph` from a ``hetsched.graph/2`` or ``/1`` document; strict.

    Raises
    ------
    GraphError
        One line naming ``source`` for an unknown format version, a malformed node or tensor
        (missing or unknown field, wrong type, unknown node), or an invalid graph.
    """
    if not isinstance(doc, dict):
        msg = f"{source}: expected a JSON object, got {type(doc).__name__}"
        raise GraphError(msg)
    fmt = doc.get("format")
    if fmt not in GRAPH_FORMATS:
        known = ", ".join(repr(f) for f in GRAPH_FORMATS)
        msg = f"{source}: unsupported graph format {fmt!r} (known: {known})"
        raise GraphError(msg)
    wrong = "tensors" if fmt == _FORMAT_V1 else "edges"
    if wrong in doc:
        msg = f"{source}: a {fmt!r} document has no field {wrong!r}"
        raise GraphError(msg)
    if fmt == GRAPH_FORMAT and set(doc) - _V2_KEYS:
        msg = f"{source}: unknown top-level field(s) {sorted(set(doc) - _V2_KEYS)}"
        raise GraphError(msg)
    nodes = _nodes_of(_list_field(doc, "nodes", source, required=True), source)
    name = str(doc.get("name") or Path(source).stem)
    meta = doc.get("meta") or {}
    if fmt == _FORMAT_V1:
        edges = _edges_of(_list_field(doc, "edges", source), source)
        return OpGraph(name, nodes, edges, meta=meta)
    known_nodes = {n.name for n in nodes}
    tensors_doc = _list_field(doc, "tensors", source)
    tensors = [_tensor_of(td, i, known_nodes, source) for i, td in enumerate(tensors_doc)]
    seen: set[str] = set()
    for t in tensors:
        if t.name in seen:
            msg = f"{source}: duplicate tensor name {t.name!r}"
            raise GraphError(msg)
        seen.add(t.name)
    return OpGraph(name, nodes, tensors=tensors, meta=meta)


def _list_field(doc: dict[str, Any], key: str, source: str, *, required: bool = False) -> list[Any]:
    value = doc.get(key, None if required else [])
    if not isinstance(value, list):
        msg = f"{source}: field {key!r} must be a list"
        raise GraphError(msg)
    return value


def _nodes_of(nodes_doc: list[Any], source: str) -> list[OpNode]:
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
        if "parts" in kw:
            if not isinstance(kw["parts"], list) or not all(
                isinstance(x, dict) for x in kw["parts"]
            ):
                msg = f"{source}: node {nd['name']!r}: 'parts' must be a list of objects"
                raise GraphError(msg)
            kw["parts"] = tuple(_nodes_of(kw["parts"], source))
        try:
            nodes.append(OpNode(**kw))
        except TypeError as err:
            msg = f"{source}: node {nd['name']!r}: {err}"
            raise GraphError(msg) from err
    return nodes


def _edges_of(edges_doc: list[Any], source: str) -> list[Edge]:
    """``hetsched.graph/1`` edges (the graph makes one tensor of each)."""
    edges = []
    for i, ed in enumerate(edges_doc):
        if not isinstance(ed, dict) or "src" not in ed or "dst" not in ed:
            msg = f"{source}: edge #{i} must be an object with 'src' and 'dst'"
            raise GraphError(msg)
        edges.append(Edge(str(ed["src"]), str(ed["dst"]), ed.get("bytes", 0.0)))
    return edges


def _tensor_of(td: Any, i: int, nodes: set[str], source: str) -> Tensor:
    """One ``hetsched.graph/2`` tensor; ``dtype`` may be left out (``"float32"``)."""
    if not isinstance(td, dict):
        msg = f"{source}: tensor #{i} must be an object, got {type(td).__name__}"
        raise GraphError(msg)
    raw = td.get("name")
    label = repr(raw) if isinstance(raw, str) and raw else f"#{i}"
    missing = [k for k in _TENSOR_REQUIRED if k not in td]
    if missing:
        msg = f"{source}: tensor {label} is missing field(s) {missing}"
        raise GraphError(msg)
    unknown = sorted(set(td) - _TENSOR_KEYS)
    if unknown:
        msg = f"{source}: tensor {label} has unknown field(s) {unknown}"
        raise GraphError(msg)
    src, dsts, size, dtype = td["src"], td["dsts"], td["bytes"], td.get("dtype", "float32")
    problem = ""
    if not isinstance(raw, str) or not raw:
        problem = f"'name' must be a non-empty string, got {raw!r}"
    elif not isinstance(src, str):
        problem = f"'src' must be a node name, got {src!r}"
    elif not isinstance(dsts, list) or not dsts or not all(isinstance(d, str) for d in dsts):
        problem = f"'dsts' must be a non-empty list of node names, got {dsts!r}"
    elif not isinstance(size, int | float) or isinstance(size, bool):
        problem = f"'bytes' must be a number, got {size!r}"
    elif not isinstance(dtype, str):
        problem = f"'dtype' must be a string, got {dtype!r}"
    else:
        gone = next((x for x in (src, *dsts) if x not in nodes), None)
        if gone is not None:
            problem = f"references unknown node {gone!r}"
    if problem:
        msg = f"{source}: tensor {label}: {problem}"
        raise GraphError(msg)
    try:
        return Tensor(str(raw), src, tuple(dsts), size, dtype)
    except GraphError as err:
        msg = f"{source}: {err}"
        raise GraphError(msg) from err


def save(graph: OpGraph, path: str | os.PathLike[str]) -> None:
    """Write ``graph`` as ``hetsched.graph/2`` JSON, atomically."""
    write_json_atomic(path, to_dict(graph))


def load(path: str | os.PathLike[str]) -> OpGraph:
    """Read a graph file: ``.stg`` (Kasahara STG) or ``hetsched.graph/2`` (or ``/1``) JSON."""
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
