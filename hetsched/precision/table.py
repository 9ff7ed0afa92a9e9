"""The per-op sensitivity table and its JSON format ``hetsched.sensitivity/1``.

A :class:`SensitivityTable` holds, for each op of one graph and each precision it was
measured at, the relative L2 error of the model's outputs when only that op runs at that
precision (``errors``), and the same perturbation as an SQNR in dB (``sqnr_db``). The
op's native precision (``float32``) has error 0.

Error models. The solvers add per-op errors up to the budget: by default their **sum**,
``sum(table.error(op, p) for op, p in plan)`` (additive, as in HAWQ-V3's ILP: a worst
case, errors that all point the same way; :meth:`SensitivityTable.predicted_error`). The
rounding noise of different ops is nearly independent, so it adds in **power**: the root of
the summed squares (:meth:`SensitivityTable.predicted_rss`) is what the model's output
really shows. Measured on 36 plans of gpt, unet and resnet base (5-151 lowered ops
each) the measured error is 0.90-1.18x the root-sum-square and 0.17-0.42x the sum. A
sum of squares is additive too: :meth:`SensitivityTable.noise_powers` gives per-op errors
whose sum, under a budget ``b``, keeps the root-sum-square within ``b``.
:func:`hetsched.precision.sensitivity.measure_error` measures the real error.

The JSON document::

    {"format": "hetsched.sensitivity/1", "graph": NAME, "graph_sha256": HEX,
     "metric": "rel_l2", "samples": N,
     "ops": {OP: {PRECISION: {"rel_l2": X, "sqnr_db": Y | null}}}}

``sqnr_db`` is ``null`` where the outputs did not change at all (infinite SQNR). A table
can also come from the graph itself: ``graph.meta["sensitivity"] = {op: {precision:
rel_l2}}`` (from a user's Hessian or QAT tooling), read by :func:`from_graph_meta`.

Examples
--------
>>> t = SensitivityTable("g", "ab" * 32, errors={"mm": {"int8": 0.02, "float16": 1e-4}})
>>> t.error("mm", "int8"), t.error("mm", "float32")
(0.02, 0.0)
>>> t.predicted_error({"mm": "int8"})
0.02
>>> SensitivityTable.from_dict(t.to_dict()) == t
True
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from hetsched.costmodel.precision import PRECISIONS
from hetsched.errors import UsageError
from hetsched.fileio import read_json, write_json_atomic

if TYPE_CHECKING:  # pragma: no cover
    from hetsched.graph.opgraph import OpGraph

__all__ = [
    "FORMAT",
    "NATIVE",
    "PRECISIONS",
    "SensitivityTable",
    "from_graph_meta",
    "parse_precisions",
]

FORMAT = "hetsched.sensitivity/1"
NATIVE = "float32"
_METRICS = ("rel_l2",)


def parse_precisions(spec: str | Any) -> tuple[str, ...]:
    """``"int8,float16"`` (or a sequence) -> ``("int8", "float16")``; unknown names raise.

    >>> parse_precisions("bfloat16, int8")
    ('int8', 'bfloat16')
    >>> parse_precisions("fp12")
    Traceback (most recent call last):
    ...
    hetsched.errors.UsageError: unknown precision 'fp12' (known: int8, w8a16, float16, bfloat16)
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [str(x).strip() for x in items if str(x).strip()]
    for name in names:
        if name not in PRECISIONS:
            msg = f"unknown precision {name!r} (known: {', '.join(PRECISIONS)})"
            raise UsageError(msg)
    if not names:
        msg = "no precision given"
        raise UsageError(msg)
    return tuple(p for p in PRECISIONS if p in names)


def _frozen(
    table: Mapping[str, Mapping[str, float]], what: str, *, allow_inf: bool
) -> Mapping[str, Mapping[str, float]]:
    """A sorted read-only copy; each value a float, not NaN, >= 0 (errors) or finite."""
    out: dict[str, Mapping[str, float]] = {}
    for op in sorted(table):
        row: dict[str, float] = {}
        for prec in sorted(table[op], key=_prec_order):
            if prec not in PRECISIONS and prec != NATIVE:
                msg = f"{what} of op {op!r}: unknown precision {prec!r}"
                raise UsageError(msg)
            raw = table[op][prec]
            try:
                value = float(raw)
            except (TypeError, ValueError):
                msg = f"{what} of op {op!r} at {prec}: not a number: {raw!r}"
                raise UsageError(msg) from None
            bad = math.isnan(value) or (math.isinf(value) and not allow_inf)
            if bad or (not allow_inf and value < 0):
                msg = f"{what} of op {op!r} at {prec} must be finite and >= 0, got {value}"
                raise UsageError(msg)
            row[prec] = value
        out[op] = MappingProxyType(row)
    return MappingProxyType(out)


def _prec_order(p: str) -> int:
    return PRECISIONS.index(p) if p in PRECISIONS else len(PRECISIONS)


@dataclass(frozen=True)
class SensitivityTable:
    """Per-op output error at each reduced precision, for one graph.

    Parameters
    ----------
    graph_name, graph_sha256 : the graph measured (:func:`hetsched.graph.graph_sha256`).
    metric : what ``errors`` holds; ``"rel_l2"``: ``||y - y_ref|| / ||y_ref||`` over the
        model's float outputs on the calibration inputs, concatenated.
    errors : ``{op: {precision: error}}``, each finite and >= 0.
    sqnr_db : ``{op: {precision: dB}}`` of the same runs (``inf``: outputs unchanged).
    samples : calibration inputs measured (0 for a user-given table).

    Raises
    ------
    UsageError
        A NaN, infinite or negative error, a NaN SQNR, an unknown precision or metric.
    """

    graph_name: str
    graph_sha256: str
    _: KW_ONLY
    metric: str = "rel_l2"
    errors: Mapping[str, Mapping[str, float]]
    sqnr_db: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    samples: int = 0

    def __post_init__(self) -> None:
        if self.metric not in _METRICS:
            msg = f"unknown sensitivity metric {self.metric!r} (known: {', '.join(_METRICS)})"
            raise UsageError(msg)
        if self.samples < 0:
            msg = f"samples must be >= 0, got {self.samples}"
            raise UsageError(msg)
        object.__setattr__(self, "errors", _frozen(self.errors, "error", allow_inf=False))
        object.__setattr__(self, "sqnr_db", _frozen(self.sqnr_db, "SQNR", allow_inf=True))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SensitivityTable):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    @property
    def ops(self) -> tuple[str, ...]:
        """The ops with at least one measured precision, sorted."""
        return tuple(self.errors)

    def precisions(self, op: str) -> tuple[str, ...]:
        """The precisions ``op`` can run at: its native one, then those in the table."""
        return (NATIVE, *(p for p in self.errors.get(op, {}) if p != NATIVE))

    def error(self, op: str, precision: str) -> float:
        """The output error of running ``op`` alone at ``precision`` (0.0 at ``float32``).

        Raises
        ------
        UsageError
            If the table has no entry for ``(op, precision)``.
        """
        if precision == NATIVE:
            return 0.0
        try:
            return self.errors[op][precision]
        except KeyError:
            msg = (
                f"sensitivity table of graph {self.graph_name!r} "
                f"has no {precision} entry for op {op!r}"
            )
            raise UsageError(msg) from None

    def predicted_error(self, choices: Mapping[str, str]) -> float:
        """The additive error model: the sum of ``error(op, p)`` over ``choices``."""
        return math.fsum(self.error(op, p) for op, p in sorted(choices.items()))

    def predicted_rss(self, choices: Mapping[str, str]) -> float:
        """The noise-power model: the root of the summed squares of ``error(op, p)``.

        >>> t = SensitivityTable("g", "ab" * 32, errors={"a": {"int8": 0.03}, "b": {"int8": 0.04}})
        >>> round(t.predicted_rss({"a": "int8", "b": "int8"}), 12)
        0.05
        """
        return math.sqrt(math.fsum(self.error(op, p) ** 2 for op, p in sorted(choices.items())))

    def noise_powers(self, budget: float) -> dict[str, dict[str, float]]:
        """Per-op errors ``error(op, p)**2 / budget``: a plan whose sum of them is at most
        ``budget`` has a root-sum-square error (:meth:`predicted_rss`) of at most ``budget``.

        >>> t = SensitivityTable("g", "ab" * 32, errors={"a": {"int8": 0.03}})
        >>> t.noise_powers(0.01)
        {'a': {'int8': 0.09}}
        """
        if not budget > 0:
            msg = f"noise powers need a positive budget, not {budget}"
            raise UsageError(msg)
        return {
            op: {p: round(e * e / budget, 15) for p, e in row.items()}
            for op, row in self.errors.items()
        }

    def check_for(self, graph: OpGraph) -> None:
        """Raise :class:`UsageError` (one line naming both graphs) unless measured on ``graph``."""
        from hetsched.graph.formats import graph_sha256

        sha = graph_sha256(graph)
        if sha != self.graph_sha256:
            msg = (
                f"sensitivity table is for graph {self.graph_name!r} "
                f"(sha256 {self.graph_sha256[:12]}), not for graph {graph.name!r} "
                f"(sha256 {sha[:12]})"
            )
            raise UsageError(msg)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        ops: dict[str, dict[str, dict[str, float | None]]] = {}
        for op, row in self.errors.items():
            ops[op] = {}
            for prec, err in row.items():
                sqnr = self.sqnr_db.get(op, {}).get(prec)
                entry: dict[str, float | None] = {self.metric: err}
                if sqnr is not None or op in self.sqnr_db:
                    entry["sqnr_db"] = None if sqnr is None or math.isinf(sqnr) else sqnr
                ops[op][prec] = entry
        return {
            "format": FORMAT,
            "graph": self.graph_name,
            "graph_sha256": self.graph_sha256,
            "metric": self.metric,
            "samples": self.samples,
            "ops": ops,
        }

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "<sensitivity>") -> SensitivityTable:
        """Parse a ``hetsched.sensitivity/1`` document; strict (one-line ``UsageError``)."""
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            msg = f"{source}: not a {FORMAT} document"
            raise UsageError(msg)
        try:
            metric = str(doc.get("metric", "rel_l2"))
            errors: dict[str, dict[str, float]] = {}
            sqnr: dict[str, dict[str, float]] = {}
            for op, row in dict(doc["ops"]).items():
                errors[op] = {}
                for prec, entry in dict(row).items():
                    errors[op][prec] = entry[metric]
                    if "sqnr_db" in entry:
                        s = entry["sqnr_db"]
                        sqnr.setdefault(op, {})[prec] = math.inf if s is None else s
            return cls(
                str(doc["graph"]),
                str(doc["graph_sha256"]),
                metric=metric,
                errors=errors,
                sqnr_db=sqnr,
                samples=int(doc.get("samples", 0)),
            )
        except UsageError as err:
            msg = f"{source}: {err}"
            raise UsageError(msg) from err
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            msg = f"{source}: malformed {FORMAT} document ({type(err).__name__}: {err})"
            raise UsageError(msg) from err

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the table as JSON, atomically."""
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SensitivityTable:
        """Read a table written by :meth:`save`."""
        return cls.from_dict(read_json(path, error=UsageError), source=os.fspath(path))


def from_graph_meta(graph: OpGraph) -> SensitivityTable | None:
    """The table a user put in ``graph.meta["sensitivity"]`` (``{op: {precision: rel_l2}}``).

    Returns ``None`` when the graph has none.

    Raises
    ------
    UsageError
        An op the graph lacks, an unknown precision, a NaN or negative error.

    Examples
    --------
    >>> from hetsched.graph.opgraph import OpGraph, OpNode
    >>> g = OpGraph("g", [OpNode("mm", category="matmul")],
    ...             meta={"sensitivity": {"mm": {"int8": 0.01}}})
    >>> from_graph_meta(g).error("mm", "int8")
    0.01
    """
    from hetsched.graph.formats import graph_sha256

    given = graph.meta.get("sensitivity")
    if given is None:
        return None
    if not isinstance(given, Mapping):
        msg = f"graph {graph.name!r}: meta['sensitivity'] must map op -> {{precision: error}}"
        raise UsageError(msg)
    names = {n.name for n in graph.nodes}
    for op, row in given.items():
        if op not in names:
            msg = f"graph {graph.name!r}: meta['sensitivity'] names op {op!r}, not in the graph"
            raise UsageError(msg)
        if not isinstance(row, Mapping):
            msg = f"graph {graph.name!r}: meta['sensitivity'][{op!r}] must map precision -> error"
            raise UsageError(msg)
    return SensitivityTable(graph.name, graph_sha256(graph), errors=given, samples=0)
