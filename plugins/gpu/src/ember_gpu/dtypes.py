"""Element types: how each numpy dtype is stored in device memory and computed with in OpenCL C.

Values are stored with their own size (bool as one byte 0/1, float16 as 16-bit halves) so that
device memory reads back into numpy arrays byte for byte. Arithmetic happens in a *compute* type:
float16 is read with ``vload_half`` and computed in float (only Cast produces it in the operator
set), bool in int.
"""

from __future__ import annotations

import math

import numpy as np

#: numpy dtype -> (storage type, compute type) in OpenCL C.
_TYPES: dict[np.dtype, tuple[str, str]] = {
    np.dtype(np.float32): ("float", "float"),
    np.dtype(np.float64): ("double", "double"),
    np.dtype(np.float16): ("half", "float"),
    np.dtype(np.int64): ("long", "long"),
    np.dtype(np.int32): ("int", "int"),
    np.dtype(np.int16): ("short", "short"),
    np.dtype(np.int8): ("char", "char"),
    np.dtype(np.uint64): ("ulong", "ulong"),
    np.dtype(np.uint32): ("uint", "uint"),
    np.dtype(np.uint16): ("ushort", "ushort"),
    np.dtype(np.uint8): ("uchar", "uchar"),
    np.dtype(np.bool_): ("uchar", "int"),
}

#: The same, by type number: a lookup that does not hash a dtype (code generation does many).
_BY_NUM = {dtype.num: types for dtype, types in _TYPES.items()}
_INT_LIMITS = {"long": (-(2**63), 2**63 - 1), "int": (-(2**31), 2**31 - 1)}


def supported(dtype: np.dtype) -> bool:
    dtype = np.dtype(dtype)
    return dtype.num in _BY_NUM and dtype.isnative  # user-defined dtypes (bfloat16...) are not


def storage_type(dtype: np.dtype) -> str:
    return _BY_NUM[dtype.num][0]


def compute_type(dtype: np.dtype) -> str:
    return _BY_NUM[dtype.num][1]


def is_float(dtype: np.dtype) -> bool:
    return np.dtype(dtype).kind == "f"


def needs_fp64(dtype: np.dtype) -> bool:
    return np.dtype(dtype) == np.float64


def literal(value: float | int | bool | np.generic, dtype: np.dtype) -> str:
    """An exact OpenCL C literal of ``value`` in the compute type of ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        number = float(np.asarray(value, dtype=dtype))  # round to the dtype first
        suffix = "" if dtype == np.float64 else "f"
        if math.isnan(number):
            return "NAN" if suffix else "(double)NAN"
        if math.isinf(number):
            text = "INFINITY" if suffix else "(double)INFINITY"
            return text if number > 0 else f"(-{text})"
        return f"({number.hex()}{suffix})"  # a C99 hexadecimal literal: no rounding on parse
    if dtype == np.bool_:
        return "1" if bool(value) else "0"
    number = int(value)
    ctype = compute_type(dtype)
    low, _ = _INT_LIMITS.get(ctype, (0, 0))
    if number == low and ctype == "long":
        return "(-9223372036854775807L - 1L)"  # the literal 9223372036854775808 does not exist
    if ctype in ("long", "ulong"):
        return f"({number}L)" if ctype == "long" else f"({number}UL)"
    return f"(({ctype}){number})"


def lowest(dtype: np.dtype) -> str:
    """The identity of max: -infinity for floats, the smallest integer otherwise."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return literal(-np.inf, dtype)
    if dtype == np.bool_:
        return "0"
    return literal(np.iinfo(dtype).min, dtype)


def highest(dtype: np.dtype) -> str:
    """The identity of min: +infinity for floats, the largest integer otherwise."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return literal(np.inf, dtype)
    if dtype == np.bool_:
        return "1"
    return literal(np.iinfo(dtype).max, dtype)
