"""An ONNX graph as OpenVINO's ordered ops: ``Parameter`` per graph input, ``Constant`` per
initializer, one node per operator (named as ONNX names it: Gemm stays Gemm, where OpenVINO's
ONNX reader would show its own decomposition), ``Result`` per graph output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ember.model.graph import Node, Output

if TYPE_CHECKING:
    import onnx


class _Initializer(Node):
    """A Constant whose data is decoded when asked for (weights can be large)."""

    def __init__(self, tensor: onnx.TensorProto, dtype: np.dtype) -> None:
        shape = tuple(int(d) for d in tensor.dims)
        super().__init__("Constant", [], {"element_type": _type_name(dtype), "shape": list(shape)},
                         [(dtype, shape)], tensor.name)
        self._tensor = tensor
        self.output_names = [tensor.name]

    def get_data(self) -> np.ndarray:
        from onnx import numpy_helper

        return numpy_helper.to_array(self._tensor)


def _type_name(dtype: np.dtype) -> str:
    from ember.types import Type

    try:
        return Type(dtype).get_type_name()
    except ValueError:
        return str(dtype)


def _dtype(elem_type: int) -> np.dtype:
    from onnx import helper

    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type or 1))
    except (KeyError, TypeError, ValueError):
        return np.dtype(np.float32)


def _value_types(proto: onnx.ModelProto) -> dict[str, tuple[np.dtype, tuple[Any, ...] | None]]:
    from onnx import shape_inference

    try:
        graph = shape_inference.infer_shapes(proto).graph
    except Exception:  # shape inference is a nicety: a model it fails on still lists
        graph = proto.graph
    types = {}
    for info in (*graph.input, *graph.value_info, *graph.output):
        tensor_type = info.type.tensor_type
        dims = None
        if tensor_type.HasField("shape"):
            dims = tuple(d.dim_value if d.HasField("dim_value") else
                         (d.dim_param or None) for d in tensor_type.shape.dim)
        types[info.name] = (_dtype(tensor_type.elem_type), dims)
    return types


def _attribute(attribute: onnx.AttributeProto) -> Any:
    from onnx import helper, numpy_helper

    value = helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode("utf-8", "replace") for v in value]
    if attribute.type == attribute.TENSOR:
        return numpy_helper.to_array(value)
    if attribute.type in (attribute.GRAPH, attribute.GRAPHS):
        return f"<graph {getattr(value, 'name', '')}>"
    return value


def ordered_ops(proto: onnx.ModelProto) -> list[Node]:
    """Every op of the graph in an order where each comes after its inputs. An operator's node
    keeps its NodeProto and the model's opsets (``onnx``, ``opsets``), so that a model built
    from it (``Model(results, model.get_parameters())``) writes it back as it was."""
    graph = proto.graph
    opsets = {o.domain or "": int(o.version) for o in proto.opset_import}
    types = _value_types(proto)
    produced: dict[str, Output] = {}
    ops: list[Node] = []
    initializers = {t.name for t in graph.initializer}
    for info in graph.input:
        if info.name in initializers:
            continue
        dtype, dims = types.get(info.name, (np.dtype(np.float32), None))
        node = Node("Parameter", [], {"shape": [-1 if not isinstance(d, int) or d <= 0 else d
                                                for d in dims or ()],
                                      "element_type": _type_name(dtype)},
                    [(dtype, dims)], info.name)
        node.output_names = [info.name]
        produced[info.name] = node.output(0)
        ops.append(node)
    for tensor in graph.initializer:
        node = _Initializer(tensor, _dtype(tensor.data_type))
        produced[tensor.name] = node.output(0)
        ops.append(node)
    for index, onnx_node in enumerate(graph.node):
        inputs = [produced[name] for name in onnx_node.input if name in produced]
        out = [types.get(name, (np.dtype(np.float32), None)) for name in onnx_node.output]
        attrs = {a.name: _attribute(a) for a in onnx_node.attribute}
        node = Node(onnx_node.op_type, inputs, attrs, out,
                    onnx_node.name or f"{onnx_node.op_type}_{index}")
        node.output_names = list(onnx_node.output)
        node.onnx, node.opsets = onnx_node, opsets  # type: ignore[attr-defined]
        for i, name in enumerate(onnx_node.output):
            if name:
                produced[name] = node.output(i)
        ops.append(node)
    for info in graph.output:
        source = produced.get(info.name)
        dtype, dims = types.get(info.name, (np.dtype(np.float32), None))
        node = Node("Result", [source] if source is not None else [], {}, [(dtype, dims)],
                    f"{info.name}/sink_port_0")
        node.output_names = [info.name]
        ops.append(node)
    return ops
