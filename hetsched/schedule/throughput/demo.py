"""Streams that repeat a body: attention heads, camera frames, denoising steps.

* ``gpt-head``: one attention head of the GPT model with split heads (q/k/v projections,
  ``q@k^T``, scale, mask, softmax, ``@v``) is the repeated body; the heads are iterations.
* ``resnet-frame``: a ResNet frame body, frames streaming through the SoC.
* ``resnet-frame-tracked``: the same with a loop-carried edge from the frame's last op to
  its first two frames later (a tracker state feeding the next-but-one frame).
* ``unet-cfg-denoise``: one denoising step of a diffusion model with classifier-free
  guidance: two independent UNet passes (conditional, unconditional) and their
  combination; each step's output is the next step's input (carried edges, distance 1),
  so the period is bounded by the recurrence and the two passes run side by side.

:func:`demo_cases` builds them; :func:`run_demo` solves each for throughput and returns
table rows (the benchmarks call it).

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
    want = names or ["gpt-head", "resnet-frame", "resnet-frame-tracked", "unet-cfg-denoise"]
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
    if "unet-cfg-denoise" in want:
        g, steps = cfg_denoise_step(size)
        out.append(
            ModuloCase("unet-cfg-denoise", g, Problem.build(g, platform), steps, 4,
                       "a UNet denoising step with classifier-free guidance; steps chain")
        )  # fmt: skip
    return out


def cfg_denoise_step(size: str = "tiny") -> tuple[OpGraph, tuple[tuple[str, str, int], ...]]:
    """The graph of one classifier-free-guidance step of the zoo UNet, ``x - 0.1 (u + 7.5
    (c - u))`` with ``c``, ``u`` the conditional and unconditional passes (timestep ``t``
    and ``0``), and its carried edges: from each op that makes the step's output to each op
    that reads the step's input ``x``, one step later."""
    import torch

    from hetsched.graph import zoo
    from hetsched.graph.resolve import import_program

    unet, (x, t) = zoo.build("unet", size)

    class CFGStep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unet = unet

        def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            cond, uncond = self.unet(x, t), self.unet(x, t * 0)
            return x - 0.1 * (uncond + 7.5 * (cond - uncond))

    ep = torch.export.export(CFGStep().eval(), (x, t), strict=False)
    graph = import_program(ep, name=f"unet-{size}-cfg-step")
    owner = {n: op for op, names in graph.meta["fx_nodes"].items() for n in names}
    x_name = ep.graph_signature.user_inputs[0]
    readers = sorted({owner[n.name] for n in ep.graph.nodes if n.name in owner
                      and any(a.name == x_name for a in n.all_input_nodes)})  # fmt: skip
    output = next(n for n in ep.graph.nodes if n.op == "output")
    makers = sorted({owner[a.name] for a in output.all_input_nodes if a.name in owner})
    return graph, tuple((u, v, 1) for u in makers for v in readers)


def run_demo(
    *,
    size: str = "tiny",
    platform: str = "edge-soc",
    time_limit: float = 10.0,
    workers: int = 1,
    names: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Solve every case; one row per case (times in seconds and in integer units)."""
    from hetsched.schedule.throughput import solve_objective
    from hetsched.schedule.throughput.modulo import validate_modulo

    rows = []
    for case in demo_cases(size, platform, names):
        t0 = time.perf_counter()
        plan = solve_objective(
            case.problem, case.graph, objective="throughput", carried=case.carried,
            time_limit=time_limit, workers=workers,
        )  # fmt: skip
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
                "baselines": dict(plan.baselines),
                "seconds": time.perf_counter() - t0,
            }
        )
    return rows
