"""The operators the GPU device supports, by ONNX name.

Only names here, so that listing them (``SUPPORTED_OPERATORS``, asked at every compile) imports
no operator definition: those are in ``ops.registry`` (``DEVICE_OPS``), imported when a model is
lowered. ``tests/test_gpu_operators.py`` checks that the names and the registry agree.
"""

from __future__ import annotations

#: Operators with device code (``registry.DEVICE_OPS``).
DEVICE_OP_NAMES = frozenset({
    "Abs", "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Conv",
    "ConvTranspose", "Div", "Dropout", "Equal", "Erf", "Exp", "Expand", "Flatten", "Gather",
    "Gemm", "GlobalAveragePool", "GlobalMaxPool", "Greater", "HardSigmoid", "HardSwish",
    "Identity", "LeakyRelu", "Less", "Log", "MatMul", "Max", "MaxPool", "Min", "Mul", "Neg",
    "Not", "Pad", "Pow", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceSum", "Relu", "Reshape",
    "Resize", "Sigmoid", "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub", "Tanh", "Tile",
    "Transpose", "Unsqueeze", "Where",
})

#: Operators whose outputs are always known at compile time: they never reach the device.
HOST_ONLY_OPS = frozenset({"Constant", "Shape", "Size", "ConstantOfShape", "Range"})

#: Operators replaced while lowering: If by the branch its known condition takes, recurrent
#: layers by their unrolled steps (``lowering.py``, ``recurrent.py``).
EXPANDED_OPS = frozenset({"If", "LSTM", "GRU", "RNN"})

SUPPORTED_OPS = DEVICE_OP_NAMES | HOST_ONLY_OPS | EXPANDED_OPS
