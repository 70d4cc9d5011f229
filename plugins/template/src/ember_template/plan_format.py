"""TEMPLATE's export format: a plan as JSON plus raw constant bytes; no pickle anywhere.

Layout::

    b"EMTPLAN\\0" | version (uint32 LE) | flags (uint32 LE) | topology length T (uint32 LE)
    | topology (T bytes) | padding | data

The topology is JSON: the steps, ports and, for each constant, its dtype, shape and offset in the
data section; the steps of If and Loop hold their subgraphs' plans, nested the same way (without
ports; constants in the same data section). Offsets are 64-byte aligned so that import views the
weights in place with ``numpy.frombuffer`` instead of copying them. With encryption callbacks
(flag 1) the topology is stored encrypted and the weights stay plain: they say nothing about the
graph without it, and decrypting megabytes of weights would slow every start. The core's container
around this payload carries the checksum; this format only guards its own structure.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

from ember import checksum
from ember.errors import BlobFormatError
from ember.model import Port
from ember_template.kernels import KERNELS
from ember_template.plan import NO_SLOT, Plan, Step

MAGIC = b"EMTPLAN\0"
#: 2: steps of If and Loop carry their subgraphs' plans ({"plan": {...}} attributes).
FORMAT_VERSION = 2
#: Subgraphs nest at most this deep in a plan read back (a damaged or hostile plan cannot recurse
#: without bound).
MAX_SUBGRAPH_DEPTH = 32
_PREFIX = struct.Struct("<8sIII")
_ENCRYPTED = 1
_ALIGNMENT = 64
_NUMERIC_KINDS = "biufc"


def dumps(plan: Plan, encrypt: Callable[[bytes], bytes] | None = None, *,
          weightless: bool = False) -> bytes:
    """Serialize a plan. ``weightless`` stores the model's own initializers by name and
    checksum instead of their bytes; ``loads`` then needs them back (``weights``)."""
    chunks: list[bytes | memoryview] = []
    document = {
        **_graph_json(plan, chunks, weightless),
        "inputs": [_port_json(p, s) for p, s in zip(plan.inputs, plan.input_slots, strict=True)],
        "outputs": [_port_json(p, s) for p, s in zip(plan.outputs, plan.output_slots, strict=True)],
    }
    # json writes the plain attribute values itself and asks _encode_value only for the rest
    text = json.dumps(document, separators=(",", ":"), default=_encode_value).encode()
    flags = 0
    if encrypt is not None:
        text, flags = bytes(encrypt(text)), _ENCRYPTED
    padding = b"\0" * (-(_PREFIX.size + len(text)) % _ALIGNMENT)
    return b"".join([_PREFIX.pack(MAGIC, FORMAT_VERSION, flags, len(text)), text, padding, *chunks])


def _graph_json(plan: Plan, chunks: list[bytes | memoryview], weightless: bool) -> dict[str, Any]:
    """A plan's slots, constants and steps; the constants' bytes are appended to ``chunks`` (one
    data section for the model and all its subgraphs), subgraph plans (If, Loop) nested."""
    constants: list[dict[str, Any]] = []
    offset = sum(len(chunk) for chunk in chunks)
    for slot, array in sorted(plan.constants.items()):
        data = memoryview(np.ascontiguousarray(array)).cast("B")  # no copy until the join
        if weightless and slot in plan.weight_names:
            name, transform = plan.weight_names[slot]
            constants.append({"slot": slot, "dtype": array.dtype.str, "shape": list(array.shape),
                              "initializer": name, "transform": transform,
                              "checksum": checksum.hexdigest(data)})
            continue
        constants.append({"slot": slot, "dtype": array.dtype.str, "shape": list(array.shape),
                          "offset": offset, "nbytes": data.nbytes})
        padding = -data.nbytes % _ALIGNMENT
        chunks += [data, bytes(padding)]
        offset += data.nbytes + padding
    steps = []
    for s in plan.steps:
        attrs = {key: {"plan": _subgraph_json(value, chunks, weightless)}
                 if isinstance(value, Plan) else value for key, value in s.attrs.items()}
        steps.append({"op": s.op_type, "name": s.name, "in": s.inputs, "out": s.outputs,
                      "attrs": attrs, "release": s.release})
    return {"opset": plan.opset, "num_slots": plan.num_slots, "constants": constants,
            "weights": {str(slot): list(source) for slot, source in plan.weight_names.items()},
            "steps": steps}


def _subgraph_json(plan: Plan, chunks: list[bytes | memoryview],
                   weightless: bool) -> dict[str, Any]:
    return {**_graph_json(plan, chunks, weightless), "input_slots": plan.input_slots,
            "output_slots": plan.output_slots}


def loads(data: bytes | memoryview, decrypt: Callable[[bytes], bytes] | None = None,
          weights: Callable[[str], np.ndarray] | None = None) -> Plan:
    """Read a plan back; constants are read-only views into ``data``, which must stay alive.

    ``weights`` looks up a model initializer by name, for a weightless plan; each one is checked
    against the checksum the plan recorded (another file's weights are a BlobFormatError).

    :raises BlobFormatError: for a damaged plan, an encrypted one without ``decrypt``, or one that
        ``decrypt`` cannot read (other callbacks).
    """
    view = memoryview(data).cast("B")
    if view.nbytes < _PREFIX.size:
        raise BlobFormatError("TEMPLATE payload is too short")
    magic, version, flags, text_size = _PREFIX.unpack_from(view)
    if magic != MAGIC:
        raise BlobFormatError("not a TEMPLATE plan (wrong magic bytes)")
    if version != FORMAT_VERSION:
        raise BlobFormatError(f"TEMPLATE plan format {version}; this plugin reads {FORMAT_VERSION}")
    text_end = _PREFIX.size + text_size
    data_start = text_end + (-text_end % _ALIGNMENT)
    text = bytes(view[_PREFIX.size:text_end])
    if flags & _ENCRYPTED:
        if decrypt is None:
            raise BlobFormatError("the TEMPLATE plan is encrypted and no callbacks were given")
        try:
            text = decrypt(text)
        except BlobFormatError:
            raise
        except Exception as exc:  # the user's callback: any failure means "not our key"
            raise BlobFormatError(f"the TEMPLATE plan does not decrypt: {exc}") from exc
    try:
        document = json.loads(text)
        return _plan(document, view[data_start:], weights)
    except BlobFormatError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        raise BlobFormatError(f"damaged TEMPLATE plan: {type(exc).__name__}: {exc}") from exc


def _plan(document: dict[str, Any], data: memoryview,
          weights: Callable[[str], np.ndarray] | None, depth: int = 0) -> Plan:
    """A plan from its JSON document; ``depth`` counts the enclosing subgraphs (bounded)."""
    if depth > MAX_SUBGRAPH_DEPTH:
        raise BlobFormatError(f"TEMPLATE plan nests subgraphs deeper than {MAX_SUBGRAPH_DEPTH}")
    num_slots = int(document["num_slots"])

    valid_slots = range(NO_SLOT, num_slots)  # NO_SLOT (-1) marks an omitted input

    def slots(values: list[Any]) -> tuple[int, ...]:
        indices = tuple(values)
        if not all(type(i) is int and i in valid_slots for i in indices):
            raise BlobFormatError(f"slot out of range in {values!r}")
        return indices

    dtypes: dict[str, np.dtype] = {}
    constants: dict[int, np.ndarray] = {}
    for entry in document["constants"]:
        dtype = dtypes.get(entry["dtype"]) or dtypes.setdefault(entry["dtype"],
                                                                _dtype(entry["dtype"]))
        shape = tuple(int(d) for d in entry["shape"])
        (index,) = slots([entry["slot"]])
        if "initializer" in entry:
            constants[index] = _weight(entry, dtype, shape, weights)
            continue
        start, nbytes, count = int(entry["offset"]), int(entry["nbytes"]), math.prod(shape)
        if start < 0 or start + nbytes > data.nbytes or nbytes != dtype.itemsize * count:
            raise BlobFormatError("constant outside the data section")
        array = np.frombuffer(data, dtype=dtype, count=count, offset=start)
        constants[index] = array.reshape(shape)

    def attribute(value: Any) -> Any:
        if isinstance(value, dict) and "plan" in value:
            return _plan(value["plan"], data, weights, depth + 1)
        return _decode_value(value)

    steps = []
    for entry in document["steps"]:
        if entry["op"] not in KERNELS:
            raise BlobFormatError(f"TEMPLATE plan uses unknown operator {entry['op']!r}")
        attrs = entry["attrs"]
        steps.append(Step(
            op_type=entry["op"], name=str(entry["name"]),
            inputs=slots(entry["in"]), outputs=slots(entry["out"]),
            attrs={str(k): attribute(v) for k, v in attrs.items()} if attrs else {},
            release=slots(entry["release"]),
        ))
    if depth:  # a subgraph: slots without ports
        inputs, outputs = [], []
        input_slots, output_slots = document["input_slots"], document["output_slots"]
    else:
        inputs = [Port.from_json(p, i) for i, p in enumerate(document["inputs"])]
        outputs = [Port.from_json(p, i) for i, p in enumerate(document["outputs"])]
        input_slots = [p["slot"] for p in document["inputs"]]
        output_slots = [p["slot"] for p in document["outputs"]]
    return Plan(
        opset=int(document["opset"]), num_slots=num_slots, inputs=inputs, outputs=outputs,
        input_slots=list(slots(input_slots)), output_slots=list(slots(output_slots)),
        constants=constants, steps=steps,
        weight_names={int(slot): (str(name), str(transform))
                      for slot, (name, transform) in document["weights"].items()},
    )


def _weight(entry: dict[str, Any], dtype: np.dtype, shape: tuple[int, ...],
            weights: Callable[[str], np.ndarray] | None) -> np.ndarray:
    """A weightless plan's constant, from the model's file, checked against its checksum."""
    name = str(entry["initializer"])
    if weights is None:
        raise BlobFormatError("the TEMPLATE plan is weightless and no model file was given")
    try:
        array = weights(name)
    except KeyError as exc:
        raise BlobFormatError(f"the model file has no initializer {name!r}") from exc
    array = np.asarray(array.T if entry.get("transform") == "T" else array, order="C")
    if (array.dtype != dtype or array.shape != shape
            or checksum.hexdigest(memoryview(array).cast("B")) != entry["checksum"]):
        raise BlobFormatError(f"initializer {name!r} in the model file is not the one compiled")
    return array


def _dtype(text: str) -> np.dtype:
    dtype = np.dtype(text)  # parses a type string such as "<f4"; never evaluates code
    if dtype.kind not in _NUMERIC_KINDS:
        raise BlobFormatError(f"unsupported constant dtype {text!r}")
    return dtype


def _port_json(port: Port, slot: int) -> dict[str, Any]:
    return {**port.to_json(), "slot": slot}


# Attribute values are JSON-native except arrays, bytes and numpy scalars: json.dumps hands those
# to _encode_value, which tags arrays and bytes with a one-key object that _decode_value reverses.
def _encode_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode()
        return {"ndarray": {"dtype": value.dtype.str, "shape": list(value.shape), "data": data}}
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode()}
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store attribute value {value!r} in a TEMPLATE plan")


def _decode_value(value: Any) -> Any:
    if type(value) in (int, float, str):
        return value
    if isinstance(value, dict):
        if "ndarray" in value:
            spec = value["ndarray"]
            raw = base64.b64decode(spec["data"])
            return np.frombuffer(raw, dtype=_dtype(spec["dtype"])).reshape(spec["shape"]).copy()
        if "bytes" in value:
            return base64.b64decode(value["bytes"])
        raise BlobFormatError(f"unknown attribute encoding {sorted(value)}")
    if isinstance(value, list):
        return [_decode_value(v) for v in value]
    return value
