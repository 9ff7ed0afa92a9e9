"""Modulo-scheduling demonstrations: attention heads and per-frame perception.

* ``gpt-head``: one attention head of the GPT model with split heads (q/k/v projections,
  ``q@k^T``, scale, mask, softmax, ``@v``) is the repeated body; the heads are iterations.
* ``resnet-frame``: a ResNet frame body, frames streaming through the SoC.
* ``resnet-frame-tracked``: the same with a loop-carried edge from the frame's last op to
  its first two frames later (a tracker state feeding the next-but-one frame).

:func:`demo_cases` builds them; :func:`run_demo` solves each and returns table rows (the
benchmarks call it).

Examples
--------
>>> rows = run_demo(time_limit=5, names=["resnet-frame-tracked"])
>>> rows[0]["ii_units"] >= max(rows[0]["res_mii_units"], rows[0]["rec_mii_units"])
True
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from hetsched.graph.opgraph import OpGraph
from hetsched.problem import Problem

__all__ = ["ModuloCase", "demo_cases", "head_subgraph", "run_demo"]


@dataclass(frozen=True)
class ModuloCase:
    """A repeated body, where it runs, and its loop-carried edges."""

    name: str
    graph: OpGraph
    problem: Problem
    carried: tuple[tuple[str, str, int], ...]
    iterations: int
    description: str


def head_subgraph(graph: OpGraph, *, layer: int = 0, head: int = 0) -> OpGraph:
    """The ops of one attention head (module path ``blocks.{layer}.attn.head.{head}``)."""
    prefix = f"blocks.{layer}.attn.head.{head}"
    keep = [n for n in graph.nodes if n.module == prefix or n.module.startswith(prefix + ".")]
    names = {n.name for n in keep}
    edges = [e for e in graph.edges if e.src in names and e.dst in names]
    return OpGraph(f"{graph.name}-L{layer}H{head}", keep, edges, meta={})


def demo_cases(
    size: str = "tiny", platform: str = "edge-soc", names: list[str] | None = None
) -> list[ModuloCase]:
    """Build the demonstration cases (zoo models at ``size``) on ``platform``."""
    from hetsched.graph import zoo

    out = []
    want = names or ["gpt-head", "resnet-frame", "resnet-frame-tracked"]
    if "gpt-head" in want:
        g = zoo.graph("gpt", size, heads="split")
        heads = len({n.module for n in g.nodes if n.module.startswith("blocks.0.attn.head.")})
        body = head_subgraph(g)
        out.append(
            ModuloCase("gpt-head", body, Problem.build(body, platform), (), max(2, heads),
                       "one attention head of GPT (split heads); heads are iterations")
        )  # fmt: skip
    if {"resnet-frame", "resnet-frame-tracked"} & set(want):
        g = zoo.graph("resnet", size)
        p = Problem.build(g, platform)
        if "resnet-frame" in want:
            out.append(ModuloCase("resnet-frame", g, p, (), 4, "ResNet frame body, frames stream"))
        if "resnet-frame-tracked" in want:
            carried = ((p.names[-1], p.names[0], 2),)
            out.append(
                ModuloCase("resnet-frame-tracked", g, p, carried, 4,
                           "ResNet frame body; frame i's output feeds frame i+2's first op")
            )  # fmt: skip
    return out


def run_demo(
    *,
    size: str = "tiny",
    platform: str = "edge-soc",
    time_limit: float = 10.0,
    workers: int = 1,
    names: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Solve every case; one row per case (times in seconds and in integer units)."""
    from hetsched.schedule.throughput.modulo import solve_modulo, validate_modulo

    rows = []
    for case in demo_cases(size, platform, names):
        t0 = time.perf_counter()
        plan = solve_modulo(
            case.problem, carried=case.carried, time_limit=time_limit, workers=workers
        )
        validate_modulo(plan, case.problem, iterations=case.iterations)
        r = plan.modulo
        assert r is not None  # a modulo plan carries its result (Plan checks it)
        q = case.problem.quantum
        rows.append(
            {
                "case": case.name,
                "ops": case.problem.n,
                "platform": platform,
                "ii": r.ii,
                "ii_units": round(r.ii / q),
                "res_mii_units": round(r.res_mii / q),
                "rec_mii_units": round(r.rec_mii / q),
                "bound": r.ii_bound,
                "status": plan.status,
                "latency": plan.makespan,
                "seconds": time.perf_counter() - t0,
            }
        )
    return rows
