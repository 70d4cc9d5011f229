"""ember-openvino: Ember's OPENVINO device, on OpenVINO's CPU plugin."""
