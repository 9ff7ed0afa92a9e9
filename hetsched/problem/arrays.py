"""Read-only arrays: what makes a Problem (and its modes and tensors) immutable for real.

Examples
--------
>>> import numpy as np
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Box:
...     a: np.ndarray
...     def __post_init__(self) -> None:
...         own_frozen(self, "a")
>>> base = np.zeros(3)
>>> box = Box(base)
>>> base[0] = 1.0  # the caller's array is not the box's
>>> float(box.a[0]), box.a.flags.writeable
(0.0, False)
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["frozen", "own_frozen"]


def frozen(a: np.ndarray) -> np.ndarray:
    """``a`` made read-only (in place) and returned."""
    a.setflags(write=False)
    return a


def own_frozen(obj: Any, *names: str) -> None:
    """Replace each array field ``names`` of a frozen dataclass by a read-only copy, so that
    neither the object nor a caller holding the original can change it."""
    for name in names:
        object.__setattr__(obj, name, frozen(np.array(getattr(obj, name), copy=True)))
