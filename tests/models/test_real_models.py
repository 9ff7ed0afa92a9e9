"""Models nobody here wrote go through export -> solve -> apply -> executor, equal to eager.

GPT-2 and resnet18 run in the default suite (portfolio cut to 2 s: the test is about the
pipeline and the numerics, not the makespan); the other nine are ``slow``. The full table
with the 10 s portfolio is ``benchmarks/real_models.py``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from tests.models.build import MODELS, TORCHVISION_MODELS, requirement, torchvision_dir
from tests.paths import ROOT

FAST = ("resnet18", "gpt2")


def _need(name: str) -> None:
    package = requirement(name)
    if package == "torchvision":
        if torchvision_dir() is None:
            pytest.skip(
                "torchvision not installed: pip install --no-deps --target .venv/vendor "
                "torchvision==0.28.0"
            )
    else:
        pytest.importorskip(package)


@pytest.mark.parametrize(
    "name",
    [*FAST, *(pytest.param(x, marks=pytest.mark.slow) for x in MODELS if x not in FAST)],
)
def test_model_runs_equal_to_eager(name: str) -> None:
    _need(name)
    from tests.models.pipeline import run_model

    limit = 2.0 if name in FAST else 10.0
    r = run_model(name, platform="edge-soc", time_limit=limit, seed=0)
    assert r.failed_stage is None, f"{name} failed at {r.failed_stage}: {r.error}"
    assert r.split_equal, f"{name}: the split program differs from eager"
    assert r.exec_equal, f"{name}: the executor's outputs differ from eager"
    assert r.ops and r.makespan is not None and r.lower_bound is not None
    assert r.lower_bound <= r.makespan * (1 + 1e-9)
    assert r.exec_makespan == pytest.approx(r.makespan)
    assert sum(r.categories.values()) == r.ops
    assert set(r.devices) <= {"cpu", "gpu", "npu0", "npu1"}


def test_torchvision_shim_loads_the_real_builders() -> None:
    """The shim imports torchvision's own builders without running its package ``__init__``."""
    where = torchvision_dir()
    if where is None:
        pytest.skip("torchvision not installed")
    from tests.models.build import torchvision_models

    models = torchvision_models()
    assert models.resnet18.__module__ == "torchvision.models.resnet"
    assert str(models.__file__).startswith(str(where))
    assert "torchvision._meta_registrations" not in sys.modules
    assert sys.modules["torchvision"].__version__.startswith("0.")


@pytest.mark.slow
def test_torchvision_shim_leaves_transformers_working() -> None:
    """In a fresh process (the shim's state is process-wide): after the shim, transformers
    still imports its models (with torchvision importable but unshimmed, it does not)."""
    where = torchvision_dir()
    if where is None:
        pytest.skip("torchvision not installed")
    if importlib.util.find_spec("transformers") is None:
        pytest.skip("transformers not installed")
    code = (
        "import sys; from tests.models.build import torchvision_models\n"
        "m = torchvision_models()\n"
        "import torchvision\n"
        "assert m.resnet18.__module__ == 'torchvision.models.resnet'\n"
        f"assert torchvision.models.__file__.startswith({str(where)!r})\n"
        "assert 'torchvision._meta_registrations' not in sys.modules\n"
        "from transformers import GPT2Model\n"
        "print(torchvision.__version__)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().startswith("0.")


@pytest.mark.parametrize("name", TORCHVISION_MODELS)
def test_torchvision_builders_are_torchvisions(name: str) -> None:
    _need(name)
    from tests.models.build import build

    model, (x,) = build(name)
    assert type(model).__module__.startswith("torchvision.models.")
    assert model(x).shape == (1, 10)
