"""``ember.opset``: OpenVINO's graph-building functions, each making ONNX operators.

``ember.opset10`` ... ``ember.opset13`` are this same module under OpenVINO's names (OpenVINO's
opsets differ in a few signatures, which these functions accept in both spellings, such as
``interpolate``'s). A graph is built from :class:`ember.Node` objects without onnx; ``ember.Model(
results, parameters, name)`` turns it into an ONNX model (see :mod:`ember.model.graph_onnx`). Where
ONNX takes an attribute and OpenVINO an input (``gather``'s axis, ``transpose``'s order), that input
must be a constant.
"""

from ember.opset.ops import (
    abs,
    add,
    ceiling,
    clamp,
    concat,
    constant,
    convert,
    divide,
    equal,
    exp,
    floor,
    gather,
    greater,
    if_op,
    interpolate,
    less,
    log,
    maximum,
    minimum,
    multiply,
    pad,
    parameter,
    power,
    range,
    relu,
    reshape,
    result,
    round,
    select,
    shape_of,
    sigmoid,
    slice,
    softmax,
    sqrt,
    squeeze,
    subtract,
    topk,
    transpose,
    unsqueeze,
)

__all__ = [
    "abs", "add", "ceiling", "clamp", "concat", "constant", "convert", "divide", "equal", "exp",
    "floor", "gather", "greater", "if_op", "interpolate", "less", "log", "maximum", "minimum",
    "multiply", "pad", "parameter", "power", "range", "relu", "reshape", "result", "round",
    "select", "shape_of", "sigmoid", "slice", "softmax", "sqrt", "squeeze", "subtract",
    "topk", "transpose", "unsqueeze",
]
