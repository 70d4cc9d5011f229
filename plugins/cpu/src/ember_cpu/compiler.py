"""CPU's compile: an onnxruntime session, optimised once and saved in ORT format for export.

The expensive, cacheable part of starting onnxruntime is graph optimisation. compile() runs it
and asks onnxruntime to save the optimised graph in its ORT (flatbuffer) format at the same time;
those bytes are what export writes and import loads with every optimisation switched off, in
place, without a copy.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ember.errors import InvalidModelError, PropertyValueError, UnsupportedOperatorError
from ember.model import Model
from ember_cpu.runtime import onnxruntime

DEVICE_NAME = "CPU"

#: The compile property choosing onnxruntime's optimisation level. EXTENDED is the default: its
#: saved graphs hold no hardware-specific (NCHWc) nodes and load faster than ALL's on the OCR
#: models measured (docs/performance.md).
LEVELS = ("DISABLE", "BASIC", "EXTENDED", "ALL")
PRECISIONS = ("f32", "FP32")
HINTS = ("LATENCY", "THROUGHPUT")

# onnxruntime says which node it cannot run in messages such as
#   In Node, ("foo", FooBar, "", -1) : ... No Op registered for FooBar with domain_version of 17
#   Could not find an implementation for Det(11) node with name 'determinant'
_NO_OP = re.compile(r'In Node, \("(?P<node>[^"]*)", (?P<op>[\w.]+), "(?P<domain>[^"]*)"')
# and, for an operator of a domain it does not know:
#   Fatal error: com.example:NoSuchOp(-1) is not a registered function/op
_NOT_REGISTERED = re.compile(
    r"Fatal error: (?P<domain>[\w.]*):(?P<op>\w+)\(-?\d+\) is not a registered function/op"
)
_NO_KERNEL = re.compile(
    r"implementation for (?P<op>[\w.]+)\(\d+\) node with name '(?P<node>[^']*)'"
)


def session_options(config: Mapping[str, Any], *, level: str | None = None) -> Any:
    ort = onnxruntime()
    threads = config["INFERENCE_NUM_THREADS"]
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
        raise PropertyValueError(f"INFERENCE_NUM_THREADS must be an int >= 0, not {threads!r}")
    if config["INFERENCE_PRECISION_HINT"] not in PRECISIONS:
        raise PropertyValueError(
            f"CPU (onnxruntime) runs f32 only; INFERENCE_PRECISION_HINT="
            f"{config['INFERENCE_PRECISION_HINT']!r} cannot be honoured"
        )
    if config["PERFORMANCE_HINT"] not in HINTS:
        raise PropertyValueError(f"PERFORMANCE_HINT must be one of {HINTS}")
    level = level or config["GRAPH_OPTIMIZATION_LEVEL"]
    if level not in LEVELS:
        raise PropertyValueError(f"GRAPH_OPTIMIZATION_LEVEL must be one of {LEVELS}, not {level!r}")
    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "DISABLE": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "BASIC": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "EXTENDED": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "ALL": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    # THROUGHPUT: one thread per request, so that concurrent infer requests scale instead of
    # competing for the same pool.
    options.intra_op_num_threads = 1 if config["PERFORMANCE_HINT"] == "THROUGHPUT" else threads
    options.log_severity_level = 3  # onnxruntime's own warnings go to stderr otherwise
    return options


def check_limits(model: Model) -> None:
    """Refuse what onnxruntime would accept and then run wrongly (ember_cpu.limits).

    :raises UnsupportedOperatorError: naming the node, the message saying why.
    """
    from ember_cpu.limits import refusal

    found = refusal(model.proto)
    if found is not None:
        node, why = found
        raise UnsupportedOperatorError(DEVICE_NAME, node.op_type, node.name, node.domain, why)


def optimise(model: Model, config: Mapping[str, Any]) -> tuple[Any, bytes]:
    """Build the session and the ORT-format bytes of its optimised graph."""
    ort = onnxruntime()
    options = session_options(config)
    with tempfile.TemporaryDirectory(prefix="ember-cpu-") as work:
        saved = Path(work, "optimised.ort")
        options.optimized_model_filepath = os.fspath(saved)
        options.add_session_config_entry("session.save_model_format", "ORT")
        try:
            session = ort.InferenceSession(model.to_bytes(), options,
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph / ... types
            raise _ember_error(exc, model) from exc
        return session, saved.read_bytes()


def load(ort_bytes: bytes, config: Mapping[str, Any]) -> Any:
    """A session from saved ORT-format bytes; the bytes must stay alive as long as it."""
    ort = onnxruntime()
    options = session_options(config, level="DISABLE")  # optimised already
    options.add_session_config_entry("session.load_model_format", "ORT")
    options.add_session_config_entry("session.use_ort_model_bytes_directly", "1")
    return ort.InferenceSession(ort_bytes, options, providers=["CPUExecutionProvider"])


def _ember_error(exc: Exception, model: Model) -> Exception:
    message = str(exc)
    match = _NOT_REGISTERED.search(message)
    if match:  # onnxruntime names no node here: the model does
        node = next((n.name for n in model.proto.graph.node
                     if n.op_type == match["op"] and n.domain == match["domain"]), "")
        return UnsupportedOperatorError(DEVICE_NAME, match["op"], node, match["domain"])
    for pattern in (_NO_OP, _NO_KERNEL):
        match = pattern.search(message)
        if match and ("No Op registered" in message or pattern is _NO_KERNEL):
            domain = match.groupdict().get("domain") or ""
            return UnsupportedOperatorError(DEVICE_NAME, match["op"], match["node"], domain)
    source = str(model.path) if model.path else model.friendly_name
    return InvalidModelError(source, f"onnxruntime refused it: {message.strip()}")
