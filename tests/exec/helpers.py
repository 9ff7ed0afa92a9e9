"""Shared builders for the executor tests: small exported models and problems over them."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import numpy as np
import torch

from hetsched.graph.opgraph import OpGraph
from hetsched.graph.torch_import import from_exported
from hetsched.problem import Modes, Problem, Tensors


class MLP(torch.nn.Module):
    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(d, 2 * d)
        self.fc2 = torch.nn.Linear(2 * d, d)
        self.fc3 = torch.nn.Linear(d, d)
        self.ln = torch.nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        y = self.fc2(h) + x
        return self.fc3(self.ln(y)) * torch.sigmoid(y)


class Attention(torch.nn.Module):
    """One pre-norm attention block written out (views, transposes, softmax, two outputs)."""

    def __init__(self, d: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.q, self.k, self.v = (torch.nn.Linear(d, d) for _ in range(3))
        self.o = torch.nn.Linear(d, d)
        self.ln = torch.nn.LayerNorm(d)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, d = x.shape
        y = self.ln(x)

        def split(z: torch.Tensor) -> torch.Tensor:
            return z.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = split(self.q(y)), split(self.k(y)), split(self.v(y))
        att = torch.softmax(q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5, dim=-1)
        out = (att @ v).transpose(1, 2).reshape(b, t, d)
        return x + self.o(out), att.mean(dim=1)


def exported(name: str) -> tuple[Any, OpGraph, tuple[torch.Tensor, ...]]:
    """``(ExportedProgram, OpGraph, inputs)`` of a seeded test model."""
    torch.manual_seed(0)
    if name == "mlp":
        model: torch.nn.Module = MLP()
        args: tuple[torch.Tensor, ...] = (torch.randn(4, 16),)
    else:
        model = Attention()
        args = (torch.randn(2, 5, 16),)
    ep = torch.export.export(model.eval(), args)
    return ep, from_exported(ep, name=name), args


def spread_problem(graph: OpGraph, seed: int = 0, devices: int = 3) -> Problem:
    """Random heterogeneous costs (seconds) over ``graph``'s ops and tensors: plans use
    several devices, and a tensor read by several ops moves once per device."""
    rng = np.random.default_rng(seed)
    n = len(graph.nodes)
    ex = rng.uniform(1e-4, 1e-3, size=(n, devices))
    idx = graph.index
    tensors = Tensors.build(
        n, [(idx[t.src], [idx[x] for x in t.dsts], t.bytes, t.name) for t in graph.tensors]
    )
    return Problem.from_modes(
        names=[x.name for x in graph.nodes],
        devices=[f"dev{j}" for j in range(devices)],
        modes=Modes.device_modes(ex),
        tensors=tensors,
        comm_latency=np.where(np.eye(devices, dtype=bool), 0.0, 5e-5),
        comm_inv_bandwidth=np.where(np.eye(devices, dtype=bool), 0.0, 1e-9),
        name=graph.name,
    )


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("hetsched-")]


def check_order(result: Any, problem: Problem) -> None:
    """Realized times respect dependencies (each input on each device of the reader's mode,
    by the one transfer of that tensor there), and devices never overlap."""
    eps = 1e-9
    q = problem.quantum
    for k in range(problem.num_edges):
        u, v = problem.names[problem.edge_src[k]], problem.names[problem.edge_dst[k]]
        tensor = problem.tensors.names[problem.edge_tensor[k]]
        for b in result.modes[v]:
            arrive = result.finish[u]
            if b not in result.modes[u]:
                t = [x for x in result.transfers if (x.tensor, x.dst_device) == (tensor, b)]
                assert t, f"no transfer of {tensor} to {b} for {v}"
                # after a failure a re-planned reader may use a copy sent for another
                assert v in t[-1].dsts or result.faults_seen
                arrive = t[-1].finish
                assert (
                    t[-1].start >= result.finish[u] - eps or t[-1].src_device not in result.modes[u]
                )
            assert result.start[v] >= arrive - eps * q, (u, v, arrive, result.start[v])
    by_dev: dict[str, list[tuple[float, float]]] = {}
    for r in result.runs:
        if r.finish <= r.start:  # an op of zero duration holds no device (as in validate)
            continue
        for d in r.devices:
            by_dev.setdefault(d, []).append((r.start, r.finish))
    for spans in by_dev.values():
        spans.sort()
        for (_, f0), (s1, _) in itertools.pairwise(spans):
            assert s1 >= f0 - eps
