"""The ``hetsched`` command line: thin wrappers over the library.

Each command lives in a small module of this package that defines ``register(subparsers)``;
the module adds its parser and sets ``func`` to a handler ``(args) -> int``. ``main`` maps
:class:`~hetsched.errors.HetschedError` to one line on stderr and exit code 2, Ctrl-C to
exit code 130 (after the command had its chance to save its best result).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from hetsched.errors import HetschedError

__all__ = ["EXIT_INTERRUPTED", "EXIT_USER_ERROR", "build_parser", "main"]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

# Command modules, in the order `hetsched --help` lists them. A module that is missing
# (a subsystem not built yet) is skipped.
_COMMAND_MODULES = (
    "hetsched.cli.graph_cmds",
    "hetsched.cli.cost_cmds",
    "hetsched.cli.ops_cmds",
    "hetsched.cli.solve_cmds",
    "hetsched.cli.sensitivity_cmds",
    "hetsched.cli.throughput_cmds",
    "hetsched.cli.partition_cmds",
    "hetsched.cli.run_cmds",
    "hetsched.cli.bench_cmds",
    "hetsched.cli.demo_cmd",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"hetsched: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from hetsched import __version__

    parser = _Parser(
        prog="hetsched",
        description="Place and schedule ML operators on CPU/GPU/NPU machines, with proofs.",
    )
    parser.add_argument("--version", action="version", version=f"hetsched {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for modname in _COMMAND_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as err:
            if err.name == modname:
                continue
            raise
        mod.register(sub)
    return parser


def _quiet_torch_logs() -> None:
    """Keep torch's warning logs (export guards, graph dumps) off a user's terminal."""
    if os.environ.get("HETSCHED_DEBUG"):
        return
    # torch configures its own loggers when it is imported (lazily, later), so per-logger
    # levels set now would be overwritten: disable WARNING and below globally instead.
    logging.disable(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_torch_logs()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args.func(args) or 0)
    except HetschedError as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"hetsched: error: {msg}", file=sys.stderr)
        if os.environ.get("HETSCHED_DEBUG"):
            raise
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("hetsched: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    finally:
        _say_if_compiling()


def _say_if_compiling() -> None:
    """A solve in a fresh environment returns in its time while numba compiles annealing's
    loop beside it, and the process exits once that compile is cached (3-10 s here): say
    so rather than seem to hang. (Looked up, not imported: most commands never load it.)"""
    anneal = sys.modules.get("hetsched.schedule.latency.anneal")
    if anneal is not None and anneal.compiling():
        print(
            "hetsched: finishing numba's one-off compile of the annealing loop "
            "(cached for later runs)",
            file=sys.stderr,
        )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
