"""Helpers for testing Ember and its device plugins: small real models and reference outputs."""

from ember.testing.models import cnn, mlp, ppocr_cls_path, random_inputs
from ember.testing.reference import reference_outputs

__all__ = ["cnn", "mlp", "ppocr_cls_path", "random_inputs", "reference_outputs"]
