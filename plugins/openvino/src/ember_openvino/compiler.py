"""Compiling an ONNX model with OpenVINO, and importing OpenVINO's exported blobs.

The model reaches OpenVINO's ONNX front end as the file or the bytes the application gave, never
re-serialised through the ``onnx`` package when that can be avoided: OpenVINO parses it itself.
Its errors are turned into Ember's: a graph it cannot read is an ``InvalidModelError``, an
operator it has no conversion for an ``UnsupportedOperatorError`` naming the first such node
(found with a partial conversion, which keeps the nodes it could not convert).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from ember.plugin import (
    BlobFormatError,
    InvalidModelError,
    Model,
    Port,
    UnsupportedOperatorError,
    onnx_graph,
)
from ember_openvino import device_info, limits, runtime
from ember_openvino.compiled_model import OpenVinoCompiledModel
from ember_openvino.properties import runtime_properties

#: OpenVINO's device behind ``OPENVINO`` (its CPU plugin); ``OPENVINO.<name>`` names another.
TARGET = "CPU"


def precisions() -> list[str]:
    """The precisions this CPU runs, in OpenVINO's capability names, known without importing
    OpenVINO: f32 always, bf16 with AVX512_BF16 or AMX, f16 with AVX512_FP16 or AMX_FP16."""
    flags = set(device_info.instruction_sets())
    found = ["FP32"]
    if flags & {"avx512_bf16", "amx_bf16"}:
        found.append("BF16")
    if flags & {"avx512_fp16", "amx_fp16"}:
        found.append("FP16")
    return found


def compile_onnx(model: Model, settings: Mapping[str, str], target: str = TARGET) -> Any:
    """OpenVINO's compiled model for its device ``target``.

    :raises UnsupportedOperatorError: a node OpenVINO cannot convert, or would run wrongly
        (``limits.py``).
    """
    limits.check(model, "OPENVINO")
    ov_model = _convert(model)
    try:
        return runtime.core().compile_model(ov_model, target, dict(settings))
    except RuntimeError as exc:
        raise InvalidModelError(_source(model), f"OpenVINO cannot compile it: "
                                f"{_first_line(exc)}") from exc


def export_blob(compiled: Any) -> bytes:
    """OpenVINO's own serialisation of a compiled model (``export_model``), as bytes."""
    exported = compiled.export_model()
    # a BytesIO in recent OpenVINO, bytes in older releases
    return exported.getvalue() if hasattr(exported, "getvalue") else bytes(exported)


def import_blob(blob: bytes | memoryview, settings: Mapping[str, str],
                target: str = TARGET) -> tuple[Any, memoryview | None]:
    """OpenVINO's compiled model from bytes that its ``export_model`` wrote, on ``target``; and
    the memory it was imported from, which must live as long as the model (None when OpenVINO
    copied it).

    OpenVINO reads the blob in place from a ``Tensor`` over it, where a stream (``BytesIO``)
    is copied twice more in its bindings before the import reads it. The tensor is made over a
    private copy of the bytes: OpenVINO shares only writeable memory, and a copy taken after the
    caller checked the bytes (checksum, signature) cannot change under OpenVINO afterwards.
    """
    import numpy as np

    core = runtime.core()
    private = bytearray(blob)
    tensor = runtime.engine().Tensor(np.frombuffer(private, dtype=np.uint8), shared_memory=True)
    try:
        compiled = core.import_model(tensor, target, dict(settings))
    except TypeError:  # an OpenVINO older than import_model(Tensor): the stream form
        return core.import_model(io.BytesIO(blob), target, dict(settings)), None
    return compiled, memoryview(private)


def wrap(compiled: Any, inputs: list[Port], outputs: list[Port]) -> OpenVinoCompiledModel:
    feeds, results = port_indices(compiled, inputs, outputs)
    return OpenVinoCompiledModel(compiled, inputs, outputs, runtime_properties(compiled),
                                 runtime.engine().Tensor, feeds, results)


def port_indices(compiled: Any, inputs: list[Port], outputs: list[Port]
                 ) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    """Which of OpenVINO's inputs each of the model's inputs feeds, and which of its outputs
    each of the model's outputs is, matched by name (never by position: OpenVINO drops an input
    the graph does not read, such as CastLike's ``like`` or an empty ``axes``, and the inputs
    after it move up).

    :raises BlobFormatError: an input OpenVINO has that no port names, or a port's output that
        OpenVINO does not have (only a payload that does not belong to its blob does that).
    """
    ov_inputs = {name: j for j, port in enumerate(compiled.inputs) for name in port.get_names()}
    ov_outputs = {name: j for j, port in enumerate(compiled.outputs)
                  for name in port.get_names()}
    feeds = tuple((i, ov_inputs[port.name]) for i, port in enumerate(inputs)
                  if port.name in ov_inputs)
    if len({j for _, j in feeds}) != len(compiled.inputs):
        raise BlobFormatError("damaged OPENVINO payload: OpenVINO's model has inputs that no "
                              "recorded input names")
    missing = [port.name for port in outputs if port.name not in ov_outputs]
    if missing:
        raise BlobFormatError(f"damaged OPENVINO payload: outputs {missing} are not in "
                              "OpenVINO's model")
    return feeds, tuple(ov_outputs[port.name] for port in outputs)


def _convert(model: Model) -> Any:
    """OpenVINO's model from the ONNX file or bytes."""
    front_end = runtime.engine().FrontEndManager().load_by_framework("onnx")
    source = _onnx_source(model)
    try:
        loaded = front_end.load(source)
    except Exception as exc:  # OpenVINO's GeneralFailure and friends: not a readable graph
        raise InvalidModelError(_source(model), _first_line(exc)) from exc
    try:
        return front_end.convert(loaded)
    except Exception as exc:
        unsupported = _first_unconverted(front_end, model)
        if unsupported is not None:
            raise UnsupportedOperatorError("OPENVINO", *unsupported) from exc
        raise InvalidModelError(_source(model), _first_line(exc)) from exc


def _onnx_source(model: Model) -> Any:
    """What OpenVINO's front end reads: the unparsed source of a deferred model (its file or its
    bytes), else the model serialised (it may have been edited since it was read)."""
    source = getattr(model, "source", None)
    if isinstance(source, bytes):
        return io.BytesIO(source)
    if source is not None:
        return str(source)
    return io.BytesIO(model.to_bytes())


def _first_unconverted(front_end: Any, model: Model) -> tuple[str, str, str] | None:
    """The operator type, node name and domain of the first node OpenVINO did not convert.

    A partial conversion keeps such nodes with their type and domain, but names them by their
    first output; the node's own name is read from the graph (this is the error path: parsing
    the model here costs nothing a successful compile pays)."""
    try:
        partial = front_end.convert_partially(front_end.load(_onnx_source(model)))
    except Exception:
        return None
    for node in partial.get_ordered_ops():
        attrs = node.get_attributes()
        if "ONNX_META_type" not in attrs:
            continue
        op_type, domain = str(attrs["ONNX_META_type"]), str(attrs.get("ONNX_META_domain", ""))
        return op_type, _node_name(model, op_type, domain, node.get_friendly_name()), domain
    return None


def _node_name(model: Model, op_type: str, domain: str, fallback: str) -> str:
    try:
        nodes = list(onnx_graph(model).walk())
    except InvalidModelError:  # a model that does not read: OpenVINO's name will do
        return fallback
    for node in nodes:
        if node.op_type == op_type and node.domain in (domain, "ai.onnx" if not domain else ""):
            return str(node.name) or fallback
    return fallback


def _source(model: Model) -> str:
    path = getattr(model, "path", None)
    return str(path) if path is not None else "model"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__
