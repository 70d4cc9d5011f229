"""The one place that imports pyopencl: which OpenCL devices exist, their identity, contexts.

Nothing here runs when ``ember_gpu`` is imported. The devices are listed the first time Ember asks
(``list_devices``); a context and a command queue are created the first time a model is compiled
for a device. Both are kept for the life of the process.

Order: GPUs first, then accelerators, then every other OpenCL device (a CPU runtime such as PoCL),
each group in platform order, so that ``GPU.0`` is a real GPU whenever the machine has one and a
machine without one still runs models on its CPU through OpenCL.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cache
from types import ModuleType
from typing import Any

#: What to install when no OpenCL device is found.
INSTALL_HINT = (
    "install an OpenCL driver: your GPU vendor's, or PoCL for the CPU with "
    "`pip install pocl-binary-distribution` (no root needed)"
)

_TYPE_ORDER = ("GPU", "ACCELERATOR")
_contexts_lock = threading.Lock()


class OpenCLDevice:
    """One OpenCL device as Ember sees it: what it is, and everything its binaries depend on."""

    __slots__ = ("driver_version", "extensions", "handle", "kind", "name", "ordinal",
                 "platform_name", "platform_version", "vendor", "version")

    def __init__(self, ordinal: int, name: str, kind: str, vendor: str, version: str,
                 driver_version: str, platform_name: str, platform_version: str,
                 extensions: frozenset[str], handle: Any) -> None:
        self.ordinal = ordinal  # N of GPU.N
        self.name = name
        self.kind = kind  # "GPU", "CPU", "ACCELERATOR" or "OTHER"
        self.vendor = vendor
        self.version = version  # "OpenCL 3.0 PoCL HSTR: ..."
        self.driver_version = driver_version
        self.platform_name = platform_name
        self.platform_version = platform_version
        self.extensions = extensions
        self.handle = handle  # the pyopencl.Device

    @property
    def full_name(self) -> str:
        return f"{self.name} (OpenCL {self.kind} device, {self.platform_name})"

    @property
    def architecture(self) -> str:
        return f"{self.vendor}/{self.name}/{self.driver_version}"

    @property
    def has_fp64(self) -> bool:
        return "cl_khr_fp64" in self.extensions

    def identity(self) -> dict[str, str]:
        """Everything a compiled binary depends on, besides its source and build options."""
        return {
            "platform": self.platform_name,
            "platform_version": self.platform_version,
            "device": self.name,
            "device_version": self.version,
            "vendor": self.vendor,
            "driver": self.driver_version,
        }


def pyopencl() -> ModuleType:
    """pyopencl, imported on first use."""
    import pyopencl as cl

    return cl


def _kind(cl: ModuleType, device: Any) -> str:
    for kind in ("GPU", "ACCELERATOR", "CPU"):
        if device.type & getattr(cl.device_type, kind):
            return kind
    return "OTHER"


def device_order(kinds: Sequence[str]) -> list[int]:
    """The positions of devices of these kinds in listing order: GPUs first, then accelerators,
    then the rest (PoCL's CPU device), each kind in the platforms' own order."""
    return sorted(range(len(kinds)), key=lambda i: (
        _TYPE_ORDER.index(kinds[i]) if kinds[i] in _TYPE_ORDER else len(_TYPE_ORDER)))


@cache
def _discover() -> tuple[tuple[OpenCLDevice, ...], str | None]:
    """The devices, and why there are none (with what to install) when there are none."""
    try:
        cl = pyopencl()
    except ImportError as exc:
        return (), (f"pyopencl cannot be imported ({exc}); `pip install pyopencl`, "
                    f"then {INSTALL_HINT}")
    try:
        found = [d for platform in cl.get_platforms() for d in platform.get_devices()]
    except Exception as exc:  # no ICD loader, no platform: the device is simply absent
        return (), f"OpenCL found no platform ({exc}); {INSTALL_HINT}"
    if not found:
        return (), f"OpenCL platforms list no device; {INSTALL_HINT}"
    kinds = [_kind(cl, d) for d in found]
    order = device_order(kinds)
    devices = tuple(
        OpenCLDevice(
            ordinal=position,
            name=found[i].name.strip(),
            kind=kinds[i],
            vendor=found[i].vendor.strip(),
            version=found[i].version.strip(),
            driver_version=found[i].driver_version.strip(),
            platform_name=found[i].platform.name.strip(),
            platform_version=found[i].platform.version.strip(),
            extensions=frozenset(found[i].extensions.split()),
            handle=found[i],
        )
        for position, i in enumerate(order)
    )
    return devices, None


def devices() -> tuple[OpenCLDevice, ...]:
    """Every OpenCL device, GPUs first; empty when pyopencl, a driver or a platform is missing."""
    return _discover()[0]


def absence_reason() -> str | None:
    """Why no GPU device is listed, and what to install; None when there is one."""
    return _discover()[1]


class Runtime:
    """A device with its context and in-order command queue."""

    __slots__ = ("context", "device", "queue")

    def __init__(self, device: OpenCLDevice, context: Any, queue: Any) -> None:
        self.device = device
        self.context = context
        self.queue = queue


_runtimes: dict[int, Runtime] = {}


def runtime(device: OpenCLDevice) -> Runtime:
    """The context and queue of a device, created once per process."""
    found = _runtimes.get(device.ordinal)
    if found is not None:
        return found
    with _contexts_lock:
        found = _runtimes.get(device.ordinal)
        if found is None:
            cl = pyopencl()
            context = cl.Context([device.handle])
            found = Runtime(device, context, cl.CommandQueue(context))
            _runtimes[device.ordinal] = found
    return found
