"""OPENVINO against Ember's conformance suite, with its defaults (f32, LATENCY);
tests/test_conformance_matrix.py runs it over the model zoo and the cache modes too."""

import pytest

from ember.testing.suite import DeviceConformance


class TestOpenVinoConformance(DeviceConformance):
    @pytest.fixture
    def device_name(self):
        return "OPENVINO"
