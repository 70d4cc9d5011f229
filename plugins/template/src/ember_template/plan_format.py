"""TEMPLATE's export format: a plan as JSON plus raw constant bytes; no pickle anywhere.

Two sections in the plugin framing of ``ember.plugin`` (``write_frame``/``read_frame``, which
checks their bounds): 0, the topology (JSON); 1, the data (the constants' bytes).

The topology is JSON: the steps, ports and, for each constant, its dtype, shape and offset in the
data section; the steps of If, Loop and Scan hold their subgraphs' plans, nested the same way
(without ports; constants in the same data section). Offsets are 64-byte aligned (and so is the
data section) so that import views the weights in place with ``numpy.frombuffer`` instead of
copying them. With encryption callbacks (flag 1) the topology is stored encrypted and the
weights stay plain: they say nothing about the graph without it, and decrypting megabytes of
weights would slow every start. The
core's container around this payload carries the checksum (and, with a signing key, the MAC);
this format guards its own structure.

Every byte is untrusted: ``loads`` accepts any bytes and returns a plan or raises BlobFormatError.
The topology is read by ember.common.safe_json (bounded), every field is type-checked, and the plan
is validated against what running it will do (``validate``): every slot a step reads is written
before, by a constant, an input or an earlier step, and not released in between; every output is
written; slot counts are bounded by what writes them; constants fit their shapes and the data
section; subgraphs nest at most :data:`MAX_SUBGRAPH_DEPTH` deep, and each is validated the same
way. A bad plan fails at import, not at the first inference.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ember.plugin import (
    BlobFormatError,
    Port,
    decrypt_section,
    hexdigest,
    numeric_dtype,
    read_frame,
    safe_json,
    write_frame,
)
from ember_template.kernels import KERNELS
from ember_template.plan import NO_SLOT, Plan, Step

KIND = b"EMTPLAN\0"
#: 3: in the core's framing (2: steps of If, Loop and Scan carry their subgraphs' plans).
FORMAT_VERSION = 3
#: Subgraphs nest at most this deep in a plan read back (a damaged or hostile plan cannot recurse
#: without bound).
MAX_SUBGRAPH_DEPTH = 16
_ENCRYPTED = 1
_ALIGNMENT = 64
_KNOWN_FLAGS = _ENCRYPTED
#: Bounds on an imported topology (a model with a million nodes is not one TEMPLATE runs).
_MAX_TOPOLOGY = 256 << 20
_MAX_DATA = 1 << 40
# JSON nesting: a plan's own levels, and five more for each subgraph nested in it (a step list,
# a step, its attributes, {"plan": ...}, the plan), so that MAX_SUBGRAPH_DEPTH is what refuses.
_MAX_DEPTH = 16 + 5 * (MAX_SUBGRAPH_DEPTH + 4)
_MAX_RANK = 32
_MAX_ELEMENTS = 1 << 40
_MAX_OPSET = 1000


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
    return write_frame(KIND, FORMAT_VERSION, [text, chunks], flags=flags,
                       alignment=_ALIGNMENT)


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
                              "checksum": hexdigest(data)})
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
    frame = read_frame(data, KIND, FORMAT_VERSION, sections=2, known_flags=_KNOWN_FLAGS,
                       max_sizes=(_MAX_TOPOLOGY, _MAX_DATA), what="TEMPLATE plan")
    flags = frame.flags
    text: bytes | bytearray | memoryview = frame.sections[0]
    data_section = frame.sections[1]
    if flags & _ENCRYPTED:
        if decrypt is None:
            raise BlobFormatError("the TEMPLATE plan is encrypted and no callbacks were given")
        text = decrypt_section(decrypt, text, "TEMPLATE plan")
    document = safe_json.loads(text, what="TEMPLATE plan topology", max_size=_MAX_TOPOLOGY,
                               max_depth=_MAX_DEPTH)
    try:
        plan = _plan(safe_json.obj(document, "TEMPLATE plan topology"),
                     data_section, weights)
    except BlobFormatError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as exc:
        raise BlobFormatError(f"damaged TEMPLATE plan: {type(exc).__name__}: {exc}") from exc
    validate(plan)
    return plan


def _plan(document: dict[str, Any], data: memoryview,
          weights: Callable[[str], np.ndarray] | None, depth: int = 0) -> Plan:
    """A plan from its JSON document; ``depth`` counts the enclosing subgraphs (bounded)."""
    if depth > MAX_SUBGRAPH_DEPTH:
        raise BlobFormatError(f"TEMPLATE plan nests subgraphs deeper than {MAX_SUBGRAPH_DEPTH}")
    what = "TEMPLATE plan"
    num_slots = safe_json.get(document, "num_slots", int, what,
                              check=safe_json.in_range(0, 1 << 24))
    opset = safe_json.get(document, "opset", int, what, check=safe_json.in_range(1, _MAX_OPSET))
    valid_slots = range(NO_SLOT, num_slots)  # NO_SLOT (-1) marks an omitted input

    def slots(values: Any) -> tuple[int, ...]:
        if type(values) is not list or not all(type(i) is int and i in valid_slots
                                                for i in values):
            raise BlobFormatError(f"slot out of range in {safe_json.short(values)}")
        return tuple(values)

    def listed(name: str) -> list[Any]:
        return safe_json.get(document, name, list, what)

    dtypes: dict[str, np.dtype] = {}
    constants: dict[int, np.ndarray] = {}
    for entry in listed("constants"):
        entry = safe_json.obj(entry, "a TEMPLATE plan constant")
        text = entry.get("dtype")
        dtype = dtypes.get(text) if type(text) is str else None
        if dtype is None:
            dtype = dtypes.setdefault(text, _dtype(text))
        shape = _shape(entry.get("shape"))
        (index,) = slots([entry.get("slot")])
        if index == NO_SLOT:
            raise BlobFormatError("a constant has no slot")
        if "initializer" in entry:
            constants[index] = _weight(entry, dtype, shape, weights)
            continue
        start = safe_json.get(entry, "offset", int, "a constant", check=lambda v: v >= 0)
        nbytes = safe_json.get(entry, "nbytes", int, "a constant", check=lambda v: v >= 0)
        count = math.prod(shape)
        if start + nbytes > data.nbytes or nbytes != dtype.itemsize * count:
            raise BlobFormatError("constant outside the data section")
        array = np.frombuffer(data, dtype=dtype, count=count, offset=start)
        constants[index] = array.reshape(shape)
    def attribute(value: Any) -> Any:
        if type(value) is dict and "plan" in value:
            return _plan(safe_json.obj(value["plan"], "a TEMPLATE subgraph plan"), data, weights,
                         depth + 1)
        return _decode_value(value)

    steps = []
    for entry in listed("steps"):
        entry = safe_json.obj(entry, "a TEMPLATE plan step")
        op = entry.get("op")
        if type(op) is not str or op not in KERNELS:
            raise BlobFormatError(f"TEMPLATE plan uses unknown operator {safe_json.short(op)}")
        attrs = entry.get("attrs") or {}
        if type(attrs) is not dict:
            raise BlobFormatError(f"step {safe_json.short(entry.get('name'))} has attributes "
                                  "that are not an object")
        steps.append(Step(
            op_type=op, name=str(entry.get("name", "")),
            inputs=slots(entry.get("in")), outputs=slots(entry.get("out")),
            attrs={str(k): attribute(v) for k, v in attrs.items()},
            release=slots(entry.get("release")),
        ))
    ports: dict[str, Any] = {}
    for kind in ("inputs", "outputs"):
        if depth:  # a subgraph: slots without ports
            ports[kind] = []
            ports[kind + "_slots"] = list(slots(document.get(kind[:-1] + "_slots")))
            continue
        entries = listed(kind)
        ports[kind] = [Port.from_json(p, i) for i, p in enumerate(entries)]
        ports[kind + "_slots"] = list(slots([safe_json.obj(p, "a port").get("slot")
                                             for p in entries]))
        if len({port.name for port in ports[kind]}) != len(entries):
            raise BlobFormatError(f"two TEMPLATE plan {kind} have the same name")
    weight_names = {}
    for slot, source in safe_json.get(document, "weights", dict, what).items():
        if not (type(source) is list and len(source) == 2
                and all(type(part) is str for part in source)):
            raise BlobFormatError("a TEMPLATE plan weight source is malformed")
        (index,) = slots([int(slot)])
        weight_names[index] = (source[0], source[1])
    return Plan(
        opset=opset, num_slots=num_slots, inputs=ports["inputs"], outputs=ports["outputs"],
        input_slots=ports["inputs_slots"], output_slots=ports["outputs_slots"],
        constants=constants, steps=steps, weight_names=weight_names,
    )


def validate(plan: Plan) -> None:
    """Check that running ``plan`` (and each subgraph plan of its steps) reads only slots
    written before it and writes every output.

    :raises BlobFormatError: naming the first step that would fail.
    """
    for step in plan.steps:
        for value in step.attrs.values():
            if isinstance(value, Plan):
                validate(value)
    written = plan.len_written()
    if plan.num_slots > written + 1:
        raise BlobFormatError(f"the plan declares {plan.num_slots} slots; its constants, "
                              f"inputs and steps write at most {written}")
    if NO_SLOT in plan.input_slots or NO_SLOT in plan.output_slots:
        raise BlobFormatError("a port of the plan has no slot")
    if len(set(plan.input_slots)) != len(plan.input_slots):
        raise BlobFormatError("two inputs of the plan share a slot")
    live = {*plan.constants, *plan.input_slots}
    for step in plan.steps:
        missing = [i for i in step.inputs if i != NO_SLOT and i not in live]
        if missing:
            raise BlobFormatError(f"step {step.name!r} ({step.op_type}) reads slot {missing[0]}, "
                                  "which nothing wrote before it")
        live.update(i for i in step.outputs if i != NO_SLOT)
        live.difference_update(step.release)
    unwritten = [i for i in plan.output_slots if i not in live]
    if unwritten:
        raise BlobFormatError(f"output slot {unwritten[0]} of the plan is never written")


def _shape(value: Any) -> tuple[int, ...]:
    if type(value) is not list or len(value) > _MAX_RANK or not all(
            type(d) is int and 0 <= d <= _MAX_ELEMENTS for d in value):
        raise BlobFormatError(f"invalid shape {safe_json.short(value)}")
    if math.prod(value) > _MAX_ELEMENTS:
        raise BlobFormatError(f"shape {value} is too large")
    return tuple(value)


def _weight(entry: dict[str, Any], dtype: np.dtype, shape: tuple[int, ...],
            weights: Callable[[str], np.ndarray] | None) -> np.ndarray:
    """A weightless plan's constant, from the model's file, checked against its checksum."""
    name = str(entry["initializer"])
    if not safe_json.is_hex(64)(entry.get("checksum")):
        raise BlobFormatError(f"initializer {name!r} has no valid checksum in the plan")
    if weights is None:
        raise BlobFormatError("the TEMPLATE plan is weightless and no model file was given")
    try:
        array = weights(name)
    except KeyError as exc:
        raise BlobFormatError(f"the model file has no initializer {name!r}") from exc
    array = np.asarray(array.T if entry.get("transform") == "T" else array, order="C")
    if (array.dtype != dtype or array.shape != shape
            or hexdigest(memoryview(array).cast("B")) != entry["checksum"]):
        raise BlobFormatError(f"initializer {name!r} in the model file is not the one compiled")
    return array


def _dtype(text: Any) -> np.dtype:
    try:
        return numeric_dtype(text)  # a checked type string such as "<f4"; never evaluated
    except ValueError as exc:
        raise BlobFormatError(f"unsupported constant dtype: {exc}") from exc


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
    if type(value) in (int, float, str, bool) or value is None:
        return value
    if type(value) is dict:
        try:
            if "ndarray" in value:
                spec = safe_json.obj(value["ndarray"], "an array attribute")
                dtype, shape = _dtype(spec.get("dtype")), _shape(spec.get("shape"))
                raw = base64.b64decode(safe_json.get(spec, "data", str, "an array attribute"),
                                       validate=True)
                if len(raw) != dtype.itemsize * math.prod(shape):
                    raise BlobFormatError("an array attribute's data does not fit its shape")
                return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
            if "bytes" in value:
                return base64.b64decode(safe_json.get(value, "bytes", str, "an attribute"),
                                        validate=True)
        except binascii.Error as exc:
            raise BlobFormatError(f"an attribute is not valid base64: {exc}") from exc
        raise BlobFormatError(f"unknown attribute encoding {sorted(value)[:4]}")
    return [_decode_value(v) for v in value]  # the only type left in JSON: a list
