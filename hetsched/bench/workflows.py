"""Scientific workflows in WfCommons WfFormat, read by us, scheduled on a related platform.

We read WfFormat JSON ourselves (schema 1.4-1.6: ``workflow.specification`` +
``workflow.execution``; and the older 1.3 layout with ``workflow.tasks`` carrying
``runtimeInSeconds`` and ``files`` with ``link``). Edge data = the total size of the files a
parent writes and a child reads. Instances are generated offline with the ``wfcommons``
package's WfChef recipes (:func:`generate`), seeded.

The platform is ``devices`` related machines with speeds ``1, 2, 2, 4, 1, 2, ...`` (exec =
runtime / speed) joined by a 1 Gb/s network (125 MB/s, no latency).

Examples
--------
>>> doc = {"schemaVersion": "1.5", "workflow": {"specification": {
...   "tasks": [{"id": "a", "parents": [], "outputFiles": ["f"]},
...             {"id": "b", "parents": ["a"], "inputFiles": ["f"]}],
...   "files": [{"id": "f", "sizeInBytes": 250000000}]},
...   "execution": {"tasks": [{"id": "a", "runtimeInSeconds": 2.0},
...                           {"id": "b", "runtimeInSeconds": 1.0}]}}}
>>> names, runtime, edges = parse_wfformat(doc)
>>> names, runtime, edges
(['a', 'b'], [2.0, 1.0], [(0, 1, 250000000.0)])
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from hetsched.errors import GraphError, UsageError
from hetsched.fileio import read_json
from hetsched.problem import Problem

__all__ = ["RECIPES", "generate", "parse_wfformat", "workflow_problem"]

RECIPES = ("blast", "bwa", "cycles", "epigenomics", "genome", "montage", "seismology", "soykb")
_SPEEDS = (1.0, 2.0, 2.0, 4.0)
_BANDWIDTH = 125e6


def parse_wfformat(doc: Any) -> tuple[list[str], list[float], list[tuple[int, int, float]]]:
    """``(names in topological order, runtime seconds, (u, v, bytes) edges)`` of a WfFormat doc."""
    try:
        wf = doc["workflow"]
        if "specification" in wf:
            tasks = wf["specification"]["tasks"]
            sizes = {f["id"]: float(f.get("sizeInBytes", 0)) for f in wf["specification"]["files"]}
            runtime = {
                t["id"]: float(t.get("runtimeInSeconds", 0)) for t in wf["execution"]["tasks"]
            }
            ins = {t["id"]: set(t.get("inputFiles", [])) for t in tasks}
            outs = {t["id"]: set(t.get("outputFiles", [])) for t in tasks}
        else:  # schema <= 1.3
            tasks = wf["tasks"]
            runtime = {t.get("id", t["name"]): float(t.get("runtimeInSeconds", 0)) for t in tasks}
            sizes, ins, outs = {}, {}, {}
            for t in tasks:
                tid = t.get("id", t["name"])
                ins[tid], outs[tid] = set(), set()
                for f in t.get("files", []):
                    key = f.get("name", f.get("id"))
                    sizes[key] = float(f.get("sizeInBytes", f.get("size", 0)))
                    (ins if f.get("link") == "input" else outs)[tid].add(key)
        g = nx.DiGraph()
        for t in tasks:
            tid = t.get("id", t.get("name"))
            g.add_node(tid)
            for par in t.get("parents", []):
                g.add_edge(par, tid)
    except (KeyError, TypeError) as err:
        msg = f"not a WfFormat workflow: missing {err}"
        raise GraphError(msg) from err
    if not nx.is_directed_acyclic_graph(g):
        msg = "workflow has a dependency cycle"
        raise GraphError(msg)
    names = list(nx.lexicographical_topological_sort(g))
    index = {x: i for i, x in enumerate(names)}
    edges = [
        (index[u], index[v], sum(sizes.get(f, 0.0) for f in outs.get(u, set()) & ins.get(v, set())))
        for u, v in sorted(g.edges, key=lambda e: (index[e[0]], index[e[1]]))
    ]
    return names, [runtime.get(x, 0.0) for x in names], edges


def workflow_problem(path: str | os.PathLike[str], devices: int = 4) -> Problem:
    """A :class:`Problem` of the workflow at ``path`` on ``devices`` related machines."""
    names, runtime, edges = parse_wfformat(read_json(path, error=GraphError))
    speeds = np.array([_SPEEDS[j % len(_SPEEDS)] for j in range(devices)])
    inv = np.full((devices, devices), 1.0 / _BANDWIDTH)
    np.fill_diagonal(inv, 0.0)
    return Problem.from_arrays(
        names=names,
        devices=[f"m{j}" for j in range(devices)],
        exec_time=np.array(runtime)[:, None] / speeds[None, :],
        edges=edges,
        comm_inv_bandwidth=inv,
        name=Path(path).stem,
        platform_name=f"wf-related-{devices}",
    )


def generate(recipe: str, num_tasks: int, seed: int, path: str | os.PathLike[str]) -> Path:
    """Write a synthetic ``recipe`` workflow of about ``num_tasks`` tasks to ``path`` (offline)."""
    if recipe not in RECIPES:
        msg = f"unknown workflow recipe {recipe!r} (choose from {', '.join(RECIPES)})"
        raise UsageError(msg)
    from wfcommons import WorkflowGenerator
    from wfcommons.wfchef import recipes

    cls = getattr(recipes, f"{recipe.capitalize()}Recipe")
    state = random.getstate(), np.random.get_state()
    try:
        random.seed(seed)
        np.random.seed(seed)
        wf = WorkflowGenerator(cls.from_num_tasks(num_tasks)).build_workflow()
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    wf.write_json(out)
    return out
