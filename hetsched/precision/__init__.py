"""Precision as a decision: per-op sensitivity to int8 / w8a16 / float16 / bfloat16, measured.

:func:`measure_sensitivity` runs an exported program with one op at a time changed to a
reduced precision (torch's fake quantization and casts, :mod:`.interpreter`) and records
the model's output error in a :class:`SensitivityTable` (JSON ``hetsched.sensitivity/1``).
The error model the solvers use is additive: a plan's predicted error is the sum of its
ops' errors (:meth:`SensitivityTable.predicted_error`); :func:`measure_error` measures the
real one, and :func:`lower_program` writes a plan's precisions into the program (the split
program and the executor run it). A user's own table can come in the graph JSON
(:func:`from_graph_meta`).

Examples
--------
>>> from hetsched.precision import PRECISIONS, parse_precisions
>>> PRECISIONS, parse_precisions("float16,int8")
(('int8', 'w8a16', 'float16', 'bfloat16'), ('int8', 'float16'))
"""

import importlib
from typing import Any

from hetsched.precision.sensitivity import (
    HELD_OUT_SEED,
    INT8_CATEGORIES,
    calibration_inputs,
    default_cache_dir,
    held_out_inputs,
    measure_error,
    measure_sensitivity,
    op_precisions,
)
from hetsched.precision.table import (
    FORMAT,
    NATIVE,
    PRECISIONS,
    SensitivityTable,
    from_graph_meta,
    parse_precisions,
)

__all__ = [
    "FORMAT",
    "HELD_OUT_SEED",
    "INT8_CATEGORIES",
    "NATIVE",
    "PRECISIONS",
    "LoweredProgram",
    "SensitivityTable",
    "calibration_inputs",
    "default_cache_dir",
    "error_of",
    "from_graph_meta",
    "held_out_inputs",
    "lower_program",
    "measure_error",
    "measure_plan_error",
    "measure_sensitivity",
    "op_precisions",
    "parse_precisions",
    "plan_precisions",
]

_LAZY = {  # need torch: loaded on first use
    "LoweredProgram": "rewrite",
    "lower_program": "rewrite",
    "plan_precisions": "rewrite",
    "error_of": "measured",
    "measure_plan_error": "measured",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"hetsched.precision.{_LAZY[name]}"), name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
