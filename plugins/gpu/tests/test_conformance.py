"""GPU against Ember's conformance suite (every zoo model in every cache mode), with
DISABLE_TRANSFORMATIONS (one kernel per node, no folding); tests/test_conformance_matrix.py runs it
with the defaults."""

import pytest

from ember.testing.suite import DeviceConformance


class TestGpuConformance(DeviceConformance):
    @pytest.fixture
    def device_name(self, gpu_device):
        return gpu_device

    @pytest.fixture
    def device_config(self):
        return {"DISABLE_TRANSFORMATIONS": True}
