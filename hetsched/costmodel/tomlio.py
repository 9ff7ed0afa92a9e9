"""TOML reading and writing for platforms and calibration profiles.

Reading uses :mod:`tomllib`; writing uses the small emitter here (floats written with
``repr`` so that a read-back is bit-exact, ``inf`` as TOML ``inf``).

Examples
--------
>>> print(dumps({"name": "x", "device": [{"name": "a", "peak": {"fp32": 1e12}}]}), end="")
name = "x"
<BLANKLINE>
[[device]]
name = "a"
peak = { fp32 = 1000000000000.0 }
>>> loads(dumps({"a": float("inf"), "b": [1, 2]}))
{'a': inf, 'b': [1, 2]}
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from hetsched.errors import PlatformError

__all__ = ["dumps", "loads", "value"]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k)


def value(v: Any) -> str:
    """One TOML value (inline form)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, Mapping):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(value(x) for x in v) + "]"
    msg = f"cannot write {type(v).__name__} to TOML"
    raise PlatformError(msg)


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)


def dumps(doc: Mapping[str, Any], *, header: str = "") -> str:
    """A TOML document: top-level scalars, then ``[table]`` and ``[[array]]`` sections.

    Only one level of sections is used; nested tables inside sections are inline.
    """
    lines = [f"# {h}" if h else "#" for h in header.splitlines()] if header else []
    for k, v in doc.items():
        if not isinstance(v, Mapping) and not _is_table_array(v):
            lines.append(f"{_key(k)} = {value(v)}")
    for k, v in doc.items():
        if isinstance(v, Mapping):
            lines += ["", f"[{_key(k)}]"] + [f"{_key(a)} = {value(b)}" for a, b in v.items()]
        elif _is_table_array(v):
            for item in v:
                lines += ["", f"[[{_key(k)}]]"]
                lines += [f"{_key(a)} = {value(b)}" for a, b in item.items()]
    return "\n".join(lines) + "\n"


def loads(text: str, *, source: str = "<toml>") -> dict[str, Any]:
    """Parse TOML; a syntax error is a :class:`PlatformError` naming the source and line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        msg = f"{source}: invalid TOML: {err}"
        raise PlatformError(msg) from err
