"""The compiled, integer-scaled scheduling problem every solver shares.

* :class:`Problem` - ops, devices, modes, tensors, integer durations, memory (:mod:`.problem`).
* :class:`Modes`, :class:`ModeSpec` - the ways each op can run (:mod:`.modes`).
* :class:`Tensors` - one producer, many consumers, moved once per device (:mod:`.tensors`).
* :func:`choose_quantum` - the integer time quantum (:mod:`.quantum`).
* :func:`subproblem` - a set of ops as a problem of its own (:mod:`.sub`).
"""

from hetsched.problem.modes import DEFAULT_PRECISION, Modes, ModeSpec
from hetsched.problem.problem import MAX_HORIZON, Problem
from hetsched.problem.quantum import (
    ROUNDING_TOLERANCE,
    choose_quantum,
    choose_quantum_fast,
    critical_path_stats,
)
from hetsched.problem.sub import subproblem
from hetsched.problem.tensors import Tensors

__all__ = [
    "DEFAULT_PRECISION",
    "MAX_HORIZON",
    "ROUNDING_TOLERANCE",
    "ModeSpec",
    "Modes",
    "Problem",
    "Tensors",
    "choose_quantum",
    "choose_quantum_fast",
    "critical_path_stats",
    "subproblem",
]
