"""OpenVINO's performance hints, streams and property values, for every device.

Three things, each done here once:

- the hint keys (``PERFORMANCE_HINT``, ``NUM_STREAMS``, ``PERFORMANCE_HINT_NUM_REQUESTS``,
  ``INFERENCE_PRECISION_HINT``, ``EXECUTION_MODE_HINT``) are writable on every device: a plugin
  that does not declare one gets it with OpenVINO's default (:func:`with_generic_defaults`), so
  code written for OpenVINO compiles unchanged on any device; a plugin that declares one acts on
  it;
- property values are taken in the forms OpenVINO accepts (:func:`normalize`): numbers as
  strings (``"2"``), ``"YES"``/``"NO"`` for booleans, ``ov.Type`` and enum members, and
  ``"AUTO"`` for ``NUM_STREAMS``; hint values are checked here;
- a compiled model's ``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` (:func:`runtime_properties`): what the
  device model reports in its optional ``runtime_properties`` mapping, else the number of
  streams asked for, else 1.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Mapping
from typing import Any

from ember import properties as props
from ember.errors import PropertyValueError

#: Hint keys every device accepts, with OpenVINO's defaults.
GENERIC_DEFAULTS: dict[str, Any] = {
    props.PERFORMANCE_HINT: "LATENCY",
    props.PERFORMANCE_HINT_NUM_REQUESTS: 0,
    props.NUM_STREAMS: -1,
    props.INFERENCE_PRECISION_HINT: "f32",
    props.EXECUTION_MODE_HINT: "PERFORMANCE",
}
_TRUE = ("YES", "TRUE", "ON", "1")
_FALSE = ("NO", "FALSE", "OFF", "0")
_STREAM_NAMES = {"AUTO": -1, "NUMA": -2}


def with_generic_defaults(defaults: Mapping[str, Any]) -> dict[str, Any]:
    """A device's writable keys with the hint keys it does not declare added."""
    return {**defaults, **{k: v for k, v in GENERIC_DEFAULTS.items() if k not in defaults}}


def normalize(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Property values in the form plugins receive: plain string keys, and each value of the
    default's type when OpenVINO's spelling of it was given.

    :raises PropertyValueError: a hint key with a value it cannot take.
    """
    return {str(key): normalize_value(str(key), value, defaults.get(key))
            for key, value in values.items()}


def normalize_value(key: str, value: Any, default: Any = None) -> Any:
    if isinstance(value, enum.Enum):
        value = value.value
    types = sys.modules.get("ember.types")  # no ov.Type exists unless ember.types was imported
    if types is not None and isinstance(value, types.Type):
        value = value.get_type_name()
    if key == props.PERFORMANCE_HINT:
        value = str(value).upper() or "LATENCY"
        if value not in props.PERFORMANCE_MODES:
            raise PropertyValueError(
                f"PERFORMANCE_HINT must be one of {', '.join(props.PERFORMANCE_MODES)}, "
                f"not {value!r}")
        return value
    if key == props.EXECUTION_MODE_HINT:
        value = str(value).upper()
        if value not in props.EXECUTION_MODES:
            raise PropertyValueError(
                f"EXECUTION_MODE_HINT must be one of {', '.join(props.EXECUTION_MODES)}, "
                f"not {value!r}")
        return value
    if key == props.NUM_STREAMS:
        value = _STREAM_NAMES.get(str(value).upper(), value)
        return _integer(key, value, minimum=-2)
    if key == props.PERFORMANCE_HINT_NUM_REQUESTS:
        return _integer(key, value, minimum=0)
    if key == props.INFERENCE_PRECISION_HINT:
        from ember.types import type_name

        try:
            return type_name(value)
        except ValueError:
            raise PropertyValueError(f"INFERENCE_PRECISION_HINT must be an element type "
                                     f"(f32, f16, bf16...), not {value!r}") from None
    if isinstance(default, bool) and isinstance(value, str):
        if value.upper() in _TRUE:
            return True
        if value.upper() in _FALSE:
            return False
    elif isinstance(default, int) and not isinstance(default, bool) and isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").isdigit():
            return int(text)
    return value


def _integer(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool):
        raise PropertyValueError(f"{key} takes a number, not {value!r}")
    try:
        number = int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise PropertyValueError(f"{key} takes a number, not {value!r}") from None
    if number < minimum:
        raise PropertyValueError(f"{key} must be >= {minimum}, not {number}")
    return number


def runtime_properties(device_model: object, config: Mapping[str, Any]) -> dict[str, Any]:
    """Read-only properties of a compiled model that depend on how it runs."""
    streams = config.get(props.NUM_STREAMS, -1)
    requests = streams if isinstance(streams, int) and streams > 0 else 1
    values: dict[str, Any] = {props.OPTIMAL_NUMBER_OF_INFER_REQUESTS: requests}
    reported = getattr(device_model, "runtime_properties", None)
    if isinstance(reported, Mapping):
        values.update(reported)
    limit = config.get(props.PERFORMANCE_HINT_NUM_REQUESTS, 0)
    if isinstance(limit, int) and limit > 0:
        values[props.OPTIMAL_NUMBER_OF_INFER_REQUESTS] = min(
            values[props.OPTIMAL_NUMBER_OF_INFER_REQUESTS], limit)
    return values
