"""Schedulers for latency: heuristics, bounds and exact solvers, one signature for all.

``solve(problem, *, time_limit, seed, hint=None, progress=None) -> Plan``

Examples
--------
>>> sorted(SOLVERS)
['bounds', 'cpop', 'cpsat', 'heft', 'lns', 'ls', 'milp', 'peft', 'portfolio', 'sat']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from hetsched.errors import UsageError

__all__ = ["SOLVERS", "get_solver"]

# name -> (module, function). Imported lazily so that one missing optional backend does not
# break the others.
SOLVERS: dict[str, tuple[str, str]] = {
    "heft": ("hetsched.schedule.heuristics", "solve_heft"),
    "peft": ("hetsched.schedule.heuristics", "solve_peft"),
    "cpop": ("hetsched.schedule.heuristics", "solve_cpop"),
    "bounds": ("hetsched.schedule.bounds", "solve_bounds"),
    "cpsat": ("hetsched.schedule.cpsat", "solve_cpsat"),
    "milp": ("hetsched.schedule.milp", "solve_milp"),
    "sat": ("hetsched.schedule.sat", "solve_sat"),
    "lns": ("hetsched.schedule.lns", "solve_lns"),
    "ls": ("hetsched.schedule.localsearch", "solve_local_search"),
    "portfolio": ("hetsched.schedule.portfolio", "solve_portfolio"),
}


def get_solver(name: str) -> Callable[..., Any]:
    """The solve function called ``name``; :class:`UsageError` listing the valid ones."""
    if name not in SOLVERS:
        msg = f"unknown solver {name!r} (choose from {', '.join(sorted(SOLVERS))})"
        raise UsageError(msg)
    module, func = SOLVERS[name]
    try:
        return getattr(importlib.import_module(module), func)  # type: ignore[no-any-return]
    except (ModuleNotFoundError, AttributeError) as err:
        msg = f"solver {name!r} is not available in this build ({err})"
        raise UsageError(msg) from err
