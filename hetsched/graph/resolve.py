"""Turn a user's graph spec (zoo name, ``package.module:factory``, graph file) into objects.

Examples
--------
>>> g = load_graph_spec("mlp", size="tiny")
>>> g.name, len(g.nodes) > 0
('mlp-tiny', True)
>>> load_graph_spec("no-such-model")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
hetsched.errors.UsageError: unknown graph 'no-such-model': expected a zoo model (decode, gpt, ...
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hetsched.graph.zoo as zoo
from hetsched.errors import GraphError, UsageError
from hetsched.graph.opgraph import OpGraph

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["import_program", "is_factory_spec", "load_graph_spec", "load_program_spec"]

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


def _origin(module: Any) -> str:
    where = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", [])), "")
    return str(where) or "<built-in>"


@contextmanager
def _cwd_first(modname: str) -> Iterator[None]:
    """Import ``modname`` as ``python -c`` would: the current directory first on the path,
    and not the interpreter's ``bin/`` (a console script's own directory, where other
    packages install scripts such as ``models.py``).

    A module of the same top-level name that something else imported already would shadow
    the user's file: that is an error naming both.
    """
    cwd = Path.cwd()
    top = modname.partition(".")[0]
    local = (cwd / f"{top}.py").is_file() or (cwd / top).is_dir()
    loaded = sys.modules.get(top)
    if local and loaded is not None and cwd not in Path(_origin(loaded)).resolve().parents:
        msg = (
            f"module {top!r} is already imported from {_origin(loaded)}, which shadows "
            f"{top!r} in the current directory {cwd}: rename yours"
        )
        raise UsageError(msg)
    saved = list(sys.path)
    scripts = {str(Path(sys.executable).parent), str(Path(sys.executable).resolve().parent)}
    sys.path[:] = [str(cwd), *(p for p in saved if p not in {"", str(cwd), *scripts})]
    try:
        yield
    finally:
        sys.path[:] = saved


def _factory_kwargs(spec: str, fn: Any, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` (the size options given) if ``fn`` takes them; one it would not take is
    an error, not silently dropped."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # no signature to read: let the call say
        return options
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return options
    for key, value in options.items():
        p = params.get(key)
        if p is None or p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL):
            msg = (
                f"factory {spec!r} takes no {key!r} parameter, so --{key} {value} would be "
                f"ignored: drop the option or give the factory a {key!r} keyword"
            )
            raise UsageError(msg)
    return options


def _call_factory(
    spec: str, options: dict[str, Any] | None = None
) -> tuple[nn.Module, tuple[Any, ...]]:
    modname, _, attr = spec.partition(":")
    with _cwd_first(modname):
        try:
            obj: Any = importlib.import_module(modname)
        except ImportError as err:
            msg = f"cannot import module {modname!r} for factory {spec!r}: {err}"
            raise UsageError(msg) from err
        module = obj
        for part in attr.split("."):
            if not hasattr(obj, part):
                msg = (
                    f"module {modname!r} ({_origin(module)}) has no attribute {attr!r} "
                    f"(factory {spec!r})"
                )
                if Path.cwd() not in Path(_origin(module)).resolve().parents:
                    msg += ": is that the module you meant? Run from the directory holding yours"
                raise UsageError(msg)
            obj = getattr(obj, part)
        if not callable(obj):
            msg = f"factory {spec!r} is not callable"
            raise UsageError(msg)
        kwargs = _factory_kwargs(spec, obj, options or {})
        try:
            result = obj(**kwargs)
        except Exception as err:
            msg = f"factory {spec!r} failed: {type(err).__name__}: {err}"
            raise GraphError(msg) from err
    if not (isinstance(result, tuple) and len(result) == 2):
        msg = f"factory {spec!r} must return (model, example_args), got {type(result).__name__}"
        raise UsageError(msg)
    model, args = result
    return model, args if isinstance(args, tuple) else (args,)


def _size_options(**options: Any) -> dict[str, Any]:
    """The options given (not ``None``, a size other than the default ``tiny``); a batch or
    sequence below 1 is an error."""
    for key in ("batch", "seq"):
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):  # fmt: skip
            msg = f"--{key} must be an integer >= 1, got {value!r}"
            raise UsageError(msg)
    return {k: v for k, v in options.items() if v is not None and (k, v) != ("size", "tiny")}


def _not_for_graph_file(spec: str, given: dict[str, Any]) -> None:
    if given:
        key, value = next(iter(given.items()))
        msg = (
            f"{spec!r} is a graph file, so --{key} {value} does not apply (its sizes were "
            "fixed when it was exported)"
        )
        raise UsageError(msg)


def load_program_spec(
    spec: str,
    *,
    size: str = "tiny",
    batch: int | None = None,
    seq: int | None = None,
    heads: str | None = None,
    seed: int = 0,
) -> tuple[nn.Module, tuple[Any, ...]]:
    """``(model, example_args)`` for a zoo name or a ``package.module:factory`` spec.

    ``batch``, ``seq`` and ``heads`` (``None``: the model's default) go to a zoo model, or
    to a factory as keywords; a factory that does not take one that was given is an error.

    Raises
    ------
    UsageError
        For graph files (they hold no program), unknown specs, sizes below 1 and options a
        factory does not take.
    """
    given = _size_options(size=size, batch=batch, seq=seq, heads=heads)
    if spec in _zoo_names():
        return zoo.build(spec, size, batch=batch or 1, seq=seq, heads=heads, seed=seed)
    if is_factory_spec(spec):
        return _call_factory(spec, given)
    if spec.lower().endswith(_GRAPH_SUFFIXES) or Path(spec).is_file():
        msg = f"{spec!r} is a graph file and holds no program: give a zoo model or a factory"
        raise UsageError(msg)
    raise _unknown(spec)


def load_graph_spec(
    spec: str,
    *,
    size: str = "tiny",
    batch: int | None = None,
    seq: int | None = None,
    heads: str | None = None,
    coarsen: bool = False,
    fuse: bool = True,
) -> OpGraph:
    """An :class:`OpGraph` from a zoo name, a factory spec, or a ``.json``/``.stg`` file.

    ``size``, ``batch``, ``seq`` and ``heads`` apply to zoo models (``batch``, ``seq``,
    ``heads`` to a factory that takes them; given for a graph file they are an error);
    ``fuse`` applies :func:`hetsched.graph.fusion.fuse` to a graph imported from torch (a
    graph file keeps what it holds); ``coarsen=True`` then applies
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
    given = _size_options(size=size, batch=batch, seq=seq, heads=heads)
    if spec.lower().endswith(_GRAPH_SUFFIXES):
        _not_for_graph_file(spec, given)
        graph, fuse = load(path), False  # a graph file keeps what it holds
    elif spec in _zoo_names():
        graph = zoo.graph(spec, size, batch=batch or 1, seq=seq, heads=heads)
    elif is_factory_spec(spec):
        from hetsched.graph.torch_import import from_torch

        model, args = _call_factory(spec, given)
        graph = from_torch(model, args, name=spec.partition(":")[2])
    elif path.is_file():  # a graph file without the usual suffix
        _not_for_graph_file(spec, given)
        graph, fuse = load(path), False
    else:
        raise _unknown(spec)
    return _transform(graph, fuse=fuse, coarsen=coarsen)


def _transform(graph: OpGraph, *, fuse: bool, coarsen: bool) -> OpGraph:
    if fuse:
        from hetsched.graph.fusion import fuse as _fuse

        graph = _fuse(graph)
    if coarsen:
        from hetsched.graph.coarsen import coarsen as _coarsen

        graph = _coarsen(graph)
    return graph


def import_program(program: Any, *, name: str, fuse: bool = True, coarsen: bool = False) -> OpGraph:
    """The graph of an ``ExportedProgram`` as the CLI solves it: fused (unless ``fuse`` is
    False), then coarsened if asked. :func:`load_graph_spec` gives the same graph for the
    zoo model or factory that made the program."""
    from hetsched.graph.torch_import import from_exported

    return _transform(from_exported(program, name=name), fuse=fuse, coarsen=coarsen)
