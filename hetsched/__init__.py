"""hetsched: place and schedule ML operators on heterogeneous machines, with proofs.

The small public surface: :func:`solve`, :func:`load` (a graph file), :class:`Plan`,
:func:`validate`, :class:`Problem`, :class:`Constraints` (pin, forbid, colocate, segments).
The subpackages (``hetsched.graph``, ``hetsched.partition``, ``hetsched.exec``, ...) are
attributes of the package, imported on first use, so ``import hetsched`` does not import
torch.

Examples
--------
>>> import hetsched
>>> hetsched.__version__
'0.1.0'
>>> callable(hetsched.graph.from_exported), callable(hetsched.partition.apply)
(True, True)
"""

from __future__ import annotations

import importlib
from typing import Any

from hetsched.api import build_problem, solve
from hetsched.graph.formats import load
from hetsched.plan import Plan, load_plan, save_plan, validate
from hetsched.problem import Problem
from hetsched.problem.constraints import Constraints

__version__ = "0.1.0"

__all__ = [
    "Constraints",
    "Plan",
    "Problem",
    "__version__",
    "build_problem",
    "load",
    "load_plan",
    "save_plan",
    "solve",
    "validate",
]

_SUBMODULES = frozenset({
    "api", "bench", "cli", "costmodel", "errors", "exec", "fileio", "graph", "partition",
    "plan", "problem", "schedule", "solver",
})  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"hetsched.{name}")
    msg = f"module 'hetsched' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBMODULES})
