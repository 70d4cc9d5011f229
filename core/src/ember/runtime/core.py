"""``ember.Core``: the one object an application talks to, shaped like OpenVINO's ``Core``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

from ember import properties as props
from ember._version import __version__
from ember.cache.cached_compile import compile_with_cache
from ember.cache.key import make_key, model_identity
from ember.cache.local import ModelCache
from ember.contract.device import DeviceDescription, DeviceModel, is_virtual, split_device_name
from ember.contract.plugin_manager import (
    ALIAS_ENV,
    DISABLE_ENV,
    PluginInfo,
    Plugins,
    load_plugins,
)
from ember.errors import (
    BlobFormatError,
    DeviceAliasError,
    NotSupportedError,
    PluginError,
    UnknownDeviceError,
    UnknownPropertyError,
)
from ember.runtime.compiled_model import CompiledModel
from ember.runtime.settings import Settings
from ember.store import blob
from ember.store.paths import is_model_name

if TYPE_CHECKING:
    from pathlib import Path

    from ember.cache.kernel_cache import KernelCache
    from ember.cache.remote import RemoteSettings, RemoteTier
    from ember.contract.plugin_failure import PluginFailure
    from ember.model.model import Model
    from ember.runtime.core_api import ModelSource
    from ember.runtime.versions import Version
    from ember.store.signing import Signer

#: Which distribution provides the devices the Ember project ships, for "not available" errors.
#: The core never imports these; it only names them.
KNOWN_DISTRIBUTIONS = {"CPU": "ember-cpu", "GPU": "ember-gpu", "OPENVINO": "ember-openvino",
                       "TEMPLATE": "ember-template"}

#: Device names tried, in order, when compile_model is given none.
DEFAULT_DEVICE_ORDER = ("CPU", "GPU", "TEMPLATE")



class Core:
    """Finds device plugins, reads models, and compiles them for devices.

    Plugins are found through the ``ember.devices`` entry points when the Core is created (set
    ``EMBER_DISABLE_PLUGINS`` to skip some) and imported when a device of their kind is first
    named, so a program that compiles for CPU loads only the CPU plugin; each Core has its own
    plugin manager (see :mod:`ember.contract.plugin_manager`).
    """

    def __init__(self, *, load_installed_plugins: bool = True) -> None:
        self._plugins: Plugins = load_plugins(load_entry_points=load_installed_plugins)
        self._settings = Settings()
        self._caches: dict[str, ModelCache] = {}
        self._remotes: dict[RemoteSettings, RemoteTier] = {}
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

    def get_available_devices(self) -> list[str]:
        """``available_devices``, by OpenVINO's older name."""
        return self.available_devices

    @property
    def loaded_plugins(self) -> list[PluginInfo]:
        """The plugins registered in this Core, with their distributions and versions."""
        return list(self._plugins.infos.values())

    @property
    def plugin_failures(self) -> list[PluginFailure]:
        """Plugins that were found but could not be used, with the reason."""
        _ = self._plugins.device_owners  # listing devices may add failures
        return list(self._plugins.failures)

    def get_versions(self, device_name: str) -> dict[str, Version]:
        """The distribution and version of the plugin behind a device: a ``Version`` (the text
        ``"ember-cpu 0.1.0"``, with OpenVINO's ``description`` and ``build_number``)."""
        from ember.runtime.versions import Version

        device = self._device(device_name)
        info = self._plugins.owner(device.name)
        return {device.name: Version(info.distribution or info.name, info.version or "")}

    def _device(self, device_name: str) -> DeviceDescription:
        full_name = self._plugins.resolve(device_name)
        if full_name is None and self._plugins.serving_name(device_name) != device_name:
            raise self._unservable_alias(device_name)
        if full_name is None:
            conflict = self._plugins.conflict(split_device_name(device_name)[0])
            if conflict is not None:
                raise conflict
            raise UnknownDeviceError(device_name, self.available_devices, self._hint(device_name))
        description = self._descriptions.get(full_name)
        if description is None:
            metrics = self._plugins.supported_metrics(full_name)
            description = DeviceDescription.from_metrics(full_name, metrics)
            self._descriptions[full_name] = description
        return description

    def _unservable_alias(self, device_name: str) -> DeviceAliasError:
        target = self._plugins.serving_name(device_name)
        available = self.available_devices
        return DeviceAliasError(device_name, f"{ALIAS_ENV} serves it with {target!r}, which is "
                                f"not available ({self._hint(target)}); available devices: "
                                f"{', '.join(available) or 'none'}", available)

    def _hint(self, device_name: str) -> str:
        """What to do about a device name that matched nothing, as precisely as we can tell."""
        base, index = split_device_name(device_name)
        if base != base.upper() and self._plugins.resolve(device_name.upper()):
            return f"did you mean {device_name.upper()!r}? device names are upper case"
        same_kind = [n for n in self.available_devices if split_device_name(n)[0] == base]
        if same_kind:
            missing = f"{base} with index {index}" if index is not None else repr(device_name)
            return f"there is no {missing}; {base} devices: {', '.join(same_kind)}"
        hints = []
        closest = _closest(device_name, self.available_devices)
        if closest:
            hints.append(f"did you mean {closest!r}?")
        distribution = KNOWN_DISTRIBUTIONS.get(base.upper())
        if distribution:
            installed = {i.distribution for i in self._plugins.infos.values()}
            disabled = os.environ.get(DISABLE_ENV, "")
            if distribution in installed:
                hints.append(f"{distribution} is installed but found no {base} device here")
            elif any(name.strip() in (distribution, base.lower()) for name in disabled.split(",")):
                hints.append(f"{distribution} is disabled by {DISABLE_ENV}={disabled!r}")
            elif not any(f.distribution == distribution for f in self._plugins.failures):
                hints.append(f"it is provided by the {distribution} distribution, not installed")
        reason = self._plugins.explain_absence(base.upper())  # the plugin may know why
        if reason:
            hints.append(reason)
        # A failed plugin may be the one that provides this device, whatever its name.
        hints += [str(f) for f in self.plugin_failures]
        return "; ".join(hints) or "no installed plugin provides it"

    def _default_device(self) -> str:
        for preferred in DEFAULT_DEVICE_ORDER:  # loads plugins only as far as needed
            resolved = self._plugins.resolve(preferred)
            if resolved:
                return resolved
        available = self.available_devices
        if not available:
            raise UnknownDeviceError("(default)", [], "no device plugin is installed")
        return available[0]

    # -- properties --------------------------------------------------------------------------

    def get_property(self, device_name: str, key: str | None = None) -> Any:
        """``get_property(device, key)`` for a device; ``get_property(key)`` for the core; values
        in the types OpenVINO returns (see :mod:`ember.properties.typed`)."""
        from ember.properties.typed import as_returned

        if key is None:
            return self._core_property(device_name)
        device = self._device(device_name)
        metrics = device.read_only_properties()
        if key in metrics:
            return metrics[key]
        if key in props.CORE_CONFIG_KEYS:
            return as_returned(key, _shown(key, self._settings.core_value(device, key)))
        config = self._settings.device_values(device)
        if key in config:
            return as_returned(key, config[key])
        raise UnknownPropertyError(key, f"device {device.name}",
                                   [*metrics, *config, *props.CORE_CONFIG_KEYS])

    def _core_property(self, key: str) -> Any:
        from ember.properties.typed import as_returned

        if key == props.AVAILABLE_DEVICES:  # the only core property that loads every plugin
            return self.available_devices
        if key in props.CORE_CONFIG_KEYS:
            return as_returned(key, _shown(key, self._settings.core_value(None, key)))
        names = [props.AVAILABLE_DEVICES, *props.CORE_CONFIG_KEYS, props.SUPPORTED_PROPERTIES]
        if key == props.SUPPORTED_PROPERTIES:
            return sorted(names)
        raise UnknownPropertyError(key, "the core", names)

    def set_property(
        self, device_name: str | Mapping[str, Any], properties: Mapping[str, Any] | None = None
    ) -> None:
        """``set_property({...})`` for every device; ``set_property(device, {...})`` for one.

        See :mod:`ember.runtime.settings` for which value wins when several levels set a property.
        The core's own keys (``CACHE_DIR``, ``CACHE_MODE``, ...) load no plugin; a device key
        set for every device is checked against every device, which loads them all.
        """
        if isinstance(device_name, Mapping):
            core_only = all(key in props.CORE_CONFIG_KEYS for key in device_name)
            devices = [] if core_only else [self._device(n) for n in self.available_devices]
            self._settings.set_global(device_name, devices)
            return
        if properties is None:
            raise TypeError("set_property(device_name, properties) needs the properties")
        self._settings.set_device(self._device(device_name), properties)

    # -- models ------------------------------------------------------------------------------

    def read_model(self, model: str | os.PathLike[str] | bytes, weights: Any = None,
                   config: Mapping[str, Any] | None = None) -> Model:
        """Read an ONNX model from a file path or from serialized bytes.

        ``weights`` and ``config`` are OpenVINO's (``read_model(xml, bin)``) and may be given or
        None: an ONNX file finds its external weights beside itself, so Ember reads neither.

        :raises ember.errors.ModelNotFoundError: the file does not exist.
        :raises ember.errors.InvalidModelError: it is not an ONNX model (the message says why).
        """
        from ember.model.model import read_model

        return read_model(resolve_model_name(model))

    def compile_model(
        self,
        model: ModelSource,
        device_name: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> CompiledModel:
        """Compile a model (a Model, a path, or ONNX bytes) for a device.

        With ``CACHE_DIR`` set and a device that lists ``EXPORT_IMPORT``, the compiled model is
        stored in the cache and later compiles import it (``LOADED_FROM_CACHE`` is then True);
        given a path, a hit does not even parse the ONNX file. With no ``device_name`` the first
        available of CPU, GPU and TEMPLATE is used. ``"AUTO"`` and ``"AUTO:GPU,CPU"`` choose
        the device and serve on CPU while the target compiles (see :mod:`ember.runtime.auto`).
        """
        if is_virtual(device_name):
            from ember.runtime.auto import (
                compile_auto,  # AUTO's threads and queues: only when asked
            )

            return compile_auto(self, model, str(device_name), config)
        device = self._device(device_name or self._default_device())
        model = resolve_model_name(model)
        plugin_config = self._settings.device_values(device, config)
        cache_dir = self._settings.core_value(device, props.CACHE_DIR, config)
        if cache_dir and device.can_export:
            device_model, loaded = self._compile_cached(model, device, plugin_config, config,
                                                        os.fspath(cache_dir))
        elif cache_dir:  # the device caches what it builds through the core, as OpenVINO's
            # GPU plugin keeps its compiled kernels in CACHE_DIR (.cl_cache files)
            kernels = self._kernel_cache(device, config, os.fspath(cache_dir))
            device_model, loaded = self._compile(model, device, plugin_config, kernels), False
            kernels.report()
        else:
            device_model, loaded = self._compile(model, device, plugin_config), False
        return self._wrap(device, device_model, plugin_config, loaded_from_cache=loaded)

    def _compile(self, model: ModelSource, device: DeviceDescription,
                 plugin_config: dict[str, Any], kernels: KernelCache | None = None) -> DeviceModel:
        from ember.model.model import Model, deferred_model, read_model  # a hit reads no model

        if not isinstance(model, Model):
            # a device caching its own work may find all it needs there: parse only if it asks
            model = read_model(model) if kernels is None else deferred_model(model)
        return self._plugins.compile(device.name, model=model, config=plugin_config,
                                     cache=kernels)

    def _model_cache(self, cache_dir: str) -> ModelCache:
        cache = self._caches.get(cache_dir)
        if cache is None:
            _make_parents(cache_dir)
            cache = self._caches.setdefault(cache_dir, ModelCache(cache_dir))
        return cache

    def _kernel_cache(self, device: DeviceDescription, config: Mapping[str, Any] | None,
                      cache_dir: str) -> KernelCache:
        from ember.cache.kernel_cache import KernelCache  # only devices without EXPORT_IMPORT

        info = self._plugins.owner(device.name)
        max_size = self._settings.core_value(device, props.CACHE_MAX_SIZE, config)
        return KernelCache(self._model_cache(cache_dir), plugin=info.distribution or info.name,
                           plugin_version=info.version or "", device=device.name,
                           max_size=_size_limit(max_size),
                           signer=self._signer(device, config))

    def _compile_cached(self, model: ModelSource, device: DeviceDescription,
                        plugin_config: dict[str, Any], config: Mapping[str, Any] | None,
                        cache_dir: str) -> tuple[DeviceModel, bool]:
        cache = self._model_cache(cache_dir)
        signer = self._signer(device, config)
        model_digest, model_name = model_identity(model, cache.file_digests, signer)
        info = self._plugins.owner(device.name)
        encrypted = (props.CACHE_ENCRYPTION_CALLBACKS in plugin_config
                     and props.ENCRYPTION in device.capabilities)
        # Weightless: the blob refers to the model file's own weights, which the key's model
        # checksum pins, so only a model given as a path can be cached this way.
        weights_path = (_path(model) if self._settings.core_value(
            device, props.CACHE_MODE, config) == "OPTIMIZE_SIZE"
            and props.WEIGHTLESS_CACHE in device.capabilities
            and isinstance(model, str | os.PathLike) else None)
        flags = ("encrypted",) * encrypted + ("weightless",) * (weights_path is not None)
        key = make_key(
            model_digest=model_digest,
            device_kind=split_device_name(device.name)[0],
            architecture=device.architecture,
            plugin=info.distribution or info.name,
            plugin_version=info.version or "",
            properties=self._caching_values(device, plugin_config),
            flags=flags,
        )
        max_size = self._settings.core_value(device, props.CACHE_MAX_SIZE, config)
        remote = self._remote_tier(device, config)
        return compile_with_cache(
            cache, key,
            compile_model=lambda: self._compile(model, device, plugin_config),
            export_model=lambda compiled: self._plugins.export_model(
                device.name, compiled_model=compiled, config=plugin_config,
                weightless=weights_path is not None),
            import_model=lambda payload: self._plugins.import_model(
                device.name, data=payload, config=plugin_config, weights_path=weights_path),
            header_fields={**self._blob_fields(device), "model_name": model_name,
                           "flags": key.parts["flags"]},
            max_size=_size_limit(max_size),
            remote=remote,
            signer=signer,
        )

    def _signer(self, device: DeviceDescription, config: Mapping[str, Any] | None) -> Signer | None:
        """The ember.store.signing.Signer of CACHE_SIGNING_KEY, or None (then ember.store.signing
        is not even imported: an unsigned warm start stays as it was)."""
        secret = self._settings.core_value(device, props.CACHE_SIGNING_KEY, config)
        if not secret:
            return None
        from ember.store.signing import signer

        return signer(secret)

    def _remote_tier(self, device: DeviceDescription,
                     config: Mapping[str, Any] | None) -> RemoteTier | None:
        url = self._settings.core_value(device, props.CACHE_REMOTE, config)
        if not url:
            return None
        signing_key = self._settings.core_value(device, props.CACHE_SIGNING_KEY, config)
        from ember.cache.remote import RemoteSettings, RemoteTier  # only with a remote tier

        settings = RemoteSettings.parse(url, signing_key)
        tier = self._remotes.get(settings)
        if tier is None:
            tier = self._remotes.setdefault(settings, RemoteTier(settings))
        return tier

    @staticmethod
    def _caching_values(device: DeviceDescription,
                        plugin_config: Mapping[str, Any]) -> dict[str, Any]:
        """The values of the properties the plugin declares cache-relevant."""
        metrics = device.read_only_properties()
        return {name: plugin_config.get(name, metrics.get(name))
                for name in device.caching_properties}

    def query_model(self, model: ModelSource, device_name: str,
                    config: Mapping[str, Any] | None = None) -> dict[str, str]:
        """Which nodes of a model the device runs: ``{node name: device}`` (see
        :mod:`ember.runtime.query`); a node it cannot run is absent."""
        from ember.runtime.query import query_model

        return query_model(self, model, device_name, config)

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
        if not device.can_export:
            raise NotSupportedError(
                f"device {device.name} cannot import compiled models (no EXPORT_IMPORT)")
        data = model.read() if hasattr(model, "read") else model
        header, payload = blob.unpack(data)
        self._check_blob_origin(header, device)
        plugin_config = self._settings.device_values(device, config)
        device_model = self._plugins.import_model(
            device.name, data=payload, config=plugin_config, weights_path=None)
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
        payload = self._plugins.export_model(
            device.name, compiled_model=compiled.device_model, config=compiled.config,
            weightless=False)
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise PluginError(f"export_model of {device.name} returned {type(payload).__name__}")
        encrypted = props.CACHE_ENCRYPTION_CALLBACKS in compiled.config
        flags = ("encrypted",) if encrypted else ()
        return blob.pack({**self._blob_fields(device), "flags": flags}, payload)

    def _blob_fields(self, device: DeviceDescription) -> dict[str, Any]:
        info = self._plugins.owner(device.name)
        return {
            "ember_version": __version__,
            "plugin": info.distribution or info.name,
            "plugin_version": info.version or "",
            "device": device.name,
            "device_architecture": device.architecture,
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


def _path(model: str | os.PathLike[str]) -> Path:
    from pathlib import Path  # only for weightless entries: a warm start does not import it

    return Path(model)


def _make_parents(cache_dir: str) -> None:
    """Create the missing parents of a CACHE_DIR, each private (0700), as OpenVINO creates them:
    applications written for OpenVINO name cache directories whose parents nobody made. The
    cache creates the directory itself; a parent that cannot be made is left to it to report
    (one CacheWarning, the model compiled uncached)."""
    missing = []
    parent = os.path.dirname(os.path.abspath(cache_dir))
    while not os.path.isdir(parent) and os.path.dirname(parent) != parent:
        missing.append(parent)
        parent = os.path.dirname(parent)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode=0o700)
        except FileExistsError:  # another process made it just now
            continue
        except OSError:
            return


def _shown(key: str, value: Any) -> Any:
    """A core property as get_property shows it: unset is "", and secrets are never shown."""
    if key == props.CACHE_SIGNING_KEY:
        return "<set>" if value else ""
    return value or ""


def _closest(device_name: str, available: list[str]) -> str | None:
    """The available device name nearest to a mistyped one (case aside), if any is near."""
    import difflib  # only on this error path

    by_upper = {name.upper(): name for name in available}
    found = difflib.get_close_matches(device_name.upper(), list(by_upper), n=1, cutoff=0.7)
    return by_upper[found[0]] if found else None


def resolve_model_name(source: Any) -> Any:
    """:func:`ember.store.models.resolve_model_name`, importing the store only for a stored
    model's name: a start from a path or bytes never imports it (nor pathlib with it)."""
    if not is_model_name(source):
        return source
    from ember.store.models import resolve_model_name as resolve

    return resolve(source)


def _size_limit(max_size: Any) -> int | None:
    """CACHE_MAX_SIZE in bytes (checked when set), or None when there is no limit."""
    if max_size is None:
        return None
    from ember.common.sizes import parse_size  # here: most caches set no limit

    return parse_size(max_size)
