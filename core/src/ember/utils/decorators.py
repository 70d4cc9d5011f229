"""``ember.utils.decorators``: OpenVINO's decorators for graph-building functions."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ember.model.graph import Node, Output


def custom_preprocess_function(custom_function: Callable[..., Any]) -> Callable[[Output], Output]:
    """Wrap a function of an ``Output`` returning a ``Node`` so that it returns an ``Output``, as
    ``PreProcessSteps.custom`` wants (``openvino.utils.decorators.custom_preprocess_function``)."""

    @functools.wraps(custom_function)
    def wrapper(output: Output) -> Output:
        value = custom_function(output)
        return value.output(0) if isinstance(value, Node) else value

    return wrapper
