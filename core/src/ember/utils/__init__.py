"""``ember.utils``: OpenVINO's ``openvino.utils`` helpers that model preparation uses."""
