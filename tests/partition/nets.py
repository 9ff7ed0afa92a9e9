"""Small torch models for fusion and splitting tests (seeded, eval mode)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ConvBnNet(nn.Module):
    """conv-bn-relu, conv-bn + residual + relu, then linear-bn1d: every fold and epilogue."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4, bias=False)
        self.b3 = nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.b1(self.c1(x)))
        z = self.b2(self.c2(y)) + y
        return self.b3(self.fc(torch.relu(z).mean((2, 3))))

    @staticmethod
    def build(seed: int = 0) -> tuple[nn.Module, tuple[Any, ...]]:
        torch.manual_seed(seed)
        model = ConvBnNet().eval()
        with torch.no_grad():
            for b in (model.b1, model.b2, model.b3):  # running statistics that matter
                b.running_mean.uniform_(-1.0, 1.0)
                b.running_var.uniform_(0.5, 2.0)
                b.weight.uniform_(0.5, 1.5)
                b.bias.uniform_(-0.5, 0.5)
        return model, (torch.randn(2, 3, 8, 8),)


class LateBranchNet(nn.Module):
    """``linear -> relu -> add`` fuses into one op whose ``add`` reads a branch (``mean``)
    that the program computes between ``relu`` and ``add``."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        a2 = a * 2
        e1 = torch.relu(self.lin(a2))
        y = a2.mean(-1, keepdim=True)
        return e1 + y

    @staticmethod
    def build(seed: int = 0) -> tuple[nn.Module, tuple[Any, ...]]:
        torch.manual_seed(seed)
        return LateBranchNet().eval(), (torch.randn(2, 8),)
