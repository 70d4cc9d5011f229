"""Constant folding: nodes whose inputs are all known at compile time run here, on the host.

Shape arithmetic (Shape -> Slice -> Concat -> Reshape), Constant-derived weights and the values of
shape inputs are folded before anything reaches the device. The operators such subgraphs are made
of have a numpy implementation below; any other operator is folded with ``onnx.reference``
(imported only then), through ``ember.model.onnx_reference``, which also runs BatchNormalization in
inference mode.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ember_gpu.graph import Node

Inputs = Sequence["np.ndarray | None"]
HostKernel = Callable[[Inputs, Mapping[str, Any], int], list[np.ndarray]]


def _ints(values: Any) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


def _opt(inputs: Inputs, index: int) -> np.ndarray | None:
    return inputs[index] if len(inputs) > index else None


def _axes(inputs: Inputs, attrs: Mapping[str, Any], opset: int, since: int) -> list[int] | None:
    axes = _opt(inputs, 1) if opset >= since else attrs.get("axes")
    return None if axes is None else _ints(axes)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if not np.issubdtype(a.dtype, np.integer):
        return np.divide(a, b)
    q = np.floor_divide(a, b)  # numpy floors, ONNX truncates toward zero
    return q + ((q < 0) & (q * b != a))


def reshape_target(shape: Sequence[int], target: Sequence[int], allowzero: bool) -> list[int]:
    """ONNX Reshape's output shape: 0 copies a dimension (unless allowzero), -1 is inferred."""
    dims = list(target) if allowzero else [shape[i] if t == 0 else t
                                           for i, t in enumerate(target)]
    if -1 in dims:
        known = int(np.prod([d for d in dims if d != -1]))
        total = int(np.prod(shape))
        dims[dims.index(-1)] = total // known if known else 0
    return dims


def squeeze_shape(shape: Sequence[int], axes: Sequence[int] | None) -> list[int]:
    if axes is None:
        return [d for d in shape if d != 1]
    drop = {a % len(shape) for a in axes}
    return [d for i, d in enumerate(shape) if i not in drop]


def unsqueeze_shape(shape: Sequence[int], axes: Sequence[int]) -> list[int]:
    rank = len(shape) + len(axes)
    put = {a % rank for a in axes}
    rest = iter(shape)
    return [1 if i in put else next(rest) for i in range(rank)]


def flatten_shape(shape: Sequence[int], axis: int) -> list[int]:
    axis = axis + len(shape) if axis < 0 else axis
    return [int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))]


def slice_bounds(start: int, end: int, step: int, dim: int) -> tuple[int, int]:
    """(first index, count) of an ONNX slice of a dimension, clamped as ONNX specifies."""
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        return start, max(0, -(-(end - start) // step))
    start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return start, max(0, -(-(start - end) // -step))


def slice_params(inputs: Inputs, attrs: Mapping[str, Any], opset: int,
                 shape: Sequence[int]) -> list[tuple[int, int, int]]:
    """(start, step, count) for every axis of a Slice."""
    if opset < 10:
        starts, ends = list(attrs["starts"]), list(attrs["ends"])
        axes, steps = attrs.get("axes"), None
    else:
        starts, ends = _ints(inputs[1]), _ints(inputs[2])
        axes, steps = _opt(inputs, 3), _opt(inputs, 4)
    axes = list(range(len(starts))) if axes is None else _ints(axes)
    steps = [1] * len(starts) if steps is None else _ints(steps)
    params = [(0, 1, d) for d in shape]
    for axis, start, end, step in zip(axes, starts, ends, steps, strict=True):
        axis %= len(shape)
        first, count = slice_bounds(int(start), int(end), step, shape[axis])
        params[axis] = (first, step, count)
    return params


def _slice(inputs: Inputs, attrs: Mapping[str, Any], opset: int) -> list[np.ndarray]:
    x = inputs[0]
    index = tuple(slice(s, s + st * c if s + st * c >= 0 else None, st) if c else slice(0, 0)
                  for s, st, c in slice_params(inputs, attrs, opset, x.shape))
    return [x[index]]


def _shape(inputs: Inputs, attrs: Mapping[str, Any], opset: int) -> list[np.ndarray]:
    dims = np.array(inputs[0].shape, dtype=np.int64)
    return [dims[attrs.get("start", 0): attrs.get("end")]] if opset >= 15 else [dims]


def _cast(inputs: Inputs, attrs: Mapping[str, Any], opset: int) -> list[np.ndarray]:
    from onnx import TensorProto, helper

    to = attrs["to"]
    if isinstance(to, str):  # Cast-1 named the type
        to = TensorProto.DataType.Value(to)
    return [inputs[0].astype(helper.tensor_dtype_to_np_dtype(to))]


def _constant_of_shape(inputs: Inputs, attrs: Mapping[str, Any], opset: int) -> list[np.ndarray]:
    value = attrs.get("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value)
    return [np.full(_ints(inputs[0]), value.reshape(-1)[0], dtype=value.dtype)]


def _range(inputs: Inputs, attrs: Mapping[str, Any], opset: int) -> list[np.ndarray]:
    start, limit, delta = (np.asarray(t).item() for t in inputs[:3])
    return [np.arange(start, limit, delta).astype(inputs[0].dtype)]


def _reshape(inputs: Inputs, attrs: Mapping[str, Any], opset: int) -> list[np.ndarray]:
    x = inputs[0]
    target = _ints(inputs[1]) if _opt(inputs, 1) is not None else list(attrs["shape"])
    return [x.reshape(reshape_target(x.shape, target, bool(attrs.get("allowzero", 0))))]


def _gather(inputs: Inputs, attrs: Mapping[str, Any], opset: int) -> list[np.ndarray]:
    return [np.take(inputs[0], inputs[1], axis=attrs.get("axis", 0))]


def _elementwise(fn: Callable[..., Any], bool_result: bool = False) -> HostKernel:
    def kernel(inputs: Inputs, attrs: Mapping[str, Any], opset: int) -> list[np.ndarray]:
        dtype = np.bool_ if bool_result else inputs[0].dtype
        return [np.asarray(fn(*inputs)).astype(dtype, copy=False)]

    return kernel


HOST_KERNELS: dict[str, HostKernel] = {
    "Identity": lambda i, a, o: [i[0]],
    "Dropout": lambda i, a, o: [i[0]],
    "Shape": _shape,
    "Size": lambda i, a, o: [np.array(i[0].size, dtype=np.int64)],
    "Cast": _cast,
    "Reshape": _reshape,
    "Flatten": lambda i, a, o: [i[0].reshape(flatten_shape(i[0].shape, a.get("axis", 1)))],
    "Squeeze": lambda i, a, o: [i[0].reshape(squeeze_shape(i[0].shape,
                                                           _axes(i, a, o, since=13)))],
    "Unsqueeze": lambda i, a, o: [i[0].reshape(unsqueeze_shape(i[0].shape,
                                                               _axes(i, a, o, since=13) or []))],
    "Concat": lambda i, a, o: [np.concatenate([x for x in i if x is not None], axis=a["axis"])],
    "Slice": _slice,
    "Gather": _gather,
    "Transpose": lambda i, a, o: [np.transpose(i[0], a.get("perm") or None)],
    "Expand": lambda i, a, o: [np.array(np.broadcast_to(
        i[0], np.broadcast_shapes(i[0].shape, tuple(_ints(i[1])))))],
    "ConstantOfShape": _constant_of_shape,
    "Range": _range,
    "Add": _elementwise(np.add),
    "Sub": _elementwise(np.subtract),
    "Mul": _elementwise(np.multiply),
    "Div": _elementwise(_div),
    "Neg": _elementwise(np.negative),
    "Abs": _elementwise(np.abs),
    "Sqrt": _elementwise(np.sqrt),
    "Min": _elementwise(lambda *xs: functools.reduce(np.minimum, xs)),
    "Max": _elementwise(lambda *xs: functools.reduce(np.maximum, xs)),
    "Equal": _elementwise(np.equal, bool_result=True),
    "Less": _elementwise(np.less, bool_result=True),
    "Greater": _elementwise(np.greater, bool_result=True),
    "Not": _elementwise(np.logical_not, bool_result=True),
    "Where": lambda i, a, o: [np.where(i[0], i[1], i[2]).astype(i[1].dtype, copy=False)],
}


def contiguous(array: np.ndarray) -> np.ndarray:
    """``array`` in C order, keeping its shape (np.ascontiguousarray turns 0-d into 1-d)."""
    array = np.asarray(array)
    return array if array.flags.c_contiguous else array.copy(order="C")


def evaluate(node: Node, inputs: Inputs, opset: int) -> list[np.ndarray]:
    """The outputs of ``node`` on known inputs, as contiguous arrays."""
    kernel = HOST_KERNELS.get(node.op_type)
    results = (kernel(inputs, node.attrs, opset) if kernel is not None
               else _evaluate_with_reference(node, inputs, opset))
    return [contiguous(r) for r in results]


def _evaluate_with_reference(node: Node, inputs: Inputs, opset: int) -> list[np.ndarray]:
    from onnx import helper, numpy_helper

    from ember.plugin import reference_outputs

    names = [f"in{i}" if x is not None else "" for i, x in enumerate(inputs)]
    feeds = {n: x for n, x in zip(names, inputs, strict=True) if x is not None}
    graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype),
                                                  x.shape) for n, x in feeds.items()]
    attrs = {k: numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v
             for k, v in node.attrs.items()}
    outputs = [f"out{i}" for i in range(len(node.outputs))]
    proto_node = helper.make_node(node.op_type, names, outputs, **attrs)
    graph = helper.make_graph([proto_node], "fold", graph_inputs,
                              [helper.make_empty_tensor_value_info(o) for o in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return [np.asarray(r) for r in reference_outputs(model, feeds)]
