"""Builders shared by the reliability tests: random graphs, platforms and subprocess runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from hetsched.graph import Edge, OpGraph, OpNode

ROOT = Path(__file__).resolve().parents[2]
CATS = ("matmul", "conv", "elementwise", "reduction", "norm", "attention")


def random_graph(n: int, seed: int, *, name: str = "rand") -> OpGraph:
    """A layered random DAG of ``n`` roofline ops (flops and bytes only, no explicit costs)."""
    rng = np.random.default_rng(seed)
    nodes = []
    for i in range(n):
        cat = CATS[int(rng.integers(len(CATS)))]
        nodes.append(
            OpNode(
                f"op{i}",
                op=f"aten.{cat}.default",
                category=cat,
                flops=float(rng.uniform(1e5, 5e8)),
                bytes_read=float(rng.uniform(1e3, 4e6)),
                bytes_written=float(rng.uniform(1e3, 4e6)),
                out_bytes=float(rng.uniform(1e3, 4e6)),
            )
        )
    edges = []
    for v in range(1, n):
        preds = {int(rng.integers(max(0, v - 8), v))}
        if v > 2 and rng.random() < 0.5:
            preds.add(int(rng.integers(0, v)))
        edges += [Edge(f"op{u}", f"op{v}", nodes[u].out_bytes) for u in sorted(preds)]
    return OpGraph(name, nodes, edges)


def cli(*args: str, **kw: object) -> subprocess.Popen[str]:
    """``python -m hetsched.cli ARGS`` in a child process (stdout and stderr piped)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "hetsched.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )
