"""Factories used by the bad-input catalogue (``package.module:factory`` specs)."""

import torch


class DataDependent(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.export cannot trace it
            return x * 2
        return x - 1


def untraceable():
    return DataDependent(), (torch.randn(4),)


def not_a_pair():
    return 42
