"""The CPU device's hooks. onnxruntime is imported on first use, never at plugin load."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ember import properties as props
from ember.plugin import BlobFormatError, hookimpl
from ember_cpu import compiler, device_info, payload, streams
from ember_cpu.compiled_model import CpuCompiledModel
from ember_cpu.compiler import DEVICE_NAME
from ember_cpu.runtime import onnxruntime

if TYPE_CHECKING:
    # for annotations only: a warm start from a model path builds no Model
    from ember.plugin import Model

#: The version of Ember's plugin contract (ember.contract.hookspecs) this plugin was written for.
EMBER_CONTRACT_VERSION = 1

#: Compile and run options with their defaults (OpenVINO's names where OpenVINO has one).
CONFIG_DEFAULTS: dict[str, Any] = {
    "GRAPH_OPTIMIZATION_LEVEL": "ALL",
    "INFERENCE_NUM_THREADS": 0,  # 0: onnxruntime's default, one per physical core
    "PERFORMANCE_HINT": "LATENCY",
    "NUM_STREAMS": -1,  # -1 (AUTO): from PERFORMANCE_HINT (streams.py)
    "PERFORMANCE_HINT_NUM_REQUESTS": 0,
    "INFERENCE_PRECISION_HINT": "f32",
}


@hookimpl
def list_devices() -> Sequence[str]:
    return [DEVICE_NAME]


@hookimpl
def supported_metrics(device_name: str) -> Mapping[str, Any] | None:
    if device_name != DEVICE_NAME:
        return None
    return {
        props.FULL_DEVICE_NAME: device_info.brand(),
        props.DEVICE_ARCHITECTURE: device_info.architecture(onnxruntime().__version__),
        props.OPTIMIZATION_CAPABILITIES: [props.EXPORT_IMPORT, props.ENCRYPTION, "FP32"],
        props.SUPPORTED_CONFIG_KEYS: dict(CONFIG_DEFAULTS),
        # The optimised graph depends on the ISA and onnxruntime (both in DEVICE_ARCHITECTURE)
        # and on the level; thread counts, streams and hints only change how it runs (the
        # session options of the import), and the precision is always f32.
        props.CACHING_PROPERTIES: [props.DEVICE_ARCHITECTURE, "GRAPH_OPTIMIZATION_LEVEL"],
    }


# the "compile" hook, under a name that does not shadow the built-in compile()
@hookimpl(specname="compile")
def compile_model(model: Model, device_name: str,
                  config: Mapping[str, Any]) -> CpuCompiledModel | None:
    if device_name != DEVICE_NAME:
        return None
    compiler.check_limits(model)
    session, ort_bytes = compiler.optimise(model, config)
    return CpuCompiledModel(session, list(model.inputs), list(model.outputs), ort_bytes,
                            streams.plan(config).runtime_properties())


@hookimpl
def export_model(compiled_model: CpuCompiledModel, device_name: str,
                 config: Mapping[str, Any]) -> bytes | None:
    if device_name != DEVICE_NAME:
        return None
    callbacks = config.get(props.CACHE_ENCRYPTION_CALLBACKS)
    return payload.dumps(compiled_model.inputs, compiled_model.outputs,
                         compiled_model.ort_bytes, callbacks.encrypt if callbacks else None)


@hookimpl
def import_model(data: bytes | memoryview, device_name: str,
                 config: Mapping[str, Any]) -> CpuCompiledModel | None:
    if device_name != DEVICE_NAME:
        return None
    callbacks = config.get(props.CACHE_ENCRYPTION_CALLBACKS)
    saved = payload.loads(data, callbacks.decrypt if callbacks else None)
    try:
        session = compiler.load(saved.session_bytes, config)
        compiler.check_ports(session, saved.inputs, saved.outputs)
    except BlobFormatError:
        raise
    except Exception as exc:  # a payload onnxruntime cannot load (or describe: names that are
        # not UTF-8 fail in its Python binding) is a damaged one
        raise BlobFormatError(f"onnxruntime cannot load the saved graph: "
                              f"{type(exc).__name__}: {exc}") from exc
    # the graph is a view into session_bytes, which it keeps alive as long as the session
    return CpuCompiledModel(session, saved.inputs, saved.outputs, saved.graph,
                            streams.plan(config).runtime_properties())
