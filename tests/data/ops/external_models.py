"""Factories for the models from outside the zoo whose ops ``external.json`` lists.

The models are the ones the real-model tests and ``benchmarks/real_models.py`` build
(:mod:`tests.models.build`: HuggingFace models from small configs with random weights,
torchvision's own builders, a diffusers UNet). Regenerate the data file with::

    .venv/bin/python tests/data/ops/external_models.py

(needs the ``models`` extra and torchvision in ``.venv/vendor``, as ``make test`` installs).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.models.build import MODELS, build

__all__ = ["FACTORIES"]


def _factory(name: str) -> Any:
    def make() -> tuple[Any, tuple[Any, ...]]:
        return build(name)

    make.__name__ = name.replace("-", "_")
    return make


FACTORIES = {name.replace("-", "_"): _factory(name) for name in MODELS}
globals().update(FACTORIES)

if __name__ == "__main__":  # pragma: no cover - regenerates external.json
    from hetsched.cli import main

    here = Path(__file__).parent
    sys.path.insert(0, str(here))
    specs = [f"external_models:{m}" for m in FACTORIES]
    sys.exit(main(["ops", *specs, "--json", "-o", str(here / "external.json")]))
