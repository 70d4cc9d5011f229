"""The graph-building functions of :mod:`ember.opset`, with the little shape and type inference
the ports of an edited model need (a shape Ember cannot tell is left unknown)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from ember.errors import NotSupportedError
from ember.model.graph import Dim, Node, Output

#: What an operator takes as an input: a node (its first output), an output, or a constant's value.
NodeInput = Node | Output | np.ndarray | np.generic | int | float | Sequence[Any]


def _dtype(value: Any) -> np.dtype:
    from ember.types import Type

    return Type(value).to_dtype() if not isinstance(value, np.dtype) else value


def as_output(value: NodeInput, like: Output | None = None) -> Output:
    """A node's first output, an output, or a constant made of a value (typed like ``like``
    when it is a plain Python number or list, as OpenVINO's operators want equal types)."""
    if isinstance(value, Output):
        return value
    if isinstance(value, Node):
        return value.output(0)
    if isinstance(value, np.ndarray | np.generic):
        return constant(value).output(0)
    dtype = like.dtype if like is not None else None
    return constant(np.asarray(value, dtype=dtype)).output(0)


def _shape(output: Output) -> tuple[Dim, ...] | None:
    return output.shape_dims


def _static(output: Output, what: str) -> np.ndarray:
    if output.node.type_name != "Constant":
        raise NotSupportedError(f"{what} must be a constant in Ember's graphs (ONNX takes it as "
                                f"an attribute), not a {output.node.type_name}")
    return output.node.get_data()


def _broadcast(a: tuple[Dim, ...] | None, b: tuple[Dim, ...] | None) -> tuple[Dim, ...] | None:
    if a is None or b is None:
        return None
    rank = max(len(a), len(b))
    a = (1,) * (rank - len(a)) + tuple(a)
    b = (1,) * (rank - len(b)) + tuple(b)
    return tuple(y if x == 1 else x if y == 1 or x == y else None for x, y in zip(a, b,
                                                                                   strict=True))


def _node(type_name: str, inputs: list[Output], attrs: dict[str, Any] | None, dtype: np.dtype,
          shape: tuple[Dim, ...] | None, name: str | None) -> Node:
    return Node(type_name, inputs, attrs, [(np.dtype(dtype), shape)], name)


# -- sources ---------------------------------------------------------------------------------

def parameter(shape: Any, dtype: Any = np.float32, name: str | None = None) -> Node:
    """A graph input (ONNX: a graph input named ``name``)."""
    from ember.types import PartialShape

    dims = PartialShape(shape).as_dims() if not isinstance(shape, PartialShape) else \
        shape.as_dims()
    return _node("Parameter", [], {"shape": list(dims), "element_type": str(_dtype(dtype))},
                 _dtype(dtype), tuple(dims), name)


def constant(value: Any, dtype: Any = None, name: str | None = None) -> Node:
    """A constant tensor (ONNX: Constant)."""
    data = np.array(value, dtype=_dtype(dtype) if dtype is not None else None)
    if data.dtype == np.float64 and not isinstance(value, np.ndarray | np.generic) \
            and dtype is None:
        data = data.astype(np.float32)  # as OpenVINO's Python makes Python floats f32
    node = Node("Constant", [], {"element_type": str(data.dtype), "shape": list(data.shape)},
                [(data.dtype, tuple(data.shape))], name, value=data)
    return node


def result(data: NodeInput, name: str | None = None) -> Node:
    """A graph output (ONNX: a graph output)."""
    source = as_output(data)
    return _node("Result", [source], None, source.dtype, _shape(source), name)


# -- element-wise ----------------------------------------------------------------------------

def _binary(type_name: str, left: NodeInput, right: NodeInput, name: str | None,
            dtype: Any = None) -> Node:
    if not isinstance(left, Node | Output) and isinstance(right, Node | Output):
        b = as_output(right)
        a = as_output(left, like=b)
    else:
        a = as_output(left)
        b = as_output(right, like=a)
    out_dtype = np.dtype(dtype) if dtype is not None else a.dtype
    return _node(type_name, [a, b], None, out_dtype, _broadcast(_shape(a), _shape(b)), name)


def add(left_node: NodeInput, right_node: NodeInput, auto_broadcast: str = "NUMPY",
        name: str | None = None) -> Node:
    """Element-wise ``left_node + right_node``, broadcast numpy-style (ONNX: Add)."""
    return _binary("Add", left_node, right_node, name)


def subtract(left_node: NodeInput, right_node: NodeInput, auto_broadcast: str = "NUMPY",
             name: str | None = None) -> Node:
    """Element-wise ``left_node - right_node``, broadcast numpy-style (ONNX: Sub)."""
    return _binary("Subtract", left_node, right_node, name)


def multiply(left_node: NodeInput, right_node: NodeInput, auto_broadcast: str = "NUMPY",
             name: str | None = None) -> Node:
    """Element-wise ``left_node * right_node``, broadcast numpy-style (ONNX: Mul)."""
    return _binary("Multiply", left_node, right_node, name)


def divide(left_node: NodeInput, right_node: NodeInput, auto_broadcast: str = "NUMPY",
           name: str | None = None) -> Node:
    """Element-wise ``left_node / right_node``, broadcast numpy-style (ONNX: Div)."""
    return _binary("Divide", left_node, right_node, name)


def maximum(left_node: NodeInput, right_node: NodeInput, auto_broadcast: str = "NUMPY",
            name: str | None = None) -> Node:
    """Element-wise maximum of two inputs, broadcast numpy-style (ONNX: Max)."""
    return _binary("Maximum", left_node, right_node, name)


def minimum(left_node: NodeInput, right_node: NodeInput, auto_broadcast: str = "NUMPY",
            name: str | None = None) -> Node:
    """Element-wise minimum of two inputs, broadcast numpy-style (ONNX: Min)."""
    return _binary("Minimum", left_node, right_node, name)


def power(left_node: NodeInput, right_node: NodeInput, auto_broadcast: str = "NUMPY",
          name: str | None = None) -> Node:
    """Element-wise ``left_node ** right_node``, broadcast numpy-style (ONNX: Pow)."""
    return _binary("Power", left_node, right_node, name)


def greater(left_node: NodeInput, right_node: NodeInput, auto_broadcast: str = "NUMPY",
            name: str | None = None) -> Node:
    """Element-wise ``left_node > right_node`` as booleans, broadcast numpy-style (ONNX:
    Greater)."""
    return _binary("Greater", left_node, right_node, name, np.bool_)


def less(left_node: NodeInput, right_node: NodeInput, auto_broadcast: str = "NUMPY",
         name: str | None = None) -> Node:
    """Element-wise ``left_node < right_node`` as booleans, broadcast numpy-style (ONNX: Less)."""
    return _binary("Less", left_node, right_node, name, np.bool_)


def equal(left_node: NodeInput, right_node: NodeInput, auto_broadcast: str = "NUMPY",
          name: str | None = None) -> Node:
    """Element-wise ``left_node == right_node`` as booleans, broadcast numpy-style (ONNX: Equal)."""
    return _binary("Equal", left_node, right_node, name, np.bool_)


def _unary(type_name: str, node: NodeInput, name: str | None) -> Node:
    source = as_output(node)
    return _node(type_name, [source], None, source.dtype, _shape(source), name)


def relu(node: NodeInput, name: str | None = None) -> Node:
    """Element-wise ``max(x, 0)`` (ONNX: Relu)."""
    return _unary("Relu", node, name)


def floor(node: NodeInput, name: str | None = None) -> Node:
    """Element-wise rounding down (ONNX: Floor)."""
    return _unary("Floor", node, name)


def ceiling(node: NodeInput, name: str | None = None) -> Node:
    """Element-wise rounding up (ONNX: Ceil)."""
    return _unary("Ceiling", node, name)


def sqrt(node: NodeInput, name: str | None = None) -> Node:
    """Element-wise square root (ONNX: Sqrt)."""
    return _unary("Sqrt", node, name)


def abs(node: NodeInput, name: str | None = None) -> Node:
    """Element-wise absolute value (ONNX: Abs)."""
    return _unary("Abs", node, name)


def exp(node: NodeInput, name: str | None = None) -> Node:
    """Element-wise natural exponential (ONNX: Exp)."""
    return _unary("Exp", node, name)


def log(node: NodeInput, name: str | None = None) -> Node:
    """Element-wise natural logarithm (ONNX: Log)."""
    return _unary("Log", node, name)


def sigmoid(data: NodeInput, name: str | None = None) -> Node:
    """Element-wise logistic function ``1 / (1 + exp(-x))`` (ONNX: Sigmoid)."""
    return _unary("Sigmoid", data, name)


def round(data: NodeInput, mode: str = "half_to_even", name: str | None = None) -> Node:
    """Element-wise rounding to the nearest integer, half to even (ONNX: Round);
    ``NotSupportedError`` for another ``mode``."""
    if mode != "half_to_even":
        raise NotSupportedError(f"round mode {mode!r}: ONNX's Round rounds half to even only")
    return _unary("Round", data, name)


def clamp(data: NodeInput, min_value: Any, max_value: Any, name: str | None = None) -> Node:
    """Clip to [min_value, max_value]: numbers, or constants (as wrapper libraries pass)."""
    source = as_output(data)
    low, high = (float(_static(as_output(v), "clamp's bound").reshape(-1)[0])
                 if isinstance(v, Node | Output) else float(v) for v in (min_value, max_value))
    return _node("Clamp", [source], {"min": low, "max": high}, source.dtype, _shape(source),
                 name)


def softmax(data: NodeInput, axis: int, name: str | None = None) -> Node:
    """Softmax along ``axis`` (ONNX: Softmax)."""
    source = as_output(data)
    return _node("Softmax", [source], {"axis": int(axis)}, source.dtype, _shape(source), name)


def topk(data: NodeInput, k: NodeInput, axis: int, mode: str, sort: str,
         index_element_type: Any = "i32", name: str | None = None) -> Node:
    """The k largest (``mode="max"``) or smallest values along ``axis`` and their indices
    (ONNX: TopK); two outputs."""
    if sort not in ("value", "none"):
        raise NotSupportedError(f"topk sorted by {sort!r}: ONNX's TopK sorts by value")
    source = as_output(data)
    count = as_output(k) if isinstance(k, Node | Output) else \
        constant(np.asarray(k, dtype=np.int64)).output(0)
    shape = _shape(source)
    out_shape = None
    if shape is not None:
        out = list(shape)
        out[axis % len(shape)] = int(count.node.get_data().reshape(-1)[0]) \
            if count.node.type_name == "Constant" else None
        out_shape = tuple(out)
    index_dtype = _dtype(index_element_type)
    return Node("TopK", [source, count], {"axis": int(axis), "mode": mode, "sort": sort,
                                          "index_element_type": str(index_dtype)},
                [(source.dtype, out_shape), (index_dtype, out_shape)], name)


def convert(data: NodeInput, destination_type: Any, name: str | None = None) -> Node:
    """A cast (ONNX: Cast)."""
    source = as_output(data)
    dtype = _dtype(destination_type)
    return _node("Convert", [source], {"destination_type": str(dtype)}, dtype, _shape(source),
                 name)


def select(cond: NodeInput, then_node: NodeInput, else_node: NodeInput,
           auto_broadcast: str = "numpy", name: str | None = None) -> Node:
    """Element-wise ``then_node`` where ``cond`` is true, else ``else_node``, broadcast numpy-style
    (ONNX: Where)."""
    c, a = as_output(cond), as_output(then_node)
    b = as_output(else_node, like=a)
    return _node("Select", [c, a, b], None, a.dtype,
                 _broadcast(_broadcast(_shape(c), _shape(a)), _shape(b)), name)


# -- shapes and indexing ---------------------------------------------------------------------

def shape_of(data: NodeInput, output_type: Any = "i64", name: str | None = None) -> Node:
    """The shape of ``data`` as a 1-D tensor of ``output_type`` (ONNX: Shape)."""
    source = as_output(data)
    rank = None if _shape(source) is None else (len(_shape(source) or ()),)
    return _node("ShapeOf", [source], {"output_type": str(_dtype(output_type))},
                 _dtype(output_type), rank, name)


def gather(data: NodeInput, indices: NodeInput, axis: NodeInput, batch_dims: int = 0,
           name: str | None = None) -> Node:
    """The slices of ``data`` at ``indices`` along ``axis`` (ONNX: Gather); ``NotSupportedError``
    for ``batch_dims``."""
    if batch_dims:
        raise NotSupportedError("gather with batch_dims: ONNX's Gather has none")
    source, index, ax = as_output(data), as_output(indices), as_output(axis)
    axis_value = int(_static(ax, "gather's axis").reshape(-1)[0])
    shape = _shape(source)
    out_shape = None
    if shape is not None and _shape(index) is not None:
        a = axis_value % len(shape) if shape else 0
        out_shape = tuple(shape[:a]) + tuple(_shape(index) or ()) + tuple(shape[a + 1:])
    return _node("Gather", [source, index, ax], {"axis": axis_value, "batch_dims": 0},
                 source.dtype, out_shape, name)


def concat(nodes: Sequence[NodeInput], axis: int, name: str | None = None) -> Node:
    """The inputs joined along ``axis`` (ONNX: Concat)."""
    sources = [as_output(n) for n in nodes]
    shapes = [_shape(s) for s in sources]
    out_shape = None
    if all(s is not None for s in shapes) and shapes:
        first = list(shapes[0] or ())
        a = axis % len(first) if first else 0
        sizes = [s[a] for s in shapes if s is not None]
        known = [x for x in sizes if isinstance(x, int)]
        first[a] = builtins.sum(known) if len(known) == len(sizes) else None
        out_shape = tuple(first)
    return _node("Concat", sources, {"axis": int(axis)}, sources[0].dtype, out_shape, name)


def reshape(node: NodeInput, output_shape: NodeInput, special_zero: bool,
            name: str | None = None) -> Node:
    """``node`` with the shape ``output_shape``: -1 infers a size, and with ``special_zero`` a 0
    keeps the input's size there (ONNX: Reshape)."""
    source = as_output(node)
    target = as_output(output_shape) if isinstance(output_shape, Node | Output) else \
        constant(np.asarray(output_shape, dtype=np.int64)).output(0)
    out_shape = None
    if target.node.type_name == "Constant":
        dims = target.node.get_data().reshape(-1).tolist()
        out_shape = tuple(None if d == -1 else (source.shape_dims or ())[i]
                          if d == 0 and special_zero and source.shape_dims else d
                          for i, d in enumerate(dims))
    return _node("Reshape", [source, target], {"special_zero": bool(special_zero)},
                 source.dtype, out_shape, name)


def transpose(data: NodeInput, input_order: NodeInput, name: str | None = None) -> Node:
    """``data`` with its dimensions permuted by ``input_order`` (ONNX: Transpose)."""
    source = as_output(data)
    order = as_output(input_order) if isinstance(input_order, Node | Output) else \
        constant(np.asarray(input_order, dtype=np.int64)).output(0)
    perm = [int(v) for v in _static(order, "transpose's order").reshape(-1)]
    shape = _shape(source)
    out_shape = tuple(shape[p] for p in perm) if shape is not None and perm else shape
    return _node("Transpose", [source, order], None, source.dtype, out_shape, name)


def squeeze(data: NodeInput, axes: NodeInput | None = None, name: str | None = None) -> Node:
    """``data`` without the size-1 dimensions ``axes`` (all of them, without ``axes``) (ONNX:
    Squeeze)."""
    source = as_output(data)
    inputs = [source]
    out_shape = None
    if axes is not None:
        ax = as_output(axes) if isinstance(axes, Node | Output) else \
            constant(np.asarray(axes, dtype=np.int64)).output(0)
        inputs.append(ax)
        shape = _shape(source)
        if shape is not None and ax.node.type_name == "Constant":
            drop = {int(a) % len(shape) for a in ax.node.get_data().reshape(-1)}
            out_shape = tuple(d for i, d in enumerate(shape) if i not in drop)
    return _node("Squeeze", inputs, None, source.dtype, out_shape, name)


def unsqueeze(data: NodeInput, axes: NodeInput, name: str | None = None) -> Node:
    """``data`` with size-1 dimensions inserted at ``axes`` (ONNX: Unsqueeze)."""
    source = as_output(data)
    ax = as_output(axes) if isinstance(axes, Node | Output) else \
        constant(np.asarray(axes, dtype=np.int64)).output(0)
    shape = _shape(source)
    out_shape = None
    if shape is not None and ax.node.type_name == "Constant":
        values = [int(a) for a in ax.node.get_data().reshape(-1)]
        rank = len(shape) + len(values)
        new = {a % rank for a in values}
        rest = iter(shape)
        out_shape = tuple(1 if i in new else next(rest) for i in builtins.range(rank))
    return _node("Unsqueeze", [source, ax], None, source.dtype, out_shape, name)


def slice(data: NodeInput, start: NodeInput, stop: NodeInput, step: NodeInput,
          axes: NodeInput | None = None, name: str | None = None) -> Node:
    """The part of ``data`` from ``start`` to ``stop`` by ``step``, along ``axes`` (all, in order,
    without them) (ONNX: Slice)."""
    source = as_output(data)
    inputs = [source] + [as_output(v) if isinstance(v, Node | Output) else
                         constant(np.asarray(v, dtype=np.int64)).output(0)
                         for v in (start, stop, step)]
    if axes is not None:
        inputs.append(as_output(axes) if isinstance(axes, Node | Output) else
                      constant(np.asarray(axes, dtype=np.int64)).output(0))
    rank = None if _shape(source) is None else (None,) * len(_shape(source) or ())
    return _node("Slice", inputs, None, source.dtype, rank, name)


def pad(arg: NodeInput, pads_begin: NodeInput, pads_end: NodeInput, pad_mode: str,
        arg_pad_value: NodeInput | None = None, name: str | None = None) -> Node:
    """``arg`` padded by ``pads_begin`` and ``pads_end`` per dimension, in ``"constant"`` (with
    ``arg_pad_value``), ``"edge"`` or ``"reflect"`` mode (ONNX: Pad)."""
    if pad_mode not in ("constant", "edge", "reflect"):
        raise NotSupportedError(f"pad mode {pad_mode!r}: ONNX pads constant, edge or reflect")
    source = as_output(arg)
    inputs = [source] + [as_output(v) if isinstance(v, Node | Output) else
                         constant(np.asarray(v, dtype=np.int64)).output(0)
                         for v in (pads_begin, pads_end)]
    if arg_pad_value is not None:
        inputs.append(as_output(arg_pad_value, like=source))
    rank = None if _shape(source) is None else (None,) * len(_shape(source) or ())
    return _node("Pad", inputs, {"pad_mode": pad_mode}, source.dtype, rank, name)


def range(start: NodeInput, stop: NodeInput, step: NodeInput, output_type: Any = "i64",
          name: str | None = None) -> Node:
    """The 1-D sequence from ``start`` up to ``stop`` by ``step``, of ``output_type`` (ONNX:
    Range)."""
    dtype = _dtype(output_type)
    inputs = [as_output(v) if isinstance(v, Node | Output) else
              constant(np.asarray(v, dtype=dtype)).output(0) for v in (start, stop, step)]
    return _node("Range", inputs, {"output_type": str(dtype)}, dtype, (None,), name)


_MODES = {"nearest": "nearest", "linear": "linear", "linear_onnx": "linear", "cubic": "cubic"}


def interpolate(image: NodeInput, output_shape: NodeInput, scales: Any = None,
                mode: Any = None, shape_calculation_mode: Any = None,
                pads_begin: Sequence[int] | None = None, pads_end: Sequence[int] | None = None,
                coordinate_transformation_mode: str = "half_pixel",
                nearest_mode: str = "round_prefer_floor", antialias: bool = False,
                cube_coeff: float = -0.75, axes: NodeInput | None = None,
                name: str | None = None) -> Node:
    """OpenVINO's Interpolate (ONNX: Resize), in opset 4's spelling ``(image, output_shape,
    scales, mode, shape_calculation_mode, ...)`` or opset 11's ``(image, scales_or_sizes, mode,
    shape_calculation_mode, ...)``."""
    if isinstance(scales, str):  # opset 11: scales_or_sizes, mode, shape_calculation_mode
        mode, shape_calculation_mode, scales = scales, mode, None
    if isinstance(mode, dict):  # opset 1: interpolate(image, output_shape, attrs)
        attrs = mode
        mode, shape_calculation_mode = attrs.get("mode", "nearest"), "sizes"
        axes = attrs.get("axes", axes)
    if mode not in _MODES:
        raise NotSupportedError(f"interpolate mode {mode!r}: ONNX's Resize has "
                                f"{sorted(_MODES)}")
    if antialias:
        raise NotSupportedError("interpolate with antialias (ONNX opset 18's Resize only)")
    if any(pads_begin or ()) or any(pads_end or ()):
        raise NotSupportedError("interpolate with pads: pad the image first")
    source = as_output(image)
    by_sizes = shape_calculation_mode != "scales"
    given = output_shape if by_sizes or scales is None else scales
    dtype = np.int64 if by_sizes else np.float32
    target = as_output(given) if isinstance(given, Node | Output) else \
        constant(np.asarray(given, dtype=dtype)).output(0)
    inputs = [source, target]
    if axes is not None:
        inputs.append(as_output(axes) if isinstance(axes, Node | Output) else
                      constant(np.asarray(axes, dtype=np.int64)).output(0))
    shape = _shape(source)
    out_shape: tuple[Dim, ...] | None = None
    if shape is not None:
        out = list(shape)
        axis_list = list(builtins.range(len(shape))) if axes is None else \
            [int(a) % len(shape) for a in _static(inputs[2], "interpolate's axes").reshape(-1)]
        sizes = target.node.get_data().reshape(-1).tolist() \
            if by_sizes and target.node.type_name == "Constant" else None
        for i, a in enumerate(axis_list):
            out[a] = int(sizes[i]) if sizes is not None else None
        out_shape = tuple(out)
    attrs = {"mode": _MODES[mode], "shape_calculation_mode": "sizes" if by_sizes else "scales",
             "coordinate_transformation_mode": coordinate_transformation_mode,
             "nearest_mode": nearest_mode, "cube_coeff": float(cube_coeff)}
    return _node("Interpolate", inputs, attrs, source.dtype, out_shape, name)


def if_op(condition: NodeInput, name: str | None = None) -> Any:
    """OpenVINO's If (ONNX: If): set its bodies with ``set_then_body``/``set_else_body`` (built
    ``ember.Model`` objects), its inputs with ``set_input`` and outputs with ``set_output``."""
    from ember.opset.if_node import IfNode

    return IfNode(as_output(condition), name)
