"""Measure per-op precision sensitivity with torch's own numerics.

For each op of an :class:`~hetsched.graph.OpGraph` imported from an ``ExportedProgram``
(fused or not: ``graph.meta["fx_nodes"]`` says which fx nodes each op covers) and each
precision that makes sense for it (:func:`op_precisions`), the program runs on a few
calibration inputs with **only that op** changed (see
:mod:`hetsched.precision.interpreter` for what int8, float16 and bfloat16 do to an op) and
the model's float outputs are compared with the float32 reference: relative L2 error
``||y - y_ref|| / ||y_ref||`` and SQNR ``10 log10(|y_ref|^2 / |y - y_ref|^2)`` dB, over all
outputs of all samples concatenated.

Which precisions an op gets: ``float16`` and ``bfloat16`` for every float32 op but
``creation`` ones (they read no floats); ``int8`` for ``matmul``, ``conv``, ``attention``,
``elementwise`` and ``norm`` ops (what an NPU runs in int8). An op whose outputs overflow
at a precision (non-finite output) gets no entry for it: it cannot run there.

Error model: a plan's predicted error is the sum of its ops' errors
(:meth:`~hetsched.precision.table.SensitivityTable.predicted_error`, additive as in
HAWQ-V3); :func:`measure_error` measures the real error of several ops changed together.

The reference run is recorded once per sample; each (op, precision) re-runs only the fx
nodes downstream of the op on top of it. Activation scales are calibrated once per tensor
(:class:`~torch.ao.quantization.MinMaxObserver` over the samples, quint8 affine), weight
scales once per weight. Results are cached on disk by graph hash, weights, example inputs,
precisions, sample count and seed (:func:`default_cache_dir`). torch is imported lazily.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hetsched.costmodel.precision import WEIGHT_ONLY, lowered_node
from hetsched.errors import UsageError
from hetsched.precision.table import NATIVE, PRECISIONS, SensitivityTable, parse_precisions

if TYPE_CHECKING:  # pragma: no cover
    from hetsched.graph.opgraph import OpGraph, OpNode

__all__ = [
    "HELD_OUT_SEED",
    "INT8_CATEGORIES",
    "calibration_inputs",
    "default_cache_dir",
    "held_out_inputs",
    "intra_op_threads",
    "measure_error",
    "measure_sensitivity",
    "op_precisions",
]

INT8_CATEGORIES: frozenset[str] = frozenset({"matmul", "conv", "attention", "elementwise", "norm"})
_NO_FLOAT_CATEGORIES = frozenset({"creation"})
_CACHE_VERSION = 1
HELD_OUT_SEED = 1_000_003
"""Default seed of :func:`held_out_inputs` (calibration draws from seed 0 by default)."""


def op_precisions(node: OpNode, precisions: Iterable[str] = PRECISIONS) -> tuple[str, ...]:
    """The reduced precisions among ``precisions`` that ``node`` is measured at.

    >>> from hetsched.graph.opgraph import OpNode
    >>> op_precisions(OpNode("mm", category="matmul"))
    ('int8', 'float16', 'bfloat16')
    >>> op_precisions(OpNode("fc", category="matmul", param_bytes=4e6))
    ('int8', 'w8a16', 'float16', 'bfloat16')
    >>> op_precisions(OpNode("s", category="softmax"))
    ('float16', 'bfloat16')
    """
    if node.dtype != NATIVE or node.category in _NO_FLOAT_CATEGORIES:
        return ()
    wanted = set(precisions)
    allowed = {
        "int8": node.category in INT8_CATEGORIES,
        # weight-only int8 needs weights (without, it is float16): the cost model's rule
        WEIGHT_ONLY: node.category in INT8_CATEGORIES
        and lowered_node(node, WEIGHT_ONLY) is not None,
    }
    return tuple(p for p in PRECISIONS if p in wanted and allowed.get(p, True))


def default_cache_dir() -> Path:
    """``$HETSCHED_CACHE_DIR/sensitivity``, else ``~/.cache/hetsched/sensitivity``."""
    root = os.environ.get("HETSCHED_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "hetsched"
    return base / "sensitivity"


def calibration_inputs(
    example_args: Sequence[Any],
    samples: int,
    *,
    seed: int = 0,
    include_example: bool = True,
) -> list[tuple[Any, ...]]:
    """``samples`` input tuples shaped like ``example_args``: the example first (unless
    ``include_example`` is false), then random ones drawn from ``seed``.

    The random draws depend on ``seed`` only, so the same seed gives the same random inputs
    with or without the example: inputs held out from a calibration must come from another
    seed (:func:`held_out_inputs`). Float tensors get the example's mean and standard
    deviation (a one-element tensor keeps its value), integer tensors uniform values in the
    example's ``[min, max]`` (token ids stay in the vocabulary), bool tensors and
    non-tensors are kept.

    >>> import torch
    >>> xs = calibration_inputs((torch.zeros(2, 3), torch.tensor([[1, 5]])), 3)
    >>> len(xs), xs[2][0].shape, bool(((xs[2][1] >= 1) & (xs[2][1] <= 5)).all())
    (3, torch.Size([2, 3]), True)
    """
    import torch

    if samples < 1:
        msg = f"samples must be >= 1, got {samples}"
        raise UsageError(msg)
    gen = torch.Generator().manual_seed(seed)
    out = [tuple(example_args)] if include_example else []
    while len(out) < samples:
        row: list[Any] = []
        for x in example_args:
            if not isinstance(x, torch.Tensor) or x.dtype == torch.bool or x.numel() == 0:
                row.append(x)
            elif x.is_floating_point():
                xf = x.double()
                if x.numel() == 1:
                    row.append(x.clone())
                    continue
                noise = torch.randn(x.shape, generator=gen, dtype=torch.float64)
                row.append((xf.mean() + xf.std(correction=0) * noise).to(x.dtype))
            else:
                lo, hi = int(x.min()), int(x.max())
                row.append(torch.randint(lo, hi + 1, x.shape, generator=gen, dtype=x.dtype))
        out.append(tuple(row))
    return out


def held_out_inputs(
    example_args: Sequence[Any], samples: int, *, seed: int = HELD_OUT_SEED
) -> list[tuple[Any, ...]]:
    """``samples`` random inputs shaped like ``example_args`` that no calibration with the
    default seed (0) sees: neither the example nor a draw from seed 0.

    >>> import torch
    >>> x = (torch.randn(2, 3),)
    >>> held = held_out_inputs(x, 2)
    >>> calib = calibration_inputs(x, 4)
    >>> len(held), any(torch.equal(h[0], c[0]) for h in held for c in calib)
    (2, False)
    """
    if seed == 0:
        msg = "seed 0 draws the calibration inputs: held-out inputs need another seed"
        raise UsageError(msg)
    return calibration_inputs(example_args, samples, seed=seed, include_example=False)


@contextlib.contextmanager
def intra_op_threads(n: int | None) -> Iterator[None]:
    """torch uses ``n`` intra-op threads inside the block, restored after it (``None``:
    leave it alone); the measurements here and the executor's runs share it."""
    if n is None:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _prepare(
    program: Any, graph: OpGraph | None, example_args: Sequence[Any] | None
) -> tuple[Any, OpGraph, tuple[Any, ...]]:
    """(ExportedProgram, graph, example args) from what the caller gave."""
    import torch

    if isinstance(program, torch.nn.Module):
        if example_args is None:
            msg = "example_args are required to export an nn.Module"
            raise UsageError(msg)
        program = torch.export.export(program, tuple(example_args))
    if not isinstance(program, torch.export.ExportedProgram):
        msg = f"program must be an ExportedProgram or nn.Module, not {type(program).__name__}"
        raise UsageError(msg)
    if example_args is None:
        example = program.example_inputs
        if example is None:
            msg = "the program records no example inputs: pass example_args"
            raise UsageError(msg)
        example_args = example[0]
    if graph is None:
        from hetsched.graph.fusion import fuse
        from hetsched.graph.torch_import import from_exported

        graph = fuse(from_exported(program))
    return program, graph, tuple(example_args)


def _cache_key(ep: Any, graph: OpGraph, args: tuple[Any, ...], precs: tuple[str, ...],
               samples: int, seed: int) -> str:  # fmt: skip
    import torch

    from hetsched.graph.formats import graph_sha256

    h = hashlib.sha256()
    head = [_CACHE_VERSION, graph_sha256(graph), list(precs), samples, seed, torch.__version__]
    h.update(json.dumps(head).encode())
    named = sorted({**ep.state_dict, **ep.constants}.items())
    for name, t in [*named, *((f"arg{i}", a) for i, a in enumerate(args))]:
        h.update(name.encode())
        if isinstance(t, torch.Tensor):
            h.update(str((t.dtype, tuple(t.shape))).encode())
            h.update(t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(repr(t).encode())
    return h.hexdigest()


def measure_sensitivity(
    program: Any,
    graph: OpGraph | None = None,
    *,
    example_args: Sequence[Any] | None = None,
    precisions: Iterable[str] | str = PRECISIONS,
    samples: int = 2,
    seed: int = 0,
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    threads: int | None = 1,
) -> SensitivityTable:
    """Measure each op's output error at each precision, one op changed at a time.

    Parameters
    ----------
    program : a ``torch.export.ExportedProgram``, or an ``nn.Module`` (exported with
        ``example_args``).
    graph : the graph imported from ``program`` (its ``meta["fx_nodes"]`` maps ops to fx
        nodes); default ``fuse(from_exported(program))``.
    example_args : user inputs; default the program's recorded example inputs.
    precisions : names from :data:`~hetsched.precision.table.PRECISIONS` (or ``"a,b"``).
    samples : calibration inputs (:func:`calibration_inputs`; the example is the first).
    seed : seeds the random calibration inputs.
    cache : read and write the table under ``cache_dir`` (default
        :func:`default_cache_dir`), keyed by graph hash, weights, inputs, precisions,
        samples and seed.
    threads : torch intra-op threads during the measurement (restored after; ``None``
        leaves torch's setting). One thread suits these small kernels best.

    Returns
    -------
    SensitivityTable
        An entry for every op and precision of :func:`op_precisions`, unless that op's
        outputs overflow there.

    Raises
    ------
    UsageError
        An unknown precision, ``samples < 1``, a graph without ``meta["fx_nodes"]`` or
        one that names fx nodes the program lacks.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> m = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> t = measure_sensitivity(m, example_args=(torch.randn(4, 8),), samples=2, cache=False)
    >>> t.ops, t.precisions("linear")
    (('linear', 'linear_1'), ('float32', 'int8', 'w8a16', 'float16', 'bfloat16'))
    >>> t.error("linear", "int8") > t.error("linear", "bfloat16") > t.error("linear", "float16") > 0
    True
    """
    precs = parse_precisions(precisions)
    if samples < 1:
        msg = f"samples must be >= 1, got {samples}"
        raise UsageError(msg)
    ep, graph, example = _prepare(program, graph, example_args)
    path: Path | None = None
    if cache:
        key = _cache_key(ep, graph, example, precs, samples, seed)
        path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        path = path / f"{key}.json"
        if path.is_file():
            try:
                return SensitivityTable.load(path)
            except UsageError:
                pass  # a damaged cache file is measured again and replaced
    table = _measure(ep, graph, example, precs, samples, seed, threads)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            table.save(path)
        except OSError:  # an unwritable cache costs the next call a measurement, no more
            pass
    return table


def _measure(ep: Any, graph: OpGraph, example: tuple[Any, ...], precs: tuple[str, ...],
             samples: int, seed: int, threads: int | None) -> SensitivityTable:  # fmt: skip
    import torch

    from hetsched.graph.formats import graph_sha256
    from hetsched.precision.runs import Measurer

    errors: dict[str, dict[str, float]] = {}
    sqnr: dict[str, dict[str, float]] = {}
    with intra_op_threads(threads), torch.no_grad():
        m = Measurer(ep, graph, calibration_inputs(example, samples, seed=seed))
        for node in graph.nodes:
            for prec in op_precisions(node, precs):
                try:
                    rel, db = m.error({node.name: prec})
                except RuntimeError:  # a kernel that cannot take the op's operands so
                    continue  # (e.g. writes into a float32 buffer): no such mode
                if math.isinf(rel):
                    continue  # overflows: the op cannot run at this precision
                errors.setdefault(node.name, {})[prec] = rel
                sqnr.setdefault(node.name, {})[prec] = db
    return SensitivityTable(
        graph.name, graph_sha256(graph), errors=errors, sqnr_db=sqnr, samples=samples
    )


def measure_error(
    program: Any,
    graph: OpGraph | None,
    choices: Mapping[str, str],
    *,
    example_args: Sequence[Any] | None = None,
    samples: int = 2,
    seed: int = 0,
    threads: int | None = 1,
) -> tuple[float, float]:
    """``(relative L2 error, SQNR dB)`` of the outputs with every op of ``choices``
    (op -> precision) changed together, on :func:`calibration_inputs` from ``seed``.

    Examples
    --------
    >>> import torch
    >>> m = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU())
    >>> measure_error(m, None, {}, example_args=(torch.randn(2, 8),))
    (0.0, inf)
    """
    import torch

    from hetsched.precision.runs import Measurer

    ep, graph, example = _prepare(program, graph, example_args)
    with intra_op_threads(threads), torch.no_grad():
        m = Measurer(ep, graph, calibration_inputs(example, samples, seed=seed))
        return m.error(choices)
