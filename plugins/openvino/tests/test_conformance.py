"""OPENVINO against Ember's conformance suite with two streams (PERFORMANCE_HINT=THROUGHPUT):
tests/test_conformance_matrix.py runs the suite over every zoo model and cache mode with the
defaults (one stream, f32), so here the zoo is cut to two real models, to keep CI short."""

import pytest

from ember.testing.suite import DeviceConformance


class TestOpenVinoConformance(DeviceConformance):
    @pytest.fixture
    def device_name(self):
        return "OPENVINO"

    @pytest.fixture
    def device_config(self):
        return {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": 2}

    @pytest.mark.parametrize("mode", ["off", "warm"])
    @pytest.mark.parametrize("model_name", ["ppocr-cls", "silero-vad-openvino"])
    def test_zoo(self, request, device_name, model_name, mode, device_config, claimed_operators,
                 required_models, tmp_path):
        super().test_zoo(request, device_name, model_name, mode, device_config,
                         claimed_operators, required_models, tmp_path)
