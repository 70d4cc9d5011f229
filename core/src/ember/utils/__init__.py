"""OpenVINO's ``openvino.utils``: helpers applications call beside the API (see
:mod:`ember.utils.types`)."""
