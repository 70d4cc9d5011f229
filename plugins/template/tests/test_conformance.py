"""TEMPLATE against Ember's conformance suite, with DISABLE_TRANSFORMATIONS (the plan follows the
ONNX graph node by node); tests/test_conformance_matrix.py runs it with the defaults."""

import pytest

from ember.testing.suite import DeviceConformance
from ember_template.kernels import KERNELS


class TestTemplateConformance(DeviceConformance):
    @pytest.fixture
    def device_name(self):
        return "TEMPLATE"

    @pytest.fixture
    def device_config(self):
        return {"DISABLE_TRANSFORMATIONS": True}

    @pytest.fixture
    def claimed_operators(self):
        # Every operator with a kernel: a zoo model made only of these must compile.
        return frozenset(KERNELS)
