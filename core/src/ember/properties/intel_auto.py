"""OpenVINO's ``openvino.properties.intel_auto``: the AUTO device's switches."""

from __future__ import annotations

from ember.properties import ENABLE_STARTUP_FALLBACK
from ember.properties._property import Property

enable_startup_fallback = Property(ENABLE_STARTUP_FALLBACK)
