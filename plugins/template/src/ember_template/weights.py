"""Reading a model file's initializers back, for plans exported without their weights."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np


def initializer_reader(path: Path) -> Callable[[str], np.ndarray]:
    """A lookup of the file's initializers by name; the file is parsed on the first lookup.

    :raises KeyError: (from the lookup) for a name the file does not have.
    """
    import onnx
    from onnx import numpy_helper

    tensors: dict[str, onnx.TensorProto] = {}

    def lookup(name: str) -> np.ndarray:
        if not tensors:
            model = onnx.load(str(path))  # external weight files are read too
            tensors.update((t.name, t) for t in model.graph.initializer)
        return numpy_helper.to_array(tensors[name])

    return lookup
