"""Preprocessing and postprocessing steps as graph nodes (:mod:`ember.opset`), following
OpenVINO's rules: each step sees the tensor's current element type, layout and shape; after the
user's steps, the layout and then the element type are converted to what the model wants."""

from __future__ import annotations

from typing import Any

import numpy as np

from ember import opset
from ember.errors import NotSupportedError, PreprocessError
from ember.model.graph import Node, Output
from ember.model.layout import Layout
from ember.preprocess.info import ColorFormat, InputInfo, OutputInfo, ResizeAlgorithm

_RESIZE = {ResizeAlgorithm.RESIZE_LINEAR: "linear", ResizeAlgorithm.RESIZE_NEAREST: "nearest",
           ResizeAlgorithm.RESIZE_CUBIC: "cubic"}


class _State:
    """The tensor as a step sees it."""

    def __init__(self, output: Output, layout: Layout, color: ColorFormat) -> None:
        self.output, self.layout, self.color = output, layout, color

    @property
    def dtype(self) -> np.dtype:
        return self.output.dtype

    def axis(self, name: str, step: str) -> int:
        if not self.layout.has_name(name):
            raise PreprocessError(f"{step} needs the layout's {name} dimension; the tensor's "
                                  f"layout is {self.layout.to_string() or 'not set'} (set it "
                                  "with tensor().set_layout)")
        index = self.layout.get_index_by_name(name)
        rank = len(self.output.shape_dims or ())
        return index % rank if rank else index


def input_chain(info: InputInfo) -> tuple[Node, Output, Layout | None]:
    """The new parameter, the output that replaces the model's input, and the layout the
    application's tensor has."""
    port = info.port
    tensor, model_layout = info.tensor(), info.model().layout
    tensor_layout = tensor.layout or model_layout
    model_dtype = np.dtype(port.dtype)
    dtype = tensor.element_type.to_dtype() if tensor.element_type is not None else model_dtype
    shape = _tensor_shape(info, tensor_layout, model_layout)
    parameter = opset.parameter(list(shape), dtype, name=port.name)
    state = _State(parameter.output(0), tensor_layout or Layout(), tensor.color_format)
    for name, args in info.preprocess().steps:
        _STEPS[name](state, args, info)
    _implicit(state, model_layout, model_dtype)
    return parameter, state.output, tensor.layout or model_layout


def output_chain(info: OutputInfo) -> tuple[Node, Output, Layout | None]:
    """A stand-in for the model's output, the output the application gets, and its layout."""
    port = info.port
    placeholder = opset.parameter(list(port.shape), port.dtype, name=port.name)
    model_layout = info.model().layout
    state = _State(placeholder.output(0), model_layout or Layout(), ColorFormat.UNDEFINED)
    for name, args in info.postprocess().steps:
        _STEPS[name](state, args, info)
    tensor = info.tensor()
    target = tensor.element_type.to_dtype() if tensor.element_type is not None else state.dtype
    _implicit(state, tensor.layout, target)
    return placeholder, state.output, tensor.layout or model_layout


def _tensor_shape(info: InputInfo, tensor_layout: Layout | None,
                  model_layout: Layout | None) -> tuple[Any, ...]:
    tensor = info.tensor()
    if tensor.shape is not None:
        shape = list(tensor.shape)
    else:  # the model's shape, taken back through the layout changes the steps make
        shape = list(info.port.shape)
        changes = [args[0] for name, args in info.preprocess().steps
                   if name == "convert_layout" and args[0] is not None]
        targets = [c for c in changes if isinstance(c, Layout)]
        target = model_layout or (targets[-1] if targets else None)
        if tensor_layout and target and tensor_layout != target:
            perm = _permutation(target, tensor_layout, len(shape))
            shape = [shape[p] for p in perm]
        elif not targets:
            for perm in reversed([c for c in changes if isinstance(c, list)]):
                before: list[Any] = [None] * len(shape)
                for position, source in enumerate(perm):
                    before[source] = shape[position]
                shape = before
        resizes = any(name == "resize" for name, _ in info.preprocess().steps)
        if resizes and tensor.spatial is None:
            tensor.spatial = (None, None)  # OpenVINO: a resized tensor may have any size
    if tensor.spatial is not None and tensor_layout is not None:
        for name, size in zip("HW", tensor.spatial, strict=True):
            if tensor_layout.has_name(name):
                shape[tensor_layout.get_index_by_name(name) % len(shape)] = size
    return tuple(shape)


def _permutation(source: Layout, target: Layout, rank: int) -> list[int]:
    """``perm`` such that ``transpose(x, perm)`` turns ``source`` layout into ``target``."""
    src, dst = list(source.names), list(target.names)
    if "..." in src or "..." in dst or len(src) != rank or len(dst) != rank:
        raise PreprocessError(f"cannot convert layout {source.to_string()} to "
                              f"{target.to_string()} of a rank-{rank} tensor")
    try:
        return [src.index(name) for name in dst]
    except ValueError:
        raise PreprocessError(f"layouts {source.to_string()} and {target.to_string()} do not "
                              "name the same dimensions") from None


def _implicit(state: _State, layout: Layout | None, dtype: np.dtype) -> None:
    if layout is not None and not layout.empty and not state.layout.empty \
            and layout != state.layout:
        _convert_layout(state, (layout,), None)
    if np.dtype(dtype) != state.dtype:
        state.output = opset.convert(state.output, dtype).output(0)


def _as_output(value: Any) -> Output:
    if isinstance(value, Node):
        return value.output(0)
    if isinstance(value, Output):
        return value
    raise PreprocessError(f"a custom step returned {type(value).__name__}, not a Node or Output")


def _convert_element_type(state: _State, args: tuple[Any, ...], info: Any) -> None:
    target = args[0]
    if target is None:
        if isinstance(info, InputInfo):
            dtype = np.dtype(info.port.dtype)
        else:
            element_type = info.tensor().element_type
            dtype = element_type.to_dtype() if element_type is not None else state.dtype
    else:
        dtype = target.to_dtype()
    if dtype != state.dtype:
        state.output = opset.convert(state.output, dtype).output(0)


def _convert_layout(state: _State, args: tuple[Any, ...], info: Any) -> None:
    target = args[0]
    rank = len(state.output.shape_dims or ())
    if isinstance(target, list):
        perm = target
        names = state.layout.names
        state.layout = Layout("[" + ",".join(names[p] for p in perm) + "]") \
            if len(names) == len(perm) else Layout()
    else:
        if target is None:
            target = info.model().layout if info is not None else None
            if target is None:
                raise PreprocessError("convert_layout() with no layout needs model().set_layout")
        perm = _permutation(state.layout, target, rank)
        state.layout = target
    if perm != list(range(len(perm))):
        state.output = opset.transpose(state.output, np.asarray(perm, dtype=np.int64)).output(0)


def _per_channel(state: _State, values: list[float], step: str) -> Any:
    if not state.dtype.kind == "f":
        raise PreprocessError(f"{step} preprocessing can be applied to 'float' inputs; the "
                              f"tensor is {state.dtype} here: convert_element_type first")
    if len(values) == 1:
        return np.asarray(values[0], dtype=state.dtype)
    axis = state.axis("C", step)
    shape = [1] * len(state.output.shape_dims or ())
    shape[axis] = len(values)
    return np.asarray(values, dtype=state.dtype).reshape(shape)


def _mean(state: _State, args: tuple[Any, ...], info: Any) -> None:
    state.output = opset.subtract(state.output, _per_channel(state, args[0], "mean")).output(0)


def _scale(state: _State, args: tuple[Any, ...], info: Any) -> None:
    state.output = opset.divide(state.output, _per_channel(state, args[0], "scale")).output(0)


def _resize(state: _State, args: tuple[Any, ...], info: Any) -> None:
    algorithm, height, width = args
    if algorithm not in _RESIZE:
        raise NotSupportedError(f"{algorithm.name}: ONNX's Resize has no Pillow filters")
    h_axis, w_axis = state.axis("H", "resize"), state.axis("W", "resize")
    if height is None or width is None:
        model_layout = info.model().layout
        if model_layout is None or not (model_layout.has_name("H") and
                                        model_layout.has_name("W")):
            raise PreprocessError("resize to the model's size needs model().set_layout with H "
                                  "and W (or give resize the height and width)")
        dims = info.port.shape
        height = dims[model_layout.get_index_by_name("H") % len(dims)]
        width = dims[model_layout.get_index_by_name("W") % len(dims)]
        if not isinstance(height, int) or not isinstance(width, int):
            raise PreprocessError(f"the model's input {info.port.name!r} has dynamic height or "
                                  "width: give resize the size")
    dtype = state.dtype
    source = state.output
    if dtype.kind in "iu":  # OpenVINO resizes integers in float and rounds half to even
        source = opset.convert(source, np.float32).output(0)
    resized = opset.interpolate(
        source, np.asarray([height, width], dtype=np.int64), _RESIZE[algorithm], "sizes",
        axes=np.asarray([h_axis, w_axis], dtype=np.int64),
        coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_floor",
    ).output(0)
    if dtype.kind in "iu":
        limits = np.iinfo(dtype)
        clipped = opset.clamp(resized, float(limits.min), float(limits.max)).output(0)
        rounded = _round_half_even(clipped) if dtype.kind == "u" else opset.round(clipped)
        resized = opset.convert(rounded, dtype).output(0)
    state.output = resized


def _round_half_even(x: Output) -> Any:
    """Round non-negative floats half to even with Add, Cast, Equal, Mul, Sub and Where (a cast
    truncates, which for x >= 0 is floor): devices without Round or Floor (GPU) run these."""
    def floor(value: Any) -> Any:
        return opset.convert(opset.convert(value, np.int32), np.float32)

    shifted = opset.add(x, np.float32(0.5))
    down = floor(shifted)
    tie = opset.equal(down, shifted)  # x was exactly halfway: round to the even neighbour
    odd = opset.equal(opset.subtract(down, opset.multiply(floor(opset.multiply(
        down, np.float32(0.5))), np.float32(2.0))), np.float32(1.0))
    return opset.select(tie, opset.select(odd, opset.subtract(down, np.float32(1.0)), down), down)


def _reverse_channels(state: _State, args: tuple[Any, ...], info: Any) -> None:
    axis = state.axis("C", "reverse_channels")
    channels = (state.output.shape_dims or ())[axis]
    if not isinstance(channels, int):
        raise PreprocessError("reverse_channels needs a static number of channels")
    indices = np.arange(channels - 1, -1, -1, dtype=np.int64)
    state.output = opset.gather(state.output, indices, np.asarray(axis, dtype=np.int64)
                                ).output(0)


def _convert_color(state: _State, args: tuple[Any, ...], info: Any) -> None:
    target = args[0]
    pair = {state.color, target}
    if state.color == target:
        return
    if pair != {ColorFormat.RGB, ColorFormat.BGR}:
        raise NotSupportedError(f"colour conversion {state.color.name} -> {target.name}: Ember "
                                "converts between RGB and BGR")
    _reverse_channels(state, (), info)
    state.color = target


def _crop(state: _State, args: tuple[Any, ...], info: Any) -> None:
    begin, end = args
    state.output = opset.slice(state.output, np.asarray(begin, dtype=np.int64),
                               np.asarray(end, dtype=np.int64),
                               np.ones(len(begin), dtype=np.int64)).output(0)


def _custom(state: _State, args: tuple[Any, ...], info: Any) -> None:
    state.output = _as_output(args[0](state.output))


_STEPS = {
    "convert_element_type": _convert_element_type, "convert_layout": _convert_layout,
    "mean": _mean, "scale": _scale, "resize": _resize, "reverse_channels": _reverse_channels,
    "convert_color": _convert_color, "crop": _crop, "custom": _custom,
}
