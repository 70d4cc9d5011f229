"""What the CPU device refuses at compile although onnxruntime would build a session for it.

onnxruntime refuses most of what it cannot run when the session is created (compile turns that
into UnsupportedOperatorError or InvalidModelError). A few things it accepts, then fails or
answers wrongly at the first inference; a device must not accept what it cannot run right, so
:func:`refusal` finds them in the graph first. Each rule is cheap (one walk over the nodes, no
inference), runs only when a model is compiled (never on a cache hit), and says why.

The rules are measured against the onnxruntime version ``make install`` pins (ONNX's node tests,
tests/test_onnx_node_tests.py, show which cases each one refuses); a newer onnxruntime may lift
some.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

    from ember.plugin import Model

#: Element types the onnxruntime Python API cannot exchange with numpy (bfloat16, the float8s,
#: the 4- and 2-bit integers, float8e8m0; float4e2m1 it can): inputs of these types cannot be
#: fed, nor outputs returned ("No corresponding Numpy type", "can't be converted to MLDataType").
UNEXCHANGEABLE_TYPES = frozenset({16, 17, 18, 19, 20, 21, 22, 24, 25, 26})

Rule = Callable[["onnx.NodeProto", dict[str, "onnx.TensorProto"]], "str | None"]


def needs_graph(model: Model) -> bool:
    """Whether a rule may refuse the model, found without parsing it (then :func:`refusal`
    parses it): a port of a type that cannot be exchanged, or an operator a rule is about.

    An operator is looked for as its ``op_type`` field is written in the file (tag, length,
    name), together with what its rule is about when that is an attribute (``align_corners``
    for Resize, ``layout`` for the recurrent layers): a model without those bytes has no node a
    rule refuses; a model with them, by coincidence in its weights or not, is parsed and
    checked. A model with edits or a parsed graph is checked on its graph, which compiling it
    needs anyway.
    """
    if model.is_parsed or model.edits:
        return True
    if not UNEXCHANGEABLE_TYPES.isdisjoint(model._header.port_types.values()):
        return True
    data = model._source_bytes()
    # one pass for every operator (a search per operator reads the file eight times)
    return any(_ALSO_NEEDED.get(op) is None or _ALSO_NEEDED[op] in data
               for op in {found[2:].decode() for found in _op_markers().findall(data)})


def refusal(model: onnx.ModelProto) -> tuple[onnx.NodeProto, str] | None:
    """The first node the CPU device must refuse, and why; None when it runs the model."""
    import onnx

    graph = model.graph
    unexchangeable = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.output]
                      if v.type.tensor_type.elem_type in UNEXCHANGEABLE_TYPES}
    constants: dict[str, onnx.TensorProto] | None = None  # built for the first rule that asks
    for node in _nodes(graph):
        if unexchangeable:
            for name in [*node.input, *node.output]:
                if name in unexchangeable:
                    kind = onnx.TensorProto.DataType.Name(unexchangeable[name])
                    return node, (f"model input or output {name!r} is {kind}, which "
                                  "onnxruntime's Python API cannot exchange with numpy")
        rule = _RULES.get(node.op_type)
        if rule is None or node.domain not in ("", "ai.onnx"):
            continue
        if constants is None:
            constants = _constants(graph)
        why = rule(node, constants)
        if why:
            return node, why
    return None


def _constants(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    """The graph's initializers and Constant node values, by name."""
    found = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for attribute in node.attribute:
                if attribute.name == "value":
                    found[node.output[0]] = attribute.t
    return found


#: The default-domain operators with subgraphs (reading every node's attributes would cost
#: milliseconds on a model of a thousand nodes).
_WITH_SUBGRAPHS = frozenset({"If", "Loop", "Scan"})


def _nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for node in graph.node:
        yield node
        if node.op_type not in _WITH_SUBGRAPHS:
            continue
        for attribute in node.attribute:
            for subgraph in [attribute.g] if attribute.HasField("g") else attribute.graphs:
                yield from _nodes(subgraph)


def _attr(node: onnx.NodeProto, name: str, default: object = None) -> object:
    import onnx

    for attribute in node.attribute:
        if attribute.name == name:
            value = onnx.helper.get_attribute_value(attribute)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _given(node: onnx.NodeProto, index: int) -> bool:
    return len(node.input) > index and bool(node.input[index])


def _constant(node: onnx.NodeProto, index: int,
              constants: dict[str, onnx.TensorProto]) -> onnx.TensorProto | None:
    return constants.get(node.input[index]) if _given(node, index) else None


# -- the rules: node -> why it is refused, or None ------------------------------------------------


def _dropout(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> str | None:
    import onnx

    if not _given(node, 2):
        return None
    mode = _constant(node, 2, constants)
    if mode is not None and not onnx.numpy_helper.to_array(mode).any():
        return None
    return "training-mode Dropout draws random masks: its outputs cannot be reproduced"


def _resize(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> str | None:
    import onnx

    # With align_corners ONNX maps through the unrounded output width (scale x input), and
    # onnxruntime through the rounded one: they differ unless scale x input is whole, which only
    # constant whole-number scales guarantee (sizes are whole by definition).
    if (_attr(node, "coordinate_transformation_mode") != "align_corners"
            or _attr(node, "mode", "nearest") == "nearest" or _given(node, 3)
            or not _given(node, 2)):
        return None
    scales = _constant(node, 2, constants)
    if scales is not None:
        values = onnx.numpy_helper.to_array(scales)
        if values.size == 0 or (values == values.round()).all():
            return None
    return ("onnxruntime's align_corners uses the rounded output size where ONNX uses scale x "
            "input; give sizes or whole-number constant scales")


def _max_unpool(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> str | None:
    if _given(node, 2):
        return "onnxruntime places MaxUnpool's values wrongly when output_shape is given"
    return None


def _conv_integer(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> str | None:
    import onnx

    if not _given(node, 3):
        return None
    zero_point = _constant(node, 3, constants)
    if zero_point is not None and len(onnx.numpy_helper.to_array(zero_point).reshape(-1)) <= 1:
        return None
    return ("onnxruntime's ConvInteger takes one weight zero point (per tensor), and this one is "
            "not a constant scalar")


def _attention(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> str | None:
    if _given(node, 6):
        return "onnxruntime's Attention rejects nonpad_kv_seqlen with a 4-D attn_mask"
    if len(node.output) > 3 and node.output[3] and _attr(node, "is_causal", 0):
        return ("onnxruntime's Attention writes the lowest float, not -inf, into the masked "
                "positions of qk_matmul_output")
    return None


def _recurrent(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> str | None:
    if _attr(node, "layout", 0):
        return "onnxruntime runs recurrent layers with layout=0 only"
    return None


_RULES: dict[str, Rule] = {
    "Dropout": _dropout,
    "Resize": _resize,
    "MaxUnpool": _max_unpool,
    "ConvInteger": _conv_integer,
    "Attention": _attention,
    "LSTM": _recurrent,
    "GRU": _recurrent,
    "RNN": _recurrent,
}

#: What a rule can only refuse when present, beside its operator: an attribute's value or name.
_ALSO_NEEDED = {"Resize": b"align_corners", "LSTM": b"\x0a\x06layout",
                "GRU": b"\x0a\x06layout", "RNN": b"\x0a\x06layout"}


def _op_markers() -> re.Pattern[bytes]:
    """Each rule's operator as a NodeProto's op_type field (4) is written: tag 0x22, length,
    name (re caches the compiled pattern)."""
    return re.compile(b"|".join(re.escape(b"\x22" + bytes([len(op)]) + op.encode())
                                for op in _RULES))
