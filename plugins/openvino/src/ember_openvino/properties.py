"""The OPENVINO device's writable keys, and how each maps onto OpenVINO's CPU plugin.

The keys are OpenVINO's own, so a value reaches OpenVINO as the user wrote it, with one
deliberate difference: ``INFERENCE_PRECISION_HINT`` defaults to ``f32`` and is always passed
explicitly. OpenVINO's own default on a CPU that computes in bf16 (AVX512_BF16, AMX) is bf16,
which changes results (detections across a threshold, characters of recognised text); Ember's
devices compute in f32 unless asked otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ember.plugin import PropertyValueError

#: Writable keys with their defaults (the core fills ``config`` with them).
CONFIG_DEFAULTS: dict[str, Any] = {
    "INFERENCE_PRECISION_HINT": "f32",
    "PERFORMANCE_HINT": "LATENCY",
    "NUM_STREAMS": -1,  # -1 (AUTO): OpenVINO derives it from PERFORMANCE_HINT
    "PERFORMANCE_HINT_NUM_REQUESTS": 0,  # 0: no limit
    "INFERENCE_NUM_THREADS": 0,  # 0: OpenVINO's choice (the cores this process may use)
}
#: The keys whose values change what an exported model holds: the precision chooses the
#: kernels and the graph's conversions. Streams, threads and hints are given again at import.
CACHING_KEYS = ("INFERENCE_PRECISION_HINT",)
PRECISIONS = ("f32", "bf16", "f16")
HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
#: What a compiled model reports (``runtime_properties``), as OpenVINO resolved it.
RUNTIME_KEYS = ("NUM_STREAMS", "OPTIMAL_NUMBER_OF_INFER_REQUESTS", "INFERENCE_NUM_THREADS",
                "INFERENCE_PRECISION_HINT", "PERFORMANCE_HINT")


def openvino_config(config: Mapping[str, Any]) -> dict[str, str]:
    """OpenVINO's properties for a compile or an import, from Ember's ``config``.

    :raises PropertyValueError: a value OpenVINO's CPU plugin cannot take.
    """
    precision = str(config.get("INFERENCE_PRECISION_HINT", "f32")).lower()
    if precision not in PRECISIONS:
        raise PropertyValueError(f"OPENVINO runs {', '.join(PRECISIONS)}, "
                                 f"not INFERENCE_PRECISION_HINT={precision!r}")
    hint = str(config.get("PERFORMANCE_HINT", "LATENCY")).upper()
    if hint not in HINTS:
        raise PropertyValueError(f"PERFORMANCE_HINT must be one of {', '.join(HINTS)}, "
                                 f"not {hint!r}")
    values = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": hint}
    streams = _number(config, "NUM_STREAMS", -1, minimum=-2)
    if streams == 0:
        raise PropertyValueError("NUM_STREAMS must be a number >= 1, AUTO or NUMA, not 0")
    if streams > 0:
        values["NUM_STREAMS"] = str(streams)
    elif streams == -2:
        values["NUM_STREAMS"] = "NUMA"
    threads = _number(config, "INFERENCE_NUM_THREADS", 0, minimum=0)
    if threads:
        values["INFERENCE_NUM_THREADS"] = str(threads)
    requests = _number(config, "PERFORMANCE_HINT_NUM_REQUESTS", 0, minimum=0)
    if requests:
        values["PERFORMANCE_HINT_NUM_REQUESTS"] = str(requests)
    return values


def runtime_properties(compiled: Any) -> dict[str, Any]:
    """What OpenVINO resolved for a compiled model, as plain Python values."""
    values: dict[str, Any] = {}
    for key in RUNTIME_KEYS:
        value = compiled.get_property(key)
        if hasattr(value, "get_type_name"):  # an ov.Type: its short name, "f32"
            value = value.get_type_name()
        elif hasattr(value, "to_integer"):  # NUM_STREAMS is an ov.streams.Num
            value = value.to_integer()
        elif not isinstance(value, int | str):
            value = getattr(value, "name", str(value))  # an enum, such as the hint
        values[key] = value
    return values


def _number(config: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    value = config.get(key, default)
    if str(value).upper() in ("AUTO", "NUMA") and key == "NUM_STREAMS":
        return -1 if str(value).upper() == "AUTO" else -2
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PropertyValueError(f"{key} must be an integer >= {minimum}, not {value!r}")
    return value
