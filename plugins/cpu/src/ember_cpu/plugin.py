"""The CPU device's hooks. onnxruntime is imported on first use, never at plugin load."""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from ember import hookimpl
from ember import properties as props
from ember.model import Model
from ember_cpu.compiled_model import CpuCompiledModel

DEVICE_NAME = "CPU"

CONFIG_DEFAULTS: dict[str, Any] = {"INFERENCE_NUM_THREADS": 0}


@hookimpl
def list_devices() -> Sequence[str]:
    return [DEVICE_NAME]


@cache
def _cpu_brand() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@hookimpl
def supported_metrics(device_name: str) -> Mapping[str, Any] | None:
    if device_name != DEVICE_NAME:
        return None
    import onnxruntime

    return {
        props.FULL_DEVICE_NAME: _cpu_brand(),
        props.DEVICE_ARCHITECTURE: f"{platform.machine()}-onnxruntime{onnxruntime.__version__}",
        props.OPTIMIZATION_CAPABILITIES: ["FP32"],
        props.SUPPORTED_CONFIG_KEYS: dict(CONFIG_DEFAULTS),
        props.CACHING_PROPERTIES: [props.DEVICE_ARCHITECTURE],
    }


@hookimpl
def compile(model: Model, device_name: str, config: Mapping[str, Any]) -> CpuCompiledModel | None:
    if device_name != DEVICE_NAME:
        return None
    return CpuCompiledModel.build(model, int(config["INFERENCE_NUM_THREADS"]))
