"""Randomly wired networks (RandWire, Xie et al. 2019): where the order of ops decides memory.

The wiring is a Watts-Strogatz graph (:func:`networkx.connected_watts_strogatz_graph`) with
edges oriented from the lower to the higher node id, so it is a DAG. Every node aggregates its
inputs with a weighted sum (positive weights: ``sigmoid`` of a learned parameter in the paper,
constants here as after training), then applies ReLU,
a 3x3 convolution and a batch norm. A stem convolution feeds every node without inputs, and the
output averages every node without outputs, as in the paper. All activations have one shape
(``channels`` x ``image`` x ``image``), so the peak is decided by how many of them are alive at
once: the order of ops.

Examples
--------
>>> import torch
>>> model, args = randwire(nodes=8, k=4, p=0.75, channels=4, image=8, seed=0)
>>> tuple(model(*args).shape)
(1, 4, 8, 8)
>>> len(model.wiring), model.wiring == sorted(model.wiring)
(16, True)
"""

from __future__ import annotations

import networkx as nx
import torch
from torch import nn

__all__ = ["RandWire", "randwire", "randwire_wiring"]


def randwire_wiring(nodes: int, k: int, p: float, *, seed: int = 0) -> list[tuple[int, int]]:
    """The DAG of a RandWire stage: Watts-Strogatz edges ``(u, v)`` with ``u < v``, sorted.

    Examples
    --------
    >>> randwire_wiring(5, 2, 0.0, seed=0)
    [(0, 1), (0, 4), (1, 2), (2, 3), (3, 4)]
    """
    g = nx.connected_watts_strogatz_graph(nodes, k, p, seed=seed)
    return sorted((min(u, v), max(u, v)) for u, v in g.edges())


class _Node(nn.Module):
    """One RandWire node: weighted sum of inputs -> ReLU -> conv 3x3 -> batch norm."""

    def __init__(self, inputs: int, channels: int) -> None:
        super().__init__()
        # inference: the positive aggregation weights sigmoid(w) are constants (w = 0: 1/2)
        self.scale = [0.5] * inputs if inputs > 1 else []
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        if not self.scale:
            x = xs[0]
        else:
            x = xs[0] * self.scale[0]
            for i in range(1, len(xs)):
                x = x + xs[i] * self.scale[i]
        return self.bn(self.conv(torch.relu(x)))


class RandWire(nn.Module):
    """A stem convolution, one randomly wired stage, and the mean of its output nodes.

    Parameters
    ----------
    wiring : DAG edges ``(u, v)`` with ``u < v`` over nodes ``0..nodes-1``.
    nodes : number of nodes of the stage.
    channels : channels of every activation.
    """

    def __init__(self, wiring: list[tuple[int, int]], nodes: int, channels: int) -> None:
        super().__init__()
        self.wiring = list(wiring)
        self.preds: list[list[int]] = [[] for _ in range(nodes)]
        has_succ = [False] * nodes
        for u, v in self.wiring:
            self.preds[v].append(u)
            has_succ[u] = True
        self.outputs = [v for v in range(nodes) if not has_succ[v]]
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.cells = nn.ModuleList(_Node(max(1, len(p)), channels) for p in self.preds)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.stem(image)
        out: list[torch.Tensor] = []
        for v, cell in enumerate(self.cells):
            out.append(cell([out[u] for u in self.preds[v]] if self.preds[v] else [x]))
        y = out[self.outputs[0]]
        for v in self.outputs[1:]:
            y = y + out[v]
        return y / len(self.outputs)


def randwire(
    nodes: int = 32,
    k: int = 4,
    p: float = 0.75,
    *,
    channels: int = 16,
    image: int = 32,
    seed: int = 0,
) -> tuple[nn.Module, tuple[torch.Tensor]]:
    """A RandWire model in eval mode with weights drawn after ``torch.manual_seed(seed)``.

    Parameters
    ----------
    nodes, k, p : the Watts-Strogatz graph: nodes, neighbours of each node in the ring, rewiring
        probability (the paper's WS(4, 0.75) by default).
    channels, image : activation shape ``(1, channels, image, image)``.
    seed : seeds both the wiring and the weights.

    Returns
    -------
    (model, example_args)
        ``example_args`` is a one-tuple holding a ``(1, 3, image, image)`` input.

    Examples
    --------
    >>> from hetsched.graph import from_torch, fuse
    >>> g = fuse(from_torch(*randwire(nodes=6, channels=4, image=8), name="rw"))
    >>> len(g.nodes) > 6
    True
    """
    wiring = randwire_wiring(nodes, k, p, seed=seed)
    torch.manual_seed(seed)
    model = RandWire(wiring, nodes, channels).eval()
    gen = torch.Generator().manual_seed(seed)
    return model, (torch.randn(1, 3, image, image, generator=gen),)
