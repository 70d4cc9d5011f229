"""What OpenVINO's CPU plugin converts but does not compute as ONNX specifies: refused at compile.

A device must never accept a model and then return wrong results. OpenVINO 2026.4's ONNX front
end converts every one of the cases below, and its CPU plugin then runs them differently from the
ONNX specification (ONNX's node tests show each one; ``tests/test_onnx_node_tests.py`` keeps the
list honest). They are refused with ``UnsupportedOperatorError`` naming the node and the reason,
so the model runs on another device instead:

- element types the CPU plugin computes in another type or the Python binding cannot pass:
  float64 (computed as float32), bfloat16, the float8, float4 and 4-bit integer types;
- operators whose results depend on a rule OpenVINO does not follow: TopK's order between equal
  values, DFT, NonMaxSuppression at the IoU boundary, DynamicQuantizeLinear's rounding, and
  QuantizeLinear's with a scale computed at run time (OpenVINO multiplies by its reciprocal,
  which moves values across the half-way points of rounding), an Attention with ``is_causal``,
  Tile with repeats computed at run time (its output is garbage), and the random generators
  (Bernoulli, RandomUniform..., whose numbers are not ONNX's reference's);
- attributes of an operator OpenVINO implements another way: Resize with cubic interpolation,
  antialiasing, ``align_corners`` with linear interpolation, or ``keep_aspect_ratio_policy``;
  RoiAlign's max mode; MaxPool's ``ceil_mode``; recurrent layers in batch-major layout (``layout``
  1) and LSTM's peepholes;
- a reduction over a graph input declared with a dimension of size 0 (OpenVINO gives the type's
  lowest value where ONNX gives -inf).

The checks read the graph's nodes as ``ember.plugin.onnx_graph`` gives them, from the model's
bytes without importing ``onnx`` (whose import would cost a compile most of a second, and hold
up an application that AUTO serves meanwhile).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ember.plugin import UnsupportedOperatorError, onnx_graph

if TYPE_CHECKING:
    from ember.plugin import Model, OnnxNode

#: ONNX TensorProto element types OpenVINO's CPU plugin does not compute as themselves.
REFUSED_TYPES = {11: "float64", 16: "bfloat16", 17: "float8e4m3fn", 18: "float8e4m3fnuz",
                 19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4",
                 23: "float4e2m1", 24: "float8e8m0"}
REFUSED_OPERATORS = {
    "TopK": "OpenVINO does not keep ONNX's order between equal values",
    "DFT": "OpenVINO's DFT differs from ONNX's",
    "Bernoulli": "OpenVINO's random numbers are not ONNX's",
    "NonMaxSuppression": "OpenVINO differs from ONNX at the IoU threshold's boundary",
    "DynamicQuantizeLinear": "OpenVINO rounds differently from ONNX",
    "RandomUniform": "OpenVINO's random numbers are not ONNX's",
    "RandomUniformLike": "OpenVINO's random numbers are not ONNX's",
    "RandomNormal": "OpenVINO's random numbers are not ONNX's",
    "RandomNormalLike": "OpenVINO's random numbers are not ONNX's",
    "Multinomial": "OpenVINO's random numbers are not ONNX's",
}
_RECURRENT = ("RNN", "GRU", "LSTM")
_REDUCTIONS = ("ReduceMax", "ReduceMin", "ReduceSum", "ReduceMean", "ReduceProd", "ReduceL1",
               "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")


def check(model: Model, device_name: str) -> None:
    """Raise ``UnsupportedOperatorError`` for the first node OpenVINO would run wrongly.

    :raises InvalidModelError: the model's bytes are not a well-formed ONNX graph.
    """
    graph = onnx_graph(model)
    for node in graph.walk():
        reason = _refusal(node, graph.value_types, graph.empty_inputs, graph.constants)
        if reason:
            raise UnsupportedOperatorError(device_name, node.op_type,
                                           node.name or next(iter(node.outputs), ""),
                                           node.domain, reason)


def _refusal(node: OnnxNode, types: dict[str, int], empty: frozenset[str],
             constants: frozenset[str]) -> str:
    if node.domain not in ("", "ai.onnx"):
        return ""
    attributes = node.attributes
    for name in (*node.inputs, *node.outputs):
        if types.get(name) in REFUSED_TYPES:
            return f"OpenVINO's CPU plugin does not compute {REFUSED_TYPES[types[name]]} as such"
    for key in ("to", "output_dtype"):
        kind = attributes.get(key)
        if isinstance(kind, int) and kind in REFUSED_TYPES:
            return f"OpenVINO's CPU plugin does not compute {REFUSED_TYPES[kind]}"
    op = node.op_type
    if op in REFUSED_OPERATORS:
        return REFUSED_OPERATORS[op]
    if op == "Resize":
        mode = attributes.get("mode", "nearest")
        if (mode == "cubic" or attributes.get("antialias", 0)
                or attributes.get("keep_aspect_ratio_policy", "stretch") != "stretch"
                or (mode == "linear"
                    and attributes.get("coordinate_transformation_mode") == "align_corners")):
            return "OpenVINO's Resize differs from ONNX's with these attributes"
    if op == "RoiAlign" and attributes.get("mode", "avg") == "max":
        return "OpenVINO's RoiAlign max mode differs from ONNX's"
    if op == "MaxPool" and attributes.get("ceil_mode", 0):
        return "OpenVINO's output size with ceil_mode differs from ONNX's"
    if op in _RECURRENT and attributes.get("layout", 0):
        return "OpenVINO runs recurrent layers batch-major (layout 1) differently from ONNX"
    if op == "LSTM" and len(node.inputs) > 7 and node.inputs[7]:
        return "OpenVINO's LSTM differs from ONNX's with peepholes"
    if op == "Attention" and attributes.get("is_causal", 0):
        return "OpenVINO's causal Attention differs from ONNX's"
    if op == "Tile" and len(node.inputs) > 1 and node.inputs[1] not in constants:
        return "OpenVINO's Tile with repeats computed at run time gives wrong values"
    if op == "QuantizeLinear" and len(node.inputs) > 1 and node.inputs[1] not in constants:
        return ("OpenVINO multiplies by the reciprocal of a scale computed at run time, which "
                "rounds some values to the other side")
    if op in _REDUCTIONS and node.inputs and node.inputs[0] in empty:
        return "OpenVINO reduces an empty input to another value than ONNX"
    return ""
