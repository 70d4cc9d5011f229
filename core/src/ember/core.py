"""``ember.Core``: the one object an application talks to, shaped like OpenVINO's ``Core``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import IO, Any

from ember import blob
from ember import properties as props
from ember._version import __version__
from ember.compiled_model import CompiledModel
from ember.device import DeviceDescription, DeviceModel, split_device_name
from ember.errors import (
    BlobFormatError,
    NotSupportedError,
    PluginError,
    PropertyValueError,
    UnknownDeviceError,
    UnknownPropertyError,
)
from ember.model import Model, read_model
from ember.plugin_manager import PluginFailure, PluginInfo, Plugins, load_plugins

#: Which distribution provides the devices the Ember project ships, for "not available" errors.
#: The core never imports these; it only names them.
KNOWN_DISTRIBUTIONS = {"CPU": "ember-cpu", "GPU": "ember-gpu", "TEMPLATE": "ember-template"}

#: Device names tried, in order, when compile_model is given none.
DEFAULT_DEVICE_ORDER = ("CPU", "GPU", "TEMPLATE")

ModelSource = Model | str | os.PathLike[str] | bytes


class Core:
    """Finds device plugins, reads models, and compiles them for devices.

    Plugins are loaded from the ``ember.devices`` entry points when the Core is created (set
    ``EMBER_DISABLE_PLUGINS`` to skip some); each Core has its own plugin manager.
    """

    def __init__(self, *, load_installed_plugins: bool = True) -> None:
        self._plugins: Plugins = load_plugins(load_entry_points=load_installed_plugins)
        self._global_config: dict[str, Any] = {}
        self._device_config: dict[str, dict[str, Any]] = {}
        self._descriptions: dict[str, DeviceDescription] = {}

    # -- plugins and devices -----------------------------------------------------------------

    def register_plugin(self, plugin: object, name: str) -> None:
        """Register a plugin object (a module or instance with ``@ember.hookimpl`` hooks) by hand.

        :raises PluginError: when the plugin breaks the hook contract.
        """
        version = getattr(plugin, "__version__", None)
        if not self._plugins.register(plugin, PluginInfo(name, None, version)):
            raise PluginError(str(self._plugins.failures[-1]))

    @property
    def available_devices(self) -> list[str]:
        """Every device that can compile models on this machine now, by full name."""
        return sorted(self._plugins.device_owners)

    @property
    def loaded_plugins(self) -> list[PluginInfo]:
        """The plugins registered in this Core, with their distributions and versions."""
        return list(self._plugins.infos.values())

    @property
    def plugin_failures(self) -> list[PluginFailure]:
        """Plugins that were found but could not be used, with the reason."""
        _ = self._plugins.device_owners  # listing devices may add failures
        return list(self._plugins.failures)

    def get_versions(self, device_name: str) -> dict[str, str]:
        """The distribution and version of the plugin behind a device."""
        device = self._device(device_name)
        info = self._plugins.owner(device.name)
        return {device.name: str(info)}

    def _device(self, device_name: str) -> DeviceDescription:
        full_name = self._plugins.resolve(device_name)
        if full_name is None:
            raise UnknownDeviceError(device_name, self.available_devices, self._hint(device_name))
        description = self._descriptions.get(full_name)
        if description is None:
            metrics = self._plugins.call("supported_metrics", full_name)
            description = DeviceDescription.from_metrics(full_name, metrics)
            self._descriptions[full_name] = description
        return description

    def _hint(self, device_name: str) -> str:
        base, _ = split_device_name(device_name)
        distribution = KNOWN_DISTRIBUTIONS.get(base.upper())
        failures = [f for f in self.plugin_failures
                    if distribution and f.distribution == distribution]
        if failures:
            return "; ".join(map(str, failures))
        if distribution is None:
            return "no known distribution provides it"
        installed = {i.distribution for i in self._plugins.infos.values()}
        if distribution in installed:
            return f"{distribution} is installed but found no {base.upper()} device on this machine"
        return f"it is provided by {distribution}: pip install {distribution}"

    def _default_device(self) -> str:
        available = self.available_devices
        for preferred in DEFAULT_DEVICE_ORDER:
            resolved = self._plugins.resolve(preferred)
            if resolved:
                return resolved
        if not available:
            raise UnknownDeviceError("(default)", [], "no device plugin is installed")
        return available[0]

    # -- properties --------------------------------------------------------------------------

    def get_property(self, device_name: str, key: str | None = None) -> Any:
        """``get_property(device, key)`` for a device; ``get_property(key)`` for the core."""
        if key is None:
            return self._core_property(device_name)
        device = self._device(device_name)
        metrics = device.read_only_properties()
        if key in metrics:
            return metrics[key]
        config = self._device_level_config(device)
        if key in config:
            return config[key]
        raise UnknownPropertyError(key, f"device {device.name}", [*metrics, *config])

    def _core_property(self, key: str) -> Any:
        values: dict[str, Any] = {
            props.AVAILABLE_DEVICES: self.available_devices,
            props.CACHE_DIR: self._global_config.get(props.CACHE_DIR, ""),
        }
        values[props.SUPPORTED_PROPERTIES] = sorted({*values, props.SUPPORTED_PROPERTIES})
        if key not in values:
            raise UnknownPropertyError(key, "the core", list(values))
        return values[key]

    def set_property(
        self, device_name: str | Mapping[str, Any], properties: Mapping[str, Any] | None = None
    ) -> None:
        """``set_property({...})`` for every device; ``set_property(device, {...})`` for one."""
        if isinstance(device_name, Mapping):
            self._set_global(device_name)
            return
        if properties is None:
            raise TypeError("set_property(device_name, properties) needs the properties")
        device = self._device(device_name)
        self._check_keys(device, properties, where=f"device {device.name}")
        self._device_config.setdefault(device.name, {}).update(properties)

    def _set_global(self, properties: Mapping[str, Any]) -> None:
        for key in properties:
            if key in props.CORE_CONFIG_KEYS:
                continue
            devices = [self._device(name) for name in self.available_devices]
            if not any(key in d.config_defaults for d in devices):
                known = {*props.CORE_CONFIG_KEYS, *(k for d in devices for k in d.config_defaults)}
                raise UnknownPropertyError(key, "no available device", sorted(known))
        self._global_config.update(properties)

    @staticmethod
    def _check_keys(device: DeviceDescription, keys: Mapping[str, Any], where: str,
                    extra: tuple[str, ...] = ()) -> None:
        writable = {*device.config_defaults, *props.CORE_CONFIG_KEYS, *extra}
        read_only = device.read_only_properties()
        for key in keys:
            if key in writable:
                continue
            if key in read_only:
                raise PropertyValueError(f"{key} is a read-only property of {device.name}")
            raise UnknownPropertyError(key, where, sorted(writable))

    def _device_level_config(self, device: DeviceDescription) -> dict[str, Any]:
        """Defaults, then properties set for all devices, then those set for this device."""
        config = dict(device.config_defaults)
        config[props.CACHE_DIR] = ""
        config.update({k: v for k, v in self._global_config.items() if k in config})
        config.update(self._device_config.get(device.name, {}))
        return config

    def _call_config(self, device: DeviceDescription,
                     config: Mapping[str, Any] | None) -> dict[str, Any]:
        """The effective configuration of one compile or import call; the call's config wins."""
        config = dict(config or {})
        self._check_keys(device, config, where=f"compile_model on {device.name}",
                         extra=(props.CACHE_ENCRYPTION_CALLBACKS,))
        effective = self._device_level_config(device)
        effective.update(config)
        return effective

    @staticmethod
    def _plugin_config(device: DeviceDescription, effective: Mapping[str, Any]) -> dict[str, Any]:
        """What the plugin sees: its own keys (and encryption callbacks), not the core's."""
        keep = {*device.config_defaults, props.CACHE_ENCRYPTION_CALLBACKS}
        return {k: v for k, v in effective.items() if k in keep}

    # -- models ------------------------------------------------------------------------------

    def read_model(self, model: str | os.PathLike[str] | bytes) -> Model:
        """Read an ONNX model from a file path or from serialized bytes.

        :raises ember.errors.ModelNotFoundError: the file does not exist.
        :raises ember.errors.InvalidModelError: it is not an ONNX model (the message says why).
        """
        return read_model(model)

    def compile_model(
        self,
        model: ModelSource,
        device_name: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> CompiledModel:
        """Compile a model (a Model, a path, or ONNX bytes) for a device.

        With no ``device_name`` the first available of CPU, GPU and TEMPLATE is used.
        """
        device = self._device(device_name or self._default_device())
        effective = self._call_config(device, config)
        if not isinstance(model, Model):
            model = read_model(model)
        plugin_config = self._plugin_config(device, effective)
        device_model = self._plugins.call(
            "compile", device.name, model=model, config=plugin_config
        )
        return self._wrap(device, device_model, plugin_config, loaded_from_cache=False)

    def import_model(
        self,
        model: bytes | bytearray | memoryview | IO[bytes],
        device_name: str,
        config: Mapping[str, Any] | None = None,
    ) -> CompiledModel:
        """Rebuild a compiled model from ``CompiledModel.export_model()`` bytes or a binary stream.

        :raises ember.errors.BlobFormatError: the data is not an intact Ember blob made by this
            plugin version for this kind of device.
        """
        device = self._device(device_name)
        data = model.read() if hasattr(model, "read") else model
        header, payload = blob.unpack(data)
        self._check_blob_origin(header, device)
        plugin_config = self._plugin_config(device, self._call_config(device, config))
        device_model = self._plugins.call(
            "import_model", device.name, data=payload, config=plugin_config
        )
        return self._wrap(device, device_model, plugin_config, loaded_from_cache=False)

    def _wrap(self, device: DeviceDescription, device_model: DeviceModel | None,
              plugin_config: dict[str, Any], *, loaded_from_cache: bool) -> CompiledModel:
        if device_model is None:
            raise PluginError(f"the plugin of {device.name} returned nothing for its own device")
        return CompiledModel(device_model, device, plugin_config, self._export,
                             loaded_from_cache=loaded_from_cache)

    # -- blobs -------------------------------------------------------------------------------

    def _export(self, compiled: CompiledModel) -> bytes:
        device = compiled.device
        if not device.can_export:
            raise NotSupportedError(
                f"device {device.name} cannot export compiled models (no EXPORT_IMPORT)"
            )
        payload = self._plugins.call(
            "export_model", device.name,
            compiled_model=compiled.device_model, config=compiled.config,
        )
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise PluginError(f"export_model of {device.name} returned {type(payload).__name__}")
        return blob.pack(self._blob_fields(device), payload)

    def _blob_fields(self, device: DeviceDescription, key: str = "") -> dict[str, object]:
        info = self._plugins.owner(device.name)
        return {
            "ember_version": __version__,
            "plugin": info.distribution or info.name,
            "plugin_version": info.version or "",
            "device": device.name,
            "device_architecture": device.architecture,
            "key": key,
        }

    def _check_blob_origin(self, header: blob.BlobHeader, device: DeviceDescription) -> None:
        expected = self._blob_fields(device)
        if split_device_name(header.device)[0] != split_device_name(device.name)[0]:
            raise BlobFormatError(f"blob was compiled for {header.device}, not {device.name}")
        for field in ("plugin", "plugin_version", "device_architecture"):
            if getattr(header, field) != expected[field]:
                raise BlobFormatError(
                    f"blob was made with {field.replace('_', ' ')} {getattr(header, field)!r}; "
                    f"{device.name} here has {expected[field]!r}: compile the model again"
                )
