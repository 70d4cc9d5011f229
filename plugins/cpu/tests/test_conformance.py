"""CPU against Ember's conformance suite, with onnxruntime's ALL optimisation level (whose saved
graphs hold hardware-specific nodes); tests/test_conformance_matrix.py runs it with the defaults."""

import pytest

from ember.testing.suite import DeviceConformance


class TestCpuConformance(DeviceConformance):
    @pytest.fixture
    def device_name(self):
        return "CPU"

    @pytest.fixture
    def device_config(self):
        return {"GRAPH_OPTIMIZATION_LEVEL": "ALL"}
