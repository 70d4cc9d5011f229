"""Property values as OpenVINO's getters return them.

Ember keeps property values as plain strings (what plugins receive and the cache key holds);
``get_property`` hands them out as OpenVINO does: a ``Type`` for a precision, an enum member for
a mode (``hint.PerformanceMode.LATENCY``). Both still equal the string (``Type.f32 == "f32"``,
``PerformanceMode.LATENCY == "LATENCY"``), and ``set_property`` takes either form.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ember import properties as props

#: Keys whose values are element types.
_PRECISIONS = frozenset({props.INFERENCE_PRECISION_HINT})
#: Keys whose values are members of one of OpenVINO's enums: (module, enum).
_ENUMS: dict[str, tuple[str, str]] = {
    props.PERFORMANCE_HINT: ("ember.properties.hint", "PerformanceMode"),
    props.EXECUTION_MODE_HINT: ("ember.properties.hint", "ExecutionMode"),
    props.CACHE_MODE: ("ember.properties._property", "CacheMode"),
}


def as_returned(key: str, value: Any) -> Any:
    """``value`` of property ``key`` in the type OpenVINO's ``get_property`` returns; a value
    that type cannot hold (such as an unset ``""``) is returned as it is."""
    if key in _PRECISIONS:
        from ember.types import Type

        try:
            return Type(value)
        except ValueError:
            return value
    where = _ENUMS.get(key)
    if where is None:
        return value
    enum = getattr(import_module(where[0]), where[1])
    try:
        return enum(value)
    except ValueError:
        return value
