"""Apply a plan to the source program: one fx submodule per device segment.

* :func:`apply` - split an ``ExportedProgram`` / ``fx.GraphModule`` by the plan's devices.
* :func:`node_devices` - the device of every fx node under a plan.
* :func:`segment_report` - a readable summary of a split program.

These need torch and are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["apply", "node_devices", "segment_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("hetsched.partition.splitting"), name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
