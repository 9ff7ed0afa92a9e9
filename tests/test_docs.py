"""The examples in the docs run: docs/ARCHITECTURE.md's worked example is a doctest."""

from __future__ import annotations

import doctest

from tests.paths import ROOT


def test_architecture_example_runs() -> None:
    result = doctest.testfile(
        str(ROOT / "docs" / "ARCHITECTURE.md"),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert result.attempted > 5
    assert result.failed == 0
