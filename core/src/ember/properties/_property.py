"""``Property``: a key that is also OpenVINO's property helper function.

``Property("CACHE_DIR")`` is the string ``"CACHE_DIR"``; called with no argument it returns that
key, called with a value it returns the ``(key, value)`` pair OpenVINO's helpers return.
"""

from __future__ import annotations

import enum
from typing import Any


class Property(str):
    """A property key that can be called as OpenVINO's helper of the same name."""

    def __call__(self, *value: Any) -> Any:
        if not value:
            return str(self)
        if len(value) == 1:
            return str(self), value[0]
        return str(self), ",".join(map(str, value))  # device.priorities("GPU", "CPU")


class StrEnum(str, enum.Enum):
    """An OpenVINO enum whose members equal the strings Ember stores (``THROUGHPUT``)."""

    def __str__(self) -> str:
        return str(self.value)


class CacheMode(StrEnum):
    """OpenVINO's ``openvino.properties.CacheMode``: what ``CACHE_MODE`` takes and returns."""

    OPTIMIZE_SPEED = "OPTIMIZE_SPEED"
    OPTIMIZE_SIZE = "OPTIMIZE_SIZE"
