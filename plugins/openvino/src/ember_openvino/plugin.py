"""The OPENVINO devices' hooks: OpenVINO's device plugins behind Ember's API and model cache.

``OPENVINO`` is OpenVINO's CPU; ``OPENVINO.<name>`` is OpenVINO's device ``<name>``
(``OPENVINO.CPU``, and ``OPENVINO.GPU.0`` or ``OPENVINO.NPU`` where OpenVINO reports them).
OpenVINO is loaded inside the hooks that need it (``runtime.py``), never when this module is
loaded: listing the devices looks the package up and, only where a GPU or NPU can be there,
asks OpenVINO.
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


def openvino_device(device_name: str) -> str | None:
    """OpenVINO's name for one of this plugin's devices (``"OPENVINO"`` -> ``"CPU"``,
    ``"OPENVINO.GPU.0"`` -> ``"GPU.0"``); None for a name that is not one of them."""
    if device_name == DEVICE_NAME:
        return compiler.TARGET
    kind, dot, name = device_name.partition(".")
    if kind == DEVICE_NAME and dot and name in runtime.devices():
        return name
    return None


@hookimpl
def list_devices() -> Sequence[str]:
    if not runtime.installed():
        return []
    return [DEVICE_NAME, *(f"{DEVICE_NAME}.{name}" for name in runtime.devices())]


@hookimpl
def explain_absence(device_kind: str) -> str | None:
    if device_kind.upper() != DEVICE_NAME or runtime.installed():  # a name OpenVINO lacks
        return None
    return "the openvino package is not installed: pip install openvino"


@hookimpl
def supported_metrics(device_name: str) -> Mapping[str, Any] | None:
    target = openvino_device(device_name)
    if target is None:
        return None
    if target == compiler.TARGET:  # known without loading OpenVINO
        full_name = f"OpenVINO {runtime.version()} CPU plugin on {device_info.brand()}"
        architecture = device_info.architecture(runtime.version())
        precisions = compiler.precisions()
    else:
        full_name, architecture, precisions = device_info.describe(target, runtime.version())
    return {
        props.FULL_DEVICE_NAME: full_name,
        props.DEVICE_ARCHITECTURE: architecture,
        props.OPTIMIZATION_CAPABILITIES: [props.EXPORT_IMPORT, props.ENCRYPTION, *precisions],
        props.SUPPORTED_CONFIG_KEYS: dict(CONFIG_DEFAULTS),
        # OpenVINO's exported model depends on the ISA and OpenVINO's version (both in
        # DEVICE_ARCHITECTURE) and on the precision; streams, threads and hints are given
        # again when it is imported.
        props.CACHING_PROPERTIES: [props.DEVICE_ARCHITECTURE, *CACHING_KEYS],
    }


# the "compile" hook, under a name that does not shadow the built-in compile()
@hookimpl(specname="compile")
def compile_model(model: Model, device_name: str,
            config: Mapping[str, Any]) -> OpenVinoCompiledModel | None:
    target = openvino_device(device_name)
    if target is None:
        return None
    settings = openvino_config(config)
    compiled = compiler.compile_onnx(model, settings, target)
    try:
        return compiler.wrap(compiled, list(model.inputs), list(model.outputs))
    except BlobFormatError as exc:  # not a payload here: OpenVINO changed the model's ports
        raise InvalidModelError(str(model.path or "model"),
                                f"OpenVINO's compiled model has other ports: {exc}") from exc


@hookimpl
def export_model(compiled_model: OpenVinoCompiledModel, device_name: str,
                 config: Mapping[str, Any]) -> bytes | None:
    if openvino_device(device_name) is None:
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
    target = openvino_device(device_name)
    if target is None:
        return None
    settings = openvino_config(config)
    callbacks = config.get(props.CACHE_ENCRYPTION_CALLBACKS)
    saved = payload.loads(data, callbacks.decrypt if callbacks else None)
    try:
        compiled, held = compiler.import_blob(saved.blob, settings, target)
    except Exception as exc:  # OpenVINO's own types: a blob it cannot read is a damaged one
        raise BlobFormatError(f"OpenVINO cannot import the saved model: "
                              f"{type(exc).__name__}: {str(exc).strip()[:500]}") from exc
    # wrap matches the recorded ports with OpenVINO's by name: a payload spliced from two
    # models is refused there
    model = compiler.wrap(compiled, saved.inputs, saved.outputs)
    if held is not None:  # the memory OpenVINO imported from, exported again as it is
        model.imported_blob = held
    else:  # a view of a bytes payload keeps it alive, uncopied; another buffer may change
        model.imported_blob = saved.blob if isinstance(data, bytes) else bytes(saved.blob)
    return model
