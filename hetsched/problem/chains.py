"""Sharded chains: a split op that leaves its output sharded, and the ops that read it so.

Megatron-LM keeps a tensor sharded between consecutive split ops: a linear layer split by
output features feeds the next one split by input features (each device multiplies its
slice, one all-reduce sums the partial results), attention computed by heads from queries,
keys and values sharded by heads feeds the output projection the same way. The modes of
:mod:`hetsched.costmodel.sharding` say so in their tags, one ``+``-separated part each:

* ``keep:LAYOUT``: the mode leaves its output *sharded* in ``LAYOUT`` over its devices
  (no all-gather): every consumer must run in a mode that takes ``LAYOUT`` on the same
  devices;
* ``from:LAYOUT``: the mode reads an input sharded in ``LAYOUT`` where it is (it reads a
  whole input as well: each device takes its slice).

That is the one rule every solver and the validator share (:func:`chain_ok`); the mode
semantics of :mod:`hetsched.problem.modes` hold for every other mode. A problem never keeps
a ``keep`` mode some consumer could not follow (:func:`close_chains`).

Examples
--------
>>> kept_layout("split:column+keep:cols+streamed"), taken_layout("split:row+from:cols")
('cols', 'cols')
>>> kept_layout("split:heads+from:qkv"), taken_layout("")
(None, None)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hetsched.errors import SolverError
from hetsched.problem.modes import Modes

__all__ = ["FROM", "KEEP", "chain_ok", "close_chains", "kept_layout", "taken_layout"]

KEEP = "keep:"
FROM = "from:"


def _part(tag: str, prefix: str) -> str | None:
    for part in tag.split("+"):
        if part.startswith(prefix):
            return part[len(prefix) :]
    return None


def kept_layout(tag: str) -> str | None:
    """The layout a mode leaves its output sharded in, else ``None``."""
    return _part(tag, KEEP) if KEEP in tag else None


def taken_layout(tag: str) -> str | None:
    """The sharded layout a mode reads its input in, else ``None``."""
    return _part(tag, FROM) if FROM in tag else None


def chain_ok(modes: Modes, mu: int, mv: int) -> bool:
    """Whether a consumer in mode ``mv`` may read the output of a producer in mode ``mu``:
    always, unless ``mu`` keeps its output sharded; then ``mv`` must take that layout on
    the same devices.

    >>> m = Modes.build(2, [(0, (0, 1), 1.0, 0, "native", "split:column+keep:cols"),
    ...                     (1, (0, 1), 1.0, 0, "native", "split:row+from:cols"),
    ...                     (1, (0,), 2.0)])
    >>> chain_ok(m, 0, 1), chain_ok(m, 0, 2)
    (True, False)
    """
    kept = kept_layout(modes.tag[mu])
    if kept is None:
        return True
    return taken_layout(modes.tag[mv]) == kept and modes.devices_of(mu) == modes.devices_of(mv)


def close_chains(modes: Modes, consumers: Sequence[Sequence[int]], keep: np.ndarray) -> np.ndarray:
    """``keep`` (a mask over modes) without the ``keep:`` modes that some consumer
    (``consumers[op]``: the ops reading its outputs) could not follow among the kept
    modes, until none is left; a :class:`SolverError` if an op would lose every mode.

    >>> m = Modes.build(2, [(0, (0, 1), 1.0, 0, "native", "split:column+keep:cols"),
    ...                     (0, (0,), 2.0), (1, (0,), 2.0)])
    >>> close_chains(m, [[1], []], np.ones(3, bool)).tolist()
    [False, True, True]
    """
    keep = np.asarray(keep, dtype=bool).copy()
    layouts = [kept_layout(t) for t in modes.tag]
    producers = [k for k, x in enumerate(layouts) if x is not None]
    changed = bool(producers)
    while changed:
        changed = False
        for k in producers:
            if not keep[k]:
                continue
            v = int(modes.op[k])
            for w in consumers[v]:
                ids = modes.ops_modes(w)
                if not any(keep[j] and chain_ok(modes, k, int(j)) for j in ids):
                    keep[k] = False
                    changed = True
                    break
    counts = np.add.reduceat(keep.astype(np.int64), modes.op_start[:-1]) if keep.size else keep
    if keep.size and np.any(counts == 0):
        v = int(np.flatnonzero(counts == 0)[0])
        msg = f"modes: op {v} has no mode its consumers can follow"
        raise SolverError(msg)
    return keep
