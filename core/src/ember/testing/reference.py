"""Expected outputs from ONNX's own reference implementation, the oracle for every device.

The implementation (``onnx.reference`` with BatchNormalization in inference mode) lives in
``ember.onnx_reference``, where production code (the GPU device's constant folding) uses it too.
"""

from __future__ import annotations

from ember.onnx_reference import BatchNormalization, reference_outputs

__all__ = ["BatchNormalization", "reference_outputs"]
