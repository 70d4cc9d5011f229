"""A tiny but complete device plugin (adds one), for testing the core and tools without hardware."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ember import hookimpl
from ember.model.model import Model
from ember.model.port import Port


class AddOneModel:
    """Adds one to its only input; exports as the literal bytes b'add-one'."""

    def __init__(self, inputs: Sequence[Port], outputs: Sequence[Port]) -> None:
        self.inputs = list(inputs)
        self.outputs = list(outputs)

    def infer(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [inputs[0] + 1]


class ToyPlugin:
    """Devices ``<prefix>.0`` .. ``<prefix>.<count-1>``, each with EXPORT_IMPORT when asked."""

    def __init__(self, prefix: str = "TOY", count: int = 2, export: bool = True) -> None:
        self.prefix, self.count, self.export = prefix, count, export
        self.compiled_configs: list[dict] = []

    def _mine(self, device_name: str) -> bool:
        return device_name in self.list_devices()

    @hookimpl
    def list_devices(self) -> list[str]:
        return [f"{self.prefix}.{i}" for i in range(self.count)]

    @hookimpl
    def supported_metrics(self, device_name: str) -> dict[str, Any] | None:
        if not self._mine(device_name):
            return None
        return {
            "FULL_DEVICE_NAME": f"toy device {device_name}",
            "DEVICE_ARCHITECTURE": "toy-1",
            "OPTIMIZATION_CAPABILITIES": ["EXPORT_IMPORT", "FP32"] if self.export else ["FP32"],
            "SUPPORTED_CONFIG_KEYS": {"TOY_LEVEL": 1},
            "CACHING_PROPERTIES": ["TOY_LEVEL"],
        }

    @hookimpl
    def compile(
        self, model: Model, device_name: str, config: Mapping[str, Any]
    ) -> AddOneModel | None:
        if not self._mine(device_name):
            return None
        self.compiled_configs.append(dict(config))
        return AddOneModel(model.inputs, model.outputs)

    @hookimpl
    def export_model(self, compiled_model: AddOneModel, device_name: str) -> bytes | None:
        return b"add-one" if self._mine(device_name) else None

    @hookimpl
    def import_model(self, data: bytes | memoryview, device_name: str) -> AddOneModel | None:
        if not self._mine(device_name):
            return None
        assert bytes(data) == b"add-one"
        port = Port("x", (None,), np.dtype(np.float32))
        return AddOneModel([port], [Port("y", (None,), np.dtype(np.float32))])


def identity_model_bytes() -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime Ember supports
    return model.SerializeToString()
