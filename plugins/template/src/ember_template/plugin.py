"""The TEMPLATE device's hook implementations: the file a new device plugin starts from.

Each hook checks the device name first and returns None for any other device, as the contract in
``ember.contract.hookspecs`` asks; everything device-specific lives in the modules this one imports.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ember import properties as props
from ember.plugin import Model, PropertyValueError, hookimpl

if TYPE_CHECKING:
    from ember_template.compiled_model import TemplateCompiledModel

# The modules that compile (and import onnx) are imported inside the hooks, not here: every
# Core loads this module, and most processes never compile for TEMPLATE.
DEVICE_NAME = "TEMPLATE"

#: The version of Ember's plugin contract (ember.contract.hookspecs) this plugin was written for.
EMBER_CONTRACT_VERSION = 1

#: Compile options: name -> default. DISABLE_TRANSFORMATIONS (as in OpenVINO's template plugin)
#: skips the fusions, so that outputs follow the reference graph node by node.
CONFIG_DEFAULTS: dict[str, Any] = {
    "DISABLE_TRANSFORMATIONS": False,
    "INFERENCE_PRECISION_HINT": "f32",
}


@hookimpl
def list_devices() -> Sequence[str]:
    return [DEVICE_NAME]  # numpy runs everywhere


@hookimpl
def supported_metrics(device_name: str) -> Mapping[str, Any] | None:
    if device_name != DEVICE_NAME:
        return None
    return {
        props.FULL_DEVICE_NAME: f"Ember numpy reference device ({platform.machine()})",
        # numpy's version is part of it: compiled plans and results depend on its kernels.
        props.DEVICE_ARCHITECTURE: f"{platform.machine()}-numpy{np.__version__}",
        props.OPTIMIZATION_CAPABILITIES: [
            props.EXPORT_IMPORT, props.ENCRYPTION, props.WEIGHTLESS_CACHE, "FP32",
        ],
        props.SUPPORTED_CONFIG_KEYS: dict(CONFIG_DEFAULTS),
        props.CACHING_PROPERTIES: [props.DEVICE_ARCHITECTURE, "DISABLE_TRANSFORMATIONS"],
        props.SUPPORTED_OPERATORS: _operators(),
    }


def _operators() -> list[str]:
    from ember_template.kernels import KERNELS  # numpy only: cheap

    return sorted(KERNELS)


# the "compile" hook, under a name that does not shadow the built-in compile()
@hookimpl(specname="compile")
def compile_model(
    model: Model, device_name: str, config: Mapping[str, Any]
) -> TemplateCompiledModel | None:
    if device_name != DEVICE_NAME:
        return None
    precision = config["INFERENCE_PRECISION_HINT"]
    if precision not in ("f32", "FP32"):
        raise PropertyValueError(f"TEMPLATE runs f32 only; INFERENCE_PRECISION_HINT={precision!r}")
    from ember_template.compiled_model import TemplateCompiledModel
    from ember_template.compiler import compile_plan

    plan = compile_plan(model, device_name,
                        transformations=not config["DISABLE_TRANSFORMATIONS"])
    return TemplateCompiledModel(plan)


@hookimpl
def export_model(
    compiled_model: TemplateCompiledModel, device_name: str, config: Mapping[str, Any],
    weightless: bool,
) -> bytes | None:
    if device_name != DEVICE_NAME:
        return None
    from ember_template import plan_format

    callbacks = config.get(props.CACHE_ENCRYPTION_CALLBACKS)
    return plan_format.dumps(compiled_model.plan, callbacks.encrypt if callbacks else None,
                             weightless=weightless)


@hookimpl
def import_model(
    data: bytes | memoryview, device_name: str, config: Mapping[str, Any],
    weights_path: Path | None,
) -> TemplateCompiledModel | None:
    if device_name != DEVICE_NAME:
        return None
    from ember_template import plan_format
    from ember_template.compiled_model import TemplateCompiledModel
    from ember_template.weights import initializer_reader

    callbacks = config.get(props.CACHE_ENCRYPTION_CALLBACKS)
    weights = initializer_reader(weights_path) if weights_path is not None else None
    plan = plan_format.loads(data, callbacks.decrypt if callbacks else None, weights)
    return TemplateCompiledModel(plan)
