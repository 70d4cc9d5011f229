"""OpenVINO's ``openvino.properties.hint``: performance hints and precisions."""

from __future__ import annotations

from ember.properties import (
    EXECUTION_MODE_HINT,
    INFERENCE_PRECISION_HINT,
    PERFORMANCE_HINT,
    PERFORMANCE_HINT_NUM_REQUESTS,
)
from ember.properties._property import Property, StrEnum


class PerformanceMode(StrEnum):
    LATENCY = "LATENCY"
    THROUGHPUT = "THROUGHPUT"
    CUMULATIVE_THROUGHPUT = "CUMULATIVE_THROUGHPUT"


class ExecutionMode(StrEnum):
    PERFORMANCE = "PERFORMANCE"
    ACCURACY = "ACCURACY"


performance_mode = Property(PERFORMANCE_HINT)
inference_precision = Property(INFERENCE_PRECISION_HINT)
num_requests = Property(PERFORMANCE_HINT_NUM_REQUESTS)
execution_mode = Property(EXECUTION_MODE_HINT)
