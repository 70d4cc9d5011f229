"""OpenVINO's ``openvino.properties.device``: what a device is, and AUTO's priorities."""

from __future__ import annotations

from ember.properties import (
    DEVICE_ARCHITECTURE,
    DEVICE_PRIORITIES,
    FULL_DEVICE_NAME,
    OPTIMIZATION_CAPABILITIES,
)
from ember.properties._property import Property


class Capability:
    """The strings OPTIMIZATION_CAPABILITIES lists."""

    FP32 = "FP32"
    FP16 = "FP16"
    BF16 = "BF16"
    INT8 = "INT8"
    EXPORT_IMPORT = "EXPORT_IMPORT"


full_name = Property(FULL_DEVICE_NAME)
architecture = Property(DEVICE_ARCHITECTURE)
capabilities = Property(OPTIMIZATION_CAPABILITIES)
priorities = Property(DEVICE_PRIORITIES)
