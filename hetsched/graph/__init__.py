"""The graph layer: operator DAGs, file formats, torch importers, coarsening, model zoo.

Examples
--------
>>> from hetsched.graph import OpGraph, OpNode, Edge
>>> OpGraph("g", [OpNode("a"), OpNode("b")], [Edge("a", "b", 4.0)])
OpGraph('g', 2 nodes, 1 edges)
"""

from hetsched.graph.formats import from_dict, graph_sha256, load, parse_stg, read_stg, save, to_dict
from hetsched.graph.opgraph import CATEGORIES, Edge, OpGraph, OpNode

__all__ = [
    "CATEGORIES",
    "Edge",
    "OpGraph",
    "OpNode",
    "from_dict",
    "graph_sha256",
    "load",
    "parse_stg",
    "read_stg",
    "save",
    "to_dict",
]
