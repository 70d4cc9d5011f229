"""The GPU device's hooks: OpenCL devices, described and compiled for.

Each hook checks the device name first and returns None for another plugin's device. pyopencl
is imported inside the hooks (``opencl.py``), never when the plugin is loaded; onnx when a model
is compiled. The device has no EXPORT_IMPORT: with ``CACHE_DIR`` set, the core hands ``compile``
a kernel cache handle instead, and the compiled OpenCL programs are stored there as
``.cl_cache`` entries (``kernel_store.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ember import properties as props
from ember.plugin import Model, PropertyValueError, hookimpl
from ember_gpu import opencl

if TYPE_CHECKING:
    from ember.plugin import KernelCache
    from ember_gpu.compiled_model import GpuCompiledModel

#: The version of Ember's plugin contract (ember.contract.hookspecs) this plugin was written for.
EMBER_CONTRACT_VERSION = 1

DEVICE_PREFIX = "GPU"

#: Compile options with their defaults. DISABLE_TRANSFORMATIONS (as in OpenVINO's template
#: plugin) runs the graph node by node: no BatchNormalization folding, no fused kernels.
CONFIG_DEFAULTS: dict[str, Any] = {
    "DISABLE_TRANSFORMATIONS": False,
    "INFERENCE_PRECISION_HINT": "f32",
}


def _device(device_name: str) -> opencl.OpenCLDevice | None:
    prefix, dot, index = device_name.partition(".")
    if prefix != DEVICE_PREFIX or not dot or not index.isdigit():
        return None
    devices = opencl.devices()
    return devices[int(index)] if int(index) < len(devices) else None


@hookimpl
def list_devices() -> Sequence[str]:
    return [f"{DEVICE_PREFIX}.{i}" for i in range(len(opencl.devices()))]


@hookimpl
def explain_absence(device_kind: str) -> str | None:
    return opencl.absence_reason() if device_kind == DEVICE_PREFIX else None


@hookimpl
def supported_metrics(device_name: str) -> Mapping[str, Any] | None:
    device = _device(device_name)
    if device is None:
        return None
    from ember_gpu.ops import SUPPORTED_OPS

    return {
        props.FULL_DEVICE_NAME: device.full_name,
        props.DEVICE_ARCHITECTURE: device.architecture,
        props.OPTIMIZATION_CAPABILITIES: ["FP32"],
        props.SUPPORTED_CONFIG_KEYS: dict(CONFIG_DEFAULTS),
        props.CACHING_PROPERTIES: [props.DEVICE_ARCHITECTURE, "DISABLE_TRANSFORMATIONS"],
        props.SUPPORTED_OPERATORS: sorted(SUPPORTED_OPS),
        "OPENCL_DEVICE_TYPE": device.kind,
        "OPENCL_PLATFORM": f"{device.platform_name} ({device.platform_version})",
    }


# the "compile" hook, under a name that does not shadow the built-in compile()
@hookimpl(specname="compile")
def compile_model(model: Model, device_name: str, config: Mapping[str, Any],
                  cache: KernelCache | None) -> GpuCompiledModel | None:
    device = _device(device_name)
    if device is None:
        return None
    precision = config.get("INFERENCE_PRECISION_HINT", "f32")
    if precision not in ("f32", "FP32"):
        raise PropertyValueError(f"{device_name} runs f32 only; "
                                 f"INFERENCE_PRECISION_HINT={precision!r}")
    disable = config.get("DISABLE_TRANSFORMATIONS", False)
    if not isinstance(disable, bool):
        raise PropertyValueError(f"DISABLE_TRANSFORMATIONS takes True or False, not {disable!r}")
    from ember_gpu.compiled_model import GpuCompiledModel

    return GpuCompiledModel(model, device_name, device, not disable, cache)
