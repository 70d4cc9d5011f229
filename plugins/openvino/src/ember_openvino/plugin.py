"""The OPENVINO device's hooks: OpenVINO's CPU plugin behind Ember's API and model cache.

OpenVINO is imported inside the hooks that need it (``runtime.py``), never when this module is
loaded: listing the device only looks the package up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ember import properties as props
from ember.plugin import BlobFormatError, InvalidModelError, Model, hookimpl
from ember_openvino import compiler, device_info, payload, runtime
from ember_openvino.compiled_model import OpenVinoCompiledModel
from ember_openvino.properties import CACHING_KEYS, CONFIG_DEFAULTS, openvino_config

#: The version of Ember's plugin contract (ember.contract.hookspecs) this plugin was written for.
EMBER_CONTRACT_VERSION = 1
DEVICE_NAME = "OPENVINO"


@hookimpl
def list_devices() -> Sequence[str]:
    return [DEVICE_NAME] if runtime.installed() else []


@hookimpl
def explain_absence(device_kind: str) -> str | None:
    if device_kind.upper() != DEVICE_NAME or runtime.installed():
        return None
    return "the openvino package is not installed: pip install openvino"


@hookimpl
def supported_metrics(device_name: str) -> Mapping[str, Any] | None:
    if device_name != DEVICE_NAME:
        return None
    return {
        props.FULL_DEVICE_NAME: f"OpenVINO {runtime.version()} CPU plugin on "
                                f"{device_info.brand()}",
        props.DEVICE_ARCHITECTURE: device_info.architecture(runtime.version()),
        props.OPTIMIZATION_CAPABILITIES: [props.EXPORT_IMPORT, props.ENCRYPTION,
                                          *compiler.precisions()],
        props.SUPPORTED_CONFIG_KEYS: dict(CONFIG_DEFAULTS),
        # OpenVINO's exported model depends on the ISA and OpenVINO's version (both in
        # DEVICE_ARCHITECTURE) and on the precision; streams, threads and hints are given
        # again when it is imported.
        props.CACHING_PROPERTIES: [props.DEVICE_ARCHITECTURE, *CACHING_KEYS],
    }


@hookimpl
def compile(model: Model, device_name: str,
            config: Mapping[str, Any]) -> OpenVinoCompiledModel | None:
    if device_name != DEVICE_NAME:
        return None
    settings = openvino_config(config)
    compiled = compiler.compile_onnx(model, settings)
    try:
        return compiler.wrap(compiled, list(model.inputs), list(model.outputs))
    except BlobFormatError as exc:  # not a payload here: OpenVINO changed the model's ports
        raise InvalidModelError(str(model.path or "model"),
                                f"OpenVINO's compiled model has other ports: {exc}") from exc


@hookimpl
def export_model(compiled_model: OpenVinoCompiledModel, device_name: str,
                 config: Mapping[str, Any]) -> bytes | None:
    if device_name != DEVICE_NAME:
        return None
    callbacks = config.get(props.CACHE_ENCRYPTION_CALLBACKS)
    blob = compiled_model.imported_blob
    if blob is None:
        blob = compiler.export_blob(compiled_model.compiled)
    return payload.dumps(compiled_model.inputs, compiled_model.outputs, blob,
                         callbacks.encrypt if callbacks else None)


@hookimpl
def import_model(data: bytes | memoryview, device_name: str,
                 config: Mapping[str, Any]) -> OpenVinoCompiledModel | None:
    if device_name != DEVICE_NAME:
        return None
    settings = openvino_config(config)
    callbacks = config.get(props.CACHE_ENCRYPTION_CALLBACKS)
    saved = payload.loads(data, callbacks.decrypt if callbacks else None)
    try:
        compiled = compiler.import_blob(saved.blob, settings)
    except Exception as exc:  # OpenVINO's own types: a blob it cannot read is a damaged one
        raise BlobFormatError(f"OpenVINO cannot import the saved model: "
                              f"{type(exc).__name__}: {str(exc).strip()[:500]}") from exc
    # wrap matches the recorded ports with OpenVINO's by name: a payload spliced from two
    # models is refused there
    model = compiler.wrap(compiled, saved.inputs, saved.outputs)
    # a view of a bytes payload keeps it alive, uncopied; any other buffer may change later
    model.imported_blob = saved.blob if isinstance(data, bytes) else bytes(saved.blob)
    return model
