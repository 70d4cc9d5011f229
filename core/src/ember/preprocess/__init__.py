"""``ember.preprocess``: OpenVINO's ``PrePostProcessor``, whose steps become ONNX operators.

::

    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(Type.u8).set_layout(Layout("NHWC"))
    ppp.input().preprocess().resize(ResizeAlgorithm.RESIZE_LINEAR)
    ppp.input().model().set_layout(Layout("NCHW"))
    model = ppp.build()

``build()`` records one edit on the model (see :mod:`ember.preprocess.edit`): the model's ports
change at once; the operators (Cast, Transpose, Resize, Sub, Div, Gather...) are added in front of
the graph's inputs and behind its outputs only when the graph is built, which a compile that
finds the model in the cache never does. Every device runs them: they are ordinary ONNX.
"""

from ember.preprocess.info import (
    ColorFormat,
    InputInfo,
    InputModelInfo,
    InputTensorInfo,
    OutputInfo,
    OutputModelInfo,
    OutputTensorInfo,
    PostProcessSteps,
    PreProcessSteps,
    ResizeAlgorithm,
)
from ember.preprocess.processor import PrePostProcessor

__all__ = [
    "ColorFormat", "InputInfo", "InputModelInfo", "InputTensorInfo", "OutputInfo",
    "OutputModelInfo", "OutputTensorInfo", "PostProcessSteps", "PrePostProcessor",
    "PreProcessSteps", "ResizeAlgorithm",
]
