"""Platforms: presets, TOML round trip, routing, validation, profiles."""

from __future__ import annotations

import math

import pytest

from hetsched.costmodel import DEFAULT_PLATFORM, Device, Link, Platform
from hetsched.errors import PlatformError

PRESETS = [p for p in Platform.presets() if p != "homogeneous-N"] + [
    "homogeneous-1",
    "homogeneous-5",
]

BASE = """
name = "t"
[[device]]
name = "cpu"
kind = "cpu"
peak_flops = { fp32 = 1e11 }
mem_bandwidth = 1e10
[[device]]
name = "npu"
count = 2
kind = "asic"
peak_flops = { int8 = 1e12 }
mem_bandwidth = 1e11
[[link]]
src = "cpu"
dst = "npu"
bandwidth = 1e10
latency = 1e-6
"""


def test_preset_list() -> None:
    names = Platform.presets()
    assert {"edge-soc", "workstation", "multi-gpu", "homogeneous-N"} <= set(names)
    assert DEFAULT_PLATFORM == "edge-soc"


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads_and_round_trips(name: str) -> None:
    p = Platform.preset(name)
    assert p.devices and all(d.kind in ("cpu", "gpu", "asic") for d in p.devices)
    again = Platform.from_toml(p.to_toml())
    assert again == p
    assert again.to_toml() == p.to_toml()
    for a in p.devices:  # every preset is fully routable
        for b in p.devices:
            assert p.has_route(a, b)


def test_edge_soc_shape() -> None:
    p = Platform.preset("edge-soc")
    assert [d.name for d in p.devices] == ["cpu", "gpu", "npu0", "npu1"]
    npu = p.device("npu0")
    assert npu.kind == "asic" and npu.peak_flops["int8"] == pytest.approx(36.86e12)
    assert "fp32" in npu.peak_flops  # the zoo models are fp32


def test_homogeneous_free_comm() -> None:
    p = Platform.preset("homogeneous-4")
    assert [d.name for d in p.devices] == ["p0", "p1", "p2", "p3"]
    assert all(d.kind == "cpu" for d in p.devices)
    (link,) = p.route("p1", "p3")
    assert math.isinf(link.bandwidth) and link.latency == 0


def test_count_expands_units_and_links() -> None:
    p = Platform.from_toml(BASE)
    assert [d.name for d in p.devices] == ["cpu", "npu0", "npu1"]
    assert [link.name for link in p.links] == ["cpu<->npu0", "cpu<->npu1"]


def test_routes() -> None:
    p = Platform.from_toml(BASE)
    assert p.route("cpu", "cpu") == ()
    assert [x.name for x in p.route("npu1", "cpu")] == ["cpu<->npu1"]
    assert [x.name for x in p.route("npu0", "npu1")] == ["cpu<->npu0", "cpu<->npu1"]
    cpu = Device("cpu", "cpu", {"fp32": 1e9}, 1e9)
    gpu = Device("gpu", "gpu", {"fp32": 1e9}, 1e9)
    npu = Device("npu", "asic", {"int8": 1e9}, 1e9)
    q = Platform("q", (cpu, gpu, npu), (Link("cpu", "gpu", 1e9, directed=True),))
    assert q.route("cpu", "gpu")
    with pytest.raises(PlatformError, match="no route from 'gpu' to 'cpu'"):
        q.route("gpu", "cpu")
    with pytest.raises(PlatformError, match="no route from 'cpu' to 'npu'"):
        q.route("cpu", "npu")


def test_unknown_device_lists_valid_names() -> None:
    with pytest.raises(PlatformError, match=r"no device 'tpu' \(devices: cpu, gpu, npu0, npu1\)"):
        Platform.preset("edge-soc").device("tpu")


def test_unknown_preset() -> None:
    with pytest.raises(PlatformError, match=r"unknown platform preset 'nope'.*edge-soc"):
        Platform.preset("nope")
    with pytest.raises(PlatformError, match="homogeneous-N"):
        Platform.preset("homogeneous-0")


@pytest.mark.parametrize(
    ("old", "new", "culprit"),
    [
        ('kind = "asic"', 'kind = "fpga"', "device 'npu': unknown kind 'fpga'"),
        ("int8 = 1e12", "int4 = 1e12", "device 'npu0': peak_flops: unknown key 'int4'"),
        ("mem_bandwidth = 1e11", "", "device 'npu': missing field 'mem_bandwidth'"),
        ("mem_bandwidth = 1e11", "mem_bandwidth = -1.0", "device 'npu0': mem_bandwidth must be"),
        ("mem_bandwidth = 1e11", "mem_bandwidth = 0", "device 'npu0': mem_bandwidth must be > 0"),
        ("mem_bandwidth = 1e11", "mem_bandwidth = nan", "device 'npu0': mem_bandwidth must be"),
        ("\nbandwidth = 1e10", "\nbandwidth = 0.0", "link 'cpu' -> 'npu0': bandwidth must be > 0"),
        ("\nbandwidth = 1e10", "\nbandwidth = nan", "link 'cpu' -> 'npu0': bandwidth must be"),
        ("\nbandwidth = 1e10", "\n", "missing field 'bandwidth'"),
        ('dst = "npu"', 'dst = "tpu"', "unknown device 'tpu'"),
        ("latency = 1e-6", "latency = [", "invalid TOML"),
        ("count = 2", "count = 0", "device 'npu': count must be an integer >= 1"),
        ("count = 2", "colour = 2", "device 'npu': unknown field 'colour'"),
    ],
)
def test_bad_platform_inputs_name_the_culprit(old: str, new: str, culprit: str) -> None:
    assert old in BASE
    with pytest.raises(PlatformError) as err:
        Platform.from_toml(BASE.replace(old, new, 1))
    assert culprit in str(err.value)
    assert "\n" not in str(err.value)


def test_no_devices() -> None:
    with pytest.raises(PlatformError, match="has no devices"):
        Platform.from_toml('name = "empty"\n')
    with pytest.raises(PlatformError, match="has no devices"):
        Platform("x", ())


def test_load_file_and_missing(tmp_path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(BASE)
    assert Platform.load(path) == Platform.from_toml(BASE)
    assert Platform.load("edge-soc") == Platform.preset("edge-soc")
    with pytest.raises(PlatformError, match="no such platform file"):
        Platform.load(tmp_path / "missing.toml")


def test_with_profile(tmp_path) -> None:
    prof = tmp_path / "prof.toml"
    prof.write_text(
        'format = "hetsched.profile/1"\n[device]\npeak_flops = { fp32 = 4e11 }\n'
        "mem_bandwidth = 2e10\nlaunch_overhead = 2e-6\nramp_time = 1e-6\n"
        "efficiency = { matmul = 0.9 }\n"
    )
    for name in ("edge-soc", "homogeneous-2"):
        base = Platform.preset(name)
        p = base.with_profile(prof, device="cpu")
        cpus = [d for d in p.devices if d.kind == "cpu"]
        assert cpus and all(d.peak_flops["fp32"] == 4e11 for d in cpus)
        assert all(d.mem_bandwidth == 2e10 and d.compute_efficiency("matmul") == 0.9 for d in cpus)
        assert [d.name for d in p.devices] == [d.name for d in base.devices]
    edge = Platform.preset("edge-soc").with_profile(prof)
    assert edge.device("cpu").peak_flops["int8"] == pytest.approx(8e11)  # scaled with fp32
    assert edge.device("gpu") == Platform.preset("edge-soc").device("gpu")
    bad = tmp_path / "bad.toml"
    bad.write_text('format = "other"\n')
    with pytest.raises(PlatformError, match=r"not a hetsched\.profile/1"):
        Platform.preset().with_profile(bad)


def test_per_category_ramp_round_trip() -> None:
    text = BASE.replace(
        "mem_bandwidth = 1e10\n", "mem_bandwidth = 1e10\nramp_time = { matmul = 2e-6 }\n", 1
    )
    p = Platform.from_toml(text)
    cpu = p.device("cpu")
    assert cpu.ramp("matmul") == 2e-6 and cpu.ramp("conv") == 1e-6  # kind default
    assert Platform.from_toml(p.to_toml()) == p
    with pytest.raises(PlatformError, match="ramp_time: unknown key 'norm'"):
        Platform.from_toml(text.replace("matmul = 2e-6", "norm = 2e-6"))
