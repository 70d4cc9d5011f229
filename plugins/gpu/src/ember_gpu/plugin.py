"""The GPU device's hooks: discovery of OpenCL devices.

This first version lists the OpenCL devices pyopencl can see and describes them; lowering models
to OpenCL kernels lands with the GPU issue, so ``compile`` says so instead of failing obscurely.
pyopencl is imported inside the hooks, never at plugin load.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from ember import hookimpl
from ember import properties as props
from ember.errors import NotSupportedError
from ember.model import Model

DEVICE_PREFIX = "GPU"


@cache
def _opencl_devices() -> tuple[Any, ...]:
    """OpenCL devices, GPUs first; empty when pyopencl or an OpenCL platform is missing."""
    try:
        import pyopencl as cl

        devices = [d for platform in cl.get_platforms() for d in platform.get_devices()]
    except Exception:  # no ICD loader, no platform: the device is simply absent
        return ()
    gpu_type = cl.device_type.GPU
    return tuple(sorted(devices, key=lambda d: 0 if d.type & gpu_type else 1))


@hookimpl
def list_devices() -> Sequence[str]:
    return [f"{DEVICE_PREFIX}.{i}" for i in range(len(_opencl_devices()))]


def _index(device_name: str) -> int | None:
    prefix, _, index = device_name.partition(".")
    if prefix != DEVICE_PREFIX or not index.isdigit() or int(index) >= len(_opencl_devices()):
        return None
    return int(index)


@hookimpl
def supported_metrics(device_name: str) -> Mapping[str, Any] | None:
    index = _index(device_name)
    if index is None:
        return None
    device = _opencl_devices()[index]
    return {
        props.FULL_DEVICE_NAME: f"{device.name.strip()} (OpenCL, {device.platform.name.strip()})",
        props.DEVICE_ARCHITECTURE: f"{device.vendor.strip()}/{device.driver_version.strip()}",
        props.OPTIMIZATION_CAPABILITIES: ["FP32"],
        props.SUPPORTED_CONFIG_KEYS: {},
    }


@hookimpl
def compile(model: Model, device_name: str) -> None:
    if _index(device_name) is None:
        return None
    raise NotSupportedError(
        f"{device_name}: this ember-gpu lists OpenCL devices but cannot compile models yet"
    )
