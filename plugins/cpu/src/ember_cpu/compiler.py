"""CPU's compile: an onnxruntime session, optimised once and saved in ORT format for export.

The expensive, cacheable part of starting onnxruntime is graph optimisation. compile() runs it
and asks onnxruntime to save the optimised graph in its ORT (flatbuffer) format at the same time
(into memory where the OS allows, see saved_graph.py); those bytes are what export writes and
import loads with every optimisation switched off, in place, without a copy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ember.plugin import (
    BlobFormatError,
    InvalidModelError,
    Port,
    PropertyValueError,
    UnsupportedOperatorError,
)
from ember_cpu import streams
from ember_cpu.runtime import onnxruntime

if TYPE_CHECKING:
    # for annotations only: a warm start from a model path builds no Model
    from ember.plugin import Model

DEVICE_NAME = "CPU"

#: The compile property choosing onnxruntime's optimisation level. ALL is the default: its saved
#: graphs hold layouts for this machine's instruction set (NCHWc), which the cache key pins
#: through DEVICE_ARCHITECTURE, and run faster than EXTENDED's for a session that costs a little
#: more to build (figures: benchmarks/bench_cpu_start.py, docs/performance.md).
LEVELS = ("DISABLE", "BASIC", "EXTENDED", "ALL")
PRECISIONS = ("f32", "FP32")

# onnxruntime says which node it cannot run in messages such as (patterns compiled by the first
# error that needs them, through re's cache: a warm start compiles none)
#   In Node, ("foo", FooBar, "", -1) : ... No Op registered for FooBar with domain_version of 17
#   Could not find an implementation for Det(11) node with name 'determinant'
_NO_OP = r'In Node, \("(?P<node>[^"]*)", (?P<op>[\w.]+), "(?P<domain>[^"]*)"'
# and, for an operator of a domain it does not know:
#   Fatal error: com.example:NoSuchOp(-1) is not a registered function/op
_NOT_REGISTERED = (
    r"Fatal error: (?P<domain>[\w.]*):(?P<op>\w+)\(-?\d+\) is not a registered function/op"
)
_NO_KERNEL = r"implementation for (?P<op>[\w.]+)\(\d+\) node with name '(?P<node>[^']*)'"


def session_options(config: Mapping[str, Any], *, level: str | None = None) -> Any:
    ort = onnxruntime()
    plan = streams.plan(config)
    if config["INFERENCE_PRECISION_HINT"] not in PRECISIONS:
        raise PropertyValueError(
            f"INFERENCE_PRECISION_HINT={config['INFERENCE_PRECISION_HINT']!r} cannot be "
            "honoured on CPU: onnxruntime's CPU execution provider computes these models in "
            "f32 only (it has no bf16 or f16 kernels for most operators); use 'f32'"
        )
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
    # THROUGHPUT: each stream (an infer request in flight) runs on its share of the cores, so
    # that concurrent requests scale instead of competing for one pool (streams.py).
    options.intra_op_num_threads = plan.threads_per_stream
    options.log_severity_level = 3  # onnxruntime's own warnings go to stderr otherwise
    return options


def check_limits(model: Model) -> None:
    """Refuse what onnxruntime would accept and then run wrongly (ember_cpu.limits).

    :raises UnsupportedOperatorError: naming the node, the message saying why.
    """
    from ember_cpu.limits import needs_graph, refusal

    if not needs_graph(model):  # nothing a rule is about: no parse (no onnx import)
        return
    found = refusal(model.proto)
    if found is not None:
        node, why = found
        raise UnsupportedOperatorError(DEVICE_NAME, node.op_type, node.name, node.domain, why)


def optimise(model: Model, config: Mapping[str, Any]) -> tuple[Any, bytes]:
    """Build the session and the ORT-format bytes of its optimised graph."""
    from ember_cpu import saved_graph  # only a compile saves a graph; a warm start loads one

    ort = onnxruntime()
    options = session_options(config)
    options.add_session_config_entry("session.save_model_format", "ORT")
    with saved_graph.graph_file() as (saved, read_saved):
        options.optimized_model_filepath = saved
        try:
            session = ort.InferenceSession(_session_source(model), options,
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph / ... types
            raise _ember_error(exc, model) from exc
        return session, read_saved()


def _session_source(model: Model) -> str | bytes:
    """What onnxruntime reads: the file itself for a model read and not changed (onnxruntime
    finds its external data beside it; nothing is serialised or parsed here), else its bytes."""
    if isinstance(model.source, str) and not model.edits and not model.is_parsed:
        return model.source
    return model.to_bytes()


def load(ort_bytes: bytes, config: Mapping[str, Any]) -> Any:
    """A session from saved ORT-format bytes; the bytes must stay alive as long as it."""
    ort = onnxruntime()
    options = session_options(config, level="DISABLE")  # optimised already
    options.add_session_config_entry("session.load_model_format", "ORT")
    options.add_session_config_entry("session.use_ort_model_bytes_directly", "1")
    # No fallback: onnxruntime would retry the same CPU provider after printing an "EP Error"
    # banner to stdout, which belongs to the application; the error itself reaches the core,
    # which reports the entry as damaged (a warning and the log) and compiles instead.
    return ort.InferenceSession(ort_bytes, options, providers=["CPUExecutionProvider"],
                                enable_fallback=0)


def check_ports(session: Any, inputs: list[Port], outputs: list[Port]) -> None:
    """Refuse, at import, a payload whose ports are not the session's: inference would fail
    on the first call (or feed the wrong input) otherwise.

    :raises BlobFormatError: naming the first difference.
    """
    for kind, ports, args in (("inputs", inputs, session.get_inputs()),
                              ("outputs", outputs, session.get_outputs())):
        declared = {port.name: _ort_type(port.dtype) for port in ports}
        actual = {arg.name: arg.type for arg in args}
        if declared != actual:
            raise BlobFormatError(
                f"the CPU payload's {kind} {sorted(declared.items())[:4]} are not those of its "
                f"saved graph {sorted(actual.items())[:4]}")
        shapes = {arg.name: arg.shape for arg in args}
        for port in ports:
            if not _same_shape(port.shape, shapes[port.name]):
                raise BlobFormatError(f"the CPU payload's {kind[:-1]} {port.name!r} has shape "
                                      f"{list(port.shape)}; its saved graph says "
                                      f"{shapes[port.name]}")


def _same_shape(declared: tuple[Any, ...], actual: Any) -> bool:
    """Same rank, and the same size wherever both give one (names and unknowns match any)."""
    if not isinstance(actual, list) or len(actual) != len(declared):
        return False
    return all(not (isinstance(a, int) and isinstance(b, int)) or a == b
               for a, b in zip(declared, actual, strict=True))


def _ort_type(dtype: np.dtype) -> str:
    name = {"float32": "float", "float64": "double"}.get(dtype.name, dtype.name)
    return f"tensor({name})"


def _ember_error(exc: Exception, model: Model) -> Exception:
    message = str(exc)
    match = re.search(_NOT_REGISTERED, message)
    if match:  # onnxruntime names no node here: the model does
        node = next((n.name for n in model.proto.graph.node
                     if n.op_type == match["op"] and n.domain == match["domain"]), "")
        return UnsupportedOperatorError(DEVICE_NAME, match["op"], node, match["domain"])
    for pattern in (_NO_OP, _NO_KERNEL):
        match = re.search(pattern, message)
        if match and ("No Op registered" in message or pattern is _NO_KERNEL):
            domain = match.groupdict().get("domain") or ""
            return UnsupportedOperatorError(DEVICE_NAME, match["op"], match["node"], domain)
    source = model.source if isinstance(model.source, str) else model.friendly_name
    return InvalidModelError(source, f"onnxruntime refused it: {message.strip()}")
