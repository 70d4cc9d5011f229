"""Whether serialized ONNX bytes refer to external data files, read from the protobuf wire format.

The model cache hashes a model file on a host that has not seen it yet; it must also hash the
external weight files the model names, so it has to know whether there are any. Parsing the model
with onnx costs tens of milliseconds. The wire format is walked, skipping every weight by its
length and visiting only the fields that can hold a tensor: a model made mostly of weights is
walked in microseconds whatever its size. A graph of many small nodes makes the walk slow (it
visits every node), so the walk has a budget of fields in proportion to the file's size; past it,
the bytes are searched for the field's marker (at memory speed), and only when the marker is
there is the whole model walked, to tell a real reference from a coincidence.

The answer errs on the side of "maybe": bytes that are not a well-formed model, or nested deeper
than any real model, answer True, and the caller then asks onnx.
"""

from __future__ import annotations

from ember.model.protobuf_wire import varint as _varint

# Which fields of which message hold which message, after onnx.proto3 (field numbers).
_MODEL, _GRAPH, _NODE, _ATTRIBUTE, _TENSOR, _SPARSE, _FUNCTION, _TRAINING = range(8)
_CHILDREN: dict[int, dict[int, int]] = {
    _MODEL: {7: _GRAPH, 20: _TRAINING, 25: _FUNCTION},
    _TRAINING: {1: _GRAPH, 2: _GRAPH},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _FUNCTION: {7: _NODE},
    _NODE: {5: _ATTRIBUTE},
    _ATTRIBUTE: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
}
_TENSOR_EXTERNAL_DATA = 13  # repeated StringStringEntryProto
_TENSOR_DATA_LOCATION = 14  # enum; 1 is EXTERNAL
_MAX_DEPTH = 64


#: Every external-data reference holds this protobuf field (key "location"). A search for it runs
#: at memory speed: its cost grows with the file's size, not with its number of nodes.
_MARKER = b"\x0a\x08location"
#: The walk's budget: one field per this many bytes of the file. Walking one field costs about
#: what searching a few kB does, so a walk cut short at its budget has wasted a small fraction
#: of the search it falls back to, whatever the model's size.
_BYTES_PER_FIELD = 16384
_MIN_FIELDS = 64


class _OverBudget(Exception):
    """The walk visited more fields than it may."""


def refers_to_external_data(data: bytes) -> bool:
    """True when the model may name external data files; False only when it certainly does not."""
    view = memoryview(data).cast("B")
    try:
        return _walk(view, budget=max(_MIN_FIELDS, view.nbytes // _BYTES_PER_FIELD))
    except _OverBudget:
        pass  # many small nodes: the search is cheaper than the rest of the walk
    except (IndexError, ValueError):
        return _MARKER in data  # not a model we can walk: the marker decides, as below
    if _MARKER not in data:
        return False
    try:
        return _walk(view)
    except (IndexError, ValueError):
        return True


def _walk(view: memoryview, budget: int | None = None) -> bool:
    """Whether a tensor anywhere in the model is stored externally.

    :raises _OverBudget: after ``budget`` fields (no limit when None).
    :raises ValueError, IndexError: when the bytes are not a well-formed protobuf message.
    """
    left = budget if budget is not None else -1
    stack = [(_MODEL, 0, view.nbytes, 0)]
    while stack:
        kind, position, end, depth = stack.pop()
        if depth > _MAX_DEPTH:
            return True
        children = _CHILDREN.get(kind, {})
        while position < end:
            left -= 1
            if left == 0:
                raise _OverBudget
            tag, position = _varint(view, position)
            field, wire_type = tag >> 3, tag & 7
            if wire_type == 0:
                value, position = _varint(view, position)
                if kind == _TENSOR and field == _TENSOR_DATA_LOCATION and value == 1:
                    return True
            elif wire_type == 2:
                length, position = _varint(view, position)
                if position + length > end:
                    raise ValueError("field runs past its message")
                if kind == _TENSOR and field == _TENSOR_EXTERNAL_DATA:
                    return True
                child = children.get(field)
                if child is not None:
                    stack.append((child, position, position + length, depth + 1))
                position += length
            elif wire_type == 1:
                position += 8
            elif wire_type == 5:
                position += 4
            else:  # groups (deprecated) and invalid wire types: not a model we can vouch for
                raise ValueError(f"wire type {wire_type}")
        if position != end:
            raise ValueError("message runs past its end")
    return False


def external_locations(data: bytes) -> set[str]:
    """The ``location`` of every external-data reference in a model (tensors anywhere: the
    graph, subgraphs, functions, training info), read from the wire format without onnx.

    :raises ValueError, IndexError: for bytes that are not a well-formed model, or nested
        deeper than any real one.
    """
    from ember.model.protobuf_wire import LENGTH, fields

    found: set[str] = set()
    stack = [(_MODEL, 0, len(data), 0)]
    while stack:
        kind, start, stop, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise ValueError("nested deeper than any model")
        children = _CHILDREN.get(kind, {})
        for number, wire, value, end in fields(data, start, stop):
            if wire != LENGTH:
                continue
            if kind == _TENSOR and number == _TENSOR_EXTERNAL_DATA:
                entry = {key: text for key, _, text, _ in _string_fields(data, end - value, end)}
                if entry.get(1) == "location" and 2 in entry:
                    found.add(entry[2])
                continue
            child = children.get(number)
            if child is not None:
                stack.append((child, end - value, end, depth + 1))
    return found


def _string_fields(data: bytes, start: int, stop: int) -> list[tuple[int, int, str, int]]:
    """The length-delimited fields of a message, decoded as UTF-8 (a StringStringEntryProto)."""
    from ember.model.protobuf_wire import LENGTH, fields

    return [(number, wire, data[end - value:end].decode(), end)
            for number, wire, value, end in fields(data, start, stop) if wire == LENGTH]
