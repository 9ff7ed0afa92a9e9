"""The graph layer: operator DAGs, file formats, torch importers, coarsening, model zoo.

Examples
--------
>>> from hetsched.graph import OpGraph, OpNode, Edge
>>> OpGraph("g", [OpNode("a"), OpNode("b")], [Edge("a", "b", 4.0)])
OpGraph('g', 2 nodes, 1 edges)
"""

from hetsched.graph import zoo
from hetsched.graph.coarsen import CoarsenReport, coarsen, coarsen_with_report
from hetsched.graph.flops import classify_op, node_flops
from hetsched.graph.formats import from_dict, graph_sha256, load, parse_stg, read_stg, save, to_dict
from hetsched.graph.fusion import FusionReport, fuse, fuse_with_report
from hetsched.graph.opgraph import CATEGORIES, Edge, OpGraph, OpNode, Tensor
from hetsched.graph.resolve import load_graph_spec, load_program_spec
from hetsched.graph.summary import GraphSummary, format_summary, summarize
from hetsched.graph.torch_import import from_exported, from_fx, from_torch
from hetsched.graph.zoo import ModelInfo, list_models

__all__ = [
    "CATEGORIES",
    "CoarsenReport",
    "Edge",
    "FusionReport",
    "GraphSummary",
    "ModelInfo",
    "OpGraph",
    "OpNode",
    "Tensor",
    "classify_op",
    "coarsen",
    "coarsen_with_report",
    "format_summary",
    "from_dict",
    "from_exported",
    "from_fx",
    "from_torch",
    "fuse",
    "fuse_with_report",
    "graph_sha256",
    "list_models",
    "load",
    "load_graph_spec",
    "load_program_spec",
    "node_flops",
    "parse_stg",
    "read_stg",
    "save",
    "summarize",
    "to_dict",
    "zoo",
]
