"""The API a device plugin may use: the one module a plugin imports besides ``ember``'s
application API (``ember.Core``, ``ember.properties``, ...).

Everything named in ``__all__`` is promised for :data:`CONTRACT_VERSION`: removing a name or
changing what it means raises the contract version; every other module of ``ember`` is internal
and may change in any release (a test keeps the first-party plugins to this module). Names
resolve on first use (PEP 562), so a plugin importing this module pays only for what it touches,
and a warm start that never touches the kernel cache or the ONNX helpers never imports them.

What is promised, by purpose:

- the contract: :data:`CONTRACT_VERSION`, :data:`hookimpl`, :class:`DeviceModel` (what
  ``compile`` returns), :class:`DeviceDescription`, :func:`split_device_name`;
- the model a hook receives: :class:`Model`, :class:`DeferredModel`, :class:`Port` (with its JSON
  form: ``Port.to_json()`` gives ``{"name", "shape", "dtype"}`` and ``Port.from_json(entry,
  index)`` reads one back, raising ``ValueError`` for anything malformed, so a payload can store
  its ports as JSON), :class:`Dim`, :func:`numeric_dtype`;
- a payload format: :func:`write_frame` / :func:`read_frame` (named sections with bounds checked
  once, in the core), :data:`safe_json` (bounded JSON reading of a section), :func:`hexdigest`
  (the content hash Ember uses everywhere), :func:`decrypt_section` (a section through the
  user's decrypt callback: any failure, or no bytes back, is a ``BlobFormatError`` saying it
  "does not decrypt"), :func:`ports_to_json` / :func:`ports_from_json` (a ports section: the
  inputs and outputs as JSON, read back bounded in size, depth and count, duplicate names
  refused);
- the host CPU, for a device architecture that depends on it: :func:`host_cpu_brand`,
  :func:`host_instruction_sets` (which of the given ``/proc/cpuinfo`` flags the CPU has);
- the kernel cache handed to ``compile``: :class:`KernelCache` and its key :class:`CacheKey`;
- ONNX helpers: :func:`window_geometry`, :func:`pooled_sizes` (pooling and convolution windows),
  :func:`batchnorm_into_conv`, :func:`reference_outputs` (onnx's reference evaluator with
  Ember's fixes, for constant folding on the host), :func:`onnx_graph` (a model's nodes,
  their scalar attributes and subgraphs and the graph's element types, as :class:`OnnxGraph`
  and :class:`OnnxNode` records read without importing ``onnx``: for checks a compile runs
  on every node);
- another engine a device drives: :func:`import_installed` (the installed ``openvino`` package
  itself, also inside ``python -m ember.compat.openvino``, where the program's ``openvino`` is
  Ember's own API);
- the errors a plugin raises: :class:`BackendCompileError` when the backend fails on a model
  Ember read as valid (the core wraps any other exception from ``compile`` in it, naming the
  plugin and the device), :class:`UnsupportedOperatorError`, :class:`InvalidModelError`,
  :class:`BlobFormatError` for a payload that does not read back, :class:`InferenceInputError`,
  :class:`PropertyValueError`, :class:`NotSupportedError`, :class:`UnknownDeviceError`,
  :class:`PluginError`, and their base :class:`EmberError`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # 'name as name': an explicit re-export, which strict type checkers require
    # (without it they fall back to __getattr__ and see Any).
    from ember.cache.kernel_cache import KernelCache as KernelCache
    from ember.cache.key import CacheKey as CacheKey
    from ember.common import safe_json as safe_json
    from ember.common.checksum import hexdigest as hexdigest
    from ember.compat.openvino.finder import import_installed as import_installed
    from ember.contract.device import DeviceDescription as DeviceDescription
    from ember.contract.device import DeviceModel as DeviceModel
    from ember.contract.device import split_device_name as split_device_name
    from ember.contract.framing import Frame as Frame
    from ember.contract.framing import read_frame as read_frame
    from ember.contract.framing import write_frame as write_frame
    from ember.contract.hookspecs import CONTRACT_VERSION as CONTRACT_VERSION
    from ember.contract.hookspecs import hookimpl as hookimpl
    from ember.contract.host_cpu import host_cpu_brand as host_cpu_brand
    from ember.contract.host_cpu import host_instruction_sets as host_instruction_sets
    from ember.contract.payload_parts import decrypt_section as decrypt_section
    from ember.contract.payload_parts import ports_from_json as ports_from_json
    from ember.contract.payload_parts import ports_to_json as ports_to_json
    from ember.errors import BackendCompileError as BackendCompileError
    from ember.errors import BlobFormatError as BlobFormatError
    from ember.errors import EmberError as EmberError
    from ember.errors import InferenceInputError as InferenceInputError
    from ember.errors import InvalidModelError as InvalidModelError
    from ember.errors import NotSupportedError as NotSupportedError
    from ember.errors import PluginError as PluginError
    from ember.errors import PropertyValueError as PropertyValueError
    from ember.errors import UnknownDeviceError as UnknownDeviceError
    from ember.errors import UnsupportedOperatorError as UnsupportedOperatorError
    from ember.model.fold import batchnorm_into_conv as batchnorm_into_conv
    from ember.model.model import DeferredModel as DeferredModel
    from ember.model.model import Model as Model
    from ember.model.onnx_nodes import OnnxGraph as OnnxGraph
    from ember.model.onnx_nodes import OnnxNode as OnnxNode
    from ember.model.onnx_nodes import onnx_graph as onnx_graph
    from ember.model.onnx_reference import reference_outputs as reference_outputs
    from ember.model.port import Dim as Dim
    from ember.model.port import Port as Port
    from ember.model.port import numeric_dtype as numeric_dtype
    from ember.model.windows import pooled_sizes as pooled_sizes
    from ember.model.windows import window_geometry as window_geometry

# name -> the internal module that defines it (a module named by itself is the module)
_LAZY = {
    "CONTRACT_VERSION": "ember.contract.hookspecs",
    "hookimpl": "ember.contract.hookspecs",
    "DeviceModel": "ember.contract.device",
    "DeviceDescription": "ember.contract.device",
    "split_device_name": "ember.contract.device",
    "Model": "ember.model.model",
    "DeferredModel": "ember.model.model",
    "Port": "ember.model.port",
    "Dim": "ember.model.port",
    "numeric_dtype": "ember.model.port",
    "Frame": "ember.contract.framing",
    "read_frame": "ember.contract.framing",
    "write_frame": "ember.contract.framing",
    "safe_json": "ember.common.safe_json",
    "hexdigest": "ember.common.checksum",
    "decrypt_section": "ember.contract.payload_parts",
    "ports_to_json": "ember.contract.payload_parts",
    "ports_from_json": "ember.contract.payload_parts",
    "host_cpu_brand": "ember.contract.host_cpu",
    "host_instruction_sets": "ember.contract.host_cpu",
    "KernelCache": "ember.cache.kernel_cache",
    "CacheKey": "ember.cache.key",
    "window_geometry": "ember.model.windows",
    "pooled_sizes": "ember.model.windows",
    "batchnorm_into_conv": "ember.model.fold",
    "reference_outputs": "ember.model.onnx_reference",
    "onnx_graph": "ember.model.onnx_nodes",
    "OnnxGraph": "ember.model.onnx_nodes",
    "OnnxNode": "ember.model.onnx_nodes",
    "import_installed": "ember.compat.openvino.finder",
    "EmberError": "ember.errors",
    "BackendCompileError": "ember.errors",
    "BlobFormatError": "ember.errors",
    "InferenceInputError": "ember.errors",
    "InvalidModelError": "ember.errors",
    "NotSupportedError": "ember.errors",
    "PluginError": "ember.errors",
    "PropertyValueError": "ember.errors",
    "UnknownDeviceError": "ember.errors",
    "UnsupportedOperatorError": "ember.errors",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'ember.plugin' has no attribute {name!r}")
    module = import_module(module_name)
    value = module if module_name.rsplit(".", 1)[-1] == name else getattr(module, name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = sorted(_LAZY)
