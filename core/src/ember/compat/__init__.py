"""Running code written for another inference API on Ember, unchanged.

:mod:`ember.compat.openvino` runs a program that imports ``openvino`` with Ember behind that name:
``python -m ember.compat.openvino SCRIPT [ARGS...]`` or ``python -m ember.compat.openvino -m
MODULE [ARGS...]``.
"""
