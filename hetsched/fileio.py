"""Atomic file output and strict JSON input shared by every format.

Every writer goes through :func:`write_bytes_atomic`, which first runs
:func:`check_writable`: a command checks its output paths with it before the work starts,
so a bad ``-o`` costs nothing, and the library refuses the same paths the same way.

Examples
--------
>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> p = os.path.join(d, "x.json")
>>> write_json_atomic(p, {"a": 1})
>>> read_json(p)
{'a': 1}
>>> check_writable(d)
Traceback (most recent call last):
...
hetsched.errors.OutputError: ...: is a directory, not a file to write
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from hetsched.errors import HetschedError, OutputError

__all__ = [
    "check_output_dir",
    "check_writable",
    "read_json",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]


def _check_parent(path: Path, shown: str) -> None:
    """``path``'s directory exists, is a directory and is writable; no directory is created."""
    parent = path.parent
    if not parent.exists():
        anc = parent
        while not anc.exists() and anc != anc.parent:
            anc = anc.parent
        if anc.exists() and not anc.is_dir():
            msg = f"{shown}: {anc} is a file, not a directory"
        else:
            msg = f"{shown}: directory {parent} does not exist (create it first)"
        raise OutputError(msg)
    if not parent.is_dir():
        msg = f"{shown}: {parent} is a file, not a directory"
        raise OutputError(msg)
    if not os.access(parent, os.W_OK | os.X_OK):
        msg = f"{shown}: cannot write in directory {parent} (permission denied)"
        raise OutputError(msg)


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Check that a file can be written at ``path``; return it as a ``Path``.

    Raises :class:`~hetsched.errors.OutputError` (one line naming the culprit) when ``path``
    is empty or a directory, or its directory is missing, a file, or not writable. Nothing
    is created.

    >>> check_writable("/nonexistent-dir/plan.json")
    Traceback (most recent call last):
    ...
    hetsched.errors.OutputError: /nonexistent-dir/plan.json: directory /nonexistent-dir does ...
    """
    shown = os.fspath(path)
    if not shown:
        msg = "output path is empty"
        raise OutputError(msg)
    target = Path(shown)
    if target.is_dir():
        msg = f"{shown}: is a directory, not a file to write"
        raise OutputError(msg)
    if shown.endswith(("/", os.sep)):
        msg = f"{shown}: names a directory, not a file to write"
        raise OutputError(msg)
    _check_parent(target.resolve() if target.is_symlink() else target, shown)
    return target


def check_output_dir(path: str | os.PathLike[str]) -> Path:
    """Check that ``path`` is a directory, or can be made one in an existing directory.

    >>> check_output_dir("/nonexistent-dir/results")
    Traceback (most recent call last):
    ...
    hetsched.errors.OutputError: /nonexistent-dir/results: directory /nonexistent-dir does ...
    """
    shown = os.fspath(path)
    if not shown:
        msg = "output directory is empty"
        raise OutputError(msg)
    target = Path(shown)
    if target.is_dir():
        if not os.access(target, os.W_OK | os.X_OK):
            msg = f"{shown}: cannot write in this directory (permission denied)"
            raise OutputError(msg)
        return target
    if target.exists():
        msg = f"{shown}: is a file, not a directory"
        raise OutputError(msg)
    _check_parent(target, shown)
    return target


def _new_file_mode(target: Path) -> int:
    """An existing file keeps its mode; a new one gets what ``open`` would give it."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux states it; reading it elsewhere means setting it for a moment
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``.

    A reader never sees a half-written file, and a killed writer leaves the old one. The
    file gets the usual mode (``0666`` less the umask; an existing file keeps its own);
    ``path`` is checked with :func:`check_writable` first, so no directory is created.
    A special file (``/dev/null``, a FIFO) is written in place.
    """
    target = check_writable(path)
    if target.is_symlink():
        target = target.resolve()
    if target.exists() and not target.is_file():
        _write(target, data, path)
        return
    mode = _new_file_mode(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        msg = f"{os.fspath(path)}: cannot write: {err}"
        raise OutputError(msg) from err
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError) and not isinstance(err, OutputError):
            msg = f"{os.fspath(path)}: cannot write: {err}"
            raise OutputError(msg) from err
        raise


def _write(target: Path, data: bytes, shown: str | os.PathLike[str]) -> None:
    try:
        with open(target, "wb") as f:
            f.write(data)
    except OSError as err:
        msg = f"{os.fspath(shown)}: cannot write: {err}"
        raise OutputError(msg) from err


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
    except IsADirectoryError:
        msg = f"{p}: is a directory, not a file"
        raise error(msg) from None
    except (OSError, UnicodeDecodeError) as err:
        msg = f"{p}: cannot read: {err}"
        raise error(msg) from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        msg = f"{p}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        raise error(msg) from err
