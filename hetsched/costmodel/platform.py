"""Platforms: devices joined by links, read from and written to TOML.

A platform file has a ``name``, one ``[[device]]`` table per device (``count = N`` expands
to N units ``name0 .. name{N-1}``) and one ``[[link]]`` table per link (a link naming a
counted device joins every unit). Presets ship as TOML files in ``presets/``;
``homogeneous-N`` is generated for any N ≥ 1.

Routing: a transfer uses the direct link when there is one, else two hops through the
memory of a ``cpu`` (host) device, store-and-forward; no route is a :class:`PlatformError`.

Examples
--------
>>> p = Platform.preset("edge-soc")
>>> [d.name for d in p.devices]
['cpu', 'gpu', 'npu0', 'npu1']
>>> [link.name for link in p.route("npu0", "gpu")]
['cpu<->npu0', 'cpu<->gpu']
>>> Platform.from_toml(p.to_toml()) == p
True
>>> len(Platform.preset("homogeneous-3").devices)
3
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from hetsched.costmodel.device import KINDS, Device, Link
from hetsched.costmodel.support import from_spec
from hetsched.costmodel.tomlio import dumps, loads
from hetsched.errors import PlatformError

__all__ = ["DEFAULT_PLATFORM", "PLATFORM_FORMAT", "PROFILE_FORMAT", "Platform"]

DEFAULT_PLATFORM = "edge-soc"
PLATFORM_FORMAT = "hetsched.platform/1"
PROFILE_FORMAT = "hetsched.profile/1"
_DEVICE_KEYS = (
    "name", "kind", "count", "peak_flops", "mem_bandwidth", "mem_capacity", "launch_overhead",
    "supports", "efficiency", "memory_efficiency", "ramp_time", "stream_bandwidth",
)  # fmt: skip
_LINK_KEYS = ("src", "dst", "bandwidth", "latency", "directed")


@dataclass(frozen=True)
class Platform:
    """A named set of :class:`Device` joined by :class:`Link`; immutable and validated."""

    name: str
    devices: tuple[Device, ...]
    links: tuple[Link, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "devices", tuple(self.devices))
        object.__setattr__(self, "links", tuple(self.links))
        if not self.devices:
            msg = f"platform {self.name!r} has no devices"
            raise PlatformError(msg)
        names: dict[str, Device] = {}
        for d in self.devices:
            if not isinstance(d, Device):
                msg = f"platform {self.name!r}: expected Device, got {type(d).__name__}"
                raise PlatformError(msg)
            if d.name in names:
                msg = f"platform {self.name!r}: duplicate device name {d.name!r}"
                raise PlatformError(msg)
            names[d.name] = d
        seen: set[tuple[str, str]] = set()
        for link in self.links:
            for end in (link.src, link.dst):
                if end not in names:
                    msg = (
                        f"platform {self.name!r}: link {link.src!r} -> {link.dst!r} names "
                        f"unknown device {end!r} (devices: {', '.join(names)})"
                    )
                    raise PlatformError(msg)
            pair = (link.src, link.dst)
            if pair in seen or (not link.directed and pair[::-1] in seen):
                msg = f"platform {self.name!r}: duplicate link {link.src!r} -> {link.dst!r}"
                raise PlatformError(msg)
            seen.add(pair)
        object.__setattr__(self, "_by_name", names)
        object.__setattr__(self, "_routes", self._all_routes())

    def __hash__(self) -> int:
        return hash((self.name, tuple(d.name for d in self.devices)))

    # ---- lookup -------------------------------------------------------------------------
    def device(self, name: str | Device) -> Device:
        """The device called ``name`` (a :class:`Device` is returned as is if it belongs)."""
        key = name.name if isinstance(name, Device) else name
        by_name: dict[str, Device] = self._by_name  # type: ignore[attr-defined]
        if key not in by_name:
            valid = ", ".join(by_name)
            msg = f"platform {self.name!r} has no device {key!r} (devices: {valid})"
            raise PlatformError(msg)
        return by_name[key]

    @property
    def host(self) -> Device | None:
        """The first ``cpu`` device (the store-and-forward hop), or ``None``."""
        return next((d for d in self.devices if d.kind == "cpu"), None)

    def _all_routes(self) -> dict[tuple[str, str], tuple[Link, ...] | None]:
        direct: dict[tuple[str, str], Link] = {}
        for link in self.links:
            direct.setdefault((link.src, link.dst), link)
            if not link.directed:
                direct.setdefault((link.dst, link.src), link)
        out: dict[tuple[str, str], tuple[Link, ...] | None] = {}
        hosts = [d.name for d in self.devices if d.kind == "cpu"]
        for a in self.devices:
            for b in self.devices:
                s, d = a.name, b.name
                if s == d:
                    out[s, d] = ()
                    continue
                if (s, d) in direct:
                    out[s, d] = (direct[s, d],)
                    continue
                out[s, d] = None
                for h in hosts:
                    if h in (s, d):
                        continue
                    first, second = direct.get((s, h)), direct.get((h, d))
                    if first and second:
                        out[s, d] = (first, second)
                        break
        return out

    def route(self, src: str | Device, dst: str | Device) -> tuple[Link, ...]:
        """Links a transfer from ``src`` to ``dst`` crosses (``()`` on the same device)."""
        s, d = self.device(src).name, self.device(dst).name
        r = self._routes[s, d]  # type: ignore[attr-defined]
        if r is None:
            msg = (
                f"platform {self.name!r}: no route from {s!r} to {d!r} "
                "(no direct link and no two-hop path through a cpu host)"
            )
            raise PlatformError(msg)
        return r  # type: ignore[no-any-return]

    def has_route(self, src: str | Device, dst: str | Device) -> bool:
        s, d = self.device(src).name, self.device(dst).name
        return self._routes[s, d] is not None  # type: ignore[attr-defined]

    # ---- presets ------------------------------------------------------------------------
    @staticmethod
    def presets() -> list[str]:
        """Names accepted by :meth:`preset` (``homogeneous-N`` stands for any N ≥ 1)."""
        files = resources.files("hetsched.costmodel").joinpath("presets")
        names = sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))
        return [*names, "homogeneous-N"]

    @classmethod
    def preset(cls, name: str = DEFAULT_PLATFORM) -> Platform:
        """A shipped platform by name, or ``homogeneous-N``."""
        if name.startswith("homogeneous-"):
            n = name.removeprefix("homogeneous-")
            if not n.isdigit() or int(n) < 1:
                msg = f"preset {name!r}: N in homogeneous-N must be an integer >= 1"
                raise PlatformError(msg)
            return cls.homogeneous(int(n))
        res = resources.files("hetsched.costmodel").joinpath("presets", f"{name}.toml")
        if not res.is_file():
            msg = f"unknown platform preset {name!r} (presets: {', '.join(cls.presets())})"
            raise PlatformError(msg)
        return cls.from_toml(res.read_text(encoding="utf-8"), source=f"preset {name}")

    @classmethod
    def homogeneous(cls, n: int, *, peak_flops: float = 1e11, bandwidth: float = 2e10) -> Platform:
        """``n`` identical cpu devices ``p0..p{n-1}`` with free (zero-time) communication.

        >>> p = Platform.homogeneous(2)
        >>> p.route("p0", "p1")[0].bandwidth
        inf
        """
        if n < 1:
            msg = f"homogeneous platform needs n >= 1, got {n}"
            raise PlatformError(msg)
        devs = tuple(
            Device(f"p{i}", "cpu", {"fp32": peak_flops}, bandwidth, launch_overhead=0.0)
            for i in range(n)
        )
        links = tuple(
            Link(f"p{i}", f"p{j}", math.inf, 0.0) for i in range(n) for j in range(i + 1, n)
        )
        return cls(f"homogeneous-{n}", devs, links, f"{n} identical processors, free comm")

    @classmethod
    def resolve(cls, spec: Platform | str | os.PathLike[str]) -> Platform:
        """What ``--platform`` and ``hetsched.solve`` take: a ``Platform`` (returned as is),
        a preset name, or a platform TOML path.

        >>> Platform.resolve("homogeneous-2").name
        'homogeneous-2'
        >>> Platform.resolve("no-such")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        hetsched.errors.PlatformError: unknown platform 'no-such': not a preset (presets: ...
        """
        if isinstance(spec, Platform):
            return spec
        if not isinstance(spec, str | os.PathLike):
            msg = f"platform must be a Platform, a preset name or a TOML path, not {spec!r}"
            raise PlatformError(msg)
        text = os.fspath(spec)
        if text.endswith(".toml") or os.sep in text or Path(text).is_file():
            return cls.load(text)
        if text.startswith("homogeneous-") or text in cls.presets():
            return cls.preset(text)
        msg = (
            f"unknown platform {text!r}: not a preset (presets: {', '.join(cls.presets())}) "
            "nor a platform TOML file"
        )
        raise PlatformError(msg)

    # ---- TOML ---------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Platform:
        """Read a platform TOML file; a preset name is accepted too."""
        p = Path(path)
        if not p.suffix and not p.exists():
            return cls.preset(str(path))
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            msg = f"{p}: no such platform file (presets: {', '.join(cls.presets())})"
            raise PlatformError(msg) from None
        except (OSError, UnicodeDecodeError) as err:
            msg = f"{p}: cannot read: {err}"
            raise PlatformError(msg) from err
        return cls.from_toml(text, source=str(p))

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<platform>") -> Platform:
        """Parse a platform TOML document (strict: unknown keys are errors)."""
        return cls.from_dict(loads(text, source=source), source=source)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *, source: str = "<platform>") -> Platform:
        fmt = doc.get("format", PLATFORM_FORMAT)
        if fmt != PLATFORM_FORMAT:
            msg = f"{source}: unsupported platform format {fmt!r} (expected {PLATFORM_FORMAT!r})"
            raise PlatformError(msg)
        unknown = set(doc) - {"format", "name", "description", "device", "link"}
        if unknown:
            msg = f"{source}: unknown top-level key {sorted(unknown)[0]!r}"
            raise PlatformError(msg)
        name = doc.get("name")
        if not isinstance(name, str) or not name:
            msg = f"{source}: missing platform 'name'"
            raise PlatformError(msg)
        dev_docs = doc.get("device", [])
        if not isinstance(dev_docs, list) or not dev_docs:
            msg = f"{source}: platform {name!r} has no devices (add [[device]] tables)"
            raise PlatformError(msg)
        devices: list[Device] = []
        groups: dict[str, list[str]] = {}
        for i, dd in enumerate(dev_docs):
            units = _parse_device(dd, i, source)
            groups[str(dd["name"])] = [u.name for u in units]
            devices += units
        links: list[Link] = []
        for i, ld in enumerate(doc.get("link", [])):
            links += _parse_link(ld, i, source, groups)
        try:
            return cls(name, tuple(devices), tuple(links), str(doc.get("description", "")))
        except PlatformError as err:
            msg = f"{source}: {err}"
            raise PlatformError(msg) from err

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"format": PLATFORM_FORMAT, "name": self.name}
        if self.description:
            doc["description"] = self.description
        doc["device"] = [_device_dict(d) for d in self.devices]
        if self.links:
            doc["link"] = [
                {"src": lk.src, "dst": lk.dst, "bandwidth": lk.bandwidth, "latency": lk.latency}
                | ({"directed": True} if lk.directed else {})
                for lk in self.links
            ]
        return doc

    def to_toml(self) -> str:
        """TOML text that :meth:`from_toml` reads back to an equal platform."""
        return dumps(self.to_dict(), header=f"hetsched platform {self.name!r}")

    # ---- variants -----------------------------------------------------------------------
    def replace_devices(self, devices: Iterable[Device]) -> Platform:
        """Same links and name with the devices of the same names replaced."""
        new = {d.name: d for d in devices}
        for n in new:
            self.device(n)
        return replace(self, devices=tuple(new.get(d.name, d) for d in self.devices))

    def with_profile(
        self, profile: str | os.PathLike[str] | Mapping[str, Any], *, device: str = "cpu"
    ) -> Platform:
        """Apply a fitted calibration profile (``hetsched calibrate``) to a device.

        ``device`` is a device name, or a kind (every device of that kind). The profile's
        fp32 peak replaces the device's; its other dtype peaks scale by the same ratio.
        Bandwidth, launch overhead, ramp time and efficiencies are replaced; name,
        capacity and supported ops are kept.
        """
        doc = profile if isinstance(profile, Mapping) else _read_profile(profile)
        targets = [d for d in self.devices if d.name == device] or [
            d for d in self.devices if d.kind == device
        ]
        if not targets:
            self.device(device)  # raises, listing valid names
        fit = doc["device"]
        out = []
        for d in targets:
            scale = fit["peak_flops"]["fp32"] / d.peak_flops.get("fp32", fit["peak_flops"]["fp32"])
            peaks = {k: v * scale for k, v in d.peak_flops.items()} | dict(fit["peak_flops"])
            out.append(replace(
                d, peak_flops=peaks, mem_bandwidth=fit["mem_bandwidth"],
                launch_overhead=fit["launch_overhead"], ramp_time=fit.get("ramp_time"),
                efficiency=fit.get("efficiency"), memory_efficiency=fit.get("memory_efficiency"),
            ))  # fmt: skip
        return self.replace_devices(out)


def _read_profile(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        msg = f"{p}: cannot read profile: {err}"
        raise PlatformError(msg) from err
    doc = loads(text, source=str(p))
    if doc.get("format") != PROFILE_FORMAT or not isinstance(doc.get("device"), dict):
        msg = f"{p}: not a {PROFILE_FORMAT} calibration profile"
        raise PlatformError(msg)
    fit = doc["device"]
    for key in ("peak_flops", "mem_bandwidth", "launch_overhead"):
        if key not in fit:
            msg = f"{p}: profile [device] is missing {key!r}"
            raise PlatformError(msg)
    if "fp32" not in fit["peak_flops"]:
        msg = f"{p}: profile [device].peak_flops needs 'fp32'"
        raise PlatformError(msg)
    return doc


def _device_dict(d: Device) -> dict[str, Any]:
    out: dict[str, Any] = {"name": d.name, "kind": d.kind, "peak_flops": dict(d.peak_flops)}
    out |= {"mem_bandwidth": d.mem_bandwidth, "mem_capacity": d.mem_capacity}
    out["launch_overhead"] = d.launch_overhead
    if d.stream_bandwidth is not None:
        out["stream_bandwidth"] = d.stream_bandwidth
    spec = d.supports.to_spec()
    if spec:
        out["supports"] = spec
    for attr in ("efficiency", "memory_efficiency"):
        if getattr(d, attr) is not None:
            out[attr] = dict(getattr(d, attr))
    if d.ramp_time is not None:
        out["ramp_time"] = d.ramp_time if isinstance(d.ramp_time, float) else dict(d.ramp_time)
    return out


def _check_fields(
    table: Mapping[str, Any], allowed: Sequence[str], required: Sequence[str], where: str
) -> None:
    """Reject unknown keys and report the first missing required key of a TOML table."""
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        msg = f"{where}: unknown field {unknown[0]!r} (expected {', '.join(allowed)})"
        raise PlatformError(msg)
    for key in required:
        if key not in table:
            msg = f"{where}: missing field {key!r}"
            raise PlatformError(msg)


def _parse_device(dd: Any, i: int, source: str) -> list[Device]:
    if not isinstance(dd, dict) or not isinstance(dd.get("name"), str) or not dd["name"]:
        msg = f"{source}: device #{i} needs a 'name'"
        raise PlatformError(msg)
    w = f"{source}: device {dd['name']!r}"
    _check_fields(dd, _DEVICE_KEYS, ("kind", "peak_flops", "mem_bandwidth"), w)
    if dd["kind"] not in KINDS:
        msg = f"{w}: unknown kind {dd['kind']!r} (expected one of {', '.join(KINDS)})"
        raise PlatformError(msg)
    count = dd.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        msg = f"{w}: count must be an integer >= 1, got {count!r}"
        raise PlatformError(msg)
    kw = {k: v for k, v in dd.items() if k not in ("name", "count", "supports")}
    sup = from_spec(dd.get("supports", {}), where=f"device {dd['name']!r}: supports")
    names = [dd["name"]] if count is None else [f"{dd['name']}{j}" for j in range(count)]
    try:
        return [Device(n, supports=sup, **kw) for n in names]
    except PlatformError as err:
        msg = f"{source}: {err}"
        raise PlatformError(msg) from err


def _parse_link(ld: Any, i: int, source: str, groups: Mapping[str, list[str]]) -> list[Link]:
    if not isinstance(ld, dict):
        msg = f"{source}: link #{i} must be a table"
        raise PlatformError(msg)
    w = f"{source}: link #{i} ({ld.get('src')!r} -> {ld.get('dst')!r})"
    _check_fields(ld, _LINK_KEYS, ("src", "dst", "bandwidth"), w)
    units = {n for g in groups.values() for n in g}
    for end in ("src", "dst"):
        if ld[end] not in groups and ld[end] not in units:
            msg = f"{w}: unknown device {ld[end]!r} (devices: {', '.join(sorted(units))})"
            raise PlatformError(msg)
    srcs = groups.get(ld["src"], [ld["src"]])
    dsts = groups.get(ld["dst"], [ld["dst"]])
    kw = {k: v for k, v in ld.items() if k not in ("src", "dst")}
    try:
        same = ld["src"] == ld["dst"] and not ld.get("directed", False)
        pairs = [(s, d) for s in srcs for d in dsts if s != d and not (same and s > d)]
        return [Link(s, d, **kw) for s, d in pairs]
    except PlatformError as err:
        msg = f"{source}: {err}"
        raise PlatformError(msg) from err
