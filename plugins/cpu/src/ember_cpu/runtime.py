"""The one place that imports onnxruntime, on first use, with its telemetry switched off.

onnxruntime 1.29 and later ship Microsoft's 1DS telemetry in their Linux wheels too: importing
them writes a device identifier under ``~/.cache/Microsoft/DeveloperTools`` and sends process
information. Ember must not do that on the user's behalf, so the opt-out variables are set before
the first import (``setdefault``: a user's explicit setting wins). An application that imported
onnxruntime before Ember has already decided for itself.
"""

from __future__ import annotations

import os
from functools import cache
from types import ModuleType

_OPT_OUT = ("ORT_DISABLE_TELEMETRY", "ORT_TELEMETRY_DISABLED")


@cache
def onnxruntime() -> ModuleType:
    for name in _OPT_OUT:
        os.environ.setdefault(name, "1")
    import onnxruntime as ort

    ort.disable_telemetry_events()  # the API switch (Windows builds' TraceLogging)
    return ort
