"""Calibration: the fit recovers known figures; a quick real run works and improves."""

from __future__ import annotations

import statistics

import pytest

from hetsched.costmodel import Platform, RooflineCostModel
from hetsched.costmodel.calibrate import (
    CalibrationResult,
    Sample,
    _errors,
    calibrate,
    fit,
    fitted_device,
    measure,
)
from hetsched.costmodel.platform import PROFILE_FORMAT
from hetsched.costmodel.tomlio import loads
from hetsched.errors import UsageError

TRUE = {"matmul": (8e10, 3e10), "conv": (5e10, 2e10), "elementwise": (2e10, 4e10),
        "data_movement": (1e9, 1.5e10)}  # fmt: skip


def synthetic(overhead: float = 2e-6, ramp: float = 2e5) -> list[Sample]:
    out = []
    for cat, (rate, bw) in TRUE.items():
        for i in range(9):
            n = 2.0 ** (8 + 2 * i)
            flops = 0.0 if cat == "data_movement" else n * (64 if cat in ("matmul", "conv") else 1)
            nbytes = 8.0 * n
            extra = ramp if cat in ("matmul", "conv") else 0.0
            comp = (flops + extra) / rate if flops else 0.0
            t = overhead + max(comp, nbytes / bw)
            out.append(Sample(cat, str(i), flops, nbytes, t, i % 2 == 1 and i != 8))
    return out


def test_fit_recovers_known_figures() -> None:
    samples = synthetic()
    params = fit(samples)
    assert params["overhead"] == pytest.approx(2e-6, rel=0.05)
    for cat, (rate, bw) in TRUE.items():
        if cat in ("matmul", "conv"):
            assert params["rate"][cat] == pytest.approx(rate, rel=0.05)
        if cat in ("elementwise", "data_movement"):
            assert params["bandwidth"][cat] == pytest.approx(bw, rel=0.05)
    base = Platform.preset("edge-soc").device("cpu")
    dev = fitted_device(base, params)
    assert dev.peak_flops["fp32"] == max(params["rate"].values())
    errs = _errors(dev, samples)
    assert set(errs) == set(TRUE)
    assert max(w for _, w in errs.values()) < 0.05
    before = _errors(base, samples)
    assert statistics.median(m for m, _ in before.values()) > 0.3


def test_fitted_device_plugs_into_platforms(tmp_path) -> None:
    samples = synthetic()
    base = Platform.preset("edge-soc").device("cpu")
    dev = fitted_device(base, fit(samples))
    res = CalibrationResult(tuple(samples), base, dev, _errors(base, samples),
                            _errors(dev, samples), {"threads": 1})  # fmt: skip
    path = tmp_path / "prof.toml"
    res.write(str(path))
    doc = loads(path.read_text())
    assert doc["format"] == PROFILE_FORMAT and "matmul" in doc["error_after"]
    assert "before med" in path.read_text()  # the error table is in the header
    for name in ("workstation", "homogeneous-2"):
        p = Platform.preset(name).with_profile(path)
        cpu = next(d for d in p.devices if d.kind == "cpu")
        s = next(x for x in samples if x.category == "matmul" and x.label == "8")
        got = RooflineCostModel(p).op_time(s.node(), cpu)
        assert got == pytest.approx(s.seconds, rel=0.05)


def test_measure_real_ops_quick() -> None:
    samples = measure(("matmul", "elementwise"), quick=True, min_run_time=0.002, repeats=1)
    assert len(samples) == 10 and all(s.seconds > 0 for s in samples)
    assert [s.held_out for s in samples[:5]] == [False, True, False, True, False]
    assert samples[4].flops == 2 * 384.0**3


def test_calibrate_rejects_non_cpu_and_bad_threads() -> None:
    with pytest.raises(UsageError, match="only the host CPU"):
        calibrate(device="gpu", quick=True)
    with pytest.raises(UsageError, match="threads"):
        calibrate(threads=0)
    with pytest.raises(UsageError, match="cannot calibrate category 'other'"):
        measure(("other",))


@pytest.mark.slow
def test_full_calibration_meets_target() -> None:
    r = calibrate(quick=False)
    print(r.table())
    medians = [m for m, _ in r.error_after.values()]
    assert statistics.median(medians) < 0.3
