"""What the conformance suite tells a plugin's author when a check fails, beyond "it differs":
the likely cause, in the author's terms.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ember.errors import BackendCompileError, EmberError

#: Precisions that give f32 results (OpenVINO's names, as Ember normalises them).
F32_PRECISIONS = ("f32", "f64", "")
#: bf16 keeps 8 bits of mantissa: one rounding is a relative error of at most 2**-8; a few
#: operations in a row make a few of those.
_BF16_RTOL = 2.0 ** -8 * 16


def precision_note(compiled: Any, got: np.ndarray, want: np.ndarray) -> str:
    """A sentence to add to an output mismatch when reduced precision explains it: the compiled
    model says it runs in a precision other than f32 (its default, since the suite sets none),
    or the differences are of the size bf16 or f16 rounding gives. Empty otherwise."""
    try:
        value = compiled.get_property("INFERENCE_PRECISION_HINT")
    except EmberError:
        value = ""
    # get_property gives OpenVINO's Type ("f32" from get_type_name); a plugin may give a string
    precision = str(getattr(value, "get_type_name", lambda: value)()).lower()
    if precision not in F32_PRECISIONS:
        return (f" The compiled model runs in {precision} (INFERENCE_PRECISION_HINT), which the "
                "suite did not ask for: a device's default precision changes results beyond f32 "
                "tolerance. Users expect f32 results by default (OpenVINO's CPU default aside, "
                "Ember's plugins default to f32): make f32 the default in SUPPORTED_CONFIG_KEYS "
                "and run lower precisions only when INFERENCE_PRECISION_HINT asks for them.")
    if (np.issubdtype(want.dtype, np.floating) and got.shape == want.shape and want.size
            and np.allclose(got, want, rtol=_BF16_RTOL, atol=_BF16_RTOL * float(
                np.max(np.abs(want))), equal_nan=True)):
        return (" The differences are of the size bf16 or f16 rounding gives: does the device "
                "compute in a lower precision by default? Default to f32 (set "
                "INFERENCE_PRECISION_HINT's default to 'f32' in SUPPORTED_CONFIG_KEYS, and pass "
                "it to the backend).")
    return ""


def foreign_cause(exc: BaseException) -> BaseException:
    """The exception a plugin raised, when the core wrapped it in a BackendCompileError because
    it was not one of Ember's; ``exc`` itself otherwise."""
    cause = exc.__cause__
    if isinstance(exc, BackendCompileError) and cause is not None and not isinstance(
            cause, EmberError):
        return cause
    return exc
