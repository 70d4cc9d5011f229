"""Plans as bytes, for the kernel cache: a documented layout, no pickle, every field checked.

A warm start reads the lowered plan of a specialisation from ``CACHE_DIR`` instead of parsing
the ONNX model and lowering it again. The bytes come from a file, so they are untrusted:
:func:`decode_plan` and :func:`decode_model_info` are total. Any input gives a valid object or
raises :class:`ember.errors.BlobFormatError` (the caller then rebuilds and replaces the entry);
sizes, counts and offsets are bounded before anything is allocated.

A plan (format :data:`PLAN_FORMAT`) is four sections in the plugin framing of ``ember.plugin``
(``write_frame``/``read_frame``, which checks their bounds): the header, the OpenCL C source
(UTF-8), the constant arena, and the known outputs' bytes, back to back. The header is a JSON
object:

    "name":      str, the plan's name (for messages)
    "launches":  [[kernel name, global size], ...] in launch order
    "workspace": int, bytes of the workspace arena
    "inputs":    [null | [offset, nbytes], ...], one per model input, in order
    "outputs":   [{"shape": [int...], "dtype": numpy type string,
                   "at": [offset, nbytes] | null}, ...], one per model output;
                   "at" null: the output is known here, its bytes are in the last section

A model entry (what ``compile`` needs before any shape is known) is one section, a JSON header:
``"name"``, ``"inputs"`` and ``"outputs"`` (``Port.to_json`` form) and ``"shape_inputs"`` (input
names).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ember.plugin import BlobFormatError, Port, read_frame, safe_json, write_frame
from ember_gpu import dtypes
from ember_gpu.memory import Region
from ember_gpu.plan import Launch, OutputSlot, Plan

PLAN_FORMAT = 2
_PLAN_KIND = b"EMGPLAN\0"
_MODEL_KIND = b"EMGMODL\0"

#: Bounds checked before use (far above any real model, far below what would exhaust memory).
MAX_HEADER = 64 << 20
MAX_LAUNCHES = 1 << 20
MAX_WORKSPACE = 1 << 40
MAX_GLOBAL_SIZE = 1 << 40
MAX_RANK = 32
MAX_PORTS = 1 << 16


def _kernel_name(value: Any) -> bool:
    """An OpenCL C identifier of at most 63 ASCII characters (no regular expression: compiling
    one costs a warm start more than all of this checking)."""
    return (isinstance(value, str) and 0 < len(value) < 64 and value.isascii()
            and value.isidentifier())


def _fail(what: str) -> BlobFormatError:
    return BlobFormatError(f"not a valid ember-gpu plan entry: {what}")


# -- encoding ------------------------------------------------------------------------------------


def _frame(kind: bytes, header: dict[str, Any], *sections: bytes) -> bytes:
    text = json.dumps(header, separators=(",", ":")).encode()
    return write_frame(kind, PLAN_FORMAT, [text, *sections], alignment=8)


def encode_plan(plan: Plan) -> bytes:
    source = plan.source.encode()
    host = b"".join(np.ascontiguousarray(slot.host).tobytes() for slot in plan.outputs
                    if slot.host is not None)
    header = {
        "name": plan.name,
        "launches": [[launch.kernel, launch.global_size] for launch in plan.launches],
        "workspace": plan.workspace_size,
        "inputs": [None if r is None else [r.offset, r.nbytes] for r in plan.inputs],
        "outputs": [{"shape": list(slot.shape), "dtype": np.dtype(slot.dtype).str,
                     "at": None if slot.region is None else [slot.region.offset,
                                                             slot.region.nbytes]}
                    for slot in plan.outputs],
    }
    return _frame(_PLAN_KIND, header, source, plan.constants, host)


def encode_model_info(name: str, inputs: Sequence[Port], outputs: Sequence[Port],
                      shape_inputs: frozenset[str]) -> bytes:
    return _frame(_MODEL_KIND, {"name": name, "inputs": [p.to_json() for p in inputs],
                                 "outputs": [p.to_json() for p in outputs],
                                 "shape_inputs": sorted(shape_inputs)})


# -- decoding: every value is checked before it is used -----------------------------------------


def _header(data: bytes | memoryview, kind: bytes, sections: int
            ) -> tuple[dict[str, Any], tuple[memoryview, ...]]:
    frame = read_frame(data, kind, PLAN_FORMAT, sections=sections, what="ember-gpu plan entry")
    header = safe_json.loads(frame.sections[0], what="an ember-gpu plan entry's header",
                             max_size=MAX_HEADER, max_depth=8)
    if not isinstance(header, dict):
        raise _fail("header is not an object")
    return header, frame.sections


def _int(value: Any, low: int, high: int, what: str) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _fail(f"{what} is not an integer in [{low}, {high}]")
    return value


def _str(value: Any, what: str, limit: int = 4096) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise _fail(f"{what} is not a string")
    return value


def _list(value: Any, what: str, limit: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise _fail(f"{what} is not a list of at most {limit}")
    return value


def _region(value: Any, workspace: int, what: str) -> Region:
    pair = _list(value, what, 2)
    if len(pair) != 2:
        raise _fail(f"{what} is not [offset, nbytes]")
    offset = _int(pair[0], 0, workspace, f"{what} offset")
    nbytes = _int(pair[1], 0, workspace - offset, f"{what} size")
    return Region("W", offset, nbytes)


def _dtype(value: Any, what: str) -> np.dtype:
    text = _str(value, what, 8)
    try:
        dtype = np.dtype(text)
    except (TypeError, ValueError, SyntaxError):
        raise _fail(f"{what} {text!r} is not a type") from None
    if dtype.kind not in "biuf" or not dtypes.supported(dtype) or dtype.str != text:
        raise _fail(f"{what} {text!r} is not a device type")
    return dtype


def _shape(value: Any, what: str) -> tuple[int, ...]:
    dims = tuple(_int(d, 0, 1 << 31, f"{what} dimension")
                 for d in _list(value, what, MAX_RANK))
    if math.prod(dims) > MAX_WORKSPACE:
        raise _fail(f"{what} is too large")
    return dims


def decode_plan(data: bytes | memoryview, input_nbytes: Sequence[int],
                output_ports: Sequence[Port]) -> Plan:
    """The plan in ``data``, for a specialisation with inputs of these sizes (bytes) and these
    output ports; raises BlobFormatError for anything else."""
    header, (_, source_bytes, constants, host) = _header(data, _PLAN_KIND, 4)
    workspace = _int(header.get("workspace"), 0, MAX_WORKSPACE, "workspace")
    launches = []
    for entry in _list(header.get("launches"), "launches", MAX_LAUNCHES):
        pair = _list(entry, "a launch", 2)
        if len(pair) != 2 or not _kernel_name(pair[0]):
            raise _fail("a launch is not [kernel name, global size]")
        launches.append(Launch(pair[0], _int(pair[1], 1, MAX_GLOBAL_SIZE, "a global size")))
    inputs = _list(header.get("inputs"), "inputs", MAX_PORTS)
    if len(inputs) != len(input_nbytes):
        raise _fail(f"{len(inputs)} inputs for a model with {len(input_nbytes)}")
    regions: list[Region | None] = []
    for index, (entry, nbytes) in enumerate(zip(inputs, input_nbytes, strict=True)):
        region = None if entry is None else _region(entry, workspace, f"input {index}")
        if region is not None and region.nbytes != nbytes:
            raise _fail(f"input {index} holds {region.nbytes} bytes, not {nbytes}")
        regions.append(region)
    outputs_json = _list(header.get("outputs"), "outputs", MAX_PORTS)
    if len(outputs_json) != len(output_ports):
        raise _fail(f"{len(outputs_json)} outputs for a model with {len(output_ports)}")
    host_used = 0
    outputs = []
    for index, entry in enumerate(outputs_json):
        if not isinstance(entry, dict):
            raise _fail(f"output {index} is not an object")
        shape = _shape(entry.get("shape"), f"output {index} shape")
        dtype = _dtype(entry.get("dtype"), f"output {index} dtype")
        nbytes = math.prod(shape) * dtype.itemsize
        if entry.get("at") is None:
            if host_used + nbytes > host.nbytes:
                raise _fail(f"output {index}'s bytes are missing")
            array = np.frombuffer(host[host_used:host_used + nbytes], dtype=dtype).reshape(shape)
            host_used += nbytes
            outputs.append(OutputSlot(shape, dtype, host=array.copy()))
        else:
            region = _region(entry["at"], workspace, f"output {index}")
            if region.nbytes != nbytes:
                raise _fail(f"output {index} holds {region.nbytes} bytes, not {nbytes}")
            outputs.append(OutputSlot(shape, dtype, region=region))
    if host_used != host.nbytes:
        raise _fail("known outputs do not fill their section")
    try:
        source = str(source_bytes, "utf-8")
    except UnicodeDecodeError:
        raise _fail("the source is not UTF-8") from None
    name = _str(header.get("name"), "name")
    return Plan(name, source, tuple(launches), bytes(constants), workspace,
                tuple(regions), tuple(outputs))


class ModelInfo:
    """What ``compile`` needs of a model when its plans come from the cache."""

    __slots__ = ("inputs", "name", "outputs", "shape_inputs")

    def __init__(self, name: str, inputs: tuple[Port, ...], outputs: tuple[Port, ...],
                 shape_inputs: frozenset[str]) -> None:
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.shape_inputs = shape_inputs


def _ports(value: Any, what: str) -> tuple[Port, ...]:
    ports = []
    for index, entry in enumerate(_list(value, what, MAX_PORTS)):
        if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list) \
                or len(entry["shape"]) > MAX_RANK:
            raise _fail(f"{what} {index} is not a port")
        _str(entry.get("name"), f"{what} {index} name")
        for dim in entry["shape"]:
            if not (dim is None or isinstance(dim, str) or (type(dim) is int and dim >= 0)):
                raise _fail(f"{what} {index} has a bad dimension")
        try:
            ports.append(Port.from_json(entry, index))
        except (KeyError, TypeError, ValueError):
            raise _fail(f"{what} {index} is not a port") from None
    return tuple(ports)


def decode_model_info(data: bytes | memoryview) -> ModelInfo:
    header, _ = _header(data, _MODEL_KIND, 1)
    inputs = _ports(header.get("inputs"), "input")
    names = {p.name for p in inputs}
    shape_inputs = frozenset(_str(n, "a shape input") for n in
                             _list(header.get("shape_inputs"), "shape inputs", MAX_PORTS))
    if not shape_inputs <= names:
        raise _fail("a shape input is not an input")
    return ModelInfo(_str(header.get("name"), "name"), inputs,
                     _ports(header.get("outputs"), "output"), shape_inputs)
