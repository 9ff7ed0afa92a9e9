"""Turn a user's graph spec (zoo name, ``package.module:factory``, graph file) into objects.

Examples
--------
>>> g = load_graph_spec("mlp", size="tiny")
>>> g.name, len(g.nodes) > 0
('mlp-tiny', True)
>>> load_graph_spec("no-such-model")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
hetsched.errors.UsageError: unknown graph 'no-such-model': expected a zoo model (gpt, ...
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hetsched.graph.zoo as zoo
from hetsched.errors import GraphError, UsageError
from hetsched.graph.opgraph import OpGraph

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["is_factory_spec", "load_graph_spec", "load_program_spec"]

_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_GRAPH_SUFFIXES = (".json", ".stg")


def is_factory_spec(spec: str) -> bool:
    """True for ``package.module:factory`` strings.

    >>> is_factory_spec("mypkg.models:build"), is_factory_spec("gpt"), is_factory_spec("g.json")
    (True, False, False)
    """
    return bool(_FACTORY.match(spec))


def _zoo_names() -> list[str]:
    return [m.name for m in zoo.list_models()]


def _unknown(spec: str) -> UsageError:
    msg = (
        f"unknown graph {spec!r}: expected a zoo model ({', '.join(_zoo_names())}), "
        "a package.module:factory, or a .json/.stg graph file"
    )
    return UsageError(msg)


def _call_factory(spec: str) -> tuple[nn.Module, tuple[Any, ...]]:
    modname, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(modname)
    except ImportError as err:
        msg = f"cannot import module {modname!r} for factory {spec!r}: {err}"
        raise UsageError(msg) from err
    for part in attr.split("."):
        if not hasattr(obj, part):
            msg = f"module {modname!r} has no attribute {attr!r} (factory {spec!r})"
            raise UsageError(msg)
        obj = getattr(obj, part)
    if not callable(obj):
        msg = f"factory {spec!r} is not callable"
        raise UsageError(msg)
    try:
        result = obj()
    except Exception as err:
        msg = f"factory {spec!r} failed: {type(err).__name__}: {err}"
        raise GraphError(msg) from err
    if not (isinstance(result, tuple) and len(result) == 2):
        msg = f"factory {spec!r} must return (model, example_args), got {type(result).__name__}"
        raise UsageError(msg)
    model, args = result
    return model, args if isinstance(args, tuple) else (args,)


def load_program_spec(
    spec: str,
    *,
    size: str = "tiny",
    batch: int = 1,
    seq: int | None = None,
    heads: str | None = None,
    seed: int = 0,
) -> tuple[nn.Module, tuple[Any, ...]]:
    """``(model, example_args)`` for a zoo name or a ``package.module:factory`` spec.

    Raises
    ------
    UsageError
        For graph files (they hold no program) and unknown specs.
    """
    if spec in _zoo_names():
        return zoo.build(spec, size, batch=batch, seq=seq, heads=heads, seed=seed)
    if is_factory_spec(spec):
        return _call_factory(spec)
    if spec.lower().endswith(_GRAPH_SUFFIXES) or Path(spec).is_file():
        msg = f"{spec!r} is a graph file and holds no program: give a zoo model or a factory"
        raise UsageError(msg)
    raise _unknown(spec)


def load_graph_spec(
    spec: str,
    *,
    size: str = "tiny",
    batch: int = 1,
    seq: int | None = None,
    heads: str | None = None,
    coarsen: bool = False,
) -> OpGraph:
    """An :class:`OpGraph` from a zoo name, a factory spec, or a ``.json``/``.stg`` file.

    ``size``, ``batch``, ``seq`` and ``heads`` apply to zoo models; ``coarsen=True`` applies
    :func:`hetsched.graph.coarsen.coarsen` with its defaults.

    Raises
    ------
    GraphError
        For an unreadable or malformed graph file, or a model torch.export cannot trace.
    UsageError
        For a spec that is none of the above.
    """
    from hetsched.graph.formats import load

    path = Path(spec)
    if spec.lower().endswith(_GRAPH_SUFFIXES):
        graph = load(path)
    elif spec in _zoo_names():
        graph = zoo.graph(spec, size, batch=batch, seq=seq, heads=heads)
    elif is_factory_spec(spec):
        from hetsched.graph.torch_import import from_torch

        model, args = _call_factory(spec)
        graph = from_torch(model, args, name=spec.partition(":")[2])
    elif path.is_file():  # a graph file without the usual suffix
        graph = load(path)
    else:
        raise _unknown(spec)
    if coarsen:
        from hetsched.graph.coarsen import coarsen as _coarsen

        graph = _coarsen(graph)
    return graph
