"""hetsched: place and schedule ML operators on heterogeneous machines, with proofs.

The small public surface: :func:`solve`, :func:`load` (a graph file), :class:`Plan`,
:func:`validate`, :class:`Problem`.

Examples
--------
>>> import hetsched
>>> hetsched.__version__
'0.1.0'
"""

from __future__ import annotations

from hetsched.api import build_problem, solve
from hetsched.graph.formats import load
from hetsched.plan import Plan, load_plan, save_plan, validate
from hetsched.problem import Problem

__version__ = "0.1.0"

__all__ = [
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
