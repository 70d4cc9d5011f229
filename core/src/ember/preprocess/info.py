"""The builder objects of ``PrePostProcessor``: what the tensor is, the steps, what the model
wants. They only collect; :mod:`ember.preprocess.chain` turns them into graph nodes on build."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ember.model.layout import Layout

if TYPE_CHECKING:
    from typing import Self  # 3.11's; only annotations name it, and Ember runs on 3.10


class ColorFormat(enum.Enum):
    """OpenVINO's colour formats of an image tensor; Ember converts between RGB and BGR."""

    UNDEFINED = 0
    NV12_SINGLE_PLANE = 1
    NV12_TWO_PLANES = 2
    I420_SINGLE_PLANE = 3
    I420_THREE_PLANES = 4
    RGB = 5
    BGR = 6
    GRAY = 7
    RGBX = 8
    BGRX = 9


class ResizeAlgorithm(enum.Enum):
    """OpenVINO's resize algorithms; Ember resizes with the linear, nearest and cubic ones."""

    RESIZE_LINEAR = 0
    RESIZE_CUBIC = 1
    RESIZE_NEAREST = 2
    RESIZE_BILINEAR_PILLOW = 3
    RESIZE_BICUBIC_PILLOW = 4


class _TensorInfo:
    def __init__(self) -> None:
        self.element_type: Any = None
        self.layout: Layout | None = None

    def set_element_type(self, type: Any) -> Self:
        """Declare the element type of the tensor (``Type.u8``, ``np.float32``, ``"f32"``); returns
        this object, for chaining."""
        from ember.types import Type

        self.element_type = Type(type)
        return self

    def set_layout(self, layout: Layout | str) -> Self:
        """Declare the layout of the tensor (``"NHWC"``); returns this object, for chaining."""
        self.layout = Layout(layout)
        return self


class InputTensorInfo(_TensorInfo):
    """What the application will feed: element type, layout, shape, colour format."""

    def __init__(self) -> None:
        super().__init__()
        self.shape: tuple[Any, ...] | None = None
        self.color_format = ColorFormat.UNDEFINED
        self.spatial: tuple[Any, Any] | None = None  # (height, width); None each when dynamic

    def set_shape(self, shape: Any) -> InputTensorInfo:
        """Declare the shape the application will feed (a list, tuple, ``PartialShape`` or
        ``"[1,?,?,3]"``); returns this object, for chaining."""
        from ember.types import PartialShape

        self.shape = (shape if isinstance(shape, PartialShape) else PartialShape(shape)).as_dims()
        return self

    def set_color_format(self, format: ColorFormat, sub_names: Sequence[str] = ()
                         ) -> InputTensorInfo:
        """Declare the tensor's colour format: RGB or BGR (``NotSupportedError`` for the others);
        returns this object, for chaining."""
        from ember.errors import NotSupportedError

        if format not in (ColorFormat.RGB, ColorFormat.BGR, ColorFormat.UNDEFINED):
            raise NotSupportedError(f"colour format {format.name}: Ember converts RGB and BGR")
        self.color_format = format
        return self

    def set_spatial_dynamic_shape(self) -> InputTensorInfo:
        """Declare that the tensor's height and width may vary from one inference to the next;
        returns this object, for chaining."""
        self.spatial = (None, None)
        return self

    def set_spatial_static_shape(self, height: int, width: int) -> InputTensorInfo:
        """Declare the tensor's fixed ``height`` and ``width`` (a ``resize`` then brings them to
        the model's); returns this object, for chaining."""
        self.spatial = (int(height), int(width))
        return self

    def set_memory_type(self, memory_type: str) -> InputTensorInfo:
        """Accepted for OpenVINO's programs and ignored: Ember's tensors live in host memory;
        returns this object."""
        return self  # host memory is the only kind Ember's tensors have

    def set_from(self, runtime_tensor: Any) -> InputTensorInfo:
        """Declare the shape and element type of ``runtime_tensor`` (a Tensor or an array); returns
        this object, for chaining."""
        import numpy as np

        data = runtime_tensor.data if hasattr(runtime_tensor, "data") and not isinstance(
            runtime_tensor, np.ndarray) else np.asarray(runtime_tensor)
        self.set_shape(list(data.shape))
        return self.set_element_type(data.dtype)


class OutputTensorInfo(_TensorInfo):
    """What the application wants back: element type and layout."""


class _ModelInfo:
    def __init__(self) -> None:
        self.layout: Layout | None = None

    def set_layout(self, layout: Layout | str) -> Self:
        """Declare the layout the model's tensor has (an ONNX file does not say); returns this
        object, for chaining."""
        self.layout = Layout(layout)
        return self


class InputModelInfo(_ModelInfo):
    """The layout the model's input has (ONNX files do not say)."""


class OutputModelInfo(_ModelInfo):
    """The layout the model's output has."""


#: A step: its name and arguments (JSON-able), or ("custom", function).
Step = tuple[str, Any]


class _Steps:
    def __init__(self) -> None:
        self.steps: list[Step] = []

    def _add(self, name: str, *args: Any) -> Self:
        self.steps.append((name, args))
        return self

    def convert_element_type(self, type: Any = None) -> Self:
        """Add a step converting to element type ``type`` (without one: to the type the next stage
        wants); returns the steps, for chaining."""
        from ember.types import Type

        return self._add("convert_element_type", None if type is None else Type(type))

    def convert_layout(self, dst_layout: Layout | str | Sequence[int] | None = None) -> Self:
        """Add a step transposing to ``dst_layout`` (a layout, or a permutation of the dimensions;
        without one: to the layout the next stage wants); returns the steps, for chaining."""
        if dst_layout is None or isinstance(dst_layout, Layout | str):
            return self._add("convert_layout", None if dst_layout is None else Layout(dst_layout))
        return self._add("convert_layout", [int(i) for i in dst_layout])

    def custom(self, function: Callable[[Any], Any]) -> Self:
        """Add a step applying ``function`` to the graph output so far (an ``Output``), which
        returns the new one (a ``Node`` or an ``Output``); returns the steps, for chaining."""
        return self._add("custom", function)


class PreProcessSteps(_Steps):
    """The steps applied to the tensor, in order, before the model sees it."""

    def mean(self, value: float | Sequence[float]) -> PreProcessSteps:
        """Add a step subtracting ``value`` (one number, or one per channel); returns the steps,
        for chaining."""
        return self._add("mean", _floats(value))

    def scale(self, value: float | Sequence[float]) -> PreProcessSteps:
        """Add a step dividing by ``value`` (one number, or one per channel); returns the steps,
        for chaining."""
        return self._add("scale", _floats(value))

    def resize(self, alg: ResizeAlgorithm, dst_height: int | None = None,
               dst_width: int | None = None) -> PreProcessSteps:
        """Add a step resizing the image with ``alg`` (linear, nearest or cubic) to ``dst_height``
        by ``dst_width``, or to the model's size without them; returns the steps, for chaining."""
        return self._add("resize", alg, dst_height, dst_width)

    def convert_color(self, dst_format: ColorFormat) -> PreProcessSteps:
        """Add a step converting the tensor's colour format to ``dst_format`` (RGB and BGR swap
        their channels); returns the steps, for chaining."""
        return self._add("convert_color", dst_format)

    def reverse_channels(self) -> PreProcessSteps:
        """Add a step reversing the order of the channels (``C`` in the layout); returns the steps,
        for chaining."""
        return self._add("reverse_channels")

    def crop(self, begin: Sequence[int], end: Sequence[int]) -> PreProcessSteps:
        """Add a step keeping the part of the tensor from ``begin`` to ``end`` (one index per
        dimension); returns the steps, for chaining."""
        return self._add("crop", [int(b) for b in begin], [int(e) for e in end])


class PostProcessSteps(_Steps):
    """The steps applied to the model's output, in order, before the application gets it."""


def _floats(value: float | Sequence[float]) -> list[float]:
    if isinstance(value, int | float):
        return [float(value)]
    return [float(v) for v in value]


class InputInfo:
    """One model input's preprocessing: ``tensor()``, ``preprocess()``, ``model()``."""

    def __init__(self, port: Any) -> None:
        self.port = port
        self._tensor = InputTensorInfo()
        self._steps = PreProcessSteps()
        self._model = InputModelInfo()

    def tensor(self) -> InputTensorInfo:
        """What the application will feed this input: its :class:`InputTensorInfo`."""
        return self._tensor

    def preprocess(self) -> PreProcessSteps:
        """The steps from the fed tensor to the model's input: its :class:`PreProcessSteps`."""
        return self._steps

    def model(self) -> InputModelInfo:
        """What the model's input is: its :class:`InputModelInfo`."""
        return self._model

    def get_tensor(self) -> InputTensorInfo:
        """What the application will feed this input: its :class:`InputTensorInfo`."""
        return self._tensor

    def get_preprocess(self) -> PreProcessSteps:
        """The steps from the fed tensor to the model's input: its :class:`PreProcessSteps`."""
        return self._steps

    def get_model(self) -> InputModelInfo:
        """What the model's input is: its :class:`InputModelInfo`."""
        return self._model


class OutputInfo:
    """One model output's postprocessing: ``model()``, ``postprocess()``, ``tensor()``."""

    def __init__(self, port: Any) -> None:
        self.port = port
        self._tensor = OutputTensorInfo()
        self._steps = PostProcessSteps()
        self._model = OutputModelInfo()

    def tensor(self) -> OutputTensorInfo:
        """What the application wants back from this output: its :class:`OutputTensorInfo`."""
        return self._tensor

    def postprocess(self) -> PostProcessSteps:
        """The steps from the model's output to what the application gets: its
        :class:`PostProcessSteps`."""
        return self._steps

    def model(self) -> OutputModelInfo:
        """What the model's output is: its :class:`OutputModelInfo`."""
        return self._model

    def get_tensor(self) -> OutputTensorInfo:
        """What the application wants back from this output: its :class:`OutputTensorInfo`."""
        return self._tensor

    def get_postprocess(self) -> PostProcessSteps:
        """The steps from the model's output to what the application gets: its
        :class:`PostProcessSteps`."""
        return self._steps

    def get_model(self) -> OutputModelInfo:
        """What the model's output is: its :class:`OutputModelInfo`."""
        return self._model
