"""The compiled, integer-scaled scheduling problem every solver shares.

* :class:`Problem` - ops, devices, integer durations, transfers, memory (:mod:`.problem`).
* :func:`choose_quantum` - the integer time quantum (:mod:`.quantum`).
* :func:`subproblem` - a set of ops as a problem of its own (:mod:`.sub`).
"""

from hetsched.problem.problem import MAX_HORIZON, Problem
from hetsched.problem.quantum import choose_quantum, choose_quantum_fast, critical_path_stats
from hetsched.problem.sub import subproblem

__all__ = [
    "MAX_HORIZON",
    "Problem",
    "choose_quantum",
    "choose_quantum_fast",
    "critical_path_stats",
    "subproblem",
]
