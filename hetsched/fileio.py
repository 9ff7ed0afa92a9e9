"""Atomic file output and strict JSON input shared by every format.

Examples
--------
>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> p = os.path.join(d, "x.json")
>>> write_json_atomic(p, {"a": 1})
>>> read_json(p)
{'a': 1}
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hetsched.errors import HetschedError

__all__ = ["read_json", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``.

    A reader never sees a half-written file, and a killed writer leaves the old one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike[str], *, error: type[HetschedError] = HetschedError) -> Any:
    """Parse a JSON file; a missing, unreadable or malformed file raises ``error`` naming it."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"{p}: no such file"
        raise error(msg) from None
    except (OSError, UnicodeDecodeError) as err:
        msg = f"{p}: cannot read: {err}"
        raise error(msg) from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        msg = f"{p}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        raise error(msg) from err
