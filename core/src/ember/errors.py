"""Every error Ember raises on purpose, in one place.

Each class says what the user can act on: which file, which device, which node, which input.
Every one is a ``RuntimeError``, as OpenVINO's errors are (code written for OpenVINO catches
``RuntimeError`` around a bad device name, a wrong input shape or a failed compile), and also
derives from the matching built-in type (``FileNotFoundError``, ``ValueError``, ...) so that plain
Python code catches them where it expects to.
"""

from __future__ import annotations

from collections.abc import Sequence


class EmberError(RuntimeError):
    """Base class of every error Ember raises on purpose; a RuntimeError, as in OpenVINO."""


class ModelNotFoundError(EmberError, FileNotFoundError):
    """A model file does not exist."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"model file not found: {path}")

    def __str__(self) -> str:  # FileNotFoundError would print its errno form otherwise
        return self.args[0]


class InvalidModelError(EmberError, ValueError):
    """A file or byte string is not a usable ONNX model."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source} is not a valid ONNX model: {reason}")


class UnknownDeviceError(EmberError, LookupError):
    """A device name matches no installed device."""

    def __init__(self, device_name: str, available: Sequence[str], hint: str = "") -> None:
        self.device_name = device_name
        self.available = list(available)
        listed = ", ".join(self.available) or "none"
        message = f"device {device_name!r} is not available; available devices: {listed}"
        super().__init__(f"{message} ({hint})" if hint else message)

    def __str__(self) -> str:  # LookupError subclasses would otherwise be fine; keep it plain
        return self.args[0]


class UnsupportedOperatorError(EmberError, NotImplementedError):
    """A device cannot run one node of a model."""

    def __init__(self, device_name: str, op_type: str, node_name: str, domain: str = "",
                 reason: str = "") -> None:
        self.device_name = device_name
        self.op_type = op_type
        self.node_name = node_name
        self.domain = domain
        #: Why, when the device supports the operator but not this use of it (may be empty).
        self.reason = reason
        op = f"{domain}::{op_type}" if domain else op_type
        super().__init__(
            f"device {device_name} does not support operator {op} (node {node_name!r})"
            + (f": {reason}" if reason else "")
        )


class NotSupportedError(EmberError, NotImplementedError):
    """The device cannot do what was asked (for example export a model without EXPORT_IMPORT)."""


class OpenVINOModuleError(EmberError, ModuleNotFoundError):
    """An ``openvino`` module that Ember does not implement, imported by a program run through
    ``python -m ember.compat.openvino``. Its ``name`` is None, so that ``from openvino import X``
    reports this message rather than Python's "cannot import name"."""


class InferenceInputError(EmberError, ValueError):
    """The inputs given to an inference do not fit the model: name, count, shape or dtype."""


class UnknownPropertyError(EmberError, KeyError):
    """A property key that the core or the device does not know."""

    def __init__(self, key: str, where: str, known: Sequence[str]) -> None:
        self.key = key
        super().__init__(
            f"{where}: unknown property {key!r}; supported: {', '.join(sorted(known))}"
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class PropertyValueError(EmberError, ValueError):
    """A property was given a value it cannot take, or a read-only property was set."""


class BlobFormatError(EmberError, ValueError):
    """Bytes that are not an Ember blob, or one that is damaged or made for another target."""


class PreprocessError(EmberError, ValueError):
    """A preprocessing step that cannot apply where it was put (OpenVINO raises RuntimeError)."""


class RuntimeInfoError(EmberError, LookupError):
    """A runtime-info path that leads nowhere (``Model.get_rt_info``)."""


class CacheWarning(UserWarning):
    """The model cache could not be used for one compile (damaged entry, read-only or full
    directory, ...). The compile went on without it: nothing failed."""


class PluginWarning(UserWarning):
    """A device plugin raised something other than one of Ember's errors (or ``OSError``) where
    Ember can go on without it: importing or exporting a cache entry, loading a kernel entry. The
    work was redone or left undone, so nothing failed, but the plugin has a bug to fix; the
    message names the plugin and the device. A payload a plugin cannot use should raise
    ``BlobFormatError``, a model it cannot export ``NotSupportedError``: those cost only a
    ``CacheWarning``."""


class PlantedLinkError(EmberError, OSError):
    """A symbolic link (or a FIFO, a device...) where Ember expects its own directory or file
    inside a cache or store directory: not followed, nothing outside is touched."""

    def __str__(self) -> str:  # OSError would print its errno form otherwise
        return str(self.args[0])


class PluginError(EmberError):
    """A device plugin broke its contract (returned the wrong type, claimed a device twice, ...)."""


class BackendCompileError(PluginError):
    """A device's backend failed to compile a model that Ember read as valid ONNX.

    Plugins raise it (or the core wraps what they raise) so that the message names the plugin
    and the device without ``--debug``: ``"CPU (ember-cpu 0.1): onnxruntime refused ..."``.
    """

    def __init__(self, device: str, reason: str, plugin: str | None = None) -> None:
        self.device = device
        self.plugin = plugin
        self.reason = reason
        who = f"{device} ({plugin})" if plugin else device
        super().__init__(f"{who} could not compile the model: {reason}")


class DeviceConflictError(PluginError):
    """Several installed distributions declare the same device kind, and the user has not said
    which one provides it; Ember never picks one by the order entry points happen to be found."""

    def __init__(self, kind: str, contenders: Sequence[str], chosen: str | None = None) -> None:
        self.kind = kind
        self.contenders = list(contenders)
        declared = f"device kind {kind} is declared by {' and '.join(self.contenders)}"
        if chosen is not None:
            message = (f"{declared}; EMBER_DEVICE_PLUGINS chooses {chosen!r}, which is none of "
                       f"them: name one of their distributions")
        else:
            message = (f"{declared}; choose one with EMBER_DEVICE_PLUGINS={kind}=<distribution>, "
                       f"or disable or uninstall the others (EMBER_DISABLE_PLUGINS)")
        super().__init__(message)


class RequestBusyError(EmberError):
    """An infer request was asked to start or change while an asynchronous inference runs on it,
    or a synchronous one on another thread (OpenVINO's "Infer Request is busy")."""


class DynamicShapeError(EmberError, ValueError):
    """A static size was asked of a dynamic dimension or shape (``Dimension.get_length``,
    ``PartialShape.to_shape``, ``Port.get_shape``)."""


class DeviceAliasError(UnknownDeviceError):
    """A device name that ``EMBER_DEVICE_ALIASES`` serves with another device cannot be served:
    the target is not available, the aliases form a cycle, or the setting is malformed."""

    def __init__(self, device_name: str, reason: str, available: Sequence[str] = ()) -> None:
        self.device_name = device_name
        self.available = list(available)
        self.reason = reason
        EmberError.__init__(self, f"device {device_name!r} cannot be served: {reason}")
