"""The memory objective: the order of ops on one device that minimises peak memory.

* :mod:`~hetsched.schedule.memory.instance` - :class:`MemoryInstance` (integer arrays of one
  graph's tensors) and :func:`peak_of_order`, the one definition of the peak of an order;
* :mod:`~hetsched.schedule.memory.greedy` - baselines: the graph's order, Inductor's LPMF;
* :mod:`~hetsched.schedule.memory.bounds` - lower bounds valid for every order;
* :mod:`~hetsched.schedule.memory.dp` - exact DP over downsets with budgets (Serenity);
* :mod:`~hetsched.schedule.memory.cpsat` - exact CP-SAT model (positions + cumulative);
* :mod:`~hetsched.schedule.memory.solve` - :func:`min_peak_order`, the portfolio;
* :mod:`~hetsched.schedule.memory.objective` - :data:`solve_peak_memory`, the objective as
  a plan (``hetsched solve --objective memory``);
* :mod:`~hetsched.schedule.memory.pareto` - latency under a memory cap, the Pareto front.

Examples
--------
>>> from hetsched.graph import OpGraph, OpNode, Edge
>>> g = OpGraph("chain", [OpNode("a"), OpNode("b", out_bytes=1.0)], [Edge("a", "b", 5.0)])
>>> min_peak_order(g, time_limit=1.0).peak
6.0
"""

from hetsched.schedule.memory.bounds import activation_lower_bound
from hetsched.schedule.memory.greedy import lpmf_order, topological_order
from hetsched.schedule.memory.instance import (
    MemoryInstance,
    PeakReport,
    check_order,
    live_bytes,
    peak_of_order,
)
from hetsched.schedule.memory.objective import default_device, solve_peak_memory
from hetsched.schedule.memory.pareto import FrontPoint, latency_memory_front, pareto
from hetsched.schedule.memory.solve import MemoryOrderResult, min_peak_order

__all__ = [
    "FrontPoint",
    "MemoryInstance",
    "MemoryOrderResult",
    "PeakReport",
    "activation_lower_bound",
    "check_order",
    "default_device",
    "latency_memory_front",
    "live_bytes",
    "lpmf_order",
    "min_peak_order",
    "pareto",
    "peak_of_order",
    "solve_peak_memory",
    "topological_order",
]
