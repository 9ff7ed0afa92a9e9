"""Calibrate the host CPU's roofline figures from real torch op timings.

One synthetic op per category (matmul ``mm``, ``conv2d`` 3x3, ``add``, ``sum``,
``layer_norm``, ``scaled_dot_product_attention``, transpose+``contiguous``) is timed at
several sizes with :mod:`torch.utils.benchmark` (median of ``blocked_autorange``). FLOPs and
bytes are computed directly from the shapes (GEMM/conv/attention FLOPs as
``torch.utils.flop_counter`` counts them: 2 per multiply-add; one FLOP per element for add
and sum, eight for layer_norm; bytes = fp32 inputs + outputs + weights).

The fit (Levenberg–Marquardt on log time with a robust soft-L1 loss, numpy only) has one
launch overhead ``o`` and per category an effective FLOP rate ``R_c``, a bandwidth ``W_c``
and a ramp ``F_c`` (FLOPs)::

    t = o + max((flops + F_c) / R_c, bytes / W_c)      (F_c = 0 but for matmul/conv/attention)

which is the roofline of :mod:`hetsched.costmodel.roofline` with peak ``P = max R_c``,
``eff_c = R_c / P``, ``B = max W_c``, ``eff_m = W_c / B`` and
``ramp_time[c] = F_c / P``. Sizes alternate between the fit set and the held-out set (the
smallest and largest are always fitted); errors are reported on held-out sizes.

Examples
--------
>>> r = calibrate(quick=True, categories=("elementwise",), min_run_time=0.002)
>>> sorted(r.error_after)
['elementwise']
>>> r.device.kind
'cpu'
"""

from __future__ import annotations

import math
import platform as _platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hetsched.costmodel.device import RAMP_CATEGORIES, Device
from hetsched.costmodel.platform import DEFAULT_PLATFORM, PROFILE_FORMAT, Platform
from hetsched.costmodel.roofline import RooflineCostModel
from hetsched.costmodel.tomlio import dumps
from hetsched.errors import UsageError
from hetsched.fileio import write_text_atomic
from hetsched.graph.opgraph import OpNode

__all__ = ["CATEGORIES_TIMED", "CalibrationResult", "Sample", "calibrate", "fit"]

CATEGORIES_TIMED = (
    "matmul", "conv", "elementwise", "reduction", "norm", "attention", "data_movement",
)  # fmt: skip
_DELTA = 0.1  # soft-L1 scale in log time: residuals beyond ~10 % count linearly (outliers)
_NUMEL = (1024, 4096, 16384, 65536, 262144, 524288, 1048576, 2097152, 4194304)
_SIZES: dict[str, tuple[Any, ...]] = {
    "matmul": (16, 32, 48, 64, 96, 128, 192, 256, 384),
    "conv": ((8, 8), (8, 16), (16, 16), (16, 32), (32, 32), (32, 48), (64, 32), (64, 48),
             (64, 64)),
    "attention": (16, 32, 64, 96, 128, 192, 256, 384, 512),
    "elementwise": _NUMEL, "reduction": _NUMEL, "norm": _NUMEL, "data_movement": _NUMEL,
}  # fmt: skip


@dataclass(frozen=True)
class Sample:
    """One timed op: its category, size label, FLOPs, bytes, median seconds, split."""

    category: str
    label: str
    flops: float
    bytes: float
    seconds: float
    held_out: bool

    def node(self) -> OpNode:
        return OpNode(f"{self.category}[{self.label}]", category=self.category,
                      flops=self.flops, bytes_read=self.bytes)  # fmt: skip


def _case(category: str, size: Any) -> tuple[str, str, dict[str, Any], float, float]:
    """``(label, stmt, globals, flops, bytes)`` of one synthetic op (tensors built here)."""
    import torch
    import torch.nn.functional as F

    if category == "matmul":
        n = size
        a, b = torch.randn(n, n), torch.randn(n, n)
        return f"{n}^3", "torch.mm(a, b)", {"a": a, "b": b}, 2.0 * n**3, 12.0 * n * n
    if category == "conv":
        c, h = size
        x, w = torch.randn(1, c, h, h), torch.randn(c, c, 3, 3)
        flops, nbytes = 2.0 * c * c * 9 * h * h, 4.0 * (2 * c * h * h + 9 * c * c)
        return f"c{c}h{h}", "F.conv2d(x, w, padding=1)", {"x": x, "w": w, "F": F}, flops, nbytes
    if category == "attention":
        s, h, d = size, 4, 64
        q, k, v = (torch.randn(1, h, s, d) for _ in range(3))
        g = {"q": q, "k": k, "v": v, "F": F}
        stmt = "F.scaled_dot_product_attention(q, k, v)"
        return f"s{s}", stmt, g, 4.0 * h * s * s * d, 16.0 * h * s * d
    n = size
    x = torch.randn(n // 256, 256)
    if category == "elementwise":
        return f"{n}", "torch.add(x, y)", {"x": x, "y": torch.randn_like(x)}, n, 12.0 * n
    if category == "reduction":
        return f"{n}", "x.sum(-1)", {"x": x}, n, 4.0 * (n + n // 256)
    if category == "norm":
        return f"{n}", "F.layer_norm(x, (256,))", {"x": x, "F": F}, 8.0 * n, 8.0 * n
    return f"{n}", "x.t().contiguous()", {"x": x}, 0.0, 8.0 * n


def measure(
    categories: Sequence[str] = CATEGORIES_TIMED,
    *,
    quick: bool = False,
    threads: int = 1,
    min_run_time: float | None = None,
    repeats: int = 5,
    progress: Callable[[str], None] | None = None,
) -> list[Sample]:
    """Time every category at its sizes (quick: every other size) on the host CPU.

    Each op is timed in ``repeats`` interleaved rounds of ``blocked_autorange``; the time
    kept is the fastest block over all rounds (other processes only ever add time).
    """
    import torch
    from torch.utils import benchmark

    run_time = min_run_time if min_run_time is not None else (0.01 if quick else 0.05)
    cases = []
    for cat in categories:
        if cat not in _SIZES:
            msg = f"cannot calibrate category {cat!r} (choose from {', '.join(_SIZES)})"
            raise UsageError(msg)
        sizes = _SIZES[cat][::2] if quick else _SIZES[cat]
        for i, size in enumerate(sizes):
            label, stmt, env, flops, nbytes = _case(cat, size)
            timer = benchmark.Timer(stmt=stmt, globals={"torch": torch, **env},
                                    num_threads=threads, label=cat, sub_label=label)  # fmt: skip
            held = i % 2 == 1 and i != len(sizes) - 1
            cases.append((cat, label, timer, float(flops), float(nbytes), held))
    best = [math.inf] * len(cases)
    for _ in range(max(1, repeats)):
        for k, (_cat, _label, timer, *_rest) in enumerate(cases):
            m = timer.blocked_autorange(min_run_time=run_time)
            best[k] = min(best[k], *m.times)
    out = []
    for (cat, label, _timer, flops, nbytes, held), t in zip(cases, best, strict=True):
        out.append(Sample(cat, label, flops, nbytes, t, held))
        if progress:
            progress(f"{cat:14s} {label:>9s} {t * 1e6:10.1f} us{'  (held out)' if held else ''}")
    return out


def _predict(theta: np.ndarray, flops: np.ndarray, nbytes: np.ndarray, cat: np.ndarray,
             n_cat: int, ramped: np.ndarray) -> np.ndarray:  # fmt: skip
    o, ramp = np.exp(theta[0]), np.exp(theta[1 : 1 + n_cat])
    rate, bw = np.exp(theta[1 + n_cat : 1 + 2 * n_cat]), np.exp(theta[1 + 2 * n_cat :])
    compute = np.where(flops > 0, (flops + np.where(ramped, ramp[cat], 0.0)) / rate[cat], 0.0)
    return np.asarray(o + np.maximum(compute, nbytes / bw[cat]))


def fit(samples: Sequence[Sample], *, iterations: int = 200) -> dict[str, Any]:
    """Least squares in log time: ``{overhead, ramp_flops{c}, rate{c}, bandwidth{c}}``."""
    cats = sorted({s.category for s in samples})
    ci = {c: i for i, c in enumerate(cats)}
    use = [s for s in samples if not s.held_out]
    f = np.array([s.flops for s in use])
    b = np.array([s.bytes for s in use])
    t = np.array([s.seconds for s in use])
    c = np.array([ci[s.category] for s in use])
    ramped = np.array([s.category in RAMP_CATEGORIES for s in use])
    k = len(cats)
    rate0 = [max((s.flops / s.seconds for s in use if ci[s.category] == j), default=1e9) or 1e9
             for j in range(k)]  # fmt: skip
    bw0 = [max(s.bytes / s.seconds for s in use if ci[s.category] == j) for j in range(k)]
    theta = np.log(np.array([0.5 * t.min(), *[1e4] * k, *rate0, *bw0]))
    lo = np.log(np.array([1e-9] + [1.0] * k + [1e6] * k + [1e6] * k))
    hi = np.log(np.array([1e-2] + [1e12] * k + [1e15] * k + [1e13] * k))

    def residual(th: np.ndarray) -> np.ndarray:
        return np.asarray(np.log(_predict(th, f, b, c, k, ramped)) - np.log(t))

    def cost(res: np.ndarray) -> float:  # soft-L1: quadratic near 0, linear for outliers
        return float(np.sum(np.sqrt(1.0 + (res / _DELTA) ** 2) - 1.0))

    r = residual(theta)
    lam = 1e-2
    for _ in range(iterations):
        jac = np.empty((len(t), len(theta)))
        for j in range(len(theta)):
            step = np.zeros_like(theta)
            step[j] = 1e-6
            jac[:, j] = (residual(theta + step) - r) / 1e-6
        w = 1.0 / np.sqrt(1.0 + (r / _DELTA) ** 2)  # IRLS weights of the soft-L1 loss
        jtj = jac.T @ (jac * w[:, None])
        grad = jac.T @ (w * r)
        improved = False
        for _ in range(10):
            a = jtj + lam * (np.diag(np.diag(jtj)) + 1e-6 * np.eye(len(theta)))
            cand = np.clip(theta - np.linalg.solve(a, grad), lo, hi)
            rc = residual(cand)
            if cost(rc) < cost(r):
                theta, r, lam, improved = cand, rc, lam / 3, True
                break
            lam *= 3
        if not improved or np.abs(grad).max() < 1e-10:
            break
    ex = np.exp(theta)
    rate, bw = ex[1 + k : 1 + 2 * k].copy(), ex[1 + 2 * k :].copy()
    ramp = np.where(ramped, ex[1 : 1 + k][c], 0.0)
    compute = np.where(f > 0, (f + ramp) / rate[c], 0.0)
    memory = b / bw[c]
    for i in range(k):
        sel = c == i
        # A term that never binds is unidentified: keep the least extreme value that still
        # does not bind on any fitted sample, so the reported peak and bandwidth stay sane.
        if not (memory[sel] >= compute[sel]).any():
            bw[i] = float(np.max(b[sel] / compute[sel]))
        elif not (compute[sel] > memory[sel]).any() and (f[sel] > 0).any():
            rate[i] = float(np.max((f[sel] + ramp[sel]) / memory[sel]))
    return {
        "overhead": float(ex[0]),
        "ramp_flops": {cc: float(ex[1 + i]) for cc, i in ci.items() if cc in RAMP_CATEGORIES},
        "rate": {cc: float(rate[i]) for cc, i in ci.items() if (f[c == i] > 0).any()},
        "bandwidth": {cc: float(bw[i]) for cc, i in ci.items()},
    }


def fitted_device(base: Device, params: dict[str, Any]) -> Device:
    """``base`` with the fitted peak, bandwidth, efficiencies, overhead and ramp.

    Peak = the best category rate, bandwidth = the best category bandwidth; efficiencies
    are the ratios to them, so the device reproduces the fit exactly. Other dtype peaks
    scale with fp32.
    """
    rates, bws = params["rate"], params["bandwidth"]
    peak = max(rates.values()) if rates else base.peak_flops.get("fp32", 1e9)
    bw = max(bws.values())
    fp32 = base.peak_flops.get("fp32", peak)
    peaks = {key: v * (peak / fp32) for key, v in base.peak_flops.items()} | {"fp32": peak}
    return Device(
        base.name, base.kind, peaks, bw, base.mem_capacity, params["overhead"], base.supports,
        efficiency={c: min(1.0, r / peak) for c, r in sorted(rates.items())},
        memory_efficiency={c: min(1.0, w / bw) for c, w in sorted(bws.items())},
        ramp_time={c: f / peak for c, f in sorted(params["ramp_flops"].items())} or None,
    )  # fmt: skip


def _errors(device: Device, samples: Sequence[Sample]) -> dict[str, tuple[float, float]]:
    model = RooflineCostModel(Platform("probe", (device,)))
    errs: dict[str, list[float]] = {}
    for s in samples:
        if s.held_out:
            pred = model.op_time(s.node(), device.name)
            errs.setdefault(s.category, []).append(abs(pred - s.seconds) / s.seconds)
    return {c: (statistics.median(v), max(v)) for c, v in errs.items()}


@dataclass(frozen=True)
class CalibrationResult:
    """Samples, the preset and fitted devices, and held-out errors per category."""

    samples: tuple[Sample, ...]
    base: Device
    device: Device
    error_before: dict[str, tuple[float, float]]
    error_after: dict[str, tuple[float, float]]
    meta: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        """The error table: median and worst relative error, before and after fitting."""
        lines = [f"{'category':14s} {'before med':>10s} {'worst':>8s} {'after med':>10s} "
                 f"{'worst':>8s}"]  # fmt: skip
        for c, (bm, bw) in self.error_before.items():
            am, aw = self.error_after[c]
            lines.append(f"{c:14s} {bm:10.1%} {bw:8.1%} {am:10.1%} {aw:8.1%}")
        allb = [x for x in (_all(self.base, self.samples))]
        alla = [x for x in (_all(self.device, self.samples))]
        lines.append(f"{'all':14s} {statistics.median(allb):10.1%} {max(allb):8.1%} "
                     f"{statistics.median(alla):10.1%} {max(alla):8.1%}")  # fmt: skip
        return "\n".join(lines)

    def to_toml(self) -> str:
        d = self.device
        doc: dict[str, Any] = {"format": PROFILE_FORMAT, **self.meta}
        doc["device"] = {
            "name": d.name, "kind": d.kind, "peak_flops": {"fp32": d.peak_flops["fp32"]},
            "mem_bandwidth": d.mem_bandwidth, "launch_overhead": d.launch_overhead,
            "efficiency": dict(d.efficiency or {}),
            "memory_efficiency": dict(d.memory_efficiency or {}),
        }  # fmt: skip
        if isinstance(d.ramp_time, Mapping):
            doc["device"]["ramp_time"] = dict(d.ramp_time)
        for key, errs in (("error_before", self.error_before), ("error_after", self.error_after)):
            doc[key] = {c: {"median": m, "worst": w} for c, (m, w) in errs.items()}
        header = "hetsched calibration profile (hetsched calibrate)\n" + self.table()
        return dumps(doc, header=header)

    def write(self, path: str) -> None:
        write_text_atomic(path, self.to_toml())


def _all(device: Device, samples: Sequence[Sample]) -> list[float]:
    model = RooflineCostModel(Platform("probe", (device,)))
    return [abs(model.op_time(s.node(), device.name) - s.seconds) / s.seconds
            for s in samples if s.held_out]  # fmt: skip


def calibrate(
    *,
    platform: str | Platform = DEFAULT_PLATFORM,
    device: str = "cpu",
    quick: bool = False,
    threads: int = 1,
    categories: Sequence[str] = CATEGORIES_TIMED,
    min_run_time: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> CalibrationResult:
    """Measure, fit and evaluate the host CPU against ``platform``'s ``device`` figures."""
    plat = platform if isinstance(platform, Platform) else Platform.preset(platform)
    base = plat.device(device)
    if base.kind != "cpu":
        msg = f"device {device!r} is a {base.kind}: only the host CPU can be timed here"
        raise UsageError(msg)
    if threads < 1:
        msg = f"threads must be >= 1, got {threads}"
        raise UsageError(msg)
    start = time.perf_counter()
    samples = measure(categories, quick=quick, threads=threads, min_run_time=min_run_time,
                      progress=progress)  # fmt: skip
    fitted = fitted_device(base, fit(samples))
    import torch

    meta = {
        "platform": plat.name, "threads": threads, "quick": quick,
        "host": _platform.processor() or _platform.machine(), "torch": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": round(time.perf_counter() - start, 2),
    }  # fmt: skip
    return CalibrationResult(tuple(samples), base, fitted, _errors(base, samples),
                             _errors(fitted, samples), meta)  # fmt: skip
