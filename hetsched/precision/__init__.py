"""Precision as a decision: per-op sensitivity to int8 / float16 / bfloat16, measured.

:func:`measure_sensitivity` runs an exported program with one op at a time changed to a
reduced precision (torch's fake quantization and casts, :mod:`.interpreter`) and records
the model's output error in a :class:`SensitivityTable` (JSON ``hetsched.sensitivity/1``).
The error model the solvers use is additive: a plan's predicted error is the sum of its
ops' errors (:meth:`SensitivityTable.predicted_error`); :func:`measure_error` measures the
real one. A user's own table can come in the graph JSON (:func:`from_graph_meta`).

Examples
--------
>>> from hetsched.precision import PRECISIONS, parse_precisions
>>> PRECISIONS, parse_precisions("float16,int8")
(('int8', 'float16', 'bfloat16'), ('int8', 'float16'))
"""

from hetsched.precision.sensitivity import (
    INT8_CATEGORIES,
    calibration_inputs,
    default_cache_dir,
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
    "INT8_CATEGORIES",
    "NATIVE",
    "PRECISIONS",
    "SensitivityTable",
    "calibration_inputs",
    "default_cache_dir",
    "from_graph_meta",
    "measure_error",
    "measure_sensitivity",
    "op_precisions",
    "parse_precisions",
]
