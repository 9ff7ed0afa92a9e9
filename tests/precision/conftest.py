"""Shared fixtures: tiny programs exported once per test session, cache in a tmp dir."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HETSCHED_CACHE_DIR", str(tmp_path / "cache"))


class SmallCNN(torch.nn.Module):
    """A model from outside the zoo: conv -> relu -> conv -> pool -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x: Any) -> Any:
        y = torch.relu(self.c1(x))
        y = torch.relu(self.c2(y))
        return self.fc(y.mean(dim=(2, 3)))


def _program(name: str) -> tuple[Any, Any, tuple[Any, ...]]:
    from hetsched.graph import from_exported, fuse, zoo

    if name == "cnn":
        torch.manual_seed(0)
        model, args = SmallCNN().eval(), (torch.randn(2, 3, 8, 8),)
    else:
        model, args = zoo.build(name, "tiny")
    ep = torch.export.export(model, args)
    return ep, fuse(from_exported(ep, name=f"{name}-tiny")), args


@pytest.fixture(scope="session", params=["gpt", "resnet", "cnn"])
def program(request: pytest.FixtureRequest) -> tuple[Any, Any, tuple[Any, ...]]:
    return _program(request.param)


@pytest.fixture(scope="session")
def measured(program: Any) -> Any:
    from hetsched.precision import measure_sensitivity

    ep, graph, args = program
    return measure_sensitivity(ep, graph, example_args=args, cache=False)


@pytest.fixture(scope="session")
def gpt_tiny() -> tuple[Any, Any, tuple[Any, ...]]:
    return _program("gpt")
