"""Property keys, spelled as OpenVINO spells them so that code written for it works unchanged.

Read-only properties (OpenVINO's older API calls them *metrics*) describe a device; writable ones
(*config keys*) change how it compiles or runs. The values of these constants are the strings
themselves: ``core.get_property("CPU", "FULL_DEVICE_NAME")`` and
``core.get_property("CPU", properties.FULL_DEVICE_NAME)`` are the same call.

OpenVINO's ``openvino.properties`` helpers are here too, lower case, with the submodules ``hint``,
``device``, ``streams`` and ``intel_auto``: ``properties.cache_dir()`` is ``"CACHE_DIR"``,
``properties.cache_dir("/tmp/c")`` is ``("CACHE_DIR", "/tmp/c")`` (so ``dict([...])`` of them is
a config), and ``properties.hint.performance_mode`` is the key itself, usable as one.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Read-only, every device answers them (the core derives the SUPPORTED_* lists and
# IMPORT_EXPORT_SUPPORT from what the plugin reports).
SUPPORTED_PROPERTIES = "SUPPORTED_PROPERTIES"
SUPPORTED_METRICS = "SUPPORTED_METRICS"
SUPPORTED_CONFIG_KEYS = "SUPPORTED_CONFIG_KEYS"
FULL_DEVICE_NAME = "FULL_DEVICE_NAME"
DEVICE_ARCHITECTURE = "DEVICE_ARCHITECTURE"
OPTIMIZATION_CAPABILITIES = "OPTIMIZATION_CAPABILITIES"
IMPORT_EXPORT_SUPPORT = "IMPORT_EXPORT_SUPPORT"
#: Optional metric: the ONNX operator types (default domain) the device runs; the conformance
#: suite runs ONNX's node tests for exactly these.
SUPPORTED_OPERATORS = "SUPPORTED_OPERATORS"
#: Names of the properties whose values change the compiled result (OpenVINO's internal
#: ``caching_properties``); the model cache puts their values in its key.
CACHING_PROPERTIES = "CACHING_PROPERTIES"

# Capabilities listed in OPTIMIZATION_CAPABILITIES.
EXPORT_IMPORT = "EXPORT_IMPORT"
#: The device's export_model can encrypt the model topology with CACHE_ENCRYPTION_CALLBACKS.
ENCRYPTION = "ENCRYPTION"
#: The device can export without the model's weights, and import them from the model file
#: (CACHE_MODE=OPTIMIZE_SIZE).
WEIGHTLESS_CACHE = "WEIGHTLESS_CACHE"

# Writable, owned by the core rather than by a device.
CACHE_DIR = "CACHE_DIR"
#: Bytes the model cache may use (an int, or a string such as "2G"); least recently used
#: entries are evicted beyond it.
CACHE_MAX_SIZE = "CACHE_MAX_SIZE"
CACHE_ENCRYPTION_CALLBACKS = "CACHE_ENCRYPTION_CALLBACKS"
#: OpenVINO's cache mode: "OPTIMIZE_SPEED" (the default: blobs hold everything) or
#: "OPTIMIZE_SIZE" (blobs without the weights, read back from the model file; devices that list
#: WEIGHTLESS_CACHE, models compiled from a path).
CACHE_MODE = "CACHE_MODE"
CACHE_MODES = ("OPTIMIZE_SPEED", "OPTIMIZE_SIZE")
#: A shared cache tier: ``redis://host:port/db?prefix=...&ttl=...`` (see docs/fleet-cache.md).
CACHE_REMOTE = "CACHE_REMOTE"
#: The key that signs and verifies remote entries (HMAC-SHA256); never shown by get_property.
CACHE_SIGNING_KEY = "CACHE_SIGNING_KEY"

# Read-only properties of a compiled model.
LOADED_FROM_CACHE = "LOADED_FROM_CACHE"
EXECUTION_DEVICES = "EXECUTION_DEVICES"
#: How many infer requests keep the compiled model busy (an AsyncInferQueue's size).
OPTIMAL_NUMBER_OF_INFER_REQUESTS = "OPTIMAL_NUMBER_OF_INFER_REQUESTS"

# Writable keys every device accepts (the core adds them where a plugin does not declare them;
# see ember.contract.hints): OpenVINO's performance hints and streams.
PERFORMANCE_HINT = "PERFORMANCE_HINT"
PERFORMANCE_MODES = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
#: Requests the application will keep in flight (0: as many as the device wants).
PERFORMANCE_HINT_NUM_REQUESTS = "PERFORMANCE_HINT_NUM_REQUESTS"
#: Parallel streams of inference; -1 (``"AUTO"``) derives them from PERFORMANCE_HINT.
NUM_STREAMS = "NUM_STREAMS"
INFERENCE_PRECISION_HINT = "INFERENCE_PRECISION_HINT"
#: "PERFORMANCE" or "ACCURACY" (OpenVINO's ExecutionMode); Ember's engines compute at
#: INFERENCE_PRECISION_HINT either way.
EXECUTION_MODE_HINT = "EXECUTION_MODE_HINT"
EXECUTION_MODES = ("PERFORMANCE", "ACCURACY")
INFERENCE_NUM_THREADS = "INFERENCE_NUM_THREADS"

# Keys of the AUTO device (ember.runtime.auto).
#: The candidate devices in order, comma-separated (what "AUTO:GPU,CPU" says).
DEVICE_PRIORITIES = "MULTI_DEVICE_PRIORITIES"
#: Serve the first inferences on CPU while the target compiles (True by default).
ENABLE_STARTUP_FALLBACK = "ENABLE_STARTUP_FALLBACK"
#: Ember's: how AUTO chooses, ``"MEASURE"`` (the default: the fastest candidate, timed on the
#: first compile of a model and remembered) or ``"PRIORITY"`` (OpenVINO's: the first that compiles).
AUTO_SELECTION = "EMBER_AUTO_SELECTION"
AUTO_SELECTION_MODES = ("MEASURE", "PRIORITY")
#: Ember's, read-only on an AUTO compiled model: which device serves and why, in words.
AUTO_CHOICE = "EMBER_AUTO_CHOICE"

# Read-only properties of the core itself.
AVAILABLE_DEVICES = "AVAILABLE_DEVICES"

#: Writable keys the core accepts for every device, on top of what the plugin supports.
CORE_CONFIG_KEYS: tuple[str, ...] = (
    CACHE_DIR, CACHE_MAX_SIZE, CACHE_MODE, CACHE_REMOTE, CACHE_SIGNING_KEY,
)

#: Known capability strings; a plugin that reports another one is told so by the conformance tests.
KNOWN_CAPABILITIES: frozenset[str] = frozenset(
    {EXPORT_IMPORT, ENCRYPTION, WEIGHTLESS_CACHE,
     "FP32", "FP16", "BF16", "INT8", "BIN", "BATCHED_BLOB"}
)


# OpenVINO's helpers (``import openvino.properties as props``) are made when first used: the
# core reads only the keys above, and the helper submodules' enums cost a warm start time.
_HELPERS = {
    "cache_dir": CACHE_DIR,
    "cache_mode": CACHE_MODE,
    "cache_encryption_callbacks": CACHE_ENCRYPTION_CALLBACKS,
    "available_devices": AVAILABLE_DEVICES,
    "supported_properties": SUPPORTED_PROPERTIES,
    "loaded_from_cache": LOADED_FROM_CACHE,
    "execution_devices": EXECUTION_DEVICES,
    "optimal_number_of_infer_requests": OPTIMAL_NUMBER_OF_INFER_REQUESTS,
    "num_streams": NUM_STREAMS,
    "inference_num_threads": INFERENCE_NUM_THREADS,
}
_SUBMODULES = ("device", "hint", "intel_auto", "streams")
#: OpenVINO's enums of this module, made when first used (``props.CacheMode.OPTIMIZE_SIZE``).
_ENUMS = {"CacheMode": "ember.properties._property"}

if TYPE_CHECKING:
    from ember.properties import device as device
    from ember.properties import hint as hint
    from ember.properties import intel_auto as intel_auto
    from ember.properties import streams as streams
    from ember.properties._property import CacheMode as CacheMode
    from ember.properties._property import Property

    cache_dir: Property
    cache_mode: Property
    cache_encryption_callbacks: Property
    available_devices: Property
    supported_properties: Property
    loaded_from_cache: Property
    execution_devices: Property
    optimal_number_of_infer_requests: Property
    num_streams: Property
    inference_num_threads: Property


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return import_module(f"ember.properties.{name}")
    if name in _ENUMS:
        return getattr(import_module(_ENUMS[name]), name)
    if name not in _HELPERS:
        raise AttributeError(f"module 'ember.properties' has no attribute {name!r}")
    from ember.properties._property import Property

    helper = globals()[name] = Property(_HELPERS[name])
    return helper


def __dir__() -> list[str]:
    return sorted({*globals(), *_HELPERS, *_SUBMODULES, *_ENUMS})
